//! The remote endpoint's defences: bearer tokens, Host/Origin checks, size and concurrency
//! limits, refusal to listen unauthenticated on a network address, and audit lines that name
//! the caller but never the secret.

use std::time::Duration;

use serde_json::{Value, json};

use crate::http_sse::SseClient;
use crate::support::*;

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-fedcba9876543210";

fn tokens_config() -> Sandbox {
    Sandbox::new(&format!(
        "[server]\n[[server.tokens]]\nname = \"alice\"\ntoken = \"${{ALICE_TOKEN}}\"\n[[server.tokens]]\nname = \"bob\"\ntoken = \"{BOB}\"\n"
    ))
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
}

async fn post_mcp(
    server: &HttpServer,
    headers: &[(&str, &str)],
    body: String,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).send().await.expect("POST /mcp")
}

#[tokio::test]
async fn tokens_are_required_checked_and_never_logged() {
    let sandbox = tokens_config();
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[("ALICE_TOKEN", ALICE)]);

    let missing = post_mcp(&server, &[], initialize().to_string()).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"datamcp\""
    );
    assert!(
        missing
            .text()
            .await
            .expect("text")
            .contains("Authorization: Bearer")
    );

    let wrong_token = format!("Bearer {ALICE}x");
    let wrong = post_mcp(
        &server,
        &[("authorization", &wrong_token)],
        initialize().to_string(),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .expect("header")
            .contains("invalid_token")
    );
    // The SSE endpoints and /metrics are behind the same gate.
    let sse = reqwest::Client::new()
        .get(server.url("/sse"))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(sse.status(), 401);
    let metrics = reqwest::Client::new()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET");
    assert_eq!(metrics.status(), 401);
    // Health is open to probes; readiness, which probes the databases, is not.
    let health = reqwest::Client::new()
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), 200);
    let anonymous = reqwest::Client::new()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 401);
    let ready: Value = reqwest::Client::new()
        .get(server.url("/readyz"))
        .bearer_auth(BOB)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ready["status"], "ready");
    assert!(ready["checks"].as_array().is_some_and(|c| !c.is_empty()));

    // The right tokens work over both transports, and the audit line names the holder.
    let client = connect_http(&server.url("/mcp"), Some(ALICE)).await;
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 'secret-literal' AS s"}),
    )
    .await;
    assert!(!is_error(&result));
    client.cancel().await.expect("close");
    let mut sse = SseClient::open(&server.base, Some(BOB)).await;
    sse.initialize().await;
    let result = sse.call(1, "sql_list_tables", json!({})).await;
    assert_eq!(result["isError"], false);

    assert!(
        eventually(5, || async {
            server.logs().matches("datamcp::audit").count() >= 2
        })
        .await,
        "{}",
        server.logs()
    );
    let logs = server.logs();
    let audit: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("datamcp::audit"))
        .collect();
    assert!(audit.iter().any(|l| l.contains("token=\"alice\"")
        && l.contains("tool=\"sql_query\"")
        && l.contains("transport=\"streamable_http\"")
        && l.contains("outcome=\"ok\"")
        && l.contains("args_sha256=")));
    assert!(
        audit
            .iter()
            .any(|l| l.contains("token=\"bob\"") && l.contains("transport=\"sse\""))
    );
    for secret in [ALICE, BOB, "secret-literal"] {
        assert!(!logs.contains(secret), "the log leaks {secret}:\n{logs}");
    }
}

