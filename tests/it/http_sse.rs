//! The legacy HTTP+SSE transport, through a small client written here from the 2024-11-05
//! spec: `GET /sse`, the `endpoint` event, `POST`s to it, answers on the stream.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::*;

/// One SSE session, seen from the client.
pub struct SseClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Where to post, from the `endpoint` event.
    pub endpoint: String,
    messages: mpsc::UnboundedReceiver<Option<Value>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SseClient {
    /// Dropping the client closes its stream, as a client that goes away does.
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

impl SseClient {
    /// Opens `GET /sse` and reads the `endpoint` event.
    pub async fn open(base: &str, token: Option<&str>) -> SseClient {
        let http = reqwest::Client::new();
        let mut request = http
            .get(format!("{base}/sse"))
            .header("accept", "text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET /sse");
        assert_eq!(response.status(), 200, "GET /sse");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<(String, String)>();
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let (mut event, mut data) = ("message".to_owned(), String::new());
                    for line in frame.lines() {
                        if let Some(value) = line.strip_prefix("event:") {
                            event = value.trim().to_owned();
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim_start());
                        }
                    }
                    if !data.is_empty() {
                        let _ = events_tx.send((event, data));
                    }
                }
            }
        });
        let (event, endpoint) = tokio::time::timeout(Duration::from_secs(10), events_rx.recv())
            .await
            .expect("endpoint event in time")
            .expect("stream open");
        assert_eq!(event, "endpoint");
        let decoder = tokio::spawn(async move {
            while let Some((event, data)) = events_rx.recv().await {
                assert_eq!(event, "message");
                let _ = messages_tx.send(Some(serde_json::from_str(&data).expect("JSON event")));
            }
            let _ = messages_tx.send(None);
        });
        SseClient {
            http,
            base: base.to_owned(),
            token: token.map(str::to_owned),
            endpoint,
            messages,
            readers: vec![reader, decoder],
        }
    }

    /// Posts raw bytes to the session's endpoint.
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{}", self.base, self.endpoint))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("POST /message")
    }

    /// Posts one message; the server must accept it with 202.
    pub async fn post(&self, message: Value) {
        let response = self.post_raw(message.to_string()).await;
        assert_eq!(
            response.status(),
            202,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// The next message on the stream; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(Duration::from_secs(20), self.messages.recv())
            .await
            .expect("a message in time")
            .flatten()
    }

    /// Sends a request and returns its response, with the notifications that came before it.
    pub async fn request(&mut self, id: u64, method: &str, params: Value) -> (Value, Vec<Value>) {
        self.post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let mut notifications = Vec::new();
        loop {
            let message = self.next().await.expect("stream open");
            if message.get("id") == Some(&json!(id)) {
                return (message, notifications);
            }
            notifications.push(message);
        }
    }

    /// `initialize` with protocol 2024-11-05, then `notifications/initialized`.
    pub async fn initialize(&mut self) -> Value {
        let (response, _) = self
            .request(
                0,
                "initialize",
                json!({"protocolVersion": "2024-11-05", "capabilities": {},
                       "clientInfo": {"name": "sse-test", "version": "0"}}),
            )
            .await;
        self.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        response
    }

    /// `tools/call`, returning the result object.
    pub async fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        let (response, _) = self
            .request(
                id,
                "tools/call",
                json!({"name": tool, "arguments": arguments}),
            )
            .await;
        response["result"].clone()
    }
}

const SESSIONS: &str = "datamcp_sessions_open{transport=\"sse\"}";

