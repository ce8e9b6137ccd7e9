//! Tools by name: built-in ones and those created at run time, each with its compiled argument
//! validator and its policy runner. The registry knows no concrete tool kind.
//!
//! The set is live: a kind adds, replaces and removes the tools it owns while clients are
//! connected, each change swapped in atomically. A call holds the version it found, so a call
//! running when its tool is replaced finishes on the version it started with. Every change
//! clients can see bumps the [`Registry::subscribe`] generation, which the protocol layer turns
//! into `notifications/tools/list_changed`.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::audit::{self, AuditRecord, Outcome};
use super::context::Invocation;
use super::health::{HealthCheck, Probe};
use super::metrics::{MetricsSnapshot, ToolMetrics};
use super::policy::{Policy, PolicyOverride, PolicyRunner};
use super::resources::{Providers, ResourceProvider};
use super::result::{ExecutionMeta, ToolError, ToolResult};
use super::schema::ArgumentValidator;
use super::{Annotations, DynTool};

/// Why a tool could not be registered or called.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No tool has this name, or clients may not call it (hidden or internal).
    #[error("unknown tool '{0}'; call tools/list to see the available tools")]
    UnknownTool(String),
    /// Two tools claim one name.
    #[error("two tools are named '{0}'; tool names must be unique")]
    Duplicate(String),
    /// The name is another kind's tool.
    #[error("tool '{name}' belongs to the {owner} tools; choose another name")]
    NotOwned {
        /// The tool.
        name: String,
        /// The kind that owns it.
        owner: &'static str,
    },
    /// The name breaks MCP's naming rule.
    #[error("tool name '{0}' is not valid: use 1 to 128 of A-Z a-z 0-9 _ - .")]
    InvalidName(String),
    /// The tool's schemas are unusable.
    #[error("tool '{tool}' has an unusable schema: {reason}")]
    BadSchema {
        /// The tool.
        tool: String,
        /// What is wrong.
        reason: String,
    },
    /// The server is shutting down and its registry is gone.
    #[error("the server is stopping")]
    Stopped,
    /// The config names tools that do not exist.
    #[error("the config sets a policy for unknown tool(s) {names:?}; known tools: {known:?}")]
    UnknownPolicyTarget {
        /// Names from the config.
        names: Vec<String>,
        /// Every tool offered by the enabled kinds.
        known: Vec<String>,
    },
}

/// Which tools clients see: enable/disable globs and read-only mode.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolFilter {
    /// Globs (`*`, `?`) of names to list; empty means none.
    pub enable: Vec<String>,
    /// Globs of names never to list; wins over `enable`.
    pub disable: Vec<String>,
    /// Refuse every tool whose annotations do not say read-only, on every route.
    pub read_only: bool,
    /// Groups whose tools are listed (`sql`, `workflow`, `custom`, …); `None`: every group.
    pub groups: Option<Vec<String>>,
    /// Discovery mode: list only the two discovery tools; the others are found and called
    /// through them (or by name).
    pub discovery: bool,
}

impl Default for ToolFilter {
    fn default() -> Self {
        ToolFilter {
            enable: vec!["*".to_owned()],
            disable: Vec::new(),
            read_only: true,
            groups: None,
            discovery: false,
        }
    }
}

impl ToolFilter {
    fn lists(&self, name: &str, group: &str) -> bool {
        group == DISCOVERY_GROUP
            || (self.enable.iter().any(|g| glob_matches(g, name))
                && !self.disable.iter().any(|g| glob_matches(g, name))
                && self
                    .groups
                    .as_ref()
                    .is_none_or(|groups| groups.iter().any(|g| g == group)))
    }

    fn refuses(&self, annotations: &Annotations) -> bool {
        self.read_only && !annotations.read_only_hint
    }
}

/// Who may see a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Listed to clients (unless the config's filter hides it) and callable by them.
    Listed,
    /// Never listed, refused to clients; callable by other tools (a workflow step).
    Internal,
}

/// A tool offered to the registry, with whom it is for.
pub struct Registration {
    /// The tool.
    pub tool: Arc<dyn DynTool>,
    /// Who may see it.
    pub visibility: Visibility,
    /// Its group, when not its kind's (custom SQL tools are `custom`).
    pub group: Option<&'static str>,
}

impl Registration {
    /// A tool for clients.
    pub fn listed(tool: Arc<dyn DynTool>) -> Self {
        Registration {
            tool,
            visibility: Visibility::Listed,
            group: None,
        }
    }

    /// A tool only other tools call.
    pub fn internal(tool: Arc<dyn DynTool>) -> Self {
        Registration {
            tool,
            visibility: Visibility::Internal,
            group: None,
        }
    }

