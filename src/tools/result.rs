//! What a call produces: a tool's output or a [`ToolError`], and the [`ExecutionMeta`] the
//! framework attaches to every result.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a call failed, sorted by what the caller can do about it.
///
/// Every variant becomes an `isError` tool result whose text the model reads, so each message
/// says what was wrong and what to do instead. Only protocol faults (unknown tool, malformed
/// request) become JSON-RPC errors, and those never reach this type.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's input schema or its own rules.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The request is well-formed but not allowed (e.g. SQL that is not a read).
    #[error("refused: {0}")]
    Refused(String),
    /// The system behind the tool failed. `transient` errors are retried by the policy.
    #[error("{message}")]
    Upstream {
        /// What failed and what to check.
        message: String,
        /// Whether trying again may succeed (connection reset, lock contention, …).
        transient: bool,
    },
    /// The call ran past its deadline; the work was cancelled.
    #[error(
        "timed out after {} ms; the work was stopped. Narrow the request (filters, LIMIT) or raise this tool's timeout_ms",
        .0.as_millis()
    )]
    Timeout(Duration),
    /// The client cancelled the call.
    #[error("cancelled by the client")]
    Cancelled,
    /// A bug in datamcp, not in the request.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ToolError {
    /// Whether the retry policy may try again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ToolError::Upstream {
                transient: true,
                ..
            }
        )
    }

    /// A stable, machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::Refused(_) => "refused",
            ToolError::Upstream {
                transient: true, ..
            } => "upstream_transient",
            ToolError::Upstream { .. } => "upstream",
            ToolError::Timeout(_) => "timeout",
            ToolError::Cancelled => "cancelled",
            ToolError::Internal(_) => "internal",
        }
    }
}

/// A tool's successful output: structured (matching its output schema) and as compact text.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Serialized output; a JSON object.
    pub structured: Value,
    /// Rendering for clients and models that read text.
    pub text: String,
    /// Resources the result points to (e.g. a file it wrote), sent as resource links.
    pub links: Vec<super::resources::ResourceInfo>,
    /// Whether the result cache may keep it (an idempotent tool's interim answer, such as a
    /// run still going, may not).
    pub cacheable: bool,
}

impl ToolOutput {
    /// Approximate heap size, used to bound the result cache in bytes.
    pub fn weight(&self) -> usize {
        self.text.len() + approximate_size(&self.structured)
    }
}

fn approximate_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + 24,
        Value::Array(items) => 24 + items.iter().map(approximate_size).sum::<usize>(),
        Value::Object(map) => {
            24 + map
                .iter()
                .map(|(k, v)| k.len() + approximate_size(v))
                .sum::<usize>()
        }
        _ => 16,
    }
}

/// Facts about one execution, attached to every result as `execution`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExecutionMeta {
    /// Unique id of this call, also in the server's logs.
    pub execution_id: String,
    /// Wall time from validation to result, in milliseconds.
    pub elapsed_ms: f64,
    /// Records the tool read or produced (rows, messages, …).
    pub records: u64,
    /// Whether the result came from the result cache.
    pub cached: bool,
    /// How many times the tool ran (more than 1 when transient errors were retried).
    pub attempts: u32,
    /// Things the caller should know about this result (truncation, retries, …).
    pub warnings: Vec<String>,
}

/// The text sent beside a structured result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultText {
    /// The tool's complete rendering: for clients that show the model only text.
    #[default]
    Full,
    /// The result's shape (row count, columns, truncation) and its first rows; the complete
    /// result is in `structuredContent`, which the client reads.
    Summary,
}

/// Rows shown in a summary.
const SUMMARY_ROWS: usize = 5;
/// Bytes of JSON a summary shows of a result that is not a table.
const SUMMARY_BYTES: usize = 1_000;

/// A short text for a structured result: a table's shape and first rows, or the start of
/// other JSON.
pub fn summarize(structured: &Value) -> String {
    let columns = structured.get("columns").and_then(Value::as_array);
    let rows = structured.get("rows").and_then(Value::as_array);
    if let (Some(columns), Some(rows)) = (columns, rows) {
        let names: Vec<&str> = columns
            .iter()
            .map(|c| c.get("name").and_then(Value::as_str).unwrap_or("?"))
            .collect();
        let truncated = structured.get("truncated") == Some(&Value::Bool(true));
        let mut text = format!(
            "{} rows x {} columns ({}){}; the full rows are in structuredContent",
            rows.len(),
            names.len(),
            names.join(", "),
            if truncated {
                ", truncated: more rows exist"
            } else {
                ""
            }
        );
        for row in rows.iter().take(SUMMARY_ROWS) {
            text.push('\n');
            text.push_str(&row.to_string());
        }
        if rows.len() > SUMMARY_ROWS {
            text.push_str(&format!("\n… {} more rows", rows.len() - SUMMARY_ROWS));
        }
        return text;
    }
    let json = structured.to_string();
    if json.len() <= SUMMARY_BYTES {
        return json;
    }
    let mut end = SUMMARY_BYTES;
    while !json.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} bytes; the full result is in structuredContent)",
        &json[..end],
        json.len()
    )
}

/// A fresh execution id: 128 random bits as 32 hex digits. Unique, not secret, so a fast
/// thread-local generator serves (an OS random call per tool call would cost a syscall).
pub fn new_execution_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// The outcome of [`crate::tools::Registry::call`].
#[derive(Debug, Clone)]
pub struct ToolResult {
    /// The tool's output, or why there is none.
    pub outcome: Result<ToolOutput, ToolError>,
    /// Execution facts, present on failures too.
    pub meta: ExecutionMeta,
}

impl ToolResult {
    /// Whether the call failed.
    pub fn is_error(&self) -> bool {
        self.outcome.is_err()
    }

    /// Splits the result into what a client is sent: the structured content (the tool's output
    /// with `cached` and `warnings` when they say something; `None` on failure) and the text for
    /// the model (the rendering, or its summary, or the error, followed by any warnings).
    pub fn into_content(self, mode: ResultText) -> (Option<Value>, String) {
        let (structured, mut text) = match self.outcome {
            Ok(output) => {
                let mut structured = output.structured;
                let text = match mode {
                    ResultText::Full => output.text,
                    ResultText::Summary => summarize(&structured),
                };
                if let Value::Object(map) = &mut structured {
                    if self.meta.cached {
                        map.insert("cached".to_owned(), Value::Bool(true));
                    }
                    if !self.meta.warnings.is_empty() {
                        map.insert(
                            "warnings".to_owned(),
                            Value::from(self.meta.warnings.clone()),
                        );
                    }
                }
                (Some(structured), text)
            }
            Err(error) => (None, error.to_string()),
        };
        for warning in &self.meta.warnings {
            text.push_str("\nwarning: ");
            text.push_str(warning);
        }
        (structured, text)
    }
}
