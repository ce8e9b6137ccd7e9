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
    let id = serde_json::from_slice::<Value>(line)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .and_then(|id| serde_json::from_value::<RequestId>(id).ok());
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