    /// This registration in group `group` instead of its kind's.
    pub fn in_group(mut self, group: &'static str) -> Self {
        self.group = Some(group);
        self
    }
}

/// The group of the discovery tools, listed alone in discovery mode.
pub const DISCOVERY_GROUP: &str = "discovery";

/// How a call reached the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A client named the tool: only listed tools answer.
    Client,
    /// Another tool or the server itself (a workflow step, a resource read): every registered
    /// tool answers, listed or not, except one that writes while the server is read-only.
    Internal,
}

/// One version of a registered tool: the tool, its compiled validator and its policy runner.
pub struct RegisteredTool {
    tool: Arc<dyn DynTool>,
    validator: ArgumentValidator,
    output_schema: Value,
    /// What clients are shown: the lean forms of the schemas.
    wire_input_schema: Value,
    wire_output_schema: Value,
    runner: PolicyRunner,
    owner: &'static str,
    group: &'static str,
    visibility: Visibility,
    /// Shown in `tools/list` and callable by clients.
    listed: bool,
    /// Refused on every route: the tool can write and the server is read-only.
    read_only_refused: bool,
}

impl RegisteredTool {
    /// The tool itself.
    pub fn tool(&self) -> &Arc<dyn DynTool> {
        &self.tool
    }

    /// The full output schema: the tool's own plus the facts the framework adds (`cached`,
    /// `warnings`). For developers (`schemas/`); clients get [`Self::wire_output_schema`].
    pub fn output_schema(&self) -> &Value {
        &self.output_schema
    }

    /// The input schema clients are shown: lean, and accepting exactly what the full one does.
    pub fn wire_input_schema(&self) -> &Value {
        &self.wire_input_schema
    }

    /// The output schema clients are shown.
    pub fn wire_output_schema(&self) -> &Value {
        &self.wire_output_schema
    }

    /// Its group: its kind's name, or the one it was registered under (`custom`).
    pub fn group(&self) -> &'static str {
        self.group
    }

    /// The policy this tool runs under.
    pub fn policy(&self) -> &Policy {
        self.runner.policy()
    }

    /// The tool's counters and latency histogram, kept across its versions.
    pub fn metrics(&self) -> &Arc<ToolMetrics> {
        self.runner.metrics()
    }

    /// The kind that registered the tool.
    pub fn owner(&self) -> &'static str {
        self.owner
    }

    /// Whether clients see and may call it.
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    /// Whether read-only mode refuses it on every route.
    pub fn is_refused_read_only(&self) -> bool {
        self.read_only_refused
    }

    /// Whom the kind registered it for.
    pub fn visibility(&self) -> Visibility {
        self.visibility
    }

    /// What clients see of this version: a change to it is a change to the listed tool set.
    fn descriptor(&self) -> Value {
        let spec = self.tool.spec();
        serde_json::json!([
            spec.name,
            spec.title,
            spec.description,
            spec.annotations,
            self.wire_input_schema,
            self.wire_output_schema,
        ])
    }
}

/// The set of registered tools, shared by every transport and session.
pub struct Registry {
    filter: ToolFilter,
    default_policy: Policy,
    overrides: BTreeMap<String, PolicyOverride>,
    tools: RwLock<Tools>,
    generation: watch::Sender<u64>,
    resources: RwLock<Providers>,
    health: RwLock<Vec<Arc<dyn HealthCheck>>>,
    gauges: RwLock<Vec<Arc<dyn super::gauges::GaugeSource>>>,
}

#[derive(Default)]
struct Tools {
    order: Vec<String>,
    by_name: HashMap<String, Arc<RegisteredTool>>,
}

impl Tools {
    fn listed_descriptors(&self) -> Vec<Value> {
        self.order
            .iter()
            .filter_map(|name| self.by_name.get(name))
            .filter(|entry| entry.listed)
            .map(|entry| entry.descriptor())
            .collect()
    }
}

/// What one change did to the listed tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Clients see the same tools as before.
    Nothing,
    /// Clients see different tools; `notifications/tools/list_changed` goes out.
    Listed,
}

impl Registry {
    /// An empty registry applying `filter`, `default_policy` and the per-tool `overrides`.
    pub fn new(
        filter: ToolFilter,
        default_policy: Policy,
        overrides: BTreeMap<String, PolicyOverride>,
    ) -> Self {
        Registry {
            filter,
            default_policy,
            overrides,
            tools: RwLock::default(),
            generation: watch::Sender::new(0),
            resources: RwLock::default(),
            health: RwLock::default(),
            gauges: RwLock::default(),
        }
    }

