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
        while let Some((end, data)) = next_event(&seen[scanned..]) {
            let event = scanned;
            scanned += end;
            if data.is_empty() {
                // The priming event and keep-alive comments carry no message.
                continue;
            }
            let message = match &data {
                EventData::Line(range) => &seen[event + range.start..event + range.end],
                EventData::Joined(joined) => joined.as_slice(),
            };
            if is_answer(message) {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                parts.headers.remove(header::CONTENT_LENGTH);
                parts.headers.remove(header::CACHE_CONTROL);
                let body = match data {
                    // One `data:` line: the answer is a slice of what came, not a copy.
                    EventData::Line(range) => {
                        Bytes::from(seen).slice(event + range.start..event + range.end)
                    }
                    EventData::Joined(joined) => Bytes::from(joined),
                };
                return Response::from_parts(parts, Body::from(body));
            }
            // Something before the answer: the client gets the stream after all.
            let rest =
                futures::stream::once(async move { Ok::<Bytes, axum::Error>(Bytes::from(seen)) })
                    .chain(stream);
            return Response::from_parts(parts, Body::from_stream(rest));
        }
    }
}

/// An event's data: the range of its one `data:` line's value within the event, or several
/// lines joined.
enum EventData {
    Line(std::ops::Range<usize>),
    Joined(Vec<u8>),
}

impl EventData {
    fn is_empty(&self) -> bool {
        match self {
            EventData::Line(range) => range.is_empty(),
            EventData::Joined(joined) => joined.is_empty(),
        }
    }
}

/// The first complete event in `bytes`: its length through the blank line that ends it, and
/// its `data:` lines, joined as the SSE format joins them (`\n`, `\r\n` or `\r` end a line;
/// one space after the colon is not part of the value). `None` while the event is incomplete.
fn next_event(bytes: &[u8]) -> Option<(usize, EventData)> {
    let mut lines: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    loop {
        let end = start + line_end(&bytes[start..])?;
        let mut next = end + 1;
        if bytes[end] == b'\r' {
            match bytes.get(next) {
                Some(b'\n') => next += 1,
                // A `\r` ending what came so far may be the first half of a `\r\n`; after a
                // blank line, a `\n` still to come reads as one more (empty) event.
                None if end != start => return None,
                _ => {}
            }
        }
        if end == start {
            let data = match lines.len() {
                0 => EventData::Line(0..0),
                1 => EventData::Line(lines.swap_remove(0)),
                _ => EventData::Joined(
                    lines
                        .iter()
                        .map(|range| &bytes[range.clone()])
                        .collect::<Vec<_>>()
                        .join(&b'\n'),
                ),
            };
            return Some((next, data));
        }
        if let Some(value) = bytes[start..end].strip_prefix(b"data:") {
            let skip = usize::from(value.first() == Some(&b' '));
            lines.push(start + 5 + skip..end);
        }
        start = next;
    }
}

/// Where the first line of `bytes` ends (its `\n` or `\r`), looked for 32 bytes at a time so
/// that the search through a long `data:` line compiles to vector compares.
fn line_end(bytes: &[u8]) -> Option<usize> {
    let is_end = |b: &u8| *b == b'\n' || *b == b'\r';
    let mut chunks = bytes.chunks_exact(32);
    let mut offset = 0;
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |found, b| found | is_end(b)) {
            return chunk.iter().position(is_end).map(|i| offset + i);
        }
        offset += 32;
    }
    chunks
        .remainder()
        .iter()
        .position(is_end)
        .map(|i| offset + i)
}

/// A member that is present, whatever its value (`null` included).
#[derive(Default)]
struct Present(bool);

impl<'de> serde::Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

/// The members that tell an answer, read without building the message.
#[derive(serde::Deserialize)]
struct Shape {
    /// `None` when absent or `null`.
    #[serde(default)]
    id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    result: Present,
    #[serde(default)]
    error: Present,
}

/// Whether `data` is a JSON-RPC answer (a result or an error for a request id).
fn is_answer(data: &[u8]) -> bool {
    answer_by_prefix(data)
        || serde_json::from_slice::<Shape>(data)
            .is_ok_and(|shape| shape.id.is_some() && (shape.result.0 || shape.error.0))
}

/// Whether `data` begins as rmcp writes an answer, `{"jsonrpc":"2.0","id":<number or plain
/// string>,"result":` (or `"error":`): its top level then has a non-null id and a result or an
/// error, so it is one, without reading the rest. Anything else is left to the full check.
fn answer_by_prefix(data: &[u8]) -> bool {
    let Some(rest) = data.strip_prefix(br#"{"jsonrpc":"2.0","id":"#) else {
        return false;
    };
    let id_len = match rest.first() {
        Some(b'"') => match rest[1..].iter().position(|&b| b == b'"' || b == b'\\') {
            Some(i) if rest[1 + i] == b'"' => i + 2,
            _ => return false,
        },
        Some(b'-' | b'0'..=b'9') => rest
            .iter()
            .position(|&b| !(b == b'-' || b.is_ascii_digit()))
            .unwrap_or(rest.len()),
        _ => return false,
    };
    let rest = &rest[id_len..];
    rest.starts_with(br#","result":"#) || rest.starts_with(br#","error":"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(event: &[u8]) -> Vec<u8> {
        let (end, data) = next_event(event).expect("an event");
        assert_eq!(end, event.len());
        match data {
            EventData::Line(range) => event[range].to_vec(),
            EventData::Joined(joined) => joined,
        }
    }

    #[test]
    fn data_lines_are_joined_as_sse_joins_them() {
        assert_eq!(
            data(b"id: 1\r\ndata: {\"a\":\r\ndata:1}\r\n\r\n"),
            b"{\"a\":\n1}"
        );
        assert_eq!(data(b"event: message\ndata:{}\n\n"), b"{}");
        assert_eq!(data(b"data: x\r\r"), b"x");
        assert!(data(b"\r").is_empty());
        assert!(data(b": keep-alive\n\n").is_empty());
        let long = format!("data: {}\nid: 3\n\n", "x".repeat(100));
        assert_eq!(data(long.as_bytes()), "x".repeat(100).as_bytes());
        assert!(next_event(b"data: x\n").is_none(), "no blank line yet");
        assert!(next_event(b"data: x\r").is_none(), "maybe a CRLF");
    }

    #[test]
    fn an_event_is_read_through_its_blank_line() {
        let stream = b"id: 0\nretry: 3000\ndata: \n\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n";
        let (first, priming) = next_event(stream).expect("an event");
        assert!(priming.is_empty(), "the priming event");
        let (second, answer) = next_event(&stream[first..]).expect("another");
        assert_eq!(first + second, stream.len());
        let EventData::Line(range) = answer else {
            panic!("one data line")
        };
        assert!(is_answer(&stream[first..][range]));
    }

    #[test]
    fn answers_are_told_from_other_messages() {
        for answer in [
            br#"{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}}"#.as_slice(),
            br#"{"jsonrpc":"2.0","id":-12,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":"a\"b","result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            br#"{"result":{},"id":7,"jsonrpc":"2.0"}"#,
        ] {
            assert!(is_answer(answer), "{}", String::from_utf8_lossy(answer));
        }
        for other in [
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#.as_slice(),
            br#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"result":1}}"#,
        ] {
            assert!(!is_answer(other), "{}", String::from_utf8_lossy(other));
        }
        assert!(answer_by_prefix(br#"{"jsonrpc":"2.0","id":12,"result":{"#));
        assert!(!answer_by_prefix(
            br#"{"jsonrpc":"2.0","id":"a\"b","result":{}}"#
        ));
    }
}
