//! Streams against a real Kafka-compatible broker (tansu 0.6.0, which `.ci/run` installs and
//! each test starts on a free loopback port): the tools end to end over Streamable HTTP, a
//! consumer group's committed offsets untouched by reads, and the broker going down and coming
//! back while datamcp keeps serving.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use serde_json::{Value, json};

use crate::streams::Kafka;
use crate::support::*;

/// A tansu broker with in-memory storage on 127.0.0.1.
struct Broker {
    port: u16,
    child: Option<Child>,
}

fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("DATAMCP_TANSU") {
        return PathBuf::from(path);
    }
    let cached = dirs::home_dir()
        .expect("home")
        .join(".cache/datamcp/tansu-0.6.0/tansu");
    assert!(
        cached.exists(),
        "tansu is not installed: run .ci/run once (it installs tansu 0.6.0 into {}) or set DATAMCP_TANSU",
        cached.display()
    );
    cached
}

impl Broker {
    fn start() -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut broker = Broker { port, child: None };
        broker.up();
        broker
    }

    fn up(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tansu did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("admin");
        let results = admin
            .create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .expect("create topic");
        for result in results {
            result.expect("topic created");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.down();
    }
}

fn config(sandbox: &Sandbox, broker: &Broker) {
    let text = std::fs::read_to_string(sandbox.config()).expect("config");
    std::fs::write(
        sandbox.config(),
        format!(
            "read_only = false\n{text}\n[streams.live]\nkind = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"payments\"]\nallow_produce = true\ntimeout_ms = 2000\ngroups = [\"billing\"]\n",
            broker.bootstrap()
        ),
    )
    .expect("config");
}

async fn ok(client: &Client, tool: &str, args: Value) -> serde_json::Map<String, Value> {
    let result = call(client, tool, args).await;
    assert!(!is_error(&result), "{tool}: {}", text(&result));
    structured(&result)
}

#[tokio::test]
async fn the_tools_work_end_to_end_on_a_real_broker_over_http() {
    let broker = Broker::start();
    broker.create_topic("payments", 2).await;
    let sandbox = Sandbox::new("");
    config(&sandbox, &broker);
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let client = connect_http(&server.url("/mcp"), None).await;

    let messages: Vec<Value> = (0..6)
        .map(|i| json!({"key": format!("c{}", i % 3), "partition": i % 2, "value": {"amount": i * 10, "currency": if i % 2 == 0 { "EUR" } else { "USD" }}, "headers": {"origin": "test"}}))
        .collect();
    let written = ok(
        &client,
        "stream_produce",
        json!({"topic": "payments", "messages": messages}),
    )
    .await;
    assert_eq!(written["written"].as_array().expect("present").len(), 6);

    let topics = ok(&client, "stream_list_topics", json!({})).await;
    assert_eq!(topics["topics"][0]["name"], "payments");
    assert_eq!(topics["topics"][0]["partitions"], 2);
    assert_eq!(topics["topics"][0]["approx_messages"], 6);

    let read = ok(
        &client,
        "stream_read",
        json!({"topic": "payments", "max_messages": 100}),
    )
    .await;
    assert_eq!(read["messages"].as_array().expect("present").len(), 6);
    assert_eq!(read["stopped"], "end_of_data");
    assert_eq!(read["messages"][0]["headers"], json!({"origin": "test"}));

    let filtered = ok(
        &client,
        "stream_read",
        json!({"topic": "payments", "filter": "value.currency == 'USD' && value.amount >= 30"}),
    )
    .await;
    assert_eq!(filtered["stats"]["scanned"], 6);
    assert_eq!(filtered["stats"]["matched"], 2);

    let page = ok(
        &client,
        "stream_read",
        json!({"topic": "payments", "max_messages": 4}),
    )
    .await;
    assert_eq!(page["truncated"], true);
    let rest = ok(
        &client,
        "stream_read",
        json!({"topic": "payments", "cursor": page["cursor"]}),
    )
    .await;
    assert_eq!(rest["messages"].as_array().expect("present").len(), 2);

    let summary = ok(
        &client,
        "stream_aggregate",
        json!({"topic": "payments", "window_ms": 3_600_000, "group_by": "currency", "field": "amount"}),
    )
    .await;
    let sums: Vec<(String, f64)> = summary["rows"]
        .as_array()
        .expect("present")
        .iter()
        .map(|r| {
            (
                r["group"].as_str().expect("present").to_owned(),
                r["sum"].as_f64().expect("present"),
            )
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Vec::new(), |mut acc: Vec<(String, f64)>, (g, s)| {
            match acc.iter_mut().find(|(name, _)| *name == g) {
                Some(entry) => entry.1 += s,
                None => acc.push((g, s)),
            }
            acc
        });
    assert!(sums.contains(&("EUR".to_owned(), 60.0)), "{sums:?}");
    assert!(sums.contains(&("USD".to_owned(), 90.0)), "{sums:?}");

    // A group that committed before the agent looked keeps exactly its offsets.
    let kafka = Kafka::attach(&broker.bootstrap());
    kafka.commit("billing", "payments", &[(0, 1), (1, 1)]);
    let before = kafka.committed("billing", "payments", 2);
    let described = ok(
        &client,
        "stream_describe_topic",
        json!({"topic": "payments", "lag_window_ms": 600}),
    )
    .await;
    let billing = described["consumer_groups"]
        .as_array()
        .expect("present")
        .iter()
        .find(|g| g["group"] == "billing")
        .cloned()
        .expect("billing judged");
    assert_eq!(billing["total_lag"], 4, "{billing}");
    assert_eq!(billing["state"], "Empty");
    assert_eq!(billing["verdict"], "stopped");
    ok(
        &client,
        "stream_read",
        json!({"topic": "payments", "max_messages": 100}),
    )
    .await;
    assert_eq!(kafka.committed("billing", "payments", 2), before);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_broker_that_goes_down_is_a_clear_error_and_reads_work_again_when_it_returns() {
    let mut broker = Broker::start();
    broker.create_topic("payments", 1).await;
    let sandbox = Sandbox::new("");
    config(&sandbox, &broker);
    let client = connect(Some(&sandbox.config())).await;
    ok(
        &client,
        "stream_produce",
        json!({"topic": "payments", "messages": [{"value": 1}]}),
    )
    .await;
    let first = ok(&client, "stream_read", json!({"topic": "payments"})).await;
    assert_eq!(first["messages"].as_array().expect("present").len(), 1);

    broker.down();
    let started = Instant::now();
    let down = call(
        &client,
        "stream_read",
        json!({"topic": "payments", "max_wait_ms": 2000}),
    )
    .await;
    assert!(is_error(&down), "{}", text(&down));
    assert!(text(&down).contains(&broker.bootstrap()), "{}", text(&down));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    broker.up();
    broker.create_topic("payments", 1).await;
    ok(
        &client,
        "stream_produce",
        json!({"topic": "payments", "messages": [{"value": 2}]}),
    )
    .await;
    let again = ok(&client, "stream_read", json!({"topic": "payments"})).await;
    assert_eq!(again["messages"][0]["value"], 2);
    client.cancel().await.expect("close");
}