    /// Adds `owner`'s tool. Fails when the name is taken or the tool's schemas are unusable.
    pub fn register(
        &self,
        owner: &'static str,
        registration: Registration,
    ) -> Result<Changed, RegistryError> {
        let name = registration.tool.spec().name.clone();
        let entry = self.compile(owner, registration, None)?;
        self.swap(|tools| {
            if tools.by_name.contains_key(&name) {
                return Err(RegistryError::Duplicate(name.clone()));
            }
            tools.order.push(name.clone());
            tools.by_name.insert(name, entry);
            Ok(())
        })
    }

    /// Makes `owner`'s tools exactly `registrations`, atomically: tools it no longer offers are
    /// removed, tools with a name it already had are replaced (calls running on the old version
    /// finish on it), new ones are added. Nothing changes when any of them is refused.
    pub fn replace_owned(
        &self,
        owner: &'static str,
        registrations: Vec<Registration>,
    ) -> Result<Changed, RegistryError> {
        let mut entries = Vec::with_capacity(registrations.len());
        {
            let tools = read(&self.tools);
            for registration in registrations {
                let name = registration.tool.spec().name.clone();
                if entries
                    .iter()
                    .any(|(other, _): &(String, Arc<RegisteredTool>)| *other == name)
                {
                    return Err(RegistryError::Duplicate(name));
                }
                let previous = tools.by_name.get(&name);
                if let Some(previous) = previous
                    && previous.owner != owner
                {
                    return Err(RegistryError::NotOwned {
                        name,
                        owner: previous.owner,
                    });
                }
                let entry = match previous {
                    // The same version again: keep its validator, cache and figures.
                    Some(previous)
                        if Arc::ptr_eq(&previous.tool, &registration.tool)
                            && previous.visibility == registration.visibility =>
                    {
                        Arc::clone(previous)
                    }
                    _ => {
                        let metrics = previous.map(|p| Arc::clone(p.metrics()));
                        self.compile(owner, registration, metrics)?
                    }
                };
                entries.push((name, entry));
            }
        }
        self.swap(|tools| {
            // Another kind may have taken a name since the check above.
            if let Some((name, taken)) = entries.iter().find_map(|(name, _)| {
                tools
                    .by_name
                    .get(name)
                    .filter(|t| t.owner != owner)
                    .map(|t| (name.clone(), t.owner))
            }) {
                return Err(RegistryError::NotOwned { name, owner: taken });
            }
            let keep: Vec<&String> = entries.iter().map(|(name, _)| name).collect();
            let gone: Vec<String> = tools
                .by_name
                .iter()
                .filter(|(name, entry)| entry.owner == owner && !keep.contains(name))
                .map(|(name, _)| name.clone())
                .collect();
            for name in &gone {
                tools.by_name.remove(name);
            }
            tools.order.retain(|name| !gone.contains(name));
            for (name, entry) in entries {
                if tools.by_name.insert(name.clone(), entry).is_none() {
                    tools.order.push(name);
                }
            }
            Ok(())
        })
    }

    /// Removes `owner`'s tool `name`; calls running on it finish. Returns whether it existed.
    pub fn remove(&self, owner: &'static str, name: &str) -> Result<bool, RegistryError> {
        let mut existed = false;
        self.swap(|tools| {
            match tools.by_name.get(name) {
                None => return Ok(()),
                Some(entry) if entry.owner != owner => {
                    return Err(RegistryError::NotOwned {
                        name: name.to_owned(),
                        owner: entry.owner,
                    });
                }
                Some(_) => {}
            }
            tools.by_name.remove(name);
            tools.order.retain(|n| n != name);
            existed = true;
            Ok(())
        })?;
        Ok(existed)
    }

    /// Applies `change` under the write lock and bumps the generation when what clients see
    /// changed.
    fn swap(
        &self,
        change: impl FnOnce(&mut Tools) -> Result<(), RegistryError>,
    ) -> Result<Changed, RegistryError> {
        let changed = {
            let mut tools = write(&self.tools);
            let before = tools.listed_descriptors();
            change(&mut tools)?;
            if tools.listed_descriptors() == before {
                Changed::Nothing
            } else {
                Changed::Listed
            }
        };
        if changed == Changed::Listed {
            self.generation.send_modify(|generation| *generation += 1);
        }
        Ok(changed)
    }