#[tokio::test]
async fn a_session_belongs_to_the_token_that_opened_it() {
    let sandbox = tokens_config();
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[("ALICE_TOKEN", ALICE)]);
    let mut alices = SseClient::open(&server.base, Some(ALICE)).await;
    alices.initialize().await;
    let hijack = reqwest::Client::new()
        .post(format!("{}{}", server.base, alices.endpoint))
        .bearer_auth(BOB)
        .body(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(hijack.status(), 404);
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused_on_both_transports() {
    let server = HttpServer::start(None, &[], &[]);
    let evil = [("origin", "https://evil.example")];
    let refused = post_mcp(&server, &evil, initialize().to_string()).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .expect("text")
            .contains("allowed_origins")
    );
    let sse = reqwest::Client::new()
        .get(server.url("/sse"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(sse.status(), 403);
    let rebound = post_mcp(
        &server,
        &[("host", "evil.example")],
        initialize().to_string(),
    )
    .await;
    assert_eq!(rebound.status(), 403);
    assert!(
        rebound
            .text()
            .await
            .expect("text")
            .contains("allowed_hosts")
    );
    // A page served from loopback may call.
    let local = post_mcp(
        &server,
        &[("origin", "http://localhost:5173")],
        initialize().to_string(),
    )
    .await;
    assert_eq!(local.status(), 200);

    let sandbox = Sandbox::new("[server]\nallowed_origins = [\"https://app.example.com\"]\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let app = post_mcp(
        &server,
        &[("origin", "https://app.example.com")],
        initialize().to_string(),
    )
    .await;
    assert_eq!(app.status(), 200);
    let other = post_mcp(
        &server,
        &[("origin", "http://localhost:5173")],
        initialize().to_string(),
    )
    .await;
    assert_eq!(other.status(), 403);
}

#[tokio::test]
async fn oversized_and_garbage_bodies_get_clear_answers() {
    let sandbox = Sandbox::new("[server]\nmax_body_bytes = 4096\n");
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "sql_query", "arguments": {"sql": format!("SELECT '{}'", "x".repeat(10_000))}}});
    let too_large = post_mcp(&server, &[], big.to_string()).await;
    assert_eq!(too_large.status(), 413);
    assert!(too_large.text().await.expect("text").contains("4096 bytes"));

    // Chunked, without Content-Length: the limit holds while the body streams.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..20).map(|_| Ok("x".repeat(1000))).collect();
    let streamed = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("post");
    assert_eq!(streamed.status(), 413);

    let mut sse = SseClient::open(&server.base, None).await;
    sse.initialize().await;
    assert_eq!(sse.post_raw(big.to_string()).await.status(), 413);

    let garbage = post_mcp(&server, &[], "{not json".to_owned()).await;
    assert_eq!(garbage.status(), 400, "{:?}", garbage.text().await);
    // The server is still serving.
    let result = sse
        .call(2, "sql_query", json!({"sql": "SELECT 1 AS one"}))
        .await;
    assert_eq!(result["structuredContent"]["rows"], json!([[1]]));
    assert!(
        server
            .metric(
                "datamcp_http_rejections_total{reason=\"body_too_large\"}",
                None
            )
            .await
            >= 3.0
    );
}

#[tokio::test]
async fn calls_and_sessions_over_the_limits_are_refused_not_queued() {
    let sandbox = Sandbox::new(
        "[server]\nmax_in_flight_calls = 1\nmax_sessions = 2\n\n[tools.sql_query]\ntimeout_ms = 120000\ncache_ttl_ms = 0\n",
    );
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let mut first = SseClient::open(&server.base, None).await;
    first.initialize().await;
    first
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "sql_query", "arguments": {"sql":
            ENDLESS}}}))
        .await;
    assert!(server.calls_in_flight_become(1.0).await);
    let second = connect_http(&server.url("/mcp"), None).await;
    let busy = second
        .call_tool(rmcp::model::CallToolRequestParams::new("sql_query"))
        .await;
    assert!(busy.is_err(), "a call over the limit was accepted");
    let raw = first
        .post_raw(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "sql_query", "arguments": {"sql": "SELECT 1"}}})
            .to_string(),
        )
        .await;
    assert_eq!(raw.status(), 429);
    assert_eq!(raw.headers()["retry-after"], "1");
    assert!(raw.text().await.expect("text").contains("retry"));
    // Cancelling does not need a slot, even at the limit.
    first
        .post(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}))
        .await;
    assert!(server.calls_in_flight_become(0.0).await);

    // Two sessions are open (one SSE, one Streamable HTTP): a third is refused on either.
    let third = post_mcp(&server, &[], initialize().to_string()).await;
    assert_eq!(third.status(), 503);
    let sse = reqwest::Client::new()
        .get(server.url("/sse"))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(sse.status(), 503);
    second.cancel().await.expect("close");
    assert!(
        eventually(5, || async {
            post_mcp(&server, &[], initialize().to_string())
                .await
                .status()
                == 200
        })
        .await,
        "a freed session slot was not reusable"
    );
}

#[tokio::test]
async fn a_network_address_without_tokens_is_refused_at_start() {
    let output = std::process::Command::new(BIN)
        .args(["serve", "--http", "0.0.0.0:0"])
        .env("DATAMCP_DATA_DIR", demo_data_dir())
        .env_remove("DATAMCP_AUTH_TOKEN")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without authentication"), "{stderr}");
    assert!(stderr.contains("DATAMCP_AUTH_TOKEN"), "{stderr}");

    let output = std::process::Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("DATAMCP_DATA_DIR", demo_data_dir())
        .env("DATAMCP_AUTH_TOKEN", "short")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("shorter than 16"), "{stderr}");
    assert!(!stderr.contains("short\n"), "{stderr}");

    // With a token from the environment, a network address is fine.
    let server = HttpServer::start(None, &[], &[("DATAMCP_AUTH_TOKEN", ALICE)]);
    let unauthorized = post_mcp(&server, &[], initialize().to_string()).await;
    assert_eq!(unauthorized.status(), 401);
    let client = connect_http(&server.url("/mcp"), Some(ALICE)).await;
    client.cancel().await.expect("close");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Opens a Streamable HTTP session with a bare `initialize` as `token`; returns its id.
