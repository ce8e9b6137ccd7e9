//! The contract between the server and a tool kind.
//!
//! A kind (SQL warehouses, workflows, streams, ML) is named once in `src/kinds.rs` and owns
//! everything else about itself in its own folder: the part of the config file it reads (its
//! top-level tables, decoded into its own types), its tools, the systems behind them and their
//! shutdown. When the server builds, each kind gets the config file ([`ConfigSource`]) and a
//! [`KindHost`]: the data folders, and a handle to the registry through which it registers,
//! replaces and removes its tools at any time and calls other tools. A kind never imports
//! another; it reaches other kinds' tools only through [`KindHost::call`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::context::CallContext;
use super::gauges::GaugeSource;
use super::health::HealthCheck;
use super::registry::{Changed, Registration, Registry, RegistryError};
use super::resources::ResourceProvider;
use super::result::{ToolError, ToolResult};
use crate::config::{ConfigError, ConfigSource};

/// A tool kind.
pub trait Kind: Sized + Send + Sync + 'static {
    /// Short name, e.g. `sql`: the owner of the kind's tools, in logs and errors.
    const NAME: &'static str;

    /// The kind's part of the config file: a struct whose fields are the kind's top-level keys
    /// (each table inside refuses unknown keys). Its JSON Schema is merged into
    /// `schemas/config.schema.json`. Every field must have a serde default, since the file may
    /// not mention the kind at all.
    type File: DeserializeOwned + JsonSchema;

    /// Checks the kind's part of the config and starts it: builds its tools and registers them
    /// through `host`. Connections are opened lazily, so this does no I/O that fails when a
    /// system is down. Config problems are [`ConfigError`]s with the file, line and a hint.
    fn start(file: Self::File, source: &ConfigSource, host: KindHost) -> Result<Self, KindError>;

    /// Applies an edited config file while serving: the kind re-checks its part and swaps in
    /// its changed tools. On an error nothing changes and the last good version keeps serving.
    /// Returns the changed settings that only a restart applies. By default nothing reloads.
    fn reload(&self, file: Self::File, source: &ConfigSource) -> Result<Reloaded, KindError> {
        let _ = (file, source);
        Ok(Reloaded::default())
    }

    /// The kind's part of the server's instructions to the model, if any.
    fn instructions(&self) -> Option<String> {
        None
    }

    /// Closes what the kind opened (pools, consumers). Runs once, when the server stops.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What a reload did besides swapping tools.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Keys whose new values take effect only after a restart, e.g. `warehouses.shop`.
    pub restart_needed: Vec<String>,
}

/// Why a kind could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// Its part of the config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registry refused one of its tools.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The kind's own files (e.g. workflow files) are unusable; every problem is listed.
    #[error("{what}:\n  - {}", .problems.join("\n  - "))]
    Problems {
        /// What was being loaded.
        what: String,
        /// Each problem, with where it is.
        problems: Vec<String>,
    },
    /// Several problems at once (a reload reports every one it found).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<KindError>),
}

/// A started kind, with its type erased: what the server keeps to reload and stop it.
pub trait RunningKind: Send + Sync {
    /// The kind's name.
    fn name(&self) -> &'static str;
    /// Decodes the kind's part of `source` and applies it (see [`Kind::reload`]).
    fn reload(&self, source: &ConfigSource) -> Result<Reloaded, KindError>;
    /// See [`Kind::instructions`].
    fn instructions(&self) -> Option<String>;
    /// See [`Kind::shutdown`].
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

impl<K: Kind> RunningKind for K {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn reload(&self, source: &ConfigSource) -> Result<Reloaded, KindError> {
        Kind::reload(self, source.decode::<K::File>()?, source)
    }

    fn instructions(&self) -> Option<String> {
        Kind::instructions(self)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Kind::shutdown(self)
    }
}

/// Decodes a kind's part of the config and starts it.
type Starter = fn(&ConfigSource, KindHost) -> Result<Arc<dyn RunningKind>, KindError>;

/// One entry of the `KINDS` list: a kind's name, config schema and starter.
pub struct KindEntry {
    /// The kind's name.
    pub name: &'static str,
    config_schema: fn() -> Value,
    start: Starter,
}

/// The `KINDS` entry of kind `K`.
pub const fn kind<K: Kind>() -> KindEntry {
    KindEntry {
        name: K::NAME,
        config_schema: super::schema::schema_of::<K::File>,
        start: start_kind::<K>,
    }
}

fn start_kind<K: Kind>(
    source: &ConfigSource,
    host: KindHost,
) -> Result<Arc<dyn RunningKind>, KindError> {
    let file = source.decode::<K::File>()?;
    Ok(Arc::new(K::start(file, source, host)?))
}

impl KindEntry {
    /// The JSON Schema of the kind's part of the config file.
    pub fn config_schema(&self) -> Value {
        (self.config_schema)()
    }

