//! Who ran what on the remote endpoint: the caller identity the HTTP layer attaches to each
//! message, and the audit line written per tool call.
//!
//! An audit line answers "who ran what, when, and how did it end" without the secret: it names
//! the token (never its value) and carries a SHA-256 of the canonical arguments instead of the
//! arguments, which may hold SQL literals and parameters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::tools::Principal;
use crate::tools::policy::canonical_json;

/// How a message reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP (`/mcp`).
    StreamableHttp,
    /// The legacy HTTP+SSE transport (`/sse` + `/message`).
    Sse,
}

impl Transport {
    /// The label used in logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Transport::StreamableHttp => "streamable_http",
            Transport::Sse => "sse",
        }
    }
}

/// The authenticated caller of one HTTP request, carried in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Name of the token presented; `None` when the endpoint runs without auth.
    pub token_name: Option<Arc<str>>,
    /// The request id (from `X-Request-Id` or generated), echoed in the response.
    pub request_id: Arc<str>,
    /// The transport the request came through.
    pub transport: Transport,
    /// Whether tool calls of this request are audited.
    pub audit: bool,
    /// The client's address (a proxy's, behind one).
    pub peer: Option<SocketAddr>,
    /// The MCP session the request names, if any (unchecked here: the transports refuse
    /// unknown sessions).
    pub session: Option<Arc<str>>,
}

impl Caller {
    /// Whom the request's calls run for: the token when the endpoint has tokens (a session
    /// belongs to its token anyway), else the session, else everyone unauthenticated alike.
    pub fn principal(&self) -> Principal {
        match (&self.token_name, &self.session) {
            (Some(token), _) => Principal::new(format!("token:{token}")),
            (None, Some(session)) => Principal::new(format!("session:{session}")),
            (None, None) => Principal::new("anonymous"),
        }
    }
}

/// The outcome part of an audit line.
pub enum Outcome<'a> {
    /// The tool returned a result.
    Ok,
    /// The tool returned an error result of this kind.
    ToolError(&'a str),
    /// The call never reached a tool (unknown tool name).
    Rejected,
}

/// Writes the audit line of one finished tool call.
pub fn record(
    caller: &Caller,
    tool: &str,
    arguments_sha256: &str,
    outcome: Outcome<'_>,
    elapsed: Duration,
) {
    if !caller.audit {
        return;
    }
    let (outcome, error_kind) = match outcome {
        Outcome::Ok => ("ok", ""),
        Outcome::ToolError(kind) => ("error", kind),
        Outcome::Rejected => ("rejected", "unknown_tool"),
    };
    tracing::info!(
        target: "datamcp::audit",
        request_id = %caller.request_id,
        token = caller.token_name.as_deref().unwrap_or("-"),
        transport = caller.transport.label(),
        peer = caller.peer.map(|p| p.to_string()).unwrap_or_default(),
        tool,
        args_sha256 = arguments_sha256,
        outcome,
        error_kind,
        elapsed_ms = (elapsed.as_secs_f64() * 1000.0),
        "tool call"
    );
}

/// SHA-256 (hex) of the arguments in canonical form, so equal arguments hash equal whatever
/// their key order.
pub fn arguments_sha256(arguments: Option<&Map<String, Value>>) -> String {
    let canonical = match arguments {
        Some(map) => canonical_json(&Value::Object(map.clone())),
        None => "{}".to_owned(),
    };
    let digest = Sha256::digest(canonical.as_bytes());
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
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"sql": "SELECT 1", "max_rows": 5}"#).expect("json");
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"max_rows": 5, "sql": "SELECT 1"}"#).expect("json");
        let hash = arguments_sha256(Some(&a));
        assert_eq!(hash, arguments_sha256(Some(&b)));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("SELECT"));
        assert_ne!(hash, arguments_sha256(None));
    }
}