async fn open_session(server: &HttpServer, token: &str) -> String {
    let bearer = format!("Bearer {token}");
    let response = post_mcp(
        server,
        &[("authorization", &bearer)],
        initialize().to_string(),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.headers()["mcp-session-id"]
        .to_str()
        .expect("session id")
        .to_owned()
}

#[tokio::test]
async fn a_streamable_session_belongs_to_the_token_that_opened_it() {
    let sandbox = tokens_config();
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[("ALICE_TOKEN", ALICE)]);
    let session = open_session(&server, ALICE).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let as_token = |token: &str| (format!("Bearer {token}"), session.clone());
    let (bob, id) = as_token(BOB);
    let headers = [
        ("authorization", bob.as_str()),
        ("mcp-session-id", id.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let hijack = post_mcp(&server, &headers, list.clone()).await;
    assert_eq!(hijack.status(), 404);
    let stream = reqwest::Client::new()
        .get(server.url("/mcp"))
        .bearer_auth(BOB)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .expect("GET");
    assert_eq!(stream.status(), 404);
    let delete = reqwest::Client::new()
        .delete(server.url("/mcp"))
        .bearer_auth(BOB)
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(delete.status(), 404);
    // Alice's session is untouched by all that.
    let (alice, id) = as_token(ALICE);
    let headers = [
        ("authorization", alice.as_str()),
        ("mcp-session-id", id.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let own = post_mcp(&server, &headers, list).await;
    assert_eq!(own.status(), 200);
    assert!(own.text().await.expect("text").contains("sql_query"));
    assert!(
        server
            .metric(
                "datamcp_http_rejections_total{reason=\"foreign_session\"}",
                Some(ALICE)
            )
            .await
            >= 3.0
    );
}

/// Sends raw bytes on a new connection and returns the status code of the answer.
async fn raw_status(server: &HttpServer, request: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.strip_prefix("http://").expect("base");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"))
}

#[tokio::test]
async fn operations_endpoints_check_host_origin_and_token() {
    let sandbox = tokens_config();
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[("ALICE_TOKEN", ALICE)]);
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = reqwest::Client::new().get(server.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move { request.send().await.expect("GET").status().as_u16() }
    };
    let alice = format!("Bearer {ALICE}");
    for path in ["/readyz", "/metrics"] {
        assert_eq!(get(path, &[]).await, 401, "{path} without a token");
        assert_eq!(get(path, &[("authorization", &alice)]).await, 200, "{path}");
        assert_eq!(
            get(path, &[("authorization", &alice), ("host", "evil.example")]).await,
            403,
            "{path} with a foreign Host"
        );
        assert_eq!(
            get(
                path,
                &[
                    ("authorization", &alice),
                    ("origin", "https://evil.example")
                ]
            )
            .await,
            403,
            "{path} from a foreign Origin"
        );
    }
    assert_eq!(get("/healthz", &[]).await, 200);
    assert_eq!(get("/healthz", &[("host", "evil.example")]).await, 403);

    // Two Host headers, and an absolute-form target naming another host, are refused.
    let twice = format!(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nAuthorization: Bearer {ALICE}\r\n\r\n"
    );
    assert_eq!(raw_status(&server, &twice).await, 403);
    let body = initialize().to_string();
    let absolute = format!(
        "POST http://evil.example/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ALICE}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_status(&server, &absolute).await, 403);
    let origins = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost:3000\r\nOrigin: https://evil.example\r\nAuthorization: Bearer {ALICE}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_status(&server, &origins).await, 403);
}

#[tokio::test]
async fn readiness_probes_the_databases_at_most_once_a_second() {
    let server = HttpServer::start(None, &[], &[]);
    let probe = || async {
        reqwest::Client::new()
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("GET")
            .json::<Value>()
            .await
            .expect("JSON")
    };
    let first = probe().await;
    let answers = futures::future::join_all((0..50).map(|_| probe())).await;
    // Every answer within the second is the same probe: same timings to the microsecond.
    let same = answers
        .iter()
        .filter(|a| a["checks"] == first["checks"])
        .count();
    assert!(same >= 45, "{same} of 50 answers reused the probe");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = probe().await;
    assert_ne!(
        later["checks"], first["checks"],
        "the probe was never repeated"
    );
}