    /// Compiles one version of a tool: its validator, advertised schema and policy runner.
    fn compile(
        &self,
        owner: &'static str,
        registration: Registration,
        metrics: Option<Arc<ToolMetrics>>,
    ) -> Result<Arc<RegisteredTool>, RegistryError> {
        let Registration {
            tool,
            visibility,
            group,
        } = registration;
        let group = group.unwrap_or(owner);
        let spec = tool.spec();
        let name = spec.name.clone();
        if !valid_tool_name(&name) {
            return Err(RegistryError::InvalidName(name));
        }
        let bad_schema = |reason: String| RegistryError::BadSchema {
            tool: name.clone(),
            reason,
        };
        if tool.input_schema().get("type") != Some(&Value::from("object")) {
            return Err(bad_schema("the input schema must be of type object".into()));
        }
        let validator = ArgumentValidator::compile(tool.input_schema()).map_err(bad_schema)?;
        let output_schema = with_model_facts(tool.output_schema()).map_err(bad_schema)?;
        let wire_input_schema = super::schema::lean(tool.input_schema());
        // `cached` and `warnings` are declared in the full schema only: the wire schema leaves
        // extra fields open, and a model meets them in the result when they say something.
        let wire_output_schema = super::schema::lean_output(tool.output_schema());
        let policy = match self.overrides.get(&name) {
            Some(changes) => self.default_policy.with(changes),
            None => self.default_policy.clone(),
        };
        let runner = PolicyRunner::new(policy, spec.annotations.idempotent_hint)
            .with_metrics(metrics.unwrap_or_default());
        let read_only_refused = self.filter.refuses(&spec.annotations);
        let listed = visibility == Visibility::Listed
            && !read_only_refused
            && self.filter.lists(&name, group);
        if !listed {
            tracing::debug!(tool = %name, ?visibility, "tool not listed to clients");
        }
        Ok(Arc::new(RegisteredTool {
            tool,
            validator,
            output_schema,
            wire_input_schema,
            wire_output_schema,
            runner,
            owner,
            group,
            visibility,
            listed,
            read_only_refused,
        }))
    }

    /// A receiver whose value changes whenever the tools clients see change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Adds a provider of resources.
    pub fn register_resources(&self, provider: Arc<dyn ResourceProvider>) {
        write(&self.resources).push(provider);
    }

    /// Every resource provider.
    pub fn resource_providers(&self) -> Providers {
        read(&self.resources).clone()
    }

    /// Adds a readiness check.
    pub fn register_health_check(&self, check: Arc<dyn HealthCheck>) {
        write(&self.health).push(check);
    }

    /// Adds a source of gauges.
    pub fn register_gauges(&self, source: Arc<dyn super::gauges::GaugeSource>) {
        write(&self.gauges).push(source);
    }

    /// Every source of gauges.
    pub fn gauge_sources(&self) -> Vec<Arc<dyn super::gauges::GaugeSource>> {
        read(&self.gauges).clone()
    }

    /// Asks every backing system whether it answers.
    pub async fn probe(&self) -> Vec<Probe> {
        let checks = read(&self.health).clone();
        super::health::probe_all(&checks).await
    }

