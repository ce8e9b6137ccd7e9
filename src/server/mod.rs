//! The MCP protocol face of datamcp, and the only module that knows MCP wire types.
//!
//! [`DataMcp`] implements rmcp's `ServerHandler` by delegation: `tools/*` to the
//! [`Registry`], `prompts/*` to the [`PromptLibrary`], and `resources/*` to the server's own
//! resources (the metrics at `datamcp://server/stats`). Transports ([`stdio`]) only move
//! messages; they all share one handler and therefore one code path.

pub mod audit;
pub mod http;
pub mod jsonrpc;
mod list_changed;
pub mod stdio;

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    MetaObject, PaginatedRequestParams, ProgressNotificationParam, ProgressToken, Prompt,
    PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, ServerCapabilities,
    ServerConfig, SubscriptionFilter, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use self::audit::Caller;
use crate::prompts::PromptLibrary;
use crate::tools::context::Invocation;
use crate::tools::context::ProgressSink;
use crate::tools::registry::RegisteredTool;
use crate::tools::resources::ResourceContent;
use crate::tools::result::ResultText;
use crate::tools::{Principal, Registry, ToolError, ToolResult};

/// URI of the metrics resource.
pub const STATS_URI: &str = "datamcp://server/stats";

/// Request methods of the protocol, which rmcp parses into typed requests when their params fit.
const STANDARD_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
];

/// The MCP server: one per process, shared by every session and transport.
#[derive(Clone)]
pub struct DataMcp {
    registry: Arc<Registry>,
    prompts: Arc<PromptLibrary>,
    instructions: Arc<str>,
    result_text: ResultText,
    listeners: Arc<list_changed::Listeners>,
}

impl DataMcp {
    /// A server over a registry and a prompt library, telling the model `instructions`.
    pub fn new(registry: Arc<Registry>, prompts: Arc<PromptLibrary>, instructions: &str) -> Self {
        let listeners = Arc::new(list_changed::Listeners::new(registry.subscribe()));
        DataMcp {
            registry,
            prompts,
            instructions: Arc::from(instructions),
            result_text: ResultText::Full,
            listeners,
        }
    }

    /// This server sending `text` beside structured results.
    pub fn with_result_text(mut self, text: ResultText) -> Self {
        self.result_text = text;
        self
    }

    /// The tool registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

/// Which form of a tool's schemas to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaForm {
    /// The lean form clients are sent.
    Wire,
    /// The full generated form, for developers (`schemas/`).
    Full,
}

/// The MCP description of a registered tool.
pub fn tool_descriptor(entry: &RegisteredTool, form: SchemaForm) -> Tool {
    let tool = entry.tool();
    let spec = tool.spec();
    // The title goes once, on the tool; the annotations' copy of it is the older place. A
    // read-only tool's destructiveHint means nothing, so it is left out.
    let mut annotations = ToolAnnotations::new()
        .read_only(spec.annotations.read_only_hint)
        .idempotent(spec.annotations.idempotent_hint)
        .open_world(spec.annotations.open_world_hint);
    if !spec.annotations.read_only_hint {
        annotations = annotations.destructive(spec.annotations.destructive_hint);
    }
    let (input, output) = match form {
        SchemaForm::Wire => (entry.wire_input_schema(), entry.wire_output_schema()),
        SchemaForm::Full => (tool.input_schema(), entry.output_schema()),
    };
    Tool::new_with_raw(
        spec.name.clone(),
        Some(spec.description.clone().into()),
        Arc::new(as_object(input)),
    )
    .with_title(spec.title.clone())
    .with_raw_output_schema(Arc::new(as_object(output)))
    .with_annotations(annotations)
}

