//! Discovery mode: two small tools stand in for the whole catalogue, for clients that run many
//! servers. `find_tools` finds tools by words and returns their schemas; `call_tool` calls a
//! found tool by name through the same path as a direct call (validation, policies, audit,
//! read-only rules), on behalf of the calling request.

use std::sync::{Arc, Weak};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::registry::{DISCOVERY_GROUP, Registration, Registry};
use super::schema::schema_of;
use super::{Annotations, CallContext, Tool, ToolError, ToolSpec, runtime};

/// The discovery tools, to register on `registry`.
pub fn tools(registry: &Arc<Registry>) -> Vec<Registration> {
    let weak = Arc::downgrade(registry);
    let call_schema = schema_of::<CallParams>();
    let forwarded = json!({
        "type": "object",
        "description": "The called tool's structured result; find_tools shows each tool's fields."
    });
    // The found tools' own schemas are the answer; the shape around them needs no more.
    let found = json!({
        "type": "object",
        "properties": {"tools": {"type": "array"}, "available": {"type": "integer"}},
    });
    vec![
        Registration::listed(runtime(
            FindTools(weak.clone()),
            schema_of::<FindParams>(),
            Some(found),
        ))
        .in_group(DISCOVERY_GROUP),
        Registration::listed(runtime(CallTool(weak), call_schema, Some(forwarded)))
            .in_group(DISCOVERY_GROUP),
    ]
}

fn upgrade(registry: &Weak<Registry>) -> Result<Arc<Registry>, ToolError> {
    registry
        .upgrade()
        .ok_or_else(|| ToolError::Internal("the server is stopping".to_owned()))
}

/// Arguments of `find_tools`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindParams {
    /// Words, e.g. "list tables"; empty lists every tool.
    #[serde(default)]
    pub query: String,
    /// At most this many (default 5).
    pub limit: Option<u32>,
}

/// One tool found.
#[derive(Serialize, JsonSchema)]
pub struct FoundTool {
    /// Its name, for call_tool.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its arguments' JSON Schema.
    pub input_schema: Value,
    /// Whether it only reads.
    pub read_only: bool,
}

/// What `find_tools` returns.
#[derive(Serialize, JsonSchema)]
pub struct FindOutput {
    /// The best matches, best first.
    pub tools: Vec<FoundTool>,
    /// Tools there are in all.
    pub available: usize,
}

struct FindTools(Weak<Registry>);

impl Tool for FindTools {
    type Params = FindParams;
    type Output = FindOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "find_tools".to_owned(),
            title: "Find tools".to_owned(),
            description: "Find data tools (SQL, workflows, …) by words; returns their names and input schemas for call_tool.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        _ctx: &CallContext,
        params: &FindParams,
    ) -> Result<FindOutput, ToolError> {
        let registry = upgrade(&self.0)?;
        let words: Vec<String> = params
            .query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 1)
            .map(str::to_lowercase)
            .collect();
        let callable = registry.callable();
        let mut scored: Vec<(usize, usize, &super::registry::RegisteredTool)> = callable
            .iter()
            .enumerate()
            .map(|(order, entry)| {
                let spec = entry.tool().spec();
                let (name, title, description) = (
                    spec.name.to_lowercase(),
                    spec.title.to_lowercase(),
                    spec.description.to_lowercase(),
                );
                let score = words
                    .iter()
                    .map(|w| {
                        3 * usize::from(name.contains(w.as_str()))
                            + 2 * usize::from(title.contains(w.as_str()))
                            + usize::from(description.contains(w.as_str()))
                    })
                    .sum();
                (score, order, entry.as_ref())
            })
            .filter(|(score, _, _)| words.is_empty() || *score > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let limit = params.limit.unwrap_or(5).clamp(1, 25) as usize;
        let tools = scored
            .into_iter()
            .take(limit)
            .map(|(_, _, entry)| {
                let spec = entry.tool().spec();
                FoundTool {
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                    input_schema: entry.wire_input_schema().clone(),
                    read_only: spec.annotations.read_only_hint,
                }
            })
            .collect();
        Ok(FindOutput {
            tools,
            available: callable.len(),
        })
    }
}

/// Arguments of `call_tool`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallParams {
    /// The tool's name.
    pub name: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// A called tool's answer, passed on as it came.
#[derive(Serialize, JsonSchema)]
pub struct Forwarded {
    structured: Value,
    text: String,
}

struct CallTool(Weak<Registry>);

impl Tool for CallTool {
    type Params = CallParams;
    type Output = Forwarded;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "call_tool".to_owned(),
            title: "Call a tool".to_owned(),
            description: "Run a tool found with find_tools, by name with its arguments.".to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                ..Annotations::READ_ONLY
            },
        }
    }

    async fn invoke(&self, ctx: &CallContext, params: &CallParams) -> Result<Forwarded, ToolError> {
        let registry = upgrade(&self.0)?;
        let unknown = || {
            ToolError::InvalidArguments(format!(
                "unknown tool '{}'; use find_tools to see the tools you can call",
                params.name
            ))
        };
        if registry
            .get_any(&params.name)
            .is_some_and(|entry| entry.group() == DISCOVERY_GROUP)
        {
            return Err(unknown());
        }
        let result = registry
            .call(&params.name, Some(params.arguments.clone()), ctx.nested())
            .await
            .map_err(|_| unknown())?;
        for warning in &result.meta.warnings {
            ctx.warn(warning.clone());
        }
        let output = result.outcome?;
        Ok(Forwarded {
            structured: output.structured,
            text: output.text,
        })
    }

    fn render_text(&self, _params: &CallParams, output: &Forwarded) -> String {
        output.text.clone()
    }

    fn structured_content(&self, output: Forwarded) -> Result<Value, serde_json::Error> {
        Ok(output.structured)
    }
}
