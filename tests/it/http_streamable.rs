//! Streamable HTTP, end to end with rmcp's own client: the session lifecycle, progress,
//! cancellation, the stateless mode and the 2026-07-28 protocol beside the session-based ones.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ProgressNotificationParam,
    ProtocolVersion,
};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::{ClientHandler, RoleClient};
use serde_json::json;

use crate::support::*;

const SESSIONS: &str = "datamcp_sessions_open{transport=\"streamable_http\"}";

#[tokio::test]
async fn a_session_initializes_lists_calls_and_ends_with_delete() {
    let server = HttpServer::start(None, &[], &[]);
    let client = connect_http(&server.url("/mcp"), None).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("datamcp")
    );

    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "sql_query"));
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 40 + 2 AS answer"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["rows"], json!([[42]]));
    assert_eq!(server.metric(SESSIONS, None).await, 1.0);

    // Closing the client sends DELETE with the session id; the server forgets the session.
    client.cancel().await.expect("close");
    assert!(
        eventually(5, || async { server.metric(SESSIONS, None).await == 0.0 }).await,
        "the session was not removed after DELETE"
    );
    assert!(server.logs().contains("tool=\"sql_query\""));
}

#[tokio::test]
async fn a_deleted_session_is_gone_and_an_unknown_one_gets_404() {
    let server = HttpServer::start(None, &[], &[]);
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let response = http
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .expect("session id")
        .to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let post = |session: &str| {
        http.post(server.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18")
            .json(&list)
            .send()
    };
    let deleted = http
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("DELETE");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert_eq!(post(&session).await.expect("post").status(), 404);
    assert_eq!(post("no-such-session").await.expect("post").status(), 404);
}

/// A client that keeps every progress notification it receives.
#[derive(Clone, Default)]
struct ProgressLog(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for ProgressLog {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0.lock().expect("log").push(params);
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        client_info(ProtocolVersion::V_2025_11_25)
    }
}

#[tokio::test]
async fn progress_notifications_reach_the_caller() {
    let server = HttpServer::start(None, &[], &[]);
    let log = ProgressLog::default();
    let client = connect_http_with(log.clone(), &server.url("/mcp"), None, None).await;
    let params = CallToolRequestParams::new("sql_profile").with_arguments(
        json!({"table": "orders", "columns": ["status", "currency", "customer_id"]})
            .as_object()
            .cloned()
            .expect("object"),
    );
    let result = client.call_tool(params).await.expect("tools/call");
    assert!(!result.is_error.unwrap_or(false));
    let seen = log.0.lock().expect("log").clone();
    assert_eq!(seen.len(), 5, "one notification per step: {seen:?}");
    assert!(seen.iter().all(|p| p.total == Some(4.0)));
    assert!(seen.windows(2).all(|w| w[0].progress <= w[1].progress));
    assert!(
        seen.iter()
            .any(|p| p.message.as_deref() == Some("profiled column status"))
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn cancelling_a_request_stops_the_call_on_the_server() {
    let sandbox = Sandbox::new("[tools.sql_query]\ntimeout_ms = 120000\ncache_ttl_ms = 0\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let client = connect_http(&server.url("/mcp"), None).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("sql_query").with_arguments(
            json!({"sql": ENDLESS})
                .as_object()
                .cloned()
                .expect("object"),
        ),
    ));
    let handle = client
        .send_cancellable_request(
            request,
            PeerRequestOptions::with_timeout(Duration::from_millis(800)),
        )
        .await
        .expect("send");
    assert!(
        server.calls_in_flight_become(1.0).await,
        "the call never started"
    );
    // The client gives up after 800 ms and sends notifications/cancelled.
    assert!(handle.await_response().await.is_err());
    assert!(
        server.calls_in_flight_become(0.0).await,
        "the cancelled call kept running"
    );
    // The session is still usable.
    let result = call(&client, "sql_query", json!({"sql": "SELECT 1"})).await;
    assert!(!is_error(&result));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_stateless_protocol_is_served_beside_sessions() {
    let server = HttpServer::start(None, &[], &[]);
    let client = connect_http_with(
        client_info(ProtocolVersion::V_2026_07_28),
        &server.url("/mcp"),
        None,
        Some(ProtocolVersion::V_2026_07_28),
    )
    .await;
    let result = call(&client, "sql_query", json!({"sql": "SELECT 7 AS n"})).await;
    assert_eq!(structured(&result)["rows"], json!([[7]]));
    assert_eq!(server.metric(SESSIONS, None).await, 0.0);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn stateless_mode_keeps_no_sessions_and_answers_in_json() {
    let server = HttpServer::start(None, &["--stateless"], &[]);
    let client = connect_http(&server.url("/mcp"), None).await;
    let result = call(&client, "sql_query", json!({"sql": "SELECT 1 AS one"})).await;
    assert_eq!(structured(&result)["rows"], json!([[1]]));
    assert_eq!(server.metric(SESSIONS, None).await, 0.0);
    client.cancel().await.expect("close");

    // Any replica can answer any request: no session id is needed.
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "sql_query", "arguments": {"sql": "SELECT 2 AS two"}}}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    let body: serde_json::Value = response.json().await.expect("JSON response");
    assert_eq!(body["result"]["structuredContent"]["rows"], json!([[2]]));
}

#[tokio::test]
async fn a_session_call_without_progress_is_answered_as_plain_json_and_one_with_progress_streams() {
    let server = HttpServer::start(None, &[], &[]);
    let url = server.url("/mcp");
    let http = reqwest::Client::new();
    let session = raw_session(&http, &url).await;
    let post = |message: serde_json::Value| {
        http.post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .json(&message)
            .send()
    };
    let plain = post(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "sql_query", "arguments": {"sql": "SELECT 7 AS n"}}}))
    .await
    .expect("call");
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["content-type"], "application/json");
    let body: serde_json::Value = plain.json().await.expect("one JSON-RPC answer");
    assert_eq!(body["id"], 7);
    assert_eq!(body["result"]["structuredContent"]["rows"], json!([[7]]));

    // sql_profile reports progress: the notifications come first, so the answer streams.
    let streamed = post(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
        "params": {"name": "sql_profile", "arguments": {"table": "orders", "columns": ["status"]},
                   "_meta": {"progressToken": "p8"}}}))
    .await
    .expect("call");
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let text = streamed.text().await.expect("stream");
    let progress = text
        .find("notifications/progress")
        .expect("progress on the stream");
    let answer = text.find("\"id\":8").expect("the answer on the stream");
    assert!(progress < answer, "{text}");

    // A client that accepts only SSE keeps getting SSE.
    let sse_only = http
        .post(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .expect("call");
    let status = sse_only.status();
    let kind = sse_only.headers().get("content-type").cloned();
    assert!(
        status != 200 || kind.as_ref().is_some_and(|k| k == "text/event-stream"),
        "{status} {kind:?}"
    );
}
