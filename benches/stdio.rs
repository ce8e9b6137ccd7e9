//! End-to-end benchmark of the release binary over real stdio.
//!
//! Run with `cargo bench --bench stdio`. It reports: cold start to the `initialize` response;
//! `tools/call sql_query SELECT 1` round trips (p50, p99) and the server's CPU time per call,
//! with and without the result cache; a 10,000-row `SELECT * FROM orders` (time and bytes);
//! and the server's peak RSS; and the time from a config file edit to `tools/list_changed` on
//! the client. The guard has its own bench (`benches/guard.rs`).
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_datamcp");

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Server {
    fn spawn(data_dir: &Path, config: Option<&Path>) -> Server {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .env("DATAMCP_DATA_DIR", data_dir)
            .env("DATAMCP_LOG", "warn");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn datamcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Server {
            child,
            stdin,
            stdout,
            next_id: 1,
        }
    }

    /// Sends a request and returns the raw response line.
    fn request(&mut self, method: &str, params: Value) -> String {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = serde_json::to_vec(&message).expect("encode");
        line.push(b'\n');
        self.stdin.write_all(&line).expect("write");
        self.stdin.flush().expect("flush");
        let mut response = String::new();
        loop {
            response.clear();
            self.stdout.read_line(&mut response).expect("read");
            if response.contains(&format!("\"id\":{id}")) {
                return response;
            }
        }
    }

    fn initialize(&mut self) -> String {
        let response = self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}),
        );
        self.stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .expect("write");
        response
    }

    fn call(&mut self, arguments: Value) -> String {
        self.request(
            "tools/call",
            json!({"name": "sql_query", "arguments": arguments}),
        )
    }

    fn cpu_seconds(&self) -> f64 {
        common::cpu_seconds(self.child.id())
    }

    fn peak_rss_kib(&self) -> u64 {
        common::memory_kib(self.child.id(), "VmHWM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn prepare() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join("datamcp-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let status = Command::new(BIN)
        .args(["call", "sql_query", r#"{"sql":"SELECT 1"}"#])
        .env("DATAMCP_DATA_DIR", &dir)
        .stdout(Stdio::null())
        .status()
        .expect("generate demo");
    assert!(status.success());
    let config = dir.join("no-cache.toml");
    std::fs::write(
        &config,
        format!(
            "demo = true\ndata_dir = \"{}\"\n[tools.sql_query]\ncache_ttl_ms = 0\n",
            dir.display()
        ),
    )
    .expect("config");
    (dir, config)
}

fn cold_start(dir: &Path) {
    let mut samples = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        let mut server = Server::spawn(dir, None);
        server.initialize();
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "cold start to initialize response: median {:.2} ms, min {:.2} ms (30 runs)",
        micros(percentile(&samples, 0.5)) / 1000.0,
        micros(samples[0]) / 1000.0
    );
}

/// The protocol's own floor: `ping` does no work, so its CPU is transport, JSON-RPC and rmcp.
fn ping_floor(dir: &Path) {
    let mut server = Server::spawn(dir, None);
    server.initialize();
    for _ in 0..500 {
        server.request("ping", json!({}));
    }
    let calls = 10_000;
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    for _ in 0..calls {
        server.request("ping", json!({}));
    }
    println!(
        "ping (protocol floor): {:.1} µs per round trip, server CPU {:.1} µs/call ({calls} calls)",
        micros(started.elapsed()) / calls as f64,
        (server.cpu_seconds() - cpu_before) / calls as f64 * 1e6
    );
}

fn tiny_calls(dir: &Path, config: Option<&Path>, label: &str) -> u64 {
    let mut server = Server::spawn(dir, config);
    server.initialize();
    for _ in 0..500 {
        server.call(json!({"sql": "SELECT 1"}));
    }
    let calls = 10_000;
    let mut samples = Vec::with_capacity(calls);
    let cpu_before = server.cpu_seconds();
    for _ in 0..calls {
        let started = Instant::now();
        let response = server.call(json!({"sql": "SELECT 1"}));
        samples.push(started.elapsed());
        assert!(response.contains("\"rows\":[[1]]"), "{response}");
    }
    let cpu = server.cpu_seconds() - cpu_before;
    samples.sort();
    println!(
        "tools/call sql_query SELECT 1 ({label}): p50 {:.1} µs, p99 {:.1} µs, server CPU {:.1} µs/call ({calls} calls)",
        micros(percentile(&samples, 0.5)),
        micros(percentile(&samples, 0.99)),
        cpu / calls as f64 * 1e6
    );
    server.peak_rss_kib()
}

fn big_result(dir: &Path, config: &Path) -> u64 {
    let mut server = Server::spawn(dir, Some(config));
    server.initialize();
    let arguments = json!({"sql": "SELECT * FROM orders LIMIT 10000", "max_rows": 10000, "max_bytes": 16_777_216});
    server.call(arguments.clone());
    let mut samples = Vec::new();
    let mut response = String::new();
    for _ in 0..30 {
        let started = Instant::now();
        response = server.call(arguments.clone());
        samples.push(started.elapsed());
    }
    samples.sort();
    let parsed: Value = serde_json::from_str(&response).expect("valid JSON");
    let structured = serde_json::to_string(&parsed["result"]["structuredContent"]).expect("encode");
    assert_eq!(parsed["result"]["structuredContent"]["row_count"], 10000);
    println!(
        "SELECT * FROM orders LIMIT 10000: median {:.2} ms, p99 {:.2} ms; response {:.0} KB (structuredContent {:.0} KB, text content {:.0} KB)",
        micros(percentile(&samples, 0.5)) / 1000.0,
        micros(percentile(&samples, 0.99)) / 1000.0,
        response.len() as f64 / 1000.0,
        structured.len() as f64 / 1000.0,
        parsed["result"]["content"][0]["text"]
            .as_str()
            .map_or(0, str::len) as f64
            / 1000.0,
    );
    server.peak_rss_kib()
}

/// `sql_query SELECT 1` on PostgreSQL over stdio, against the same query on a bare sqlx pool.
fn postgres_overhead(dir: &Path) {
    const URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    let config = dir.join("pg.toml");
    std::fs::write(
        &config,
        format!("[warehouses.pg]\nurl = \"{URL}\"\nallow_privileged_account = true\n[tools.sql_query]\ncache_ttl_ms = 0\n"),
    )
    .expect("config");
    let calls = 2_000;
    let mut server = Server::spawn(dir, Some(&config));
    server.initialize();
    for _ in 0..200 {
        server.call(json!({"sql": "SELECT 1"}));
    }
    let mut ours = Vec::with_capacity(calls);
    let cpu_before = server.cpu_seconds();
    for _ in 0..calls {
        let started = Instant::now();
        let response = server.call(json!({"sql": "SELECT 1"}));
        ours.push(started.elapsed());
        assert!(response.contains("\"rows\":[[1]]"), "{response}");
    }
    let cpu = server.cpu_seconds() - cpu_before;
    ours.sort();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut bare = Vec::with_capacity(calls);
    runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(URL)
            .await
            .expect("connect");
        for _ in 0..200 {
            let _: i32 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&pool)
                .await
                .expect("query");
        }
        for _ in 0..calls {
            let started = Instant::now();
            let _: i32 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&pool)
                .await
                .expect("query");
            bare.push(started.elapsed());
        }
    });
    bare.sort();
    let (p50_ours, p50_bare) = (percentile(&ours, 0.5), percentile(&bare, 0.5));
    println!(
        "PostgreSQL SELECT 1: sql_query over stdio p50 {:.1} µs (server CPU {:.1} µs/call), bare sqlx pool p50 {:.1} µs: {:.2}x",
        micros(p50_ours),
        cpu / calls as f64 * 1e6,
        micros(p50_bare),
        p50_ours.as_secs_f64() / p50_bare.as_secs_f64()
    );
}