fn as_object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// The MCP form of a tool result: text content (complete or summarised, by `text`), structured
/// content on success, `isError` on failure, and the execution facts (id, time, attempts, …;
/// on failure the error kind too) under `_meta.datamcp`, out of the model's way.
pub fn call_tool_result(result: ToolResult, text: ResultText) -> CallToolResult {
    let meta = result.meta.clone();
    let error_kind = result.outcome.as_ref().err().map(ToolError::kind);
    let links = result
        .outcome
        .as_ref()
        .map(|output| output.links.clone())
        .unwrap_or_default();
    let (structured, text) = result.into_content(text);
    let mut content = vec![ContentBlock::text(text)];
    content.extend(links.into_iter().map(|link| {
        ContentBlock::resource_link(
            Resource::new(link.uri, link.name)
                .with_description(link.description)
                .with_mime_type(link.mime_type),
        )
    }));
    let mut response = match error_kind {
        Some(_) => CallToolResult::error(content),
        None => CallToolResult::success(content),
    };
    response.structured_content = structured;
    let mut facts = Map::new();
    facts.insert(
        "execution".into(),
        serde_json::to_value(&meta).unwrap_or(Value::Null),
    );
    if let Some(kind) = error_kind {
        facts.insert("errorKind".into(), Value::from(kind));
    }
    let mut meta_object = MetaObject::default();
    meta_object.insert("datamcp".into(), Value::Object(facts));
    response.meta = Some(meta_object);
    response
}

/// The HTTP caller of a request; `None` over stdio.
fn caller(context: &RequestContext<RoleServer>) -> Option<&Caller> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
}

/// Whom a request runs for: the HTTP caller's principal, or the local user over stdio.
fn principal(context: &RequestContext<RoleServer>) -> Principal {
    match context.extensions.get::<axum::http::request::Parts>() {
        Some(parts) => parts
            .extensions
            .get::<Caller>()
            .map(Caller::principal)
            // An HTTP request the gate did not admit cannot get here; if one did, it is
            // nobody in particular rather than the local user.
            .unwrap_or_else(|| Principal::new("anonymous")),
        None => Principal::local(),
    }
}

/// Sends `notifications/progress` for one request, in order, without holding up the tool.
struct PeerProgress {
    peer: Peer<RoleServer>,
    token: ProgressToken,
    /// The newest notification in flight; each waits for the one before it.
    last: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PeerProgress {
    /// Lets the notifications still in flight go out before the result does (a notification
    /// after its request's result may be dropped), waiting at most `limit`.
    async fn flush(&self, limit: std::time::Duration) {
        let last = self.last.lock().ok().and_then(|mut last| last.take());
        if let Some(last) = last {
            let _ = tokio::time::timeout(limit, last).await;
        }
    }
}

impl ProgressSink for PeerProgress {
    fn report(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let mut param = ProgressNotificationParam::new(self.token.clone(), progress);
        param.total = total;
        param.message = message;
        let peer = self.peer.clone();
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let previous = last.take();
        *last = Some(tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            if let Err(error) = peer.notify_progress(param).await {
                tracing::debug!(%error, "progress notification not delivered");
            }
        }));
    }
}