    /// The top-level config keys the kind reads.
    pub fn config_keys(&self) -> Vec<String> {
        self.config_schema()
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Starts the kind.
    pub fn start(
        &self,
        source: &ConfigSource,
        host: KindHost,
    ) -> Result<Arc<dyn RunningKind>, KindError> {
        (self.start)(source, host)
    }
}

/// Where datamcp keeps its own files, shared by every kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    /// Folder for datamcp's own files (the demo database).
    pub data_dir: PathBuf,
    /// Folder for result files.
    pub output_dir: PathBuf,
    /// Most bytes the result files may take together.
    pub output_max_bytes: u64,
}

/// A kind's handle to the server: the workspace, and the registry its tools live in.
///
/// The handle holds the registry weakly, so tools that keep a handle (a workflow calling its
/// steps) do not keep the registry alive in a cycle.
#[derive(Clone)]
pub struct KindHost {
    kind: &'static str,
    registry: Weak<Registry>,
    workspace: Arc<Workspace>,
}

impl KindHost {
    /// The handle kind `kind` gets.
    pub fn new(kind: &'static str, registry: &Arc<Registry>, workspace: Arc<Workspace>) -> Self {
        KindHost {
            kind,
            registry: Arc::downgrade(registry),
            workspace,
        }
    }

    /// Where datamcp keeps its files.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The folder for datamcp's own files.
    pub fn data_dir(&self) -> &Path {
        &self.workspace.data_dir
    }

    fn registry(&self) -> Result<Arc<Registry>, RegistryError> {
        // Only a server being torn down has dropped its registry.
        self.registry.upgrade().ok_or(RegistryError::Stopped)
    }

    /// Adds a tool this kind owns.
    pub fn register(&self, registration: Registration) -> Result<Changed, RegistryError> {
        self.registry()?.register(self.kind, registration)
    }

    /// Makes this kind's tools exactly `registrations`, atomically (see
    /// [`Registry::replace_owned`]).
    pub fn replace_tools(
        &self,
        registrations: Vec<Registration>,
    ) -> Result<Changed, RegistryError> {
        self.registry()?.replace_owned(self.kind, registrations)
    }

    /// Removes one of this kind's tools.
    pub fn remove_tool(&self, name: &str) -> Result<bool, RegistryError> {
        self.registry()?.remove(self.kind, name)
    }

    /// Adds a provider of resources.
    pub fn add_resources(&self, provider: Arc<dyn ResourceProvider>) {
        if let Ok(registry) = self.registry() {
            registry.register_resources(provider);
        }
    }

    /// Adds a readiness check of a system behind the kind's tools.
    pub fn add_health_check(&self, check: Arc<dyn HealthCheck>) {
        if let Ok(registry) = self.registry() {
            registry.register_health_check(check);
        }
    }

    /// Adds gauges of a system behind the kind's tools.
    pub fn add_gauges(&self, source: Arc<dyn GaugeSource>) {
        if let Ok(registry) = self.registry() {
            registry.register_gauges(source);
        }
    }

    /// A registered tool, listed or internal, by name.
    pub fn tool(&self, name: &str) -> Option<Arc<super::registry::RegisteredTool>> {
        self.registry().ok()?.get_any(name)
    }

    /// Whether the server refuses every tool that can write.
    pub fn read_only(&self) -> bool {
        self.registry().map_or(true, |r| r.is_read_only())
    }

    /// Calls any registered tool with an invocation the caller built (a workflow run that
    /// outlives the call that started it, a step with its own deadline).
    pub async fn call_with(
        &self,
        name: &str,
        args: Map<String, Value>,
        invocation: super::context::Invocation,
    ) -> Result<ToolResult, ToolError> {
        let registry = self
            .registry()
            .map_err(|e| ToolError::Internal(e.to_string()))?;
        registry
            .call_internal(name, Some(args), invocation)
            .await
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))
    }

    /// Calls any registered tool, listed or internal, on behalf of the running call `parent`:
    /// the child inherits its deadline, cancellation, caller and progress, and passes the same
    /// validation, policies, metrics and audit as a client's call.
    pub async fn call(
        &self,
        parent: &CallContext,
        name: &str,
        args: Map<String, Value>,
    ) -> Result<ToolResult, ToolError> {
        let registry = self
            .registry()
            .map_err(|e| ToolError::Internal(e.to_string()))?;
        registry
            .call_internal(name, Some(args), parent.nested())
            .await
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))
    }
}
