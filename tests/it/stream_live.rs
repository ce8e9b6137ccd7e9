//! Live stream sources end to end: the real `datamcp` binary over stdio, reading HTTP streams
//! (NDJSON, Server-Sent Events) and WebSockets from small servers the tests run on loopback.
//! The HTTP servers are hand-written HTTP/1.1, so a test can stall, drop a connection in the
//! middle of a chunk, or answer with an error exactly when it wants to.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::support::*;

/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;

/// Generous bound for "returned within its deadline" (the reads below wait about a second).
const PROMPTLY: Duration = Duration::from_secs(20);

/// What a scripted HTTP server does on each connection, after reading the request.
#[derive(Clone)]
enum Step {
    Write(Vec<u8>),
    /// Keep the connection open without sending anything.
    Hang,
}

/// A loopback server and the requests (head text) it received.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    (listener, address)
}

/// An HTTP/1.1 server playing `script` on every connection; the connection closes when the
/// script ends.
async fn http_server(script: Vec<Step>) -> Server {
    let (listener, address) = listener().await;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let script = script.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let head = read_head(&mut socket).await;
                seen.lock().expect("lock").push(head);
                for step in script {
                    match step {
                        Step::Write(bytes) => {
                            if socket.write_all(&bytes).await.is_err() {
                                return;
                            }
                            let _ = socket.flush().await;
                        }
                        Step::Hang => {
                            tokio::time::sleep(Duration::from_secs(120)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    Server {
        url: format!("http://{address}"),
        requests,
    }
}

async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
        match socket.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A 200 response head with a chunked body of `content_type`.
fn ok(content_type: &str) -> Step {
    Step::Write(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

/// One chunk of a chunked body.
fn chunk(data: &str) -> Step {
    Step::Write(format!("{:x}\r\n{data}\r\n", data.len()).into_bytes())
}

/// The end of a chunked body.
fn end() -> Step {
    Step::Write(b"0\r\n\r\n".to_vec())
}

fn ndjson() -> Step {
    ok("application/x-ndjson")
}

/// `n` NDJSON lines `{"n": i, …}` with `extra` fields.
fn lines(n: usize, extra: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"n\":{i}{extra}}}\n"))
        .collect::<String>()
}

/// A sandbox whose config holds `sources` (name, TOML body of `[streams.NAME]`).
fn sandbox(sources: &[(&str, String)]) -> Sandbox {
    let toml = sources
        .iter()
        .map(|(name, body)| format!("[streams.{name}]\n{body}\n"))
        .collect::<String>();
    Sandbox::new(&toml)
}

fn http_source(url: &str) -> String {
    format!(
        "kind = \"http\"\nurl = \"{url}\"\nheaders = {{ Authorization = \"Bearer ${{DATAMCP_LIVE_TEST_TOKEN:-tok-123}}\" }}\n"
    )
}

async fn read(client: &Client, arguments: Value) -> (Map<String, Value>, Duration) {
    let started = Instant::now();
    let result = call(client, "stream_read", arguments).await;
    assert!(!is_error(&result), "{}", text(&result));
    (structured(&result), started.elapsed())
}

async fn read_error(client: &Client, arguments: Value) -> (String, Duration) {
    let started = Instant::now();
    let result = call(client, "stream_read", arguments).await;
    assert!(is_error(&result), "expected an error: {}", text(&result));
    (text(&result), started.elapsed())
}

fn messages(output: &Map<String, Value>) -> Vec<Value> {
    output["messages"].as_array().expect("messages").clone()
}

fn ns(output: &Map<String, Value>) -> Vec<i64> {
    messages(output)
        .iter()
        .map(|m| m["value"]["n"].as_i64().expect("n"))
        .collect()
}

fn notes(output: &Map<String, Value>) -> String {
    output
        .get("notes")
        .map(Value::to_string)
        .unwrap_or_default()
}

#[tokio::test]
async fn ndjson_reads_stop_at_each_limit_and_say_why() {
    let pad = format!(",\"pad\":\"{}\"", "x".repeat(300));
    let server = http_server(vec![ndjson(), chunk(&lines(10, &pad)), Step::Hang]).await;
    let sandbox = sandbox(&[("feed", http_source(&format!("{}/feed", server.url)))]);
    let client = connect(Some(&sandbox.config())).await;

    let (first, _) = read(&client, json!({"max_messages": 3})).await;
    assert_eq!(ns(&first), vec![0, 1, 2]);
    assert_eq!(first["stopped"], "max_messages");
    assert_eq!(first["truncated"], true);
    assert!(!first.contains_key("cursor"), "a live stream has no cursor");
    let message = &messages(&first)[0];
    assert_eq!(message["partition"], 0);
    assert!(message.get("offset").is_none(), "{message}");
    assert!(
        message["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{message}"
    );

    let (bytes, _) = read(&client, json!({"max_bytes": 1024, "max_messages": 100})).await;
    assert_eq!(bytes["stopped"], "max_bytes");
    let kept = messages(&bytes).len();
    assert!((1..10).contains(&kept), "{kept} messages");
    assert_eq!(ns(&bytes), (0..kept as i64).collect::<Vec<_>>());

    let (waited, elapsed) = read(
        &client,
        json!({"max_messages": 100, "max_wait_ms": 800, "start": {"offset": 5}}),
    )
    .await;
    assert_eq!(ns(&waited), (0..10).collect::<Vec<_>>());
    assert_eq!(waited["stopped"], "max_wait");
    assert_eq!(waited["truncated"], true);
    assert!(elapsed < PROMPTLY, "{elapsed:?}");
    assert!(notes(&waited).contains("read from now"), "{waited:?}");

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert!(request.starts_with("GET /feed HTTP/1.1"), "{request}");
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer tok-123"),
            "the configured header, ${{ENV}} expanded: {request}"
        );
    }

    let sources = structured(&call(&client, "stream_list_sources", json!({})).await);
    let feed = sources["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == "feed")
        .expect("feed listed")
        .clone();
    assert_eq!(feed["kind"], "http");
    assert_eq!(feed["replayable"], false);
    assert_eq!(feed["topics"], json!([""]));
    let topics = call(&client, "stream_list_topics", json!({"source": "feed"})).await;
    assert!(!is_error(&topics), "{}", text(&topics));
    assert_eq!(structured(&topics)["topics"][0]["name"], "");
    let described = call(&client, "stream_describe_topic", json!({"topic": ""})).await;
    assert!(!is_error(&described), "{}", text(&described));
    let described = structured(&described);
    assert_eq!(described["partitions"], json!([]));
    assert!(
        notes(&described).contains("live HTTP stream"),
        "{described:?}"
    );
    assert!(
        !Value::Object(described.clone())
            .to_string()
            .contains("tok-123"),
        "no secret in the description"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn sse_events_keep_their_names_ids_and_multiline_data() {
    let server = http_server(vec![
        ok("text/event-stream"),
        chunk(": a comment, then an event split over two chunks\n\nevent: order\nid: 1\nda"),
        chunk("ta: {\"amount\":\ndata: 5}\n\n"),
        chunk("data: plain text\n\nretry: 10\n\n"),
        chunk("id: 3\nevent: ping\ndata: [1,2]\n\n"),
        end(),
    ])
    .await;
    let sandbox = sandbox(&[("events", http_source(&server.url))]);
    let client = connect(Some(&sandbox.config())).await;

    let (output, _) = read(&client, json!({"max_messages": 10})).await;
    let got = messages(&output);
    assert_eq!(got.len(), 3, "{output:?}");
    assert_eq!(got[0]["key"], 1);
    assert_eq!(got[0]["headers"], json!({"event": "order"}));
    assert_eq!(got[0]["value"], json!({"amount": 5}));
    assert_eq!(got[1]["value"], "plain text");
    assert_eq!(got[1]["encoding"], "text");
    assert!(got[1].get("key").is_none() && got[1].get("headers").is_none());
    assert_eq!(got[2]["key"], 3);
    assert_eq!(got[2]["headers"], json!({"event": "ping"}));
    assert_eq!(got[2]["value"], json!([1, 2]));
    assert_eq!(output["stopped"], "stream_closed");
    assert_eq!(output["truncated"], false);
    assert!(
        server.requests()[0]
            .to_ascii_lowercase()
            .contains("accept: text/event-stream"),
        "{:?}",
        server.requests()
    );

    // A filter on the event name, through the headers.
    let (pings, _) = read(&client, json!({"filter": "headers.event == 'ping'"})).await;
    assert_eq!(messages(&pings).len(), 1);
    assert_eq!(
        (&pings["stats"]["scanned"], &pings["stats"]["matched"]),
        (&json!(3), &json!(1))
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_filter_counts_what_it_scanned_and_matched() {
    let server = http_server(vec![ndjson(), chunk(&lines(10, "")), end()]).await;
    let sandbox = sandbox(&[("feed", http_source(&server.url))]);
    let client = connect(Some(&sandbox.config())).await;

    let (output, _) = read(&client, json!({"filter": "value.n >= 7"})).await;
    assert_eq!(ns(&output), vec![7, 8, 9]);
    assert_eq!(output["stats"]["scanned"], 10);
    assert_eq!(output["stats"]["matched"], 3);
    assert_eq!(output["stopped"], "stream_closed");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn aggregate_windows_a_live_ndjson_stream_by_a_time_field() {
    let events = [
        (1_000, 10),
        (2_000, 20),
        (61_000, 5),
        (62_000, 7),
        (125_000, 1),
    ]
    .iter()
    .map(|(at, amount)| format!("{{\"at\":{},\"amount\":{amount}}}\n", T0 + at))
    .collect::<String>();
    let server = http_server(vec![ndjson(), chunk(&events), end()]).await;
    let sandbox = sandbox(&[("feed", http_source(&server.url))]);
    let client = connect(Some(&sandbox.config())).await;

    let result = call(
        &client,
        "stream_aggregate",
        json!({"window_ms": 60_000, "time_field": "at", "field": "amount"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let output = structured(&result);
    let rows = output["rows"].as_array().expect("rows");
    let summary: Vec<(String, i64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["window_start"].as_str().expect("start")[..19].to_owned(),
                r["count"].as_i64().expect("count"),
                r["sum"].as_f64().expect("sum"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("2025-01-01T00:00:00".to_owned(), 2, 30.0),
            ("2025-01-01T00:01:00".to_owned(), 2, 12.0),
            ("2025-01-01T00:02:00".to_owned(), 1, 1.0),
        ]
    );
    assert_eq!(output["stats"]["scanned"], 5);
    assert_eq!(output["stopped"], "stream_closed");
    assert_eq!(output["late"], 0);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_stalled_stream_is_an_error_when_silent_and_a_short_read_when_not() {
    let silent = http_server(vec![ndjson(), Step::Hang]).await;
    let two = http_server(vec![ndjson(), chunk(&lines(2, "")), Step::Hang]).await;
    let sandbox = sandbox(&[
        ("silent", http_source(&silent.url)),
        ("two", http_source(&two.url)),
    ]);
    let client = connect(Some(&sandbox.config())).await;

    let (error, elapsed) =
        read_error(&client, json!({"source": "silent", "max_wait_ms": 1000})).await;
    assert!(error.contains("sent no message"), "{error}");
    assert!(elapsed < PROMPTLY, "{elapsed:?}");

    let (output, elapsed) = read(
        &client,
        json!({"source": "two", "max_wait_ms": 1000, "max_messages": 10}),
    )
    .await;
    assert_eq!(ns(&output), vec![0, 1]);
    assert_eq!(output["stopped"], "max_wait");
    assert_eq!(output["truncated"], true);
    assert!(elapsed < PROMPTLY, "{elapsed:?}");

    // The same through aggregation: a silent stream is an error there too.
    let result = call(
        &client,
        "stream_aggregate",
        json!({"source": "silent", "window_ms": 1000, "max_wait_ms": 500}),
    )
    .await;
    assert!(is_error(&result), "{}", text(&result));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_connection_dropped_mid_message_keeps_the_complete_ones() {
    let partial = "{\"n\":2,\"tru";
    let server = http_server(vec![
        ndjson(),
        chunk(&lines(2, "")),
        // A chunk announced longer than what is sent, then the connection closes.
        Step::Write(format!("{:x}\r\n{partial}", partial.len() + 20).into_bytes()),
    ])
    .await;
    let dropped_at_once = http_server(vec![
        ndjson(),
        Step::Write(format!("{:x}\r\n{partial}", partial.len() + 20).into_bytes()),
    ])
    .await;
    let sandbox = sandbox(&[
        ("feed", http_source(&server.url)),
        ("broken", http_source(&dropped_at_once.url)),
    ]);
    let client = connect(Some(&sandbox.config())).await;

    let (output, _) = read(&client, json!({"source": "feed", "max_messages": 10})).await;
    assert_eq!(ns(&output), vec![0, 1]);
    assert_eq!(output["stopped"], "stream_closed");
    assert!(notes(&output).contains("partial message"), "{output:?}");

    let (error, _) = read_error(&client, json!({"source": "broken"})).await;
    assert!(error.contains("broke before a complete message"), "{error}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn http_errors_say_what_failed() {
    let body = "upstream overloaded, try later";
    let failing = http_server(vec![Step::Write(
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )])
    .await;
    // A port nobody listens on: bind one, then let it go.
    let (gone, address) = listener().await;
    drop(gone);
    let sandbox = sandbox(&[
        ("failing", http_source(&failing.url)),
        ("refused", http_source(&format!("http://{address}/x"))),
    ]);
    let client = connect(Some(&sandbox.config())).await;

    let (error, _) = read_error(&client, json!({"source": "failing"})).await;
    assert!(error.contains("503"), "{error}");
    assert!(error.contains("upstream overloaded"), "{error}");

    let (error, elapsed) = read_error(&client, json!({"source": "refused"})).await;
    assert!(error.contains("cannot open"), "{error}");
    assert!(error.contains("check that the server is up"), "{error}");
    assert!(elapsed < PROMPTLY, "{elapsed:?}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn paths_are_appended_to_the_url_only_when_allowed() {
    let server = http_server(vec![ndjson(), chunk(&lines(1, "")), end()]).await;
    let source = format!(
        "kind = \"http\"\nurl = \"{}/v1/\"\npaths = [\"orders\", \"prices/*\"]\nformat = \"ndjson\"\n",
        server.url
    );
    let sandbox = sandbox(&[("api", source)]);
    let client = connect(Some(&sandbox.config())).await;

    read(&client, json!({"topic": "orders"})).await;
    read(&client, json!({"topic": "prices/eur"})).await;
    let requests = server.requests();
    assert!(requests[0].starts_with("GET /v1/orders "), "{requests:?}");
    assert!(
        requests[1].starts_with("GET /v1/prices/eur "),
        "{requests:?}"
    );

    for topic in ["payments", "prices/../admin", "prices/x?admin=1"] {
        let result = call(&client, "stream_read", json!({"topic": topic})).await;
        assert!(is_error(&result), "{topic}: {}", text(&result));
        assert!(text(&result).contains("not"), "{}", text(&result));
    }
    let result = call(&client, "stream_read", json!({})).await;
    assert!(is_error(&result), "a source with paths needs a topic");
    assert_eq!(
        server.requests().len(),
        2,
        "refused paths are never requested"
    );

    let topics = structured(&call(&client, "stream_list_topics", json!({})).await);
    let names: Vec<&str> = topics["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["orders", "prices/*"]);
    client.cancel().await.expect("close");
}

/// How a WebSocket server's script ends.
#[derive(Clone, Copy, PartialEq)]
enum WsEnd {
    /// A close frame.
    Close,
    /// Nothing more, connection kept open.
    Hang,
    /// The TCP connection dropped, without a close frame.
    Drop,
}

/// A WebSocket server: records the Authorization header and the first message it receives
/// (when `wait_for_subscribe`), then sends `frames` and ends as `end` says.
// The handshake callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn ws_server(frames: Vec<Message>, wait_for_subscribe: bool, end: WsEnd) -> Server {
    let (listener, address) = listener().await;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let frames = frames.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let header_seen = Arc::clone(&seen);
                let callback = move |request: &Request, response: Response| {
                    let auth = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    header_seen
                        .lock()
                        .expect("lock")
                        .push(format!("{} auth={auth}", request.uri()));
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(socket, callback).await else {
                    return;
                };
                if wait_for_subscribe {
                    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => {
                            seen.lock()
                                .expect("lock")
                                .push(format!("subscribe {}", text.as_str()));
                        }
                        _ => return,
                    }
                }
                for frame in frames {
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                }
                match end {
                    WsEnd::Close => {}
                    WsEnd::Hang => {
                        tokio::time::sleep(Duration::from_secs(120)).await;
                        return;
                    }
                    WsEnd::Drop => return,
                }
                let _ = ws.close(None).await;
                // Let the close handshake finish before the socket goes.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
            });
        }
    });
    Server {
        url: format!("ws://{address}"),
        requests,
    }
}

#[tokio::test]
async fn websocket_reads_frames_after_sending_the_subscribe_message() {
    let frames = vec![
        Message::text(r#"{"p":1}"#),
        Message::Ping(vec![1, 2].into()),
        Message::text(r#"{"p":2}"#),
        Message::binary(vec![0xff_u8, 0x00]),
        Message::text("done"),
    ];
    let server = ws_server(frames, true, WsEnd::Close).await;
    let source = format!(
        "kind = \"websocket\"\nurl = \"{}/feed\"\nsubscribe = {{ op = \"subscribe\", channel = \"trades\" }}\nheaders = {{ Authorization = \"Bearer ${{DATAMCP_LIVE_TEST_TOKEN:-tok-123}}\" }}\n",
        server.url
    );
    let sandbox = sandbox(&[("ws", source)]);
    let client = connect(Some(&sandbox.config())).await;

    let (output, _) = read(&client, json!({"max_messages": 10})).await;
    let got = messages(&output);
    let values: Vec<&Value> = got.iter().map(|m| &m["value"]).collect();
    assert_eq!(
        values,
        vec![
            &json!({"p": 1}),
            &json!({"p": 2}),
            &json!("/wA="),
            &json!("done")
        ]
    );
    assert_eq!(got[2]["encoding"], "base64");
    assert_eq!(output["stopped"], "stream_closed");
    assert_eq!(output["truncated"], false);

    let requests = server.requests();
    assert_eq!(requests[0], "/feed auth=Bearer tok-123", "{requests:?}");
    let subscribe: Value = serde_json::from_str(
        requests[1]
            .strip_prefix("subscribe ")
            .expect("the server received the subscribe message"),
    )
    .expect("JSON");
    assert_eq!(subscribe, json!({"op": "subscribe", "channel": "trades"}));

    let (first, _) = read(&client, json!({"max_messages": 1})).await;
    assert_eq!(messages(&first).len(), 1);
    assert_eq!(first["stopped"], "max_messages");

    let sources = structured(&call(&client, "stream_list_sources", json!({})).await);
    let ws = &sources["sources"][0];
    assert_eq!(
        (&ws["kind"], &ws["replayable"]),
        (&json!("websocket"), &json!(false))
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_websocket_that_closes_before_any_message_is_an_error() {
    let server = ws_server(Vec::new(), false, WsEnd::Close).await;
    let source = format!("kind = \"websocket\"\nurl = \"{}\"\n", server.url);
    let sandbox = sandbox(&[("ws", source)]);
    let client = connect(Some(&sandbox.config())).await;

    let (error, elapsed) = read_error(&client, json!({"max_wait_ms": 3000})).await;
    assert!(error.contains("closed the stream"), "{error}");
    assert!(elapsed < PROMPTLY, "{elapsed:?}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_websocket_that_stalls_or_drops_returns_what_arrived() {
    let two = || vec![Message::text(r#"{"n":0}"#), Message::text(r#"{"n":1}"#)];
    let silent = ws_server(Vec::new(), false, WsEnd::Hang).await;
    let stalls = ws_server(two(), false, WsEnd::Hang).await;
    let drops = ws_server(two(), false, WsEnd::Drop).await;
    let sandbox = sandbox(&[
        (
            "silent",
            format!("kind = \"websocket\"\nurl = \"{}\"\n", silent.url),
        ),
        (
            "stalls",
            format!("kind = \"websocket\"\nurl = \"{}\"\n", stalls.url),
        ),
        (
            "drops",
            format!("kind = \"websocket\"\nurl = \"{}\"\n", drops.url),
        ),
    ]);
    let client = connect(Some(&sandbox.config())).await;

    let (error, elapsed) =
        read_error(&client, json!({"source": "silent", "max_wait_ms": 1000})).await;
    assert!(error.contains("sent no message"), "{error}");
    assert!(elapsed < PROMPTLY, "{elapsed:?}");

    let (output, elapsed) = read(&client, json!({"source": "stalls", "max_wait_ms": 1000})).await;
    assert_eq!(ns(&output), vec![0, 1]);
    assert_eq!(output["stopped"], "max_wait");
    assert!(elapsed < PROMPTLY, "{elapsed:?}");

    let (output, _) = read(&client, json!({"source": "drops", "max_wait_ms": 5000})).await;
    assert_eq!(ns(&output), vec![0, 1]);
    assert_eq!(output["stopped"], "stream_closed");
    assert!(notes(&output).contains("broke"), "{output:?}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn an_oversize_line_is_skipped_with_a_note() {
    let big = format!("{{\"big\":\"{}\"}}\n", "x".repeat(1_200_000));
    let server = http_server(vec![
        ndjson(),
        chunk("{\"n\":0}\n"),
        chunk(&big),
        chunk("{\"n\":1}\n"),
        end(),
    ])
    .await;
    let sandbox = sandbox(&[("feed", http_source(&server.url))]);
    let client = connect(Some(&sandbox.config())).await;

    let (output, _) = read(&client, json!({"max_bytes": 1_000_000})).await;
    assert_eq!(ns(&output), vec![0, 1]);
    assert_eq!(output["stats"]["scanned"], 2);
    assert!(notes(&output).contains("skipped"), "{output:?}");
    assert_eq!(output["stopped"], "stream_closed");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn https_and_wss_need_the_tls_feature() {
    if cfg!(feature = "tls") {
        return;
    }
    for (kind, url) in [
        ("http", "https://127.0.0.1:9/events"),
        ("websocket", "wss://127.0.0.1:9/feed"),
    ] {
        let sandbox = sandbox(&[("secure", format!("kind = \"{kind}\"\nurl = \"{url}\"\n"))]);
        let output = std::process::Command::new(BIN)
            .args(["tools", "--config"])
            .arg(sandbox.config())
            .env("DATAMCP_DATA_DIR", demo_data_dir())
            .output()
            .expect("run datamcp tools");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url} was accepted");
        assert!(stderr.contains("--features tls"), "{stderr}");
        assert!(stderr.contains("streams.secure.url"), "{stderr}");
    }
}

#[tokio::test]
async fn cancelling_a_read_closes_the_connection_to_the_stream() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::service::PeerRequestOptions;

    // A stream that sends one line, then nothing, and notes when the reader hangs up.
    let (listener, address) = listener().await;
    let closed = Arc::new(Mutex::new(None::<Instant>));
    let seen = Arc::clone(&closed);
    tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            read_head(&mut socket).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(b"8\r\n{\"n\":1}\n\r\n").await;
            let mut buffer = [0_u8; 64];
            while let Ok(n) = socket.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
            }
            *seen.lock().expect("lock") = Some(Instant::now());
        }
    });
    let sandbox = sandbox(&[("feed", http_source(&format!("http://{address}")))]);
    let client = connect(Some(&sandbox.config())).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("stream_read").with_arguments(arguments(
            json!({"max_messages": 100, "max_wait_ms": 60000}),
        )),
    ));
    let handle = client
        .send_cancellable_request(
            request,
            PeerRequestOptions::with_timeout(Duration::from_millis(800)),
        )
        .await
        .expect("send");
    // The client gives up after 800 ms and sends notifications/cancelled.
    assert!(handle.await_response().await.is_err());
    let cancelled = Instant::now();
    assert!(
        eventually(10, || {
            let closed = Arc::clone(&closed);
            async move { closed.lock().expect("lock").is_some() }
        })
        .await,
        "the stream was still open 10 s after the call was cancelled"
    );
    let closed_at = closed.lock().expect("lock").expect("closed");
    assert!(closed_at.saturating_duration_since(cancelled) < Duration::from_secs(5));
    // The server keeps serving.
    let listed = call(&client, "stream_list_sources", json!({})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    client.cancel().await.expect("close");
}
