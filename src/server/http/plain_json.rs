//! Plain JSON answers over Streamable HTTP in session mode.
//!
//! rmcp answers every request of a session with an SSE stream (a priming event, then the
//! answer), which costs the client and the server a stream per call even when the call sends
//! nothing but its result. The spec lets a server answer `application/json` instead when the
//! client accepts it. So: when the first message on the stream is the request's own answer, it
//! is sent as plain JSON; when something comes first (a progress notification, a server
//! request), the stream goes out as it is, from its first byte.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;

/// Answers plainly when the first message of an SSE answer is the answer itself.
pub async fn answer_plainly(request: Request, next: Next) -> Response {
    let accepts_json = request.method() == Method::POST
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("application/json"));
    let response = next.run(request).await;
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if !accepts_json || !is_stream || !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut stream = body.into_data_stream();
    let mut seen: Vec<u8> = Vec::new();
    let mut scanned = 0;
    loop {
        let chunk = match stream.next().await {
            Some(Ok(chunk)) => chunk,
            // The stream ended or failed before a message: pass on what came, as it came.
            _ => return Response::from_parts(parts, Body::from(seen)),
        };
        seen.extend_from_slice(&chunk);
        while let Some(end) = find_event_end(&seen[scanned..]) {
            let event = &seen[scanned..scanned + end];
            scanned += end;
            let data = event_data(event);
            if data.is_empty() {
                // The priming event and keep-alive comments carry no message.
                continue;
            }
            if is_answer(&data) {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                parts.headers.remove(header::CONTENT_LENGTH);
                parts.headers.remove(header::CACHE_CONTROL);
                return Response::from_parts(parts, Body::from(data));
            }
            // Something before the answer: the client gets the stream after all.
            let rest =
                futures::stream::once(async move { Ok::<Bytes, axum::Error>(Bytes::from(seen)) })
                    .chain(stream);
            return Response::from_parts(parts, Body::from_stream(rest));
        }
    }
}

/// The length of the first complete event in `bytes` (through its blank line), if any.
fn find_event_end(bytes: &[u8]) -> Option<usize> {
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The event's `data:` lines, joined as the SSE format joins them.
fn event_data(event: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| data.strip_prefix(' ').unwrap_or(data))
        .collect();
    lines.join("\n").into_bytes()
}

/// Whether `data` is a JSON-RPC answer (a result or an error for a request id).
fn is_answer(data: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(data).is_ok_and(|message| {
        message.get("id").is_some_and(|id| !id.is_null())
            && (message.get("result").is_some() || message.get("error").is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_read_through_its_blank_line() {
        let stream = b"id: 0\nretry: 3000\ndata: \n\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n";
        let first = find_event_end(stream).expect("an event");
        assert!(event_data(&stream[..first]).is_empty(), "the priming event");
        let second = find_event_end(&stream[first..]).expect("another");
        let data = event_data(&stream[first..first + second]);
        assert!(is_answer(&data));
        assert!(!is_answer(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#
        ));
    }
}