/// Rendering 100,000 rows of 5 columns to JSON (the structured rows) and CSV.
fn render_throughput() {
    use datamcp::table::{Column, Format, render};
    let columns: Vec<Column> = ["id", "customer", "status", "total", "ordered_at"]
        .iter()
        .map(|n| Column::new(n, "TEXT"))
        .collect();
    let rows: Vec<Vec<Value>> = (0..100_000)
        .map(|i| {
            vec![
                json!(i),
                json!(format!("customer {}", i % 997)),
                json!(["paid", "shipped", "delivered"][i % 3]),
                json!((i % 10_000) as f64 / 100.0),
                json!("2024-03-05T10:22:13Z"),
            ]
        })
        .collect();
    for (label, format) in [
        ("JSON", Format::Json),
        ("CSV", Format::Csv),
        ("Markdown", Format::Markdown),
    ] {
        let started = Instant::now();
        let mut bytes = 0;
        let rounds = 5;
        for _ in 0..rounds {
            bytes = std::hint::black_box(render(format, &columns, &rows)).len();
        }
        let per_round = started.elapsed().as_secs_f64() / rounds as f64;
        println!(
            "render 100,000 rows x 5 columns to {label}: {:.0} rows/s ({:.1} ms, {:.1} MB)",
            100_000.0 / per_round,
            per_round * 1000.0,
            bytes as f64 / 1e6
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (dir, no_cache) = prepare();
    cold_start(&dir);
    ping_floor(&dir);
    let rss_a = tiny_calls(&dir, Some(&no_cache), "cache off");
    let rss_b = tiny_calls(&dir, None, "cache on, hits");
    let rss_c = big_result(&dir, &no_cache);
    println!(
        "peak RSS: {:.1} MiB (tiny calls), {:.1} MiB (cached calls), {:.1} MiB (10,000-row calls)",
        rss_a as f64 / 1024.0,
        rss_b as f64 / 1024.0,
        rss_c as f64 / 1024.0
    );
    render_throughput();
    postgres_overhead(&dir);
    reload_to_list_changed(&dir);
}

/// A custom tool whose description names `version`, so each edit changes what clients see.
fn custom_tool_config(dir: &Path, version: u32) -> String {
    format!(
        "demo = true\ndata_dir = \"{}\"\n[[sql_tools]]\nname = \"order_count\"\ndescription = \"Orders counted (version {version})\"\nstatement = \"SELECT count(*) AS n FROM orders\"\n",
        dir.display()
    )
}

/// From a config file edit (a new file renamed over the old one, as editors save) to the
/// `notifications/tools/list_changed` line on the client's stdin.
fn reload_to_list_changed(dir: &Path) {
    let config = dir.join("live.toml");
    std::fs::write(&config, custom_tool_config(dir, 0)).expect("config");
    let mut server = Server::spawn(dir, Some(&config));
    server.initialize();
    // The first list makes sure the session is up before the first edit.
    server.request("tools/list", json!({}));
    let mut samples = Vec::new();
    let mut line = String::new();
    for version in 1..=20 {
        let next = dir.join("live.toml.new");
        std::fs::write(&next, custom_tool_config(dir, version)).expect("config");
        let started = Instant::now();
        std::fs::rename(&next, &config).expect("rename");
        loop {
            line.clear();
            server.stdout.read_line(&mut line).expect("read");
            if line.contains("notifications/tools/list_changed") {
                break;
            }
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "config edit to tools/list_changed on stdio: p50 {:.1} ms, max {:.1} ms ({} edits)",
        micros(percentile(&samples, 0.5)) / 1000.0,
        micros(samples[samples.len() - 1]) / 1000.0,
        samples.len()
    );
}
