//! Garbage on stdin never stops the server: it answers or drops each bad line and serves the next.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::*;

#[tokio::test]
async fn garbage_on_stdin_is_answered_or_dropped_and_serving_goes_on() {
    let mut child = serve_command(None)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    let mut input = Vec::new();
    input.extend_from_slice(b"this is not json\n");
    input.extend_from_slice(b"{\"jsonrpc\": \"2.0\", \"id\": 7}\n");
    input.extend_from_slice(b"{\"jsonrpc\": \"2.0\", \"id\": 8, \"method\": 5}\n");
    let mut huge =
        b"{\"jsonrpc\": \"2.0\", \"id\": 9, \"method\": \"ping\", \"params\": {\"pad\": \""
            .to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    huge.extend_from_slice(b"\"\n"); // unterminated object: invalid JSON, 10 MB long
    input.extend_from_slice(&huge);
    input.extend_from_slice(format!("{initialize}\n").as_bytes());
    input.extend_from_slice(b"{\"jsonrpc\": \"2.0\", \"method\": \"notifications/initialized\"}\n");
    input.extend_from_slice(b"{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": \"tools/list\"}\n");
    input.extend_from_slice(
        format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "sql_query", "arguments": {"sql": "SELECT 6 * 7"}}})
        )
        .as_bytes(),
    );
    stdin.write_all(&input).await.expect("write");
    stdin.flush().await.expect("flush");

    let mut answered = std::collections::BTreeMap::new();
    let read = async {
        while let Some(line) = stdout.next_line().await.expect("read stdout") {
            let message: Value = serde_json::from_str(&line).expect("stdout carries only JSON-RPC");
            if let Some(id) = message.get("id").and_then(Value::as_i64) {
                answered.insert(id, message);
            }
            if answered.contains_key(&3) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("answers arrive");

    assert!(
        answered[&1]["result"]["protocolVersion"].is_string(),
        "initialize answered"
    );
    assert!(
        answered[&2]["result"]["tools"].is_array(),
        "tools/list answered"
    );
    assert_eq!(
        answered[&3]["result"]["structuredContent"]["rows"],
        json!([[42]])
    );
    for id in [7, 8] {
        assert_eq!(
            answered[&id]["error"]["code"], -32600,
            "invalid request {id} gets an error reply"
        );
    }

    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let mut logs = String::new();
    let _ = stderr.read_to_string(&mut logs).await;
    assert!(
        logs.contains("dropped a message that is not JSON"),
        "{logs}"
    );
    assert!(
        logs.contains("dropped a message that is not valid JSON-RPC"),
        "{logs}"
    );
    assert!(
        !logs.contains("xxxxxxxx"),
        "logs never repeat what was sent"
    );
}
