//! The audit line: one per tool call, whoever made it (a client over any transport, or another
//! call on its behalf), written by the registry when the call ends.
//!
//! A line answers "who ran what, when, and how did it end" without the secret: it names the
//! token (never its value) and carries a SHA-256 of the canonical arguments instead of the
//! arguments, which may hold SQL literals and parameters.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::policy::canonical_json;

/// Who a call is audited as. The transport fills it in; nested calls carry their parent's.
#[derive(Debug, Clone, Default)]
pub struct AuditIdentity {
    /// The transport's label, e.g. `streamable_http`.
    pub transport: &'static str,
    /// Name of the token presented, if any.
    pub token: Option<Arc<str>>,
    /// The request id the client sees in its response.
    pub request_id: Option<Arc<str>>,
    /// The client's address.
    pub peer: Option<String>,
}

/// How an audited call ended.
pub enum Outcome<'a> {
    /// The tool returned a result.
    Ok,
    /// The tool returned an error result of this kind.
    ToolError(&'a str),
    /// The call never reached a tool (unknown or unlisted tool name).
    Rejected,
}

/// One finished call, as the audit line tells it.
pub struct AuditRecord<'a> {
    /// Who made the call.
    pub identity: &'a AuditIdentity,
    /// The tool.
    pub tool: &'a str,
    /// SHA-256 of the canonical arguments.
    pub arguments_sha256: &'a str,
    /// How it ended.
    pub outcome: Outcome<'a>,
    /// How long it took.
    pub elapsed: Duration,
    /// The call this one ran for, if it was nested.
    pub parent: Option<&'a str>,
}

/// Writes the audit line of one finished tool call.
pub fn record(line: &AuditRecord<'_>) {
    let (outcome, error_kind) = match line.outcome {
        Outcome::Ok => ("ok", ""),
        Outcome::ToolError(kind) => ("error", kind),
        Outcome::Rejected => ("rejected", "unknown_tool"),
    };
    let identity = line.identity;
    tracing::info!(
        target: "datamcp::audit",
        request_id = identity.request_id.as_deref().unwrap_or("-"),
        token = identity.token.as_deref().unwrap_or("-"),
        transport = identity.transport,
        peer = identity.peer.as_deref().unwrap_or_default(),
        tool = line.tool,
        parent = line.parent.unwrap_or("-"),
        args_sha256 = line.arguments_sha256,
        outcome,
        error_kind,
        elapsed_ms = (line.elapsed.as_secs_f64() * 1000.0),
        "tool call"
    );
}

/// SHA-256 (hex) of the arguments in canonical form, so equal arguments hash equal whatever
/// their key order.
pub fn arguments_sha256(arguments: &Value) -> String {
    let digest = Sha256::digest(canonical_json(arguments).as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_hashes_ignore_key_order_and_hide_the_values() {
        let a: Value = serde_json::from_str(r#"{"sql": "SELECT 1", "max_rows": 5}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"max_rows": 5, "sql": "SELECT 1"}"#).expect("json");
        let hash = arguments_sha256(&a);
        assert_eq!(hash, arguments_sha256(&b));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("SELECT"));
        assert_ne!(hash, arguments_sha256(&Value::Object(Default::default())));
    }
}
