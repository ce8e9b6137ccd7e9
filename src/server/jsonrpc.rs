//! Replies to input that is not a JSON-RPC message, shared by every transport.

use rmcp::model::{ErrorData, RequestId};
use serde_json::Value;

/// The error reply for bytes that are not a valid message, logged without their content
/// (which may hold SQL or secrets), with the request id when one can be read.
pub fn rejection(line: &[u8], error: &serde_json::Error) -> (ErrorData, Option<RequestId>) {
    if error.is_syntax() || error.is_eof() {
        tracing::warn!(bytes = line.len(), %error, "dropped a message that is not JSON");
        return (
            ErrorData::new(
                rmcp::model::ErrorCode::PARSE_ERROR,
                format!("not valid JSON ({error}); send one JSON-RPC message"),
                None,
            ),
            None,
        );
    }
    let value = serde_json::from_slice::<Value>(line).ok();
    let id = value
        .as_ref()
        .and_then(|v| v.get("id").cloned())
        .and_then(|id| serde_json::from_value::<RequestId>(id).ok());
    // A well-formed request whose params do not fit its method: JSON-RPC calls that invalid
    // params (-32602), not an invalid request. Unknown methods parse (as custom requests), so
    // a method that fails to parse is a known one.
    let envelope_ok = value.as_ref().is_some_and(|v| {
        v.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && v.get("method").is_some_and(Value::is_string)
    });
    if envelope_ok && id.is_some() {
        tracing::warn!(bytes = line.len(), ?id, %error, "refused a request with invalid params");
        return (
            ErrorData::invalid_params(
                format!("invalid params for this method ({error}); see the method's schema"),
                None,
            ),
            id,
        );
    }
    tracing::warn!(bytes = line.len(), ?id, %error, "dropped a message that is not valid JSON-RPC");
    (
        ErrorData::invalid_request(
            format!(
                "not a valid JSON-RPC request or notification ({error}); a request needs jsonrpc, id, method and params"
            ),
            None,
        ),
        id,
    )
}
