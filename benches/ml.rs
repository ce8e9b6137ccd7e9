//! `ml_evaluate` and `ml_monitor` over 1,000,000 rows in PostgreSQL and in SQLite, measured on
//! the release server over Streamable HTTP (stateless, so each call's audit lines are written).
//!
//! Run with `cargo bench --bench ml` (PostgreSQL on 127.0.0.1:5432, user postgres, database
//! test). For each figure a fresh server answers one call; reported are the wall time, the
//! share of it spent in the warehouse (the nested `sql_query` calls, summed from the server's
//! audit lines), datamcp's own CPU (the server process's CPU time; for SQLite, which runs
//! inside the server, minus the time in those queries) as a share of the wall time, and the
//! server's peak RSS. Targets: datamcp's CPU under 20 % of the wall time, peak memory under
//! 50 MiB whatever the row count.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_datamcp");
const ROWS: i64 = 1_000_000;
const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The server over Streamable HTTP in stateless mode: there its audit lines (one per call,
/// nested calls included, with their elapsed time) say how long the warehouse took.
struct Server {
    child: Child,
    address: String,
    audit: Arc<Mutex<Vec<String>>>,
    next_id: u64,
}

impl Server {
    fn spawn(config: &std::path::Path) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--http", "127.0.0.1:0", "--stateless", "--config"])
            .arg(config)
            .env("DATAMCP_LOG", "warn,datamcp=info")
            .env_remove("DATAMCP_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn datamcp");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let audit = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&audit);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving MCP on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
                if line.contains("tool call") {
                    lines.lock().expect("lock").push(line);
                }
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(30)).expect("listening");
        Server {
            child,
            address,
            audit,
            next_id: 1,
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        write!(
            stream,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2025-06-18\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("read");
        let (head, rest) = reply.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        // A plain JSON answer, or one Server-Sent Event holding it.
        let json = body
            .lines()
            .find_map(|l| l.strip_prefix("data:").map(str::trim))
            .unwrap_or(body.trim());
        serde_json::from_str(json).expect("json answer")
    }

    /// Calls `tool`; returns its result, the wall time, the server's CPU seconds and the
    /// seconds its nested `sql_query` calls took.
    fn call(&mut self, tool: &str, arguments: Value) -> (Value, Duration, f64, f64) {
        self.audit.lock().expect("lock").clear();
        let cpu = common::cpu_seconds(self.child.id());
        let started = Instant::now();
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let wall = started.elapsed();
        let cpu = common::cpu_seconds(self.child.id()) - cpu;
        let result = &response["result"];
        assert_ne!(result["isError"], true, "{tool}: {response}");
        // The audit lines are written as the calls end; give the reader a moment.
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.audit.lock().expect("lock");
        let nested: Vec<&String> = lines
            .iter()
            .filter(|l| {
                l.contains("sql_query") && !l.contains("parent=\"-\"") && !l.contains("parent=-")
            })
            .collect();
        assert!(
            !nested.is_empty(),
            "no audit lines of the nested queries: {lines:?}"
        );
        let warehouse = nested
            .iter()
            .filter_map(|l| {
                let at = l.find("elapsed_ms=")? + "elapsed_ms=".len();
                l[at..].split_whitespace().next()?.parse::<f64>().ok()
            })
            .sum::<f64>()
            / 1000.0;
        (result["structuredContent"].clone(), wall, cpu, warehouse)
    }

    fn peak_rss_mib(&self) -> f64 {
        common::memory_kib(self.child.id(), "VmHWM") as f64 / 1024.0
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    body
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A million deterministic rows: a churn score and its outcome, a spend forecast and the real
/// spend, and two features whose second half (`period` 1) drifts.
fn sqlite_table(path: &std::path::Path) {
    if path.exists() {
        return;
    }
    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(path).expect("sqlite");
    conn.execute_batch(
        "CREATE TABLE scores (id INTEGER PRIMARY KEY, period INTEGER, score REAL, label INTEGER, forecast REAL, spend REAL, plan TEXT, tenure INTEGER)",
    )
    .expect("create");
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx
            .prepare("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .expect("prepare");
        let mut rng = fastrand::Rng::with_seed(42);
        let plans = ["basic", "standard", "premium"];
        for id in 0..ROWS {
            let period = i64::from(id >= ROWS / 2);
            let score = rng.f64();
            let label = i64::from(rng.f64() < score * 0.8 + 0.1);
            let spend = 20.0 + rng.f64() * 80.0 + period as f64 * 8.0;
            let forecast = spend + (rng.f64() - 0.5) * 10.0;
            let plan = plans[if period == 1 && rng.f64() < 0.3 {
                0
            } else {
                rng.usize(..3)
            }];
            insert
                .execute(rusqlite::params![
                    id,
                    period,
                    score,
                    label,
                    forecast,
                    spend,
                    plan,
                    rng.i64(0..72)
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    println!(
        "generated the SQLite table ({ROWS} rows) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn postgres_table() {
    let sql = format!(
        "DROP SCHEMA IF EXISTS bench_ml CASCADE; CREATE SCHEMA bench_ml;
         SELECT setseed(0.42);
         CREATE TABLE bench_ml.scores AS
           SELECT id, (id >= {half})::int AS period, s AS score,
                  (random() < s * 0.8 + 0.1)::int AS label,
                  sp + (random() - 0.5) * 10 AS forecast, sp AS spend,
                  (ARRAY['basic','standard','premium'])[CASE WHEN id >= {half} AND random() < 0.3 THEN 1 ELSE 1 + floor(random() * 3)::int END] AS plan,
                  floor(random() * 72)::int AS tenure
           FROM (SELECT id, random() AS s, 20 + random() * 80 + CASE WHEN id >= {half} THEN 8 ELSE 0 END AS sp
                 FROM generate_series(0, {last}) AS id) g;
         ANALYZE bench_ml.scores;",
        half = ROWS / 2,
        last = ROWS - 1
    );
    let started = Instant::now();
    let status = Command::new("psql")
        .args([PG, "-q", "-v", "ON_ERROR_STOP=1", "-c", &sql])
        .stdout(Stdio::null())
        .status()
        .expect("psql");
    assert!(status.success(), "creating the PostgreSQL table failed");
    println!(
        "generated the PostgreSQL table ({ROWS} rows) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let dir = std::env::temp_dir().join("datamcp-bench-ml");
    std::fs::create_dir_all(&dir).expect("dir");
    let sqlite = dir.join("scores.db");
    sqlite_table(&sqlite);
    postgres_table();
    let config = dir.join("datamcp.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\ntimeout_ms = 600000\n\n[server]\nallow_unauthenticated = true\n\n[warehouses.sqlite]\nurl = \"sqlite://{}\"\n\n[warehouses.pg]\nurl = \"{PG}\"\nallow_privileged_account = true\n",
            sqlite.display()
        ),
    )
    .expect("config");

    for (warehouse, table) in [("sqlite", "scores"), ("pg", "bench_ml.scores")] {
        let calls = [
            (
                "ml_evaluate classification (confusion, ROC-AUC, log loss)",
                "ml_evaluate",
                json!({"warehouse": warehouse, "sql": format!("SELECT score, label FROM {table}"), "label": "label", "score": "score"}),
            ),
            (
                "ml_evaluate regression (RMSE, MAE, R², MAPE)",
                "ml_evaluate",
                json!({"warehouse": warehouse, "sql": format!("SELECT forecast, spend FROM {table}"), "task": "regression", "label": "spend", "prediction": "forecast"}),
            ),
            (
                "ml_monitor (3 features, 500k vs 500k rows)",
                "ml_monitor",
                json!({"warehouse": warehouse,
                       "reference_sql": format!("SELECT spend, plan, tenure FROM {table} WHERE period = 0"),
                       "current_sql": format!("SELECT spend, plan, tenure FROM {table} WHERE period = 1")}),
            ),
        ];
        for (what, tool, arguments) in calls {
            let mut server = Server::spawn(&config);
            let baseline = common::memory_kib(server.child.id(), "VmRSS") as f64 / 1024.0;
            let (out, wall, cpu, in_warehouse) = server.call(tool, arguments);
            let wall_s = wall.as_secs_f64();
            // SQLite runs inside the server: its query time is CPU time of the server process.
            let own_cpu = if warehouse == "sqlite" {
                (cpu - in_warehouse).max(0.0)
            } else {
                cpu
            };
            println!(
                "{warehouse:6} {what}: wall {wall_s:.2} s; in the warehouse {in_warehouse:.2} s ({:.0} %); datamcp CPU {own_cpu:.3} s ({:.1} % of wall; process CPU {cpu:.2} s); RSS {baseline:.1} MiB at start, peak {:.1} MiB; exact {}",
                100.0 * in_warehouse / wall_s,
                100.0 * own_cpu / wall_s,
                server.peak_rss_mib(),
                out.get("exact").map_or_else(
                    || out["features"]
                        .as_array()
                        .map_or(json!(null), |f| json!(f.iter().all(|f| f["exact"] == true))),
                    Clone::clone
                ),
            );
        }
    }
    let _ = Command::new("psql")
        .args([PG, "-q", "-c", "DROP SCHEMA IF EXISTS bench_ml CASCADE"])
        .status();
}
