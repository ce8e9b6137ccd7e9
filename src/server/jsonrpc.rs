//! Replies to input that is not a JSON-RPC message, shared by every transport, and the record
//! of request ids in flight that lets a transport refuse a reused one.

use std::collections::HashSet;

use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ErrorCode, ErrorData, RequestId, ServerJsonRpcMessage,
};
use serde_json::Value;

/// The ids of a session's requests not answered yet. rmcp keys running requests by id, so a
/// request reusing the id of one still running would get one of the two answers dropped without
/// a word; a transport refuses it instead, with [`InFlight::claim`]'s error.
#[derive(Default)]
pub struct InFlight(HashSet<RequestId>);

impl InFlight {
    /// Notes a request as running, or gives the error reply when its id is taken; frees the id
    /// of a cancelled request, whose answer rmcp drops.
    pub fn claim(
        &mut self,
        message: &ClientJsonRpcMessage,
    ) -> Result<(), (ErrorData, Option<RequestId>)> {
        match message {
            ClientJsonRpcMessage::Request(request) => {
                if self.0.insert(request.id.clone()) {
                    return Ok(());
                }
                tracing::warn!(id = %request.id, "refused a request whose id is still in use");
                Err((
                    ErrorData::new(
                        ErrorCode::INVALID_REQUEST,
                        "id already in use: a request with this id is still running; use a new id",
                        None,
                    ),
                    Some(request.id.clone()),
                ))
            }
            ClientJsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    self.0.remove(id);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Frees the id a response or error answers.
    pub fn answered(&mut self, message: &ServerJsonRpcMessage) {
        let id = match message {
            ServerJsonRpcMessage::Response(response) => Some(&response.id),
            ServerJsonRpcMessage::Error(error) => error.id.as_ref(),
            _ => None,
        };
        if let Some(id) = id {
            self.0.remove(id);
        }
    }
}

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
