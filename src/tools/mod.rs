//! The tool framework: what every tool declares, and the one path every call takes.
//!
//! A tool kind implements [`Tool`] with typed `Params` and `Output`; their JSON Schemas are
//! generated from the Rust types with schemars, never written by hand. [`typed`] erases the types
//! into a [`DynTool`]; [`runtime`] does the same for tools created at run time (from config or
//! workflow files), whose input schema comes from their definition. The [`Registry`] holds them
//! by name, live; a kind reaches it through [`kind::KindHost`]. Every call goes through
//! [`Registry::call`] or [`Registry::call_internal`]: schema validation, then the tool's
//! [`policy`], then the tool, then the [`audit`] line.
//!
//! This module knows no concrete tool kind and no MCP wire type: kinds depend on it, never the
//! other way round, and `server/` translates between it and the protocol.

pub mod audit;
pub mod context;
pub mod discovery;
pub mod gauges;
pub mod health;
pub mod kind;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod resources;
pub mod result;
pub mod schema;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use context::{CallContext, Invocation, Principal};
pub use registry::{Registry, RegistryError};
pub use result::{ExecutionMeta, ToolError, ToolOutput, ToolResult};

/// MCP tool annotations: hints for clients about what a call may do.
///
/// `read_only` also drives the server's own `read_only = true` mode, which hides every tool that
/// is not read-only, so declare it truthfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    /// The tool does not modify its environment.
    pub read_only_hint: bool,
    /// The tool may perform destructive updates (meaningful only when not read-only).
    pub destructive_hint: bool,
    /// Repeating a call with the same arguments has no further effect; such tools may be cached.
    pub idempotent_hint: bool,
    /// The tool reaches entities outside the configured systems.
    pub open_world_hint: bool,
}

impl Annotations {
    /// A tool that only reads from a closed, configured set of systems: safe to repeat and cache.
    pub const READ_ONLY: Annotations = Annotations {
        read_only_hint: true,
        destructive_hint: false,
        idempotent_hint: true,
        open_world_hint: false,
    };
}

/// What a tool says about itself, apart from its schemas.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    /// Unique name, `[A-Za-z0-9_.-]{1,128}` as MCP requires.
    pub name: String,
    /// Short human-readable title.
    pub title: String,
    /// What the tool does and when to use it; the first line doubles as the one-line summary.
    pub description: String,
    /// Behaviour hints.
    pub annotations: Annotations,
}

/// A tool with typed arguments and output.
///
/// Implement this for each tool kind; register it with [`typed`]. Field doc comments on `Params`
/// become the descriptions a model reads, so write them for the model.
pub trait Tool: Send + Sync + 'static {
    /// Arguments, deserialized after they passed schema validation.
    type Params: DeserializeOwned + JsonSchema + Send + Sync;
    /// Result; must serialize to a JSON object (MCP requires `outputSchema` of type object).
    type Output: Serialize + JsonSchema + Send;

    /// Name, title, description and annotations.
    fn spec(&self) -> ToolSpec;

    /// Runs the tool. Long-running work must watch `ctx` for cancellation.
    fn invoke(
        &self,
        ctx: &CallContext,
        params: &Self::Params,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;

    /// The compact text rendering for clients without structured output. Defaults to JSON.
    fn render_text(&self, _params: &Self::Params, output: &Self::Output) -> String {
        serde_json::to_string(output).unwrap_or_default()
    }

    /// The result-cache key for `args` (already valid against the input schema); equal keys
    /// must mean equal results. Defaults to the arguments' canonical JSON.
    fn cache_key(&self, args: &Value) -> String {
        policy::canonical_json(args)
    }

    /// Resources the output points to, sent as resource links. Defaults to none.
    fn links(&self, _output: &Self::Output) -> Vec<resources::ResourceInfo> {
        Vec::new()
    }

    /// Whether the result cache may keep this output. Defaults to yes; an answer that is only
    /// interim (a run still going) says no.
    fn cacheable(&self, _output: &Self::Output) -> bool {
        true
    }

    /// The structured content. Defaults to serializing `output`; a tool whose output already
    /// holds JSON values can move them instead of copying.
    fn structured_content(&self, output: Self::Output) -> Result<Value, serde_json::Error> {
        serde_json::to_value(output)
    }
}

/// A tool with its types erased: what the registry holds, and what run-time tools implement.
pub trait DynTool: Send + Sync {
    /// Name, title, description and annotations.
    fn spec(&self) -> &ToolSpec;
    /// JSON Schema of the arguments (an object schema).
    fn input_schema(&self) -> &Value;
    /// JSON Schema of the structured result, before the framework adds `execution`.
    fn output_schema(&self) -> &Value;
    /// The result-cache key for `args`; equal keys must mean equal results. Defaults to the
    /// arguments' canonical JSON.
    fn cache_key(&self, args: &Value) -> String {
        policy::canonical_json(args)
    }
    /// Runs the tool on arguments that already passed validation against `input_schema`.
    fn call<'a>(
        &'a self,
        ctx: &'a CallContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;
}

/// Erases a typed [`Tool`] into a [`DynTool`], generating its schemas once.
pub fn typed<T: Tool>(tool: T) -> Arc<dyn DynTool> {
    let spec = tool.spec();
    Arc::new(Typed {
        input_schema: schema::schema_of::<T::Params>(),
        output_schema: schema::schema_of::<T::Output>(),
        spec,
        tool,
    })
}

/// Erases a tool made at run time (a custom SQL tool, a workflow), whose input schema comes
/// from its definition rather than from a Rust type: its `Params` are usually a JSON object
/// ([`serde_json::Map`]), already checked against `input_schema` when `invoke` sees them. The
/// output schema is `T::Output`'s unless the definition gives one.
pub fn runtime<T: Tool>(
    tool: T,
    input_schema: Value,
    output_schema: Option<Value>,
) -> Arc<dyn DynTool> {
    let spec = tool.spec();
    Arc::new(Typed {
        input_schema,
        output_schema: output_schema.unwrap_or_else(schema::schema_of::<T::Output>),
        spec,
        tool,
    })
}

struct Typed<T: Tool> {
    tool: T,
    spec: ToolSpec,
    input_schema: Value,
    output_schema: Value,
}

impl<T: Tool> DynTool for Typed<T> {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn cache_key(&self, args: &Value) -> String {
        self.tool.cache_key(args)
    }

    fn input_schema(&self) -> &Value {
        &self.input_schema
    }

    fn output_schema(&self) -> &Value {
        &self.output_schema
    }

    fn call<'a>(
        &'a self,
        ctx: &'a CallContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            // The schema already accepted `args`; a failure here means the schema and the type
            // disagree, which serde explains better than we could.
            let params: T::Params = serde_json::from_value(args)
                .map_err(|e| ToolError::InvalidArguments(format!("arguments do not fit: {e}")))?;
            let output = self.tool.invoke(ctx, &params).await?;
            let text = self.tool.render_text(&params, &output);
            let links = self.tool.links(&output);
            let cacheable = self.tool.cacheable(&output);
            let structured = self
                .tool
                .structured_content(output)
                .map_err(|e| ToolError::Internal(format!("result does not serialize: {e}")))?;
            Ok(ToolOutput {
                structured,
                text,
                links,
                cacheable,
            })
        })
    }
}
