//! Stream tools over 1,000,000 messages on librdkafka's mock cluster, measured on the release
//! server over stdio (the cluster lives in this bench process, so the server's memory is its
//! own).
//!
//! The mock cluster keeps at most 100,000 messages or 5 MB per partition, so the million
//! messages are spread over 25 partitions; datamcp still reads them with one consumer, whose
//! messages are decoded, filtered and folded on one thread.
//!
//! Run with `cargo bench --bench stream`. Reports:
//! - `stream_read` decoding JSON with a filter that matches 1 in 1,000 (every message decoded
//!   and tested): messages scanned per second of wall time and per second of server CPU;
//! - `stream_aggregate` (hourly windows by event time, grouped by currency, count/sum/avg/min/max
//!   of the amount): the same figures;
//! - the server's peak RSS for each (a fresh server per figure), against `max_bytes`.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_datamcp");
const MESSAGES: i64 = 1_000_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Server {
    fn spawn(config: &std::path::Path) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("DATAMCP_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn datamcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut server = Server {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        server.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}),
        );
        server
            .stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .expect("write");
        server
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
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
            let value: Value = serde_json::from_str(&response).expect("json");
            if value["id"] == id {
                return value;
            }
        }
    }

    /// Calls `tool` and returns its structured result, the wall time and the server's CPU time.
    fn call(&mut self, tool: &str, arguments: Value) -> (Value, Duration, f64) {
        let cluster_cpu = common::cpu_seconds(std::process::id());
        let cpu = common::cpu_seconds(self.child.id());
        let started = Instant::now();
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let wall = started.elapsed();
        let cpu = common::cpu_seconds(self.child.id()) - cpu;
        println!(
            "  (the mock cluster, in this process, used {:.2} s of CPU serving it)",
            common::cpu_seconds(std::process::id()) - cluster_cpu
        );
        let result = &response["result"];
        assert_ne!(result["isError"], true, "{tool}: {response}");
        (result["structuredContent"].clone(), wall, cpu)
    }

    fn peak_rss_mib(&self) -> f64 {
        common::memory_kib(self.child.id(), "VmHWM") as f64 / 1024.0
    }

    fn rss_mib(&self) -> f64 {
        common::memory_kib(self.child.id(), "VmRSS") as f64 / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PARTITIONS: i64 = 25;

/// A mock cluster on its own thread holding `MESSAGES` order events over `PARTITIONS`.
fn cluster() -> (String, mpsc::Sender<()>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster
            .create_topic("orders", PARTITIONS as i32, 1)
            .expect("topic");
        let bootstrap = cluster.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("producer");
        let currencies = ["USD", "EUR", "GBP", "JPY"];
        let mut rng = fastrand::Rng::with_seed(1);
        let started = Instant::now();
        for i in 0..MESSAGES {
            let at = T0 + i * 100;
            let value = json!({
                "event": "order_paid",
                "order_id": i,
                "customer_id": rng.i64(1..=2_500),
                "amount": (rng.i64(100..=50_000) as f64) / 100.0,
                "currency": currencies[rng.usize(..4)],
            })
            .to_string();
            let key = i.to_string();
            let mut record = BaseRecord::to("orders")
                .key(&key)
                .payload(&value)
                .partition((i % PARTITIONS) as i32)
                .timestamp(at);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, returned)) => {
                        producer.poll(Duration::from_millis(5));
                        record = returned;
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(120)).expect("flush");
        println!(
            "filled the mock cluster: {MESSAGES} messages (~110 bytes of JSON each) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        ready_tx.send(bootstrap).expect("ready");
        let _ = stop_rx.recv();
    });
    (ready_rx.recv().expect("cluster"), stop_tx)
}

fn report(what: &str, out: &Value, wall: Duration, cpu: f64, server: &Server, baseline_mib: f64) {
    let scanned = out["stats"]["scanned"].as_f64().expect("scanned");
    println!(
        "{what}: scanned {scanned:.0} in {:.2} s wall = {:.0} msg/s; server CPU {:.2} s = {:.0} msg/s per CPU second; stopped {}; server RSS {:.1} MiB before, peak {:.1} MiB",
        wall.as_secs_f64(),
        scanned / wall.as_secs_f64(),
        cpu,
        scanned / cpu,
        out["stopped"],
        baseline_mib,
        server.peak_rss_mib()
    );
}

fn main() {
    let (bootstrap, _stop) = cluster();
    let dir = std::env::temp_dir().join("datamcp-bench-stream");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("datamcp.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[policy]\ntimeout_ms = 600000\ncache_ttl_ms = 0\nmax_attempts = 1\n\n[streams.bench]\nkind = \"kafka\"\nbrokers = \"{bootstrap}\"\ntopics = [\"orders\"]\n",
            dir.display()
        ),
    )
    .expect("config");
    let all = json!({"max_scan": MESSAGES, "max_wait_ms": 600000});

    for round in 0..2 {
        let mut server = Server::spawn(&config);
        let baseline = server.rss_mib();
        let mut args = all.clone();
        args["filter"] = json!("value.order_id % 1000 == 7 && value.currency == 'EUR'");
        args["max_messages"] = json!(10_000);
        args["max_bytes"] = json!(1_048_576);
        let (out, wall, cpu) = server.call("stream_read", args);
        report(
            &format!("round {round} stream_read, JSON + filter, max_bytes 1 MiB"),
            &out,
            wall,
            cpu,
            &server,
            baseline,
        );

        let mut server = Server::spawn(&config);
        let baseline = server.rss_mib();
        let mut args = all.clone();
        args["window_ms"] = json!(3_600_000);
        args["group_by"] = json!("currency");
        args["field"] = json!("amount");
        let (out, wall, cpu) = server.call("stream_aggregate", args);
        report(
            &format!("round {round} stream_aggregate, hourly windows by currency"),
            &out,
            wall,
            cpu,
            &server,
            baseline,
        );
    }

    for max_bytes in [1_048_576u64, 8_388_608] {
        let mut server = Server::spawn(&config);
        let baseline = server.rss_mib();
        let mut args = all.clone();
        args["max_messages"] = json!(10_000);
        args["max_bytes"] = json!(max_bytes);
        let (out, wall, cpu) = server.call("stream_read", args);
        report(
            &format!(
                "stream_read of raw messages until max_bytes {} MiB ({} kept)",
                max_bytes >> 20,
                out["messages"].as_array().map_or(0, Vec::len)
            ),
            &out,
            wall,
            cpu,
            &server,
            baseline,
        );
    }
}