#[tokio::test]
async fn an_sse_session_initializes_lists_and_calls() {
    let server = HttpServer::start(None, &[], &[]);
    let mut client = SseClient::open(&server.base, None).await;
    assert!(client.endpoint.starts_with("/message?sessionId="));
    let init = client.initialize().await;
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(init["result"]["serverInfo"]["name"], "datamcp");

    let (tools, _) = client.request(1, "tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"sql_query"), "{names:?}");
    let result = client
        .call(
            2,
            "sql_query",
            json!({"sql": "SELECT count(*) AS n FROM customers"}),
        )
        .await;
    assert_eq!(result["structuredContent"]["rows"], json!([[2500]]));
    assert_eq!(server.metric(SESSIONS, None).await, 1.0);

    drop(client);
    assert!(
        eventually(5, || async { server.metric(SESSIONS, None).await == 0.0 }).await,
        "the session outlived its stream"
    );
}

#[tokio::test]
async fn two_sse_sessions_never_see_each_others_responses() {
    let server = HttpServer::start(None, &[], &[]);
    let mut alice = SseClient::open(&server.base, None).await;
    let mut bob = SseClient::open(&server.base, None).await;
    assert_ne!(alice.endpoint, bob.endpoint);
    alice.initialize().await;
    bob.initialize().await;
    // The same request ids in both sessions, posted interleaved.
    for id in 1..=5u64 {
        alice
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "sql_query", "arguments": {"sql": format!("SELECT 'alice-{id}' AS who")}}}))
            .await;
        bob.post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "sql_query", "arguments": {"sql": format!("SELECT 'bob-{id}' AS who")}}}))
            .await;
    }
    for (client, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let mut seen = Vec::new();
        for _ in 1..=5 {
            let message = client.next().await.expect("response");
            let who = message["result"]["structuredContent"]["rows"][0][0]
                .as_str()
                .expect("row")
                .to_owned();
            assert_eq!(
                who,
                format!("{name}-{}", message["id"]),
                "wrong answer on {name}'s stream"
            );
            seen.push(who);
        }
        seen.sort();
        assert_eq!(seen.len(), 5);
    }
    // Nothing else arrives on either stream.
    for client in [&mut alice, &mut bob] {
        let extra = tokio::time::timeout(Duration::from_millis(300), client.messages.recv()).await;
        assert!(extra.is_err(), "unexpected message: {extra:?}");
    }
}

#[tokio::test]
async fn progress_and_cancellation_work_over_sse() {
    let sandbox = Sandbox::new("[tools.sql_query]\ntimeout_ms = 120000\ncache_ttl_ms = 0\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let mut client = SseClient::open(&server.base, None).await;
    client.initialize().await;

    let (response, notifications) = client
        .request(
            1,
            "tools/call",
            json!({"name": "sql_profile", "arguments": {"table": "orders", "columns": ["status", "currency"]},
                   "_meta": {"progressToken": "p-1"}}),
        )
        .await;
    assert_eq!(response["result"]["isError"], false);
    let progress: Vec<&Value> = notifications
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 4, "{notifications:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-1")
    );

    client
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "sql_query", "arguments": {"sql":
            ENDLESS}}}))
        .await;
    assert!(
        server.calls_in_flight_become(1.0).await,
        "the call never started"
    );
    client
        .post(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 2, "reason": "user gave up"}}),
        )
        .await;
    assert!(
        server.calls_in_flight_become(0.0).await,
        "the cancelled call kept running"
    );
    let result = client
        .call(3, "sql_query", json!({"sql": "SELECT 3 AS n"}))
        .await;
    assert_eq!(result["structuredContent"]["rows"], json!([[3]]));
}

#[tokio::test]
async fn bad_posts_get_clear_errors_and_the_session_goes_on() {
    let server = HttpServer::start(None, &[], &[]);
    let mut client = SseClient::open(&server.base, None).await;
    client.initialize().await;

    let garbage = client
        .post_raw("{\"jsonrpc\": \"2.0\", \"id\": 4, \"method\": ")
        .await;
    assert_eq!(garbage.status(), 400);
    let body: Value = garbage.json().await.expect("JSON-RPC error body");
    assert_eq!(body["error"]["code"], -32700);

    let not_rpc = client.post_raw("{\"id\": 5, \"hello\": true}").await;
    assert_eq!(not_rpc.status(), 400);
    let body: Value = not_rpc.json().await.expect("JSON-RPC error body");
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(body["id"], 5);

    let http = reqwest::Client::new();
    let unknown = http
        .post(server.url("/message?sessionId=0123456789abcdef"))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.expect("text").contains("GET /sse"));
    let missing = http
        .post(server.url("/message"))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(missing.status(), 400);

    let result = client
        .call(6, "sql_query", json!({"sql": "SELECT 6 AS n"}))
        .await;
    assert_eq!(result["structuredContent"]["rows"], json!([[6]]));
}

#[tokio::test]
async fn idle_sessions_expire_on_both_transports() {
    let sandbox = Sandbox::new("[server]\nsession_idle_timeout_secs = 1\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let mut sse = SseClient::open(&server.base, None).await;
    sse.initialize().await;
    let streamable = connect_http(&server.url("/mcp"), None).await;
    assert_eq!(server.metric(SESSIONS, None).await, 1.0);
    assert_eq!(
        server
            .metric("datamcp_sessions_open{transport=\"streamable_http\"}", None)
            .await,
        1.0
    );
    // The SSE stream ends; both sessions leave the books.
    assert_eq!(sse.next().await, None);
    assert!(
        eventually(10, || async {
            server.metric(SESSIONS, None).await == 0.0
                && server
                    .metric("datamcp_sessions_open{transport=\"streamable_http\"}", None)
                    .await
                    == 0.0
        })
        .await,
        "idle sessions were not closed"
    );
    drop(streamable);
}
