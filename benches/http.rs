//! Load benchmark of the release binary's HTTP endpoint on loopback.
//!
//! Run with `cargo bench --bench http` (`-- memory` for the memory figures alone). For `tools/call sql_query SELECT 1` on the embedded
//! SQLite it reports calls/s, p50/p99 latency and the server's CPU per call, with 1 and with 16
//! concurrent clients, over Streamable HTTP (sessions and stateless) and over HTTP+SSE; then
//! the server's memory per idle session on each transport.
//!
//! The load generator is a minimal HTTP/1.1 client on one thread, so it costs little of the
//! two cores it shares with the server: each client owns a keep-alive connection and sends
//! its next call when the previous answer is in.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::collections::HashMap;
mod common;

use std::io::{BufRead, BufReader as StdBufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_datamcp");
const RUN: Duration = Duration::from_secs(4);
const CALL: &str = r#"{"name":"sql_query","arguments":{"sql":"SELECT 1"}}"#;

struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(data_dir: &Path, config: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--http", "127.0.0.1:0", "--config"])
            .arg(config)
            .args(args)
            .env("DATAMCP_DATA_DIR", data_dir)
            .env_remove("DATAMCP_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn datamcp");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stderr (the audit lines), as a log shipper would.
        std::thread::spawn(move || {
            for line in StdBufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving MCP on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(30)).expect("listening");
        Server { child, address }
    }

    fn cpu_seconds(&self) -> f64 {
        common::cpu_seconds(self.child.id())
    }

    fn rss_kib(&self) -> u64 {
        common::memory_kib(self.child.id(), "VmRSS")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Connection {
    async fn open(address: &str) -> Connection {
        let stream = TcpStream::connect(address).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Connection {
            stream: BufReader::new(stream),
            line: String::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(name);
            request.push_str(": ");
            request.push_str(value);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("write");
    }

    async fn read_head(&mut self) -> (u16, HashMap<String, String>) {
        self.line.clear();
        self.stream
            .read_line(&mut self.line)
            .await
            .expect("status line");
        let status = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut headers = HashMap::new();
        loop {
            self.line.clear();
            self.stream.read_line(&mut self.line).await.expect("header");
            let line = self.line.trim_end();
            if line.is_empty() {
                return (status, headers);
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
            }
        }
    }

    /// One chunk of a chunked body; empty at its end.
    async fn read_chunk(&mut self) -> Vec<u8> {
        self.line.clear();
        self.stream
            .read_line(&mut self.line)
            .await
            .expect("chunk size");
        let size = usize::from_str_radix(self.line.trim(), 16).expect("hex size");
        let mut chunk = vec![0; size + 2];
        self.stream.read_exact(&mut chunk).await.expect("chunk");
        chunk.truncate(size);
        chunk
    }

    async fn read_reply(&mut self) -> Reply {
        let (status, headers) = self.read_head().await;
        let mut body = Vec::new();
        if let Some(length) = headers.get("content-length") {
            body.resize(length.parse().expect("length"), 0);
            self.stream.read_exact(&mut body).await.expect("body");
        } else if headers
            .get("transfer-encoding")
            .is_some_and(|v| v == "chunked")
        {
            loop {
                let chunk = self.read_chunk().await;
                if chunk.is_empty() {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.send("POST", path, headers, body).await;
        self.read_reply().await
    }
}

fn request(id: u64, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

const INITIALIZE: &str = r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}"#;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Sessions,
    Stateless,
    Sse,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Sessions => "Streamable HTTP, sessions",
            Mode::Stateless => "Streamable HTTP, stateless",
            Mode::Sse => "HTTP+SSE (legacy)",
        }
    }
}

/// A client that has done its handshake and can make calls.
enum Client {
    Streamable {
        connection: Connection,
        session: Option<String>,
    },
    Sse {
        events: Connection,
        posts: Connection,
        endpoint: String,
        buffer: Vec<u8>,
    },
}

impl Client {
    async fn connect(address: &str, mode: Mode) -> Client {
        match mode {
            Mode::Sessions => {
                let mut connection = Connection::open(address).await;
                let reply = connection
                    .post("/mcp", &[], &request(0, "initialize", INITIALIZE))
                    .await;
                assert_eq!(reply.status, 200);
                let session = reply.headers["mcp-session-id"].clone();
                let headers = [
                    ("Mcp-Session-Id", session.as_str()),
                    ("Mcp-Protocol-Version", "2025-06-18"),
                ];
                let reply = connection
                    .post(
                        "/mcp",
                        &headers,
                        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                    )
                    .await;
                assert_eq!(reply.status, 202);
                Client::Streamable {
                    connection,
                    session: Some(session),
                }
            }
            Mode::Stateless => Client::Streamable {
                connection: Connection::open(address).await,
                session: None,
            },
            Mode::Sse => {
                let mut events = Connection::open(address).await;
                events
                    .send("GET", "/sse", &[("Accept", "text/event-stream")], "")
                    .await;
                let (status, _) = events.read_head().await;
                assert_eq!(status, 200);
                let mut client = Client::Sse {
                    events,
                    posts: Connection::open(address).await,
                    endpoint: String::new(),
                    buffer: Vec::new(),
                };
                let (name, data) = client.next_event().await;
                assert_eq!(name, "endpoint");
                if let Client::Sse { endpoint, .. } = &mut client {
                    *endpoint = data;
                }
                client.call_raw(0, "initialize", INITIALIZE).await;
                client.notify_initialized().await;
                client
            }
        }
    }

    async fn next_event(&mut self) -> (String, String) {
        let Client::Sse { events, buffer, .. } = self else {
            unreachable!()
        };
        loop {
            if let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&frame);
                let mut name = "message".to_owned();
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !data.is_empty() {
                    return (name, data);
                }
                continue;
            }
            let chunk = events.read_chunk().await;
            assert!(!chunk.is_empty(), "SSE stream ended");
            buffer.extend_from_slice(&chunk);
        }
    }

    async fn notify_initialized(&mut self) {
        let Client::Sse {
            posts, endpoint, ..
        } = self
        else {
            unreachable!()
        };
        let reply = posts
            .post(
                endpoint,
                &[],
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            )
            .await;
        assert_eq!(reply.status, 202);
    }

    /// Sends a request and returns the raw JSON-RPC response.
    async fn call_raw(&mut self, id: u64, method: &str, params: &str) -> String {
        let body = request(id, method, params);
        match self {
            Client::Streamable {
                connection,
                session,
            } => {
                let reply = match session {
                    Some(session) => {
                        let headers = [
                            ("Mcp-Session-Id", session.as_str()),
                            ("Mcp-Protocol-Version", "2025-06-18"),
                        ];
                        connection.post("/mcp", &headers, &body).await
                    }
                    None => {
                        connection
                            .post("/mcp", &[("Mcp-Protocol-Version", "2025-06-18")], &body)
                            .await
                    }
                };
                assert_eq!(
                    reply.status,
                    200,
                    "{}",
                    String::from_utf8_lossy(&reply.body)
                );
                String::from_utf8(reply.body).expect("utf-8")
            }
            Client::Sse {
                posts, endpoint, ..
            } => {
                let reply = posts.post(endpoint, &[], &body).await;
                assert_eq!(reply.status, 202);
                let marker = format!("\"id\":{id},");
                loop {
                    let (_, data) = self.next_event().await;
                    if data.contains(&marker) {
                        return data;
                    }
                }
            }
        }
    }
}

struct Figures {
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn load(address: &str, mode: Mode, clients: usize) -> Figures {
    let mut connected = Vec::new();
    for _ in 0..clients {
        connected.push(Client::connect(address, mode).await);
    }
    // Warm-up call per client (fills the result cache once).
    for client in &mut connected {
        let answer = client.call_raw(1, "tools/call", CALL).await;
        assert!(answer.contains(r#""rows":[[1]]"#), "{answer}");
    }
    let started = Instant::now();
    let deadline = started + RUN;
    let tasks = connected.into_iter().map(|mut client| async move {
        let mut latencies = Vec::with_capacity(100_000);
        let mut id = 2;
        while Instant::now() < deadline {
            let sent = Instant::now();
            let answer = client.call_raw(id, "tools/call", CALL).await;
            latencies.push(sent.elapsed());
            debug_assert!(answer.contains("\"rows\":[[1]]"));
            id += 1;
        }
        latencies
    });
    let latencies: Vec<Duration> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    Figures {
        calls: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn scenario(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    config: &Path,
    mode: Mode,
    clients: usize,
) {
    let args: &[&str] = if mode == Mode::Stateless {
        &["--stateless"]
    } else {
        &[]
    };
    let server = Server::start(dir, config, args);
    let cpu_before = server.cpu_seconds();
    let mut figures = runtime.block_on(load(&server.address, mode, clients));
    let cpu = server.cpu_seconds() - cpu_before;
    figures.latencies.sort();
    let rate = figures.calls as f64 / figures.elapsed.as_secs_f64();
    println!(
        "  {:<28} {:>2} clients: {:>8.0} calls/s  p50 {:>6.0} µs  p99 {:>6.0} µs  server CPU {:>5.1} µs/call",
        mode.label(),
        clients,
        rate,
        percentile(&figures.latencies, 0.50).as_secs_f64() * 1e6,
        percentile(&figures.latencies, 0.99).as_secs_f64() * 1e6,
        // Includes the handshakes and warm-up calls, a rounding error next to the run.
        cpu / figures.calls as f64 * 1e6,
    );
}

fn idle_sessions(runtime: &tokio::runtime::Runtime, dir: &Path, config: &Path) {
    const SESSIONS: usize = 500;
    for mode in [Mode::Sessions, Mode::Sse] {
        let server = Server::start(dir, config, &[]);
        let per_session = runtime.block_on(async {
            // One session first, so lazily built state is not counted.
            let mut warm = Client::connect(&server.address, mode).await;
            warm.call_raw(1, "tools/call", CALL).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = server.rss_kib();
            let mut open = Vec::new();
            for _ in 0..SESSIONS {
                let client = Client::connect(&server.address, mode).await;
                // A Streamable HTTP session needs no connection between requests: close it,
                // so what remains is the session alone. An SSE session is its stream.
                if mode == Mode::Sse {
                    open.push(client);
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = server.rss_kib();
            drop(open);
            (after.saturating_sub(before)) as f64 / SESSIONS as f64
        });
        let held = match mode {
            Mode::Sse => "its event stream and one keep-alive connection open",
            _ => "no connection open",
        };
        println!(
            "  {:<28} {per_session:>6.1} KiB per idle session ({SESSIONS} sessions, each with {held})",
            mode.label()
        );
    }
}

fn prepare() -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join("datamcp-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let status = Command::new(BIN)
        .args(["call", "sql_query", r#"{"sql":"SELECT 1"}"#])
        .env("DATAMCP_DATA_DIR", &dir)
        .stdout(Stdio::null())
        .status()
        .expect("generate demo");
    assert!(status.success());
    let write = |name: &str, extra: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("demo = true\ndata_dir = \"{}\"\n{extra}", dir.display()),
        )
        .expect("config");
        path
    };
    let default = write("http-default.toml", "[server]\nmax_sessions = 5000\n");
    let no_audit = write(
        "http-no-audit.toml",
        "[server]\naudit = false\nmax_sessions = 5000\n",
    );
    let no_cache = write(
        "http-no-cache.toml",
        "[server]\nmax_sessions = 5000\n[tools.sql_query]\ncache_ttl_ms = 0\n",
    );
    (dir, default, no_audit, no_cache)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (dir, default, no_audit, no_cache) = prepare();
    // `cargo bench --bench http -- memory` measures only the idle sessions.
    if std::env::args().any(|a| a == "memory") {
        println!("memory:");
        idle_sessions(&runtime, &dir, &default);
        return;
    }
    println!(
        "tools/call sql_query SELECT 1, embedded SQLite, loopback, {} s per run",
        RUN.as_secs()
    );
    println!("default config (result cache on, one audit line per call):");
    for mode in [Mode::Sessions, Mode::Stateless, Mode::Sse] {
        for clients in [1, 16] {
            scenario(&runtime, &dir, &default, mode, clients);
        }
    }
    println!("audit lines off:");
    for mode in [Mode::Sessions, Mode::Stateless, Mode::Sse] {
        scenario(&runtime, &dir, &no_audit, mode, 16);
    }
    println!("result cache off (every call runs the query):");
    scenario(&runtime, &dir, &no_cache, Mode::Stateless, 16);
    println!("memory:");
    idle_sessions(&runtime, &dir, &default);
}
