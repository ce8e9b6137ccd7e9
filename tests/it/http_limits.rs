//! The remote endpoint under abuse: slow and half-open connections, more connections than
//! allowed, oversized bodies, clients that abandon sessions by the thousand, and an SSE client
//! that stops reading. Every test drives the real binary over loopback.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn authority(server: &HttpServer) -> String {
    server
        .base
        .strip_prefix("http://")
        .expect("http base")
        .to_owned()
}

/// Reads until the server closes the connection (`true`) or `limit` passes (`false`).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

const OPEN: &str = "datamcp_http_connections_open";

#[tokio::test]
async fn slow_and_half_open_connections_time_out_without_starving_anyone() {
    let sandbox = Sandbox::new(
        "[server]\nheader_read_timeout_secs = 3\nbody_read_timeout_secs = 3\nmax_connections = 400\n",
    );
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let address = authority(&server);
    let mut slow = Vec::new();
    for n in 0..300 {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        let start: &[u8] = match n % 3 {
            // Connected, silent.
            0 => b"",
            // Half a request head.
            1 => b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
            // A whole head and a tenth of the body it announces.
            _ => b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/list\"",
        };
        stream.write_all(start).await.expect("write");
        slow.push(stream);
    }
    assert!(
        eventually(5, || async { server.metric(OPEN, None).await >= 300.0 }).await,
        "the slow connections were not all open at once"
    );

    // Meanwhile everyone else is served at once.
    let started = Instant::now();
    let health = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("GET /healthz while 300 connections dawdle");
    assert_eq!(health.status(), 200);
    let client = connect_http(&server.url("/mcp"), None).await;
    let result = call(&client, "sql_query", json!({"sql": "SELECT 1 AS one"})).await;
    assert_eq!(structured(&result)["rows"], json!([[1]]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Then the server hangs up on every one of them: 3 s for the head, 3 s for the body.
    let mut ended = 0;
    for stream in &mut slow {
        if closed_within(stream, Duration::from_secs(8)).await {
            ended += 1;
        }
    }
    assert_eq!(ended, 300, "slow connections left open past the timeouts");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    let sandbox = Sandbox::new("[server]\nmax_connections = 50\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let address = authority(&server);
    let mut held = Vec::new();
    for _ in 0..80 {
        held.push(TcpStream::connect(&address).await.expect("connect"));
    }
    let mut closed = 0;
    for stream in &mut held {
        if closed_within(stream, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 30,
        "only {closed} of 80 connections over a limit of 50 were closed"
    );
    drop(held);
    // Freed slots are usable again.
    assert!(
        eventually(5, || async {
            reqwest::Client::new()
                .get(server.url("/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await
    );
    assert!(
        server
            .metric("datamcp_http_connections_refused_total", None)
            .await
            >= 30.0
    );
}

#[tokio::test]
async fn an_oversized_body_gets_a_readable_413() {
    let server = HttpServer::start(None, &[], &[]);
    let body = format!(
        "{{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/call\", \"params\": {{\"name\": \"sql_query\", \"arguments\": {{\"sql\": \"SELECT '{}'\"}}}}}}",
        "x".repeat(20 * 1024 * 1024)
    );
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .post(server.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.clone())
            .send()
            .await
            .expect("the 413 is read, not a connection reset");
        assert_eq!(response.status(), 413);
        assert!(
            response
                .text()
                .await
                .expect("text")
                .contains("larger than the server's limit")
        );
    }
    // Without Content-Length too.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..20).map(|_| Ok("x".repeat(1024 * 1024))).collect();
    let streamed = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("the 413 is read");
    assert_eq!(streamed.status(), 413);
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "abandoner", "version": "0"}}})
}

/// Opens a session with a bare `initialize` and walks away: no `initialized`, no `DELETE`.
async fn abandon_one(http: &reqwest::Client, url: &str) -> u16 {
    http.post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn abandoned_sessions_make_room_for_new_ones_and_a_working_client_keeps_working() {
    let sandbox = Sandbox::new("[server]\nmax_sessions = 100\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let url = server.url("/mcp");
    // A well-behaved client: rmcp's, which starts a new session when its own is gone (404),
    // as the protocol prescribes.
    let client = connect_http(&url, None).await;
    let working = async {
        let mut calls = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let n = calls % 1000;
            let result = client
                .call_tool(
                    rmcp::model::CallToolRequestParams::new("sql_query").with_arguments(
                        json!({"sql": format!("SELECT {n} AS n")})
                            .as_object()
                            .cloned()
                            .expect("object"),
                    ),
                )
                .await
                .unwrap_or_else(|error| {
                    panic!("call {calls} of the working client failed: {error}")
                });
            assert_eq!(structured(&result)["rows"], json!([[n]]));
            calls += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if STOP.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
        }
        calls
    };
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    static ABANDONED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static BARE_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // A second well-behaved client, bare HTTP without a standing stream, so that its session is
    // idle between calls and may be evicted: on 404 it starts a new session and repeats the
    // call, as the protocol prescribes.
    let bare = async {
        let http = reqwest::Client::new();
        let open = || async {
            let response = http
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .json(&initialize())
                .send()
                .await
                .expect("initialize");
            assert_eq!(response.status(), 200, "the bare client's initialize");
            let session = response.headers()["mcp-session-id"]
                .to_str()
                .expect("id")
                .to_owned();
            let _ = response.text().await;
            session
        };
        let (mut session, mut calls, mut reopened) = (open().await, 0u64, 0u64);
        while !STOP.load(std::sync::atomic::Ordering::Relaxed) {
            calls += 1;
            let message = json!({"jsonrpc": "2.0", "id": calls, "method": "tools/call",
                "params": {"name": "sql_query", "arguments": {"sql": format!("SELECT {calls} AS n")}}});
            let mut attempt = 0;
            let answer = loop {
                attempt += 1;
                let response = http
                    .post(&url)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-session-id", &session)
                    .header("mcp-protocol-version", "2025-06-18")
                    .json(&message)
                    .send()
                    .await
                    .expect("call");
                if response.status() == 404 && attempt == 1 {
                    reopened += 1;
                    session = open().await;
                    continue;
                }
                assert_eq!(response.status(), 200, "call {calls}, attempt {attempt}");
                break response.text().await.expect("answer");
            };
            assert!(answer.contains(&format!("[[{calls}]]")), "{answer}");
            BARE_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Idle until 150 newer sessions arrived: more than the limit, so this session is
            // now the least recently used and goes first.
            let mark = ABANDONED.load(std::sync::atomic::Ordering::Relaxed);
            while ABANDONED.load(std::sync::atomic::Ordering::Relaxed) < mark + 150
                && !STOP.load(std::sync::atomic::Ordering::Relaxed)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        (calls, reopened)
    };
    let abandoning = async {
        let http = reqwest::Client::new();
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        // At least 40 waves, and on until the bare client (one call per 150 abandoned
        // sessions) has made a dozen calls, however fast the sessions come.
        let mut waves = 0;
        while waves < 40
            || (BARE_CALLS.load(std::sync::atomic::Ordering::Relaxed) < 12 && waves < 200)
        {
            let wave = futures::future::join_all((0..50).map(|_| abandon_one(&http, &url))).await;
            for status in wave {
                *statuses.entry(status).or_default() += 1;
            }
            ABANDONED.fetch_add(50, std::sync::atomic::Ordering::Relaxed);
            waves += 1;
        }
        STOP.store(true, std::sync::atomic::Ordering::Relaxed);
        (statuses, waves * 50)
    };
    let (calls, (statuses, abandoned), (bare_calls, reopened)) =
        tokio::join!(working, abandoning, bare);
    eprintln!(
        "working client: {calls} calls; bare client: {bare_calls} calls, {reopened} new sessions after a 404"
    );
    assert!(
        bare_calls > 10,
        "the bare client made only {bare_calls} calls"
    );
    assert_eq!(
        statuses,
        std::collections::BTreeMap::from([(200, abandoned)]),
        "every new session was let in"
    );
    assert!(calls > 10, "the working client made only {calls} calls");
    let open = server
        .metric("datamcp_sessions_open{transport=\"streamable_http\"}", None)
        .await;
    assert!(open <= 100.0, "{open} sessions open over a limit of 100");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn an_sse_client_that_stops_reading_is_disconnected_and_memory_stays_bounded() {
    let sandbox = Sandbox::new("[tools.sql_query]\ncache_ttl_ms = 0\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    // Warm up, so the baseline includes the lazily built state.
    let warm = connect_http(&server.url("/mcp"), None).await;
    call(
        &warm,
        "sql_query",
        json!({"sql": "SELECT hex(zeroblob(1000)) AS x"}),
    )
    .await;
    warm.cancel().await.expect("close");
    let before = server.rss_kib();

    let mut stream = TcpStream::connect(authority(&server))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .expect("write");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let endpoint = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("endpoint event in time")
            .expect("read");
        assert!(n > 0, "the stream closed early");
        seen.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(start) = text.find("data: /message")
            && let Some(end) = text[start..].find('\n')
        {
            break text[start + 6..start + end].trim().to_owned();
        }
    };
    // From here on the client never reads.
    let http = reqwest::Client::new();
    let post = |message: Value| {
        http.post(server.url(&endpoint))
            .header("content-type", "application/json")
            .body(message.to_string())
            .send()
    };
    let status = |message: Value| async { post(message).await.expect("POST").status().as_u16() };
    assert_eq!(status(initialize()).await, 202);
    assert_eq!(
        status(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await,
        202
    );
    // Each answer is about 800 KB (text and structured content); they pile up unread.
    let mut gone_after = None;
    for id in 2..400 {
        let code = status(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "sql_query", "arguments": {"sql": "SELECT hex(zeroblob(200000)) AS x"}}}))
        .await;
        if code == 404 {
            gone_after = Some(id);
            break;
        }
        assert_eq!(code, 202);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let grown_kib = server.rss_kib().saturating_sub(before);
    eprintln!("SSE non-reader: session ended after {gone_after:?} calls; RSS grew {grown_kib} KiB");
    assert!(
        gone_after.is_some(),
        "the session of a client that does not read never ended"
    );
    assert!(
        grown_kib < 96 * 1024,
        "the server held {grown_kib} KiB for a client that does not read"
    );
    // The connection is closed: what the sockets held drains, then end of stream.
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
    assert!(
        eventually(5, || async {
            server
                .metric("datamcp_sessions_open{transport=\"sse\"}", None)
                .await
                == 0.0
        })
        .await
    );
}

#[tokio::test]
async fn the_header_timeout_spares_open_streams_and_long_calls() {
    let sandbox = Sandbox::new(
        "[server]\nheader_read_timeout_secs = 1\n\n[tools.sql_query]\ncache_ttl_ms = 0\ntimeout_ms = 60000\n",
    );
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let mut sse = crate::http_sse::SseClient::open(&server.base, None).await;
    sse.initialize().await;
    let client = connect_http(&server.url("/mcp"), None).await;
    // Both sit idle well past the header timeout, then work.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let result = sse
        .call(1, "sql_query", json!({"sql": "SELECT 1 AS one"}))
        .await;
    assert_eq!(result["structuredContent"]["rows"], json!([[1]]));
    // A call that runs longer than the header timeout.
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 6000000) SELECT count(*) AS n FROM c";
    let started = Instant::now();
    let result = call(&client, "sql_query", json!({ "sql": slow })).await;
    assert_eq!(
        structured(&result)["rows"],
        json!([[6000000]]),
        "{}",
        text(&result)
    );
    eprintln!("long call took {:?}", started.elapsed());
    let result = sse.call(2, "sql_query", json!({ "sql": slow })).await;
    assert_eq!(result["structuredContent"]["rows"], json!([[6000000]]));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn an_sse_client_that_reads_gets_a_burst_of_large_answers() {
    let sandbox = Sandbox::new("[tools.sql_query]\ncache_ttl_ms = 0\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let mut sse = crate::http_sse::SseClient::open(&server.base, None).await;
    sse.initialize().await;
    // Twenty answers of about 800 KB each, asked for at once: 16 MB, more than a stalled
    // client may have waiting, arriving faster than loopback drains them.
    for id in 1..=20 {
        sse.post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "sql_query", "arguments": {"sql": "SELECT hex(zeroblob(200000)) AS x"}}}))
            .await;
    }
    let mut answered = 0;
    while answered < 20 {
        let message = sse.next().await.expect("the stream stayed open");
        if message.get("result").is_some() {
            answered += 1;
        }
    }
}

#[tokio::test]
async fn a_client_that_never_reads_its_answer_loses_the_connection() {
    // A long header timeout, so that only the write timeout can end the connection.
    let sandbox = Sandbox::new(
        "[server]\nwrite_timeout_secs = 1\nheader_read_timeout_secs = 60\n\n[tools.sql_query]\ncache_ttl_ms = 0\ntimeout_ms = 60000\n",
    );
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let url = server.url("/mcp");
    let session = raw_session(&reqwest::Client::new(), &url).await;

    // About 60 MB of answer (rows as structured content and as text), far more than the
    // sockets buffer, asked for on a connection whose client then never reads.
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "sql_query", "arguments": {
            "sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000) SELECT i, hex(zeroblob(500)) AS x FROM n",
            "max_rows": 30000, "max_bytes": 67108864}}})
    .to_string();
    let mut stream = TcpStream::connect(authority(&server))
        .await
        .expect("connect");
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {session}\r\n\
         Mcp-Protocol-Version: 2025-06-18\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let with_reader = server.metric(OPEN, None).await;
    assert!(with_reader >= 1.0);
    let started = Instant::now();
    assert!(
        eventually(30, || async {
            server.metric(OPEN, None).await < with_reader
        })
        .await,
        "the connection of a client that never reads stayed open"
    );
    eprintln!(
        "a non-reading client's connection closed after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Clients that read are served as before.
    let client = connect_http(&url, None).await;
    let result = call(&client, "sql_query", json!({"sql": "SELECT 1 AS one"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    drop(stream);
}
