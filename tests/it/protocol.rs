//! JSON-RPC details a client relies on: a reused request id is refused while the first request
//! still gets its answer, and params that do not fit their method get -32602, over stdio and
//! Streamable HTTP alike.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::*;

/// A query that takes a moment (about a second), then answers.
const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) AS n FROM c";

fn call_message(id: u64, sql: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "sql_query", "arguments": {"sql": sql}}})
}

#[tokio::test]
async fn over_stdio_a_reused_id_is_refused_and_the_first_request_still_answered() {
    let sandbox = Sandbox::new("[tools.sql_query]\ncache_ttl_ms = 0\ntimeout_ms = 60000\n");
    let mut child = serve_command(Some(&sandbox.config()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut send = async |message: Value| {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .expect("write");
        stdin.flush().await.expect("flush");
    };
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}))
    .await;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    send(call_message(7, SLOW)).await;
    send(call_message(7, "SELECT 1 AS one")).await;
    // Params that do not fit the method: not an object, and a call without a name.
    send(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": "sql_query"})).await;
    send(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"arguments": {}}}))
        .await;

    let mut answers: Vec<Value> = Vec::new();
    let read = async {
        while let Some(line) = stdout.next_line().await.expect("read stdout") {
            let message: Value = serde_json::from_str(&line).expect("JSON-RPC");
            let done = message["id"] == 7 && message.get("result").is_some();
            answers.push(message);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the first request was answered");
    let for_id = |id: i64| -> Vec<&Value> { answers.iter().filter(|a| a["id"] == id).collect() };
    let sevens = for_id(7);
    assert_eq!(sevens.len(), 2, "{answers:?}");
    assert_eq!(sevens[0]["error"]["code"], -32600, "{answers:?}");
    assert!(
        sevens[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("id already in use"))
    );
    assert_eq!(
        sevens[1]["result"]["structuredContent"]["rows"],
        json!([[2000000]]),
        "the first request's own answer"
    );
    for id in [8, 9] {
        let answer = for_id(id);
        assert_eq!(answer.len(), 1, "{answers:?}");
        assert_eq!(answer[0]["error"]["code"], -32602, "{answers:?}");
    }
    // Once answered, the id is free again.
    send(call_message(7, "SELECT 2 AS two")).await;
    let next = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
        .await
        .expect("answer in time")
        .expect("read")
        .expect("a line");
    let next: Value = serde_json::from_str(&next).expect("JSON");
    assert_eq!(next["result"]["structuredContent"]["rows"], json!([[2]]));
}

async fn post(server: &HttpServer, session: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.expect("POST /mcp")
}

/// The JSON-RPC messages of an SSE or JSON answer.
async fn messages(response: reqwest::Response) -> Vec<Value> {
    let text = response.text().await.expect("body");
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return vec![value];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

#[tokio::test]
async fn over_streamable_http_a_reused_id_is_refused_and_bad_params_get_32602() {
    let sandbox = Sandbox::new("[tools.sql_query]\ncache_ttl_ms = 0\ntimeout_ms = 60000\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    let response = post(&server, None, &initialize).await;
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let _ = messages(response).await;
    let initialized = post(
        &server,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(initialized.status(), 202);

    let first = tokio::spawn({
        let url = server.url("/mcp");
        let session = session.clone();
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .header("mcp-session-id", session)
                .json(&call_message(7, SLOW))
                .send()
                .await
                .expect("POST");
            messages(response).await
        }
    });
    assert!(
        server.calls_in_flight_become(1.0).await,
        "the first call never started"
    );
    let again = post(&server, Some(&session), &call_message(7, "SELECT 1")).await;
    assert_eq!(again.status(), 400);
    let refusal = messages(again).await;
    assert_eq!(refusal[0]["id"], 7);
    assert_eq!(refusal[0]["error"]["code"], -32600);
    let answers = tokio::time::timeout(Duration::from_secs(60), first)
        .await
        .expect("in time")
        .expect("task");
    let answer = answers
        .iter()
        .find(|m| m["id"] == 7)
        .expect("the first request's answer");
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([[2000000]])
    );
    // Answered, the id may be used again.
    let reused = post(&server, Some(&session), &call_message(7, "SELECT 3 AS n")).await;
    assert_eq!(reused.status(), 200);
    let reused = messages(reused).await;
    assert!(
        reused
            .iter()
            .any(|m| m["result"]["structuredContent"]["rows"] == json!([[3]]))
    );

    for bad in [
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": "sql_query"}),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"arguments": {}}}),
    ] {
        // Refused by the gate (400) when the message does not parse, answered by the session
        // when it parses but does not fit: the same JSON-RPC error either way.
        let response = post(&server, Some(&session), &bad).await;
        let answer = messages(response).await;
        assert_eq!(answer[0]["error"]["code"], -32602, "{answer:?}");
        assert_eq!(answer[0]["id"], bad["id"]);
    }
}

#[tokio::test]
async fn over_sse_a_reused_id_is_refused_and_the_first_request_still_answered() {
    let sandbox = Sandbox::new("[tools.sql_query]\ncache_ttl_ms = 0\ntimeout_ms = 60000\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let mut sse = crate::http_sse::SseClient::open(&server.base, None).await;
    sse.initialize().await;
    sse.post(call_message(7, SLOW)).await;
    assert!(
        server.calls_in_flight_become(1.0).await,
        "the first call never started"
    );
    sse.post(call_message(7, "SELECT 1")).await;
    let refusal = sse.next().await.expect("an answer");
    assert_eq!(refusal["id"], 7);
    assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
    let answer = sse.next().await.expect("the first answer");
    assert_eq!(answer["id"], 7);
    assert_eq!(
        answer["result"]["structuredContent"]["rows"],
        json!([[2000000]])
    );
}