impl ServerHandler for DataMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_resources()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("datamcp", env!("CARGO_PKG_VERSION"))
                    .with_title("datamcp: typed, read-only data access"),
            )
            .with_instructions(self.instructions.to_string())
    }

    /// Every session hears when the tool set changes (2025-era clients, on their session's
    /// stream; stdio and legacy SSE alike).
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.listeners.add(context.peer);
    }

    /// 2026-07-28 clients ask for the same notification on a `subscriptions/listen` stream.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        list_changed::listen(self.registry.subscribe(), context).await;
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = self
            .registry
            .list()
            .iter()
            .map(|entry| tool_descriptor(entry, SchemaForm::Wire))
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.registry
            .get(name)
            .map(|entry| tool_descriptor(&entry, SchemaForm::Wire))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let progress = context.meta.get_progress_token().map(|token| {
            Arc::new(PeerProgress {
                peer: context.peer.clone(),
                token,
                last: std::sync::Mutex::new(None),
            })
        });
        let invocation = Invocation::local(context.ct.clone())
            .with_principal(principal(&context))
            .with_progress(progress.clone().map(|p| p as Arc<dyn ProgressSink>))
            .with_audit(caller(&context).and_then(Caller::audit_identity));
        let result = self
            .registry
            .call(&request.name, request.arguments, invocation)
            .await;
        if let Some(progress) = progress {
            progress.flush(std::time::Duration::from_millis(250)).await;
        }
        let result = result.map_err(|error| McpError::invalid_params(error.to_string(), None))?;
        Ok(call_tool_result(result, self.result_text).into())
    }

    /// rmcp reads a request whose params do not fit its method (a `tools/call` without a
    /// `name`) as a custom request of that method; for a method the protocol defines, that is
    /// invalid params, not an unknown method.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        if STANDARD_METHODS.contains(&request.method.as_str()) {
            return Err(McpError::invalid_params(
                format!(
                    "invalid params for {}; see the method's schema",
                    request.method
                ),
                None,
            ));
        }
        Err(McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("unknown method '{}'", request.method),
            None,
        ))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let prompts = self
            .prompts
            .list()
            .map(|p| {
                let arguments = p
                    .arguments
                    .iter()
                    .map(|a| {
                        PromptArgument::new(a.name.clone())
                            .with_description(a.description.clone())
                            .with_required(a.required)
                    })
                    .collect();
                let prompt =
                    Prompt::new(p.name.clone(), Some(p.description.clone()), Some(arguments));
                match &p.title {
                    Some(title) => prompt.with_title(title.clone()),
                    None => prompt,
                }
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let invalid =
            |e: crate::prompts::PromptError| McpError::invalid_params(e.to_string(), None);
        let prompt = self.prompts.get(&request.name).map_err(invalid)?;
        let args: BTreeMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        let text = prompt.render(&args).map_err(invalid)?;
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(prompt.description.clone())
                .into(),
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let stats = Resource::new(STATS_URI, "server-stats")
            .with_title("datamcp call statistics")
            .with_description("Per-tool calls, errors, timeouts, cache hits, retries, success rate and latency percentiles")
            .with_mime_type("application/json");
        let mut resources = vec![stats];
        for provider in self.registry.resource_providers() {
            resources.extend(provider.resources().into_iter().map(|r| {
                Resource::new(r.uri, r.name)
                    .with_description(r.description)
                    .with_mime_type(r.mime_type)
            }));
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let templates = self
            .registry
            .resource_providers()
            .iter()
            .flat_map(|provider| provider.templates())
            .map(|t| {
                ResourceTemplate::new(t.uri_template, t.name)
                    .with_description(t.description)
                    .with_mime_type(t.mime_type)
            })
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if request.uri != STATS_URI {
            // A read that runs a tool runs it for this request's caller, cancelled with it.
            let invocation = Invocation::local(context.ct.clone())
                .with_principal(principal(&context))
                .with_audit(caller(&context).and_then(Caller::audit_identity));
            for provider in self.registry.resource_providers() {
                if let Some(read) = provider.read(&request.uri, &self.registry, &invocation) {
                    return match read.await {
                        Ok(ResourceContent::Text { text, mime_type }) => {
                            Ok(ReadResourceResult::new(vec![
                                ResourceContents::text(text, request.uri.clone())
                                    .with_mime_type(mime_type),
                            ])
                            .into())
                        }
                        Ok(ResourceContent::Blob { bytes, mime_type }) => {
                            use base64::Engine as _;
                            let blob = base64::engine::general_purpose::STANDARD.encode(bytes);
                            Ok(ReadResourceResult::new(vec![
                                ResourceContents::blob(blob, request.uri.clone())
                                    .with_mime_type(mime_type),
                            ])
                            .into())
                        }
                        Err(ToolError::InvalidArguments(message)) => {
                            Err(McpError::resource_not_found(message, None))
                        }
                        Err(other) => Err(McpError::internal_error(other.to_string(), None)),
                    };
                }
            }
            return Err(McpError::resource_not_found(
                format!(
                    "unknown resource '{}'; call resources/list and resources/templates/list",
                    request.uri
                ),
                None,
            ));
        }
        let stats = serde_json::json!({ "tools": self.registry.metrics() });
        let text = serde_json::to_string_pretty(&stats).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, STATS_URI).with_mime_type("application/json"),
        ])
        .into())
    }
}