    /// Fails when the config sets a policy for a tool no kind registered.
    pub fn check_policy_targets(&self) -> Result<(), RegistryError> {
        let tools = read(&self.tools);
        let unknown: Vec<String> = self
            .overrides
            .keys()
            .filter(|name| !tools.by_name.contains_key(*name))
            .cloned()
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::UnknownPolicyTarget {
                names: unknown,
                known: tools.order.clone(),
            })
        }
    }

    /// The tools `tools/list` shows, in registration order: the listed ones, or in discovery
    /// mode only the discovery tools.
    pub fn list(&self) -> Vec<Arc<RegisteredTool>> {
        self.all()
            .into_iter()
            .filter(|t| t.listed && (t.group == DISCOVERY_GROUP) == self.filter.discovery)
            .collect()
    }

    /// The tools clients may call and find, discovery mode or not (never the discovery tools).
    pub fn callable(&self) -> Vec<Arc<RegisteredTool>> {
        self.all()
            .into_iter()
            .filter(|t| t.listed && t.group != DISCOVERY_GROUP)
            .collect()
    }

    /// Whether `tools/list` shows only the discovery tools.
    pub fn is_discovery(&self) -> bool {
        self.filter.discovery
    }

    /// Every registered tool, listed or not, in registration order.
    pub fn all(&self) -> Vec<Arc<RegisteredTool>> {
        let tools = read(&self.tools);
        tools
            .order
            .iter()
            .filter_map(|name| tools.by_name.get(name).cloned())
            .collect()
    }

    /// A tool clients see, by name.
    pub fn get(&self, name: &str) -> Option<Arc<RegisteredTool>> {
        self.find(name, Route::Client)
    }

    /// Any registered tool, listed or not, by name.
    pub fn get_any(&self, name: &str) -> Option<Arc<RegisteredTool>> {
        self.find(name, Route::Internal)
    }

    /// Whether the server refuses every tool that can write.
    pub fn is_read_only(&self) -> bool {
        self.filter.read_only
    }

    /// The current version of a tool the route may call.
    fn find(&self, name: &str, route: Route) -> Option<Arc<RegisteredTool>> {
        read(&self.tools)
            .by_name
            .get(name)
            .filter(|entry| route == Route::Internal || entry.listed)
            .cloned()
    }

    /// Calls a tool for a client: validation, then its policy, then the tool, and the audit
    /// line when the invocation is audited. Only a tool the client may not call is an `Err`;
    /// every other failure is a [`ToolResult`] whose outcome says what went wrong.
    pub async fn call(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
        invocation: Invocation,
    ) -> Result<ToolResult, RegistryError> {
        self.call_on(Route::Client, name, args, invocation).await
    }

    /// Calls a tool on behalf of another call or of the server (see [`Route::Internal`]),
    /// through the same validation, policies, metrics and audit as a client's call. Build the
    /// invocation with [`CallContext::nested`](super::CallContext::nested) to inherit the
    /// parent's deadline, cancellation, caller and progress.
    pub async fn call_internal(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
        invocation: Invocation,
    ) -> Result<ToolResult, RegistryError> {
        self.call_on(Route::Internal, name, args, invocation).await
    }

    async fn call_on(
        &self,
        route: Route,
        name: &str,
        args: Option<Map<String, Value>>,
        invocation: Invocation,
    ) -> Result<ToolResult, RegistryError> {
        let started = Instant::now();
        let args = Value::Object(args.unwrap_or_default());
        let mut record = CallRecord {
            tool: name,
            audit: invocation
                .audit
                .clone()
                .map(|identity| (identity, audit::arguments_sha256(&args))),
            parent: invocation.parent.clone(),
            metrics: None,
            started,
            finished: false,
        };
        let result = match self.find(name, route) {
            None => Err(RegistryError::UnknownTool(name.to_owned())),
            Some(entry) => {
                record.metrics = Some(Arc::clone(entry.metrics()));
                Ok(self.run(&entry, args, invocation, started).await)
            }
        };
        record.finish(match &result {
            Ok(result) => match &result.outcome {
                Ok(_) => Outcome::Ok,
                Err(error) => Outcome::ToolError(error.kind()),
            },
            Err(_) => Outcome::Rejected,
        });
        result
    }

    async fn run(
        &self,
        entry: &RegisteredTool,
        args: Value,
        invocation: Invocation,
        started: Instant,
    ) -> ToolResult {
        let metrics = entry.runner.metrics();
        let refusal = if entry.read_only_refused {
            Some(ToolError::Refused(format!(
                "'{}' can write and this server is read-only (read_only = true in the config)",
                entry.tool.spec().name
            )))
        } else {
            entry
                .validator
                .check(&args)
                .err()
                .map(ToolError::InvalidArguments)
        };
        if let Some(error) = refusal {
            metrics.record_call(started.elapsed(), true, false, false);
            return failure(error, started);
        }
        let run = entry.runner.run(entry.tool.as_ref(), args, invocation);
        match AssertUnwindSafe(run).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(tool = %entry.tool.spec().name, panic = %what, "tool panicked");
                metrics.record_call(started.elapsed(), true, false, false);
                failure(
                    ToolError::Internal(format!("the tool crashed ({what}); please report this")),
                    started,
                )
            }
        }
    }

    /// Metrics of every registered tool, by name.
    pub fn metrics(&self) -> BTreeMap<String, MetricsSnapshot> {
        self.all()
            .iter()
            .map(|entry| {
                (
                    entry.tool.spec().name.clone(),
                    entry.runner.metrics().snapshot(),
                )
            })
            .collect()
    }
}

/// The bookkeeping of one call that must happen however the call ends: the audit line, and the
/// metrics of a call whose caller stopped waiting (a parent that timed out drops its children's
/// futures, so their own policy never records them).
struct CallRecord<'a> {
    tool: &'a str,
    audit: Option<(Arc<audit::AuditIdentity>, String)>,
    parent: Option<Arc<str>>,
    metrics: Option<Arc<ToolMetrics>>,
    started: Instant,
    finished: bool,
}

impl CallRecord<'_> {
    fn finish(&mut self, outcome: Outcome<'_>) {
        self.finished = true;
        if let Some((identity, arguments_sha256)) = &self.audit {
            audit::record(&AuditRecord {
                identity,
                tool: self.tool,
                arguments_sha256,
                outcome,
                elapsed: self.started.elapsed(),
                parent: self.parent.as_deref(),
            });
        }
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(metrics) = &self.metrics {
                metrics.record_call(self.started.elapsed(), true, false, false);
            }
            self.finish(Outcome::ToolError(ToolError::Cancelled.kind()));
        }
    }
}

fn failure(error: ToolError, started: Instant) -> ToolResult {
    ToolResult {
        outcome: Err(error),
        meta: ExecutionMeta {
            execution_id: super::result::new_execution_id(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
            records: 0,
            cached: false,
            attempts: 0,
            warnings: Vec::new(),
        },
    }
}

/// Adds the facts the framework puts in a result the model can act on: `cached` (the answer
/// came from the cache) and `warnings` (truncation, retries, …), each present only when it
/// says something. The rest of the execution facts travel in `_meta`.
fn with_model_facts(output_schema: &Value) -> Result<Value, String> {
    let mut schema = output_schema.clone();
    let object = schema
        .as_object_mut()
        .filter(|o| o.get("type") == Some(&Value::from("object")))
        .ok_or("the output schema must be of type object")?;
    let properties = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("the output schema's properties must be an object")?;
    for reserved in ["cached", "warnings", "execution"] {
        if properties.contains_key(reserved) {
            return Err(format!(
                "the output property '{reserved}' is reserved for the framework"
            ));
        }
    }
    properties.insert(
        "cached".to_owned(),
        serde_json::json!({"type": "boolean", "description": "Present when the answer came from the result cache."}),
    );
    properties.insert(
        "warnings".to_owned(),
        serde_json::json!({"type": "array", "items": {"type": "string"},
            "description": "What to know about this answer (truncation, retries); present when there is something."}),
    );
    Ok(schema)
}

/// Whether `name` follows MCP's rule for tool names: 1 to 128 of A-Z a-z 0-9 _ - .
pub fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Matches `name` against a glob with `*` (any run) and `?` (any one character).
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (glob, name): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    let (mut g, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some('*') => {
                backtrack = Some((g, n));
                g += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    g = star + 1;
                    n = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tools::{CallContext, Tool, ToolSpec, typed};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use tokio_util::sync::CancellationToken;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Args {
        /// Whether to crash.
        #[serde(default)]
        panic: bool,
        /// How long to take, in milliseconds.
        #[serde(default)]
        sleep_ms: u64,
    }

    #[derive(Serialize, JsonSchema)]
    struct Out {
        version: u32,
        /// Milliseconds the call had left when it started.
        remaining_ms: u128,
    }

    struct Fake {
        name: &'static str,
        annotations: Annotations,
        version: u32,
    }

    impl Tool for Fake {
        type Params = Args;
        type Output = Out;

        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: self.name.to_owned(),
                title: self.name.to_owned(),
                description: format!("a test tool, version {}", self.version),
                annotations: self.annotations,
            }
        }

        async fn invoke(&self, ctx: &CallContext, params: &Args) -> Result<Out, ToolError> {
            assert!(!params.panic, "asked to panic");
            let remaining_ms = ctx.remaining().as_millis();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(params.sleep_ms)) => {}
                () = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
            }
            Ok(Out {
                version: self.version,
                remaining_ms,
            })
        }
    }

    fn fake(name: &'static str, version: u32) -> Arc<dyn DynTool> {
        typed(Fake {
            name,
            annotations: Annotations::READ_ONLY,
            version,
        })
    }

    const WRITES: Annotations = Annotations {
        read_only_hint: false,
        destructive_hint: true,
        idempotent_hint: false,
        open_world_hint: false,
    };

    fn registry(filter: ToolFilter) -> Registry {
        let registry = Registry::new(filter, Policy::default(), BTreeMap::new());
        for (name, annotations) in [
            ("sql_read", Annotations::READ_ONLY),
            ("sql_write", WRITES),
            ("kafka_read", Annotations::READ_ONLY),
        ] {
            registry
                .register(
                    "test",
                    Registration::listed(typed(Fake {
                        name,
                        annotations,
                        version: 1,
                    })),
                )
                .expect("registers");
        }
        registry
    }

    fn served(registry: &Registry) -> Vec<String> {
        registry
            .list()
            .iter()
            .map(|t| t.tool().spec().name.clone())
            .collect()
    }

    fn local() -> Invocation {
        Invocation::local(CancellationToken::new())
    }

    fn args(json: Value) -> Option<Map<String, Value>> {
        json.as_object().cloned()
    }

    async fn version(result: Result<ToolResult, RegistryError>) -> u64 {
        let output = result.expect("known tool").outcome.expect("succeeds");
        output.structured["version"].as_u64().expect("version")
    }

    #[test]
    fn read_only_mode_hides_tools_that_can_write() {
        assert_eq!(
            served(&registry(ToolFilter::default())),
            ["sql_read", "kafka_read"]
        );
        let writable = ToolFilter {
            read_only: false,
            ..ToolFilter::default()
        };
        assert_eq!(
            served(&registry(writable)),
            ["sql_read", "sql_write", "kafka_read"]
        );
    }

    #[tokio::test]
    async fn a_write_tool_is_refused_in_read_only_mode_on_every_route() {
        let registry = registry(ToolFilter::default());
        let internal = registry
            .call_internal("sql_write", None, local())
            .await
            .expect("registered");
        let error = internal.outcome.expect_err("refused");
        assert!(matches!(error, ToolError::Refused(_)), "{error}");
        assert!(error.to_string().contains("read-only"), "{error}");
    }

    #[test]
    fn enable_and_disable_globs_choose_the_tools() {
        let filter = ToolFilter {
            enable: vec!["sql_*".to_owned()],
            disable: vec!["*_write".to_owned()],
            read_only: false,
            ..ToolFilter::default()
        };
        assert_eq!(served(&registry(filter)), ["sql_read"]);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let registry = registry(ToolFilter::default());
        let again = registry.register("test", Registration::listed(fake("sql_read", 2)));
        assert!(matches!(again, Err(RegistryError::Duplicate(_))));
    }

    #[test]
    fn a_kind_cannot_replace_another_kinds_tool() {
        let registry = registry(ToolFilter::default());
        let taken =
            registry.replace_owned("other", vec![Registration::listed(fake("sql_read", 2))]);
        assert!(
            matches!(taken, Err(RegistryError::NotOwned { .. })),
            "{taken:?}"
        );
        assert!(matches!(
            registry.remove("other", "sql_read"),
            Err(RegistryError::NotOwned { .. })
        ));
    }

    #[test]
    fn policies_for_unknown_tools_are_refused() {
        let mut overrides = BTreeMap::new();
        overrides.insert("sql_reed".to_owned(), PolicyOverride::default());
        let registry = Registry::new(ToolFilter::default(), Policy::default(), overrides);
        let error = registry.check_policy_targets().expect_err("typo");
        assert!(error.to_string().contains("sql_reed"));
    }

    #[tokio::test]
    async fn a_panicking_tool_becomes_an_internal_error_result() {
        let registry = registry(ToolFilter::default());
        let result = registry
            .call(
                "sql_read",
                args(serde_json::json!({"panic": true})),
                local(),
            )
            .await
            .expect("known tool");
        let error = result.outcome.expect_err("panicked");
        assert!(matches!(error, ToolError::Internal(_)), "{error}");
        assert!(error.to_string().contains("asked to panic"), "{error}");
        let ok = registry
            .call("sql_read", None, local())
            .await
            .expect("known tool");
        assert!(ok.outcome.is_ok(), "the registry keeps working");
    }

    #[tokio::test]
    async fn unknown_tools_are_an_error_not_a_result() {
        let registry = registry(ToolFilter::default());
        let unknown = registry.call("sql_writ", None, local()).await;
        assert!(matches!(unknown, Err(RegistryError::UnknownTool(_))));
    }

    #[tokio::test]
    async fn an_internal_tool_is_not_listed_nor_callable_by_clients_but_callable_by_tools() {
        let registry = registry(ToolFilter::default());
        registry
            .register("test", Registration::internal(fake("helper", 1)))
            .expect("registers");
        assert!(!served(&registry).contains(&"helper".to_owned()));
        assert!(registry.get("helper").is_none());
        let client = registry.call("helper", None, local()).await;
        assert!(matches!(client, Err(RegistryError::UnknownTool(_))));
        assert_eq!(
            version(registry.call_internal("helper", None, local()).await).await,
            1
        );
    }

    #[tokio::test]
    async fn a_tool_the_filter_hides_stays_callable_by_tools() {
        let filter = ToolFilter {
            disable: vec!["kafka_*".to_owned()],
            ..ToolFilter::default()
        };
        let registry = registry(filter);
        assert!(registry.call("kafka_read", None, local()).await.is_err());
        assert_eq!(
            version(registry.call_internal("kafka_read", None, local()).await).await,
            1
        );
    }

    #[tokio::test]
    async fn replacing_a_tool_changes_the_list_and_running_calls_finish_on_their_version() {
        let registry = Arc::new(registry(ToolFilter::default()));
        let mut generation = registry.subscribe();
        generation.borrow_and_update();
        let running = {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                registry
                    .call(
                        "kafka_read",
                        args(serde_json::json!({"sleep_ms": 200})),
                        local(),
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let changed = registry
            .replace_owned(
                "test",
                vec![
                    Registration::listed(fake("kafka_read", 2)),
                    Registration::listed(fake("sql_read", 1)),
                ],
            )
            .expect("replaces");
        assert_eq!(changed, Changed::Listed);
        assert!(generation.has_changed().expect("registry alive"));
        assert_eq!(
            served(&registry),
            ["sql_read", "kafka_read"],
            "sql_write is gone"
        );
        assert_eq!(version(running.await.expect("joins")).await, 1);
        assert_eq!(
            version(registry.call("kafka_read", None, local()).await).await,
            2
        );
    }

    #[tokio::test]
    async fn a_change_clients_cannot_see_sends_no_notification() {
        let registry = registry(ToolFilter::default());
        let mut generation = registry.subscribe();
        generation.borrow_and_update();
        registry
            .register("test", Registration::internal(fake("helper", 1)))
            .expect("registers");
        let same = registry.all();
        let again = same
            .iter()
            .filter(|t| t.owner() == "test")
            .map(|t| Registration {
                tool: Arc::clone(t.tool()),
                visibility: t.visibility(),
                group: None,
            })
            .collect();
        assert_eq!(
            registry.replace_owned("test", again).expect("same set"),
            Changed::Nothing
        );
        assert!(!generation.has_changed().expect("registry alive"));
    }

    #[tokio::test]
    async fn a_nested_call_inherits_the_parents_deadline_and_cancellation() {
        let registry = registry(ToolFilter::default());
        let parent_cancel = CancellationToken::new();
        let parent = CallContext::new(
            "parent".into(),
            Duration::from_millis(500),
            parent_cancel.clone(),
            None,
        );
        let child = registry
            .call_internal("sql_read", None, parent.nested())
            .await
            .expect("known");
        let remaining = child.outcome.expect("runs").structured["remaining_ms"]
            .as_u64()
            .expect("remaining");
        assert!(
            remaining <= 500,
            "the policy's 30 s gave way to the parent's {remaining} ms"
        );

        let slow = registry.call_internal(
            "sql_read",
            args(serde_json::json!({"sleep_ms": 10_000})),
            parent.nested(),
        );
        let cancel_soon = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            parent_cancel.cancel();
        };
        let (result, ()) = tokio::join!(slow, cancel_soon);
        let error = result.expect("known").outcome.expect_err("cancelled");
        assert!(matches!(error, ToolError::Cancelled), "{error}");
    }

    /// Log lines written while `run` runs on this thread.
    fn logs_of(run: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buffer").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let bytes = buffer.0.lock().expect("buffer").clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_nested_call_is_counted_and_audited_with_the_parents_caller() {
        let registry = registry(ToolFilter::default());
        let identity = Arc::new(audit::AuditIdentity {
            transport: "streamable_http",
            token: Some(Arc::from("alice")),
            request_id: Some(Arc::from("req-7")),
            peer: None,
        });
        let parent = CallContext::new(
            "parent-execution".into(),
            Duration::from_secs(5),
            CancellationToken::new(),
            None,
        )
        .with_audit(Some(identity));
        let logs = logs_of(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let result = registry
                    .call_internal("kafka_read", None, parent.nested())
                    .await
                    .expect("known");
                assert!(result.outcome.is_ok());
            });
        });
        let line = logs
            .lines()
            .find(|line| line.contains("tool call"))
            .unwrap_or_else(|| panic!("an audit line: {logs}"));
        for expected in [
            "tool=\"kafka_read\"",
            "token=\"alice\"",
            "request_id=\"req-7\"",
            "parent=\"parent-execution\"",
            "outcome=\"ok\"",
        ] {
            assert!(line.contains(expected), "{expected} in {line}");
        }
        assert_eq!(registry.metrics()["kafka_read"].calls, 1);
    }

    #[test]
    fn globs_match_like_shells_do() {
        assert!(glob_matches("*", "sql_query"));
        assert!(glob_matches("sql_*", "sql_query"));
        assert!(glob_matches("*_query", "sql_query"));
        assert!(glob_matches("sql_?uery", "sql_query"));
        assert!(glob_matches("s*l*y", "sql_query"));
        assert!(!glob_matches("kafka_*", "sql_query"));
        assert!(!glob_matches("sql", "sql_query"));
    }

    #[test]
    fn tool_names_follow_the_mcp_rule() {
        assert!(valid_tool_name("sql_query"));
        assert!(valid_tool_name("a.b-c_d"));
        assert!(!valid_tool_name(""));
        assert!(!valid_tool_name("has space"));
        assert!(!valid_tool_name(&"x".repeat(129)));
    }
}
