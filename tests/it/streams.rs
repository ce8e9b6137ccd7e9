//! Kafka streams end to end on librdkafka's mock cluster: the real `datamcp` binary over stdio,
//! a config pointing at a cluster the test fills with messages at known offsets and times, and
//! every stream tool: each start position, decoding, filters with scan stats, the cursor, every
//! limit, windows and late messages, produce gated off and on, consumer lag, and a group's
//! committed offsets left exactly as they were.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rmcp::model::{ProgressNotificationParam, ProtocolVersion};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

use crate::support::*;

/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;

/// A message to write: partition, timestamp (ms), key, value, headers.
pub type Outgoing<'a> = (
    i32,
    i64,
    Option<&'a str>,
    &'a [u8],
    &'a [(&'a str, &'a str)],
);

/// A mock cluster on its own thread (it must stay on the thread that made it).
pub struct Kafka {
    pub bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
}

impl Kafka {
    /// A cluster with `topics` (name, partitions).
    pub fn start(topics: &[(&str, i32)]) -> Kafka {
        let topics: Vec<(String, i32)> =
            topics.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let cluster = MockCluster::new(1).expect("mock cluster");
            for (topic, partitions) in &topics {
                cluster.create_topic(topic, *partitions, 1).expect("topic");
            }
            ready_tx.send(cluster.bootstrap_servers()).expect("ready");
            let _ = stop_rx.recv();
        });
        Kafka {
            bootstrap: ready_rx.recv().expect("bootstrap"),
            stop: Some(stop_tx),
        }
    }

    /// A handle on a broker the test did not start (nothing to stop).
    pub fn attach(bootstrap: &str) -> Kafka {
        Kafka {
            bootstrap: bootstrap.to_owned(),
            stop: None,
        }
    }

    /// Writes messages: (partition, timestamp ms, key, value, headers).
    pub fn produce(&self, topic: &str, messages: &[Outgoing<'_>]) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        for (partition, timestamp, key, value, headers) in messages {
            let mut owned = OwnedHeaders::new();
            for (name, value) in *headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(*value),
                });
            }
            let mut record = BaseRecord::<str, [u8]>::to(topic)
                .payload(value)
                .partition(*partition)
                .timestamp(*timestamp)
                .headers(owned);
            if let Some(key) = key {
                record = record.key(key);
            }
            producer.send(record).map_err(|(e, _)| e).expect("send");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
    }

    /// Commits `offsets` (partition, offset) for `group` on `topic`, as a consumer would.
    pub fn commit(&self, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let consumer = self.group_consumer(group);
        let mut list = TopicPartitionList::new();
        for (partition, offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .expect("offset");
        }
        consumer.commit(&list, CommitMode::Sync).expect("commit");
    }

    /// The committed offsets of `group` on `topic`'s first `partitions` partitions.
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<(i32, Offset)> {
        let consumer = self.group_consumer(group);
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(5))
            .expect("committed");
        committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect()
    }

    fn group_consumer(&self, group: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer")
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The `events` topic: 2 partitions of 10 messages each, one per second from T0, values
/// `{"n": i, "kind": a|b, "amount": i * 1.5}`, keys `k<i>`, a header; partition 1 also holds a
/// text value and a binary one at its end.
fn events_cluster() -> Kafka {
    let kafka = Kafka::start(&[("events", 2), ("other", 1)]);
    let values: Vec<(i32, i64, String, Vec<u8>)> = (0..2)
        .flat_map(|p| {
            (0..10).map(move |i| {
                let kind = if i % 2 == 0 { "a" } else { "b" };
                let value = json!({"n": i, "kind": kind, "amount": f64::from(i) * 1.5}).to_string();
                (
                    p,
                    T0 + i64::from(i) * 1_000,
                    format!("k{i}"),
                    value.into_bytes(),
                )
            })
        })
        .collect();
    let mut messages: Vec<Outgoing<'_>> = values
        .iter()
        .map(|(p, t, k, v)| {
            (
                *p,
                *t,
                Some(k.as_str()),
                v.as_slice(),
                &[("source", "test")][..],
            )
        })
        .collect();
    messages.push((1, T0 + 10_000, None, b"not json at all", &[]));
    messages.push((1, T0 + 11_000, None, &[0xff, 0xfe, 0x00], &[]));
    kafka.produce("events", &messages);
    kafka
}

/// A sandbox whose config adds a Kafka source `k` on `kafka` with `extra` settings.
fn sandbox(kafka: &Kafka, extra: &str) -> Sandbox {
    Sandbox::new(&format!(
        "[streams.k]\nkind = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"events\", \"other\", \"fresh\"]\n{extra}\n",
        kafka.bootstrap
    ))
}

async fn read(
    client: &rmcp::service::RunningService<RoleClient, impl ClientHandler>,
    args: Value,
) -> serde_json::Map<String, Value> {
    let result = call_on(client, "stream_read", args).await;
    assert!(!is_error(&result), "{}", text(&result));
    structured(&result)
}

async fn call_on(
    client: &rmcp::service::RunningService<RoleClient, impl ClientHandler>,
    tool: &str,
    arguments: Value,
) -> rmcp::model::CallToolResult {
    client
        .call_tool(
            rmcp::model::CallToolRequestParams::new(tool.to_owned())
                .with_arguments(self::arguments(arguments)),
        )
        .await
        .expect("tools/call answered")
}

fn offsets(messages: &Value) -> Vec<(i64, i64)> {
    messages
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["partition"].as_i64().expect("present"),
                m["offset"].as_i64().expect("present"),
            )
        })
        .collect()
}

#[tokio::test]
async fn reads_start_where_asked_and_stop_at_the_end_of_the_data() {
    let kafka = events_cluster();
    let sandbox = sandbox(&kafka, "");
    let client = connect(Some(&sandbox.config())).await;

    let all = read(&client, json!({"topic": "events", "max_messages": 100})).await;
    assert_eq!(all["messages"].as_array().expect("present").len(), 22);
    assert_eq!(all["stopped"], "end_of_data");
    assert_eq!(all["truncated"], false);
    assert_eq!(all["stats"]["scanned"], 22);

    let tail = read(&client, json!({"topic": "events", "start": {"tail": 2}})).await;
    let mut got = offsets(&tail["messages"]);
    got.sort();
    assert_eq!(got, [(0, 8), (0, 9), (1, 10), (1, 11)]);

    let from = read(
        &client,
        json!({"topic": "events", "partitions": [0], "start": {"offset": 7}}),
    )
    .await;
    assert_eq!(offsets(&from["messages"]), [(0, 7), (0, 8), (0, 9)]);

    let by_time = read(
        &client,
        json!({"topic": "events", "partitions": [0], "start": {"timestamp": "2025-01-01T00:00:07.500Z"}}),
    )
    .await;
    assert_eq!(offsets(&by_time["messages"]), [(0, 8), (0, 9)]);
    let by_ms = read(
        &client,
        json!({"topic": "events", "partitions": [0], "start": {"timestamp": T0 + 9_000}}),
    )
    .await;
    assert_eq!(offsets(&by_ms["messages"]), [(0, 9)]);

    // `latest` waits for new messages only.
    let quiet = read(
        &client,
        json!({"topic": "events", "start": "latest", "max_wait_ms": 300}),
    )
    .await;
    assert_eq!(quiet["messages"], json!([]));
    assert_eq!(quiet["stopped"], "max_wait");
    let writer = std::thread::spawn({
        let bootstrap = kafka.bootstrap.clone();
        move || {
            std::thread::sleep(Duration::from_millis(700));
            let kafka = Kafka {
                bootstrap,
                stop: None,
            };
            kafka.produce(
                "events",
                &[(0, T0 + 60_000, Some("new"), br#"{"n":99}"#, &[])],
            );
        }
    });
    let fresh = read(
        &client,
        json!({"topic": "events", "start": "latest", "max_messages": 1, "max_wait_ms": 10000}),
    )
    .await;
    writer.join().expect("writer");
    assert_eq!(fresh["messages"][0]["value"], json!({"n": 99}));
    assert_eq!(fresh["stopped"], "max_messages");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn keys_values_and_headers_are_decoded_as_asked() {
    let kafka = events_cluster();
    let sandbox = sandbox(&kafka, "");
    let client = connect(Some(&sandbox.config())).await;
    let first = read(
        &client,
        json!({"topic": "events", "partitions": [1], "max_messages": 1}),
    )
    .await;
    let message = &first["messages"][0];
    assert_eq!(message["key"], "k0");
    assert_eq!(
        message["value"],
        json!({"n": 0, "kind": "a", "amount": 0.0})
    );
    assert_eq!(message["headers"], json!({"source": "test"}));
    assert_eq!(message["timestamp"], "2025-01-01T00:00:00.000Z");
    assert!(
        message.get("encoding").is_none(),
        "JSON is the default: {message}"
    );

    let odd = read(
        &client,
        json!({"topic": "events", "partitions": [1], "start": {"offset": 10}}),
    )
    .await;
    assert_eq!(odd["messages"][0]["value"], "not json at all");
    assert_eq!(odd["messages"][0]["encoding"], "text");
    assert_eq!(odd["messages"][1]["value"], "//4A");
    assert_eq!(odd["messages"][1]["encoding"], "base64");

    let strict = read(
        &client,
        json!({"topic": "events", "partitions": [1], "start": {"offset": 9}, "value_format": "json"}),
    )
    .await;
    assert_eq!(strict["stats"]["decode_errors"], 2);

    let as_text = read(
        &client,
        json!({"topic": "events", "partitions": [0], "max_messages": 1, "value_format": "base64"}),
    )
    .await;
    // Base64 of `{"amount":0.0,"kind":"a","n":0}`.
    assert_eq!(
        as_text["messages"][0]["value"],
        "eyJhbW91bnQiOjAuMCwia2luZCI6ImEiLCJuIjowfQ=="
    );
    assert_eq!(as_text["messages"][0]["encoding"], "base64");
    assert_eq!(as_text["messages"][0]["key"], "k0");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_filter_runs_while_scanning_and_reports_what_it_scanned() {
    let kafka = events_cluster();
    let sandbox = sandbox(&kafka, "");
    let client = connect(Some(&sandbox.config())).await;
    let big = read(
        &client,
        json!({"topic": "events", "filter": "value.n >= 8", "max_messages": 100}),
    )
    .await;
    assert_eq!(big["stats"]["scanned"], 22);
    assert_eq!(big["stats"]["matched"], 4);
    // The two values that are not JSON objects make the filter fail: counted, not matched.
    assert_eq!(big["stats"]["filter_errors"], 2);
    assert!(
        big["notes"][0]
            .as_str()
            .expect("present")
            .contains("failed on 2"),
        "{big:?}"
    );

    let malformed = read(
        &client,
        json!({"topic": "events", "filter": "format != 'json'"}),
    )
    .await;
    assert_eq!(offsets(&malformed["messages"]), [(1, 10), (1, 11)]);

    let by_header = read(
        &client,
        json!({"topic": "events", "filter": "headers.source == 'test' && key == 'k3' && partition == 1"}),
    )
    .await;
    assert_eq!(offsets(&by_header["messages"]), [(1, 3)]);

    let bad = call_on(
        &client,
        "stream_read",
        json!({"topic": "events", "filter": "steps.x > 1"}),
    )
    .await;
    assert!(is_error(&bad));
    assert!(text(&bad).contains("`steps`"), "{}", text(&bad));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_cursor_continues_exactly_where_a_read_stopped() {
    let kafka = events_cluster();
    let sandbox = sandbox(&kafka, "");
    let client = connect(Some(&sandbox.config())).await;
    let mut seen = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..20 {
        let mut args = json!({"topic": "events", "max_messages": 3});
        if let Some(cursor) = &cursor {
            args["cursor"] = cursor.clone();
        }
        let page = read(&client, args).await;
        seen.extend(offsets(&page["messages"]));
        if page["truncated"] == false {
            break;
        }
        cursor = Some(page["cursor"].clone());
    }
    seen.sort();
    let expected: Vec<(i64, i64)> = (0..10)
        .map(|o| (0, o))
        .chain((0..12).map(|o| (1, o)))
        .collect();
    assert_eq!(seen, expected, "every message once");

    let page = read(&client, json!({"topic": "events", "max_messages": 1})).await;
    let other = call_on(
        &client,
        "stream_read",
        json!({"topic": "other", "cursor": page["cursor"]}),
    )
    .await;
    assert!(is_error(&other));
    assert!(
        text(&other).contains("belongs to topic 'events'"),
        "{}",
        text(&other)
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn every_limit_stops_the_read_and_says_so() {
    let kafka = events_cluster();
    let sandbox = sandbox(&kafka, "");
    let client = connect(Some(&sandbox.config())).await;
    let bytes = read(
        &client,
        json!({"topic": "events", "max_messages": 100, "max_bytes": 1024}),
    )
    .await;
    assert_eq!(bytes["stopped"], "max_bytes");
    assert_eq!(bytes["truncated"], true);
    let kept = bytes["messages"].as_array().expect("present").len();
    assert!((1..22).contains(&kept), "{kept}");
    let size: usize = bytes["messages"]
        .as_array()
        .expect("present")
        .iter()
        .map(|m| m["value"].to_string().len() + m["key"].to_string().len())
        .sum();
    assert!(size <= 1024, "{size}");

    let scan = read(
        &client,
        json!({"topic": "events", "max_scan": 5, "filter": "value.n > 100"}),
    )
    .await;
    assert_eq!(
        (scan["stopped"].clone(), scan["stats"]["scanned"].clone()),
        (json!("max_scan"), json!(5))
    );
    assert!(scan["cursor"].is_string());

    let started = Instant::now();
    let wait = read(
        &client,
        json!({"topic": "events", "start": "latest", "max_wait_ms": 400}),
    )
    .await;
    assert_eq!(wait["stopped"], "max_wait");
    assert!(started.elapsed() < Duration::from_secs(5));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_missing_topic_a_refused_topic_and_a_dead_broker_are_clear_errors() {
    let kafka = events_cluster();
    let sandbox = Sandbox::new(&format!(
        "[streams.k]\nkind = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"events\", \"nothere\"]\n\n[streams.dead]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:1\"\ntimeout_ms = 1000\n",
        kafka.bootstrap
    ));
    let client = connect(Some(&sandbox.config())).await;
    let sources = structured(&call_on(&client, "stream_list_sources", json!({})).await);
    let names: Vec<(&str, &str)> = sources["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name"),
                s["kind"].as_str().expect("kind"),
            )
        })
        .collect();
    assert_eq!(names, [("dead", "kafka"), ("k", "kafka")]);
    assert_eq!(
        sources["sources"][1]["topics"],
        json!(["events", "nothere"])
    );
    let unnamed = call_on(&client, "stream_read", json!({"topic": "events"})).await;
    assert!(
        text(&unnamed).contains("name the source: one of dead, k"),
        "{}",
        text(&unnamed)
    );

    let missing = call_on(
        &client,
        "stream_read",
        json!({"source": "k", "topic": "nothere"}),
    )
    .await;
    assert!(is_error(&missing));
    assert!(
        text(&missing).contains("does not exist"),
        "{}",
        text(&missing)
    );

    let refused = call_on(
        &client,
        "stream_read",
        json!({"source": "k", "topic": "other"}),
    )
    .await;
    assert!(is_error(&refused));
    assert!(text(&refused).contains("allow-list"), "{}", text(&refused));

    let started = Instant::now();
    let dead = call_on(
        &client,
        "stream_read",
        json!({"source": "dead", "topic": "x", "max_wait_ms": 1000}),
    )
    .await;
    assert!(is_error(&dead));
    assert!(text(&dead).contains("127.0.0.1:1"), "{}", text(&dead));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // The server keeps serving.
    let listed = call_on(&client, "stream_list_topics", json!({"source": "k"})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    client.cancel().await.expect("close");
}

/// A client that keeps progress notifications.
#[derive(Clone, Default)]
struct Progress(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for Progress {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.0.lock().expect("log").push(params);
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        client_info(ProtocolVersion::V_2025_11_25)
    }
}

#[tokio::test]
async fn windows_count_messages_at_known_times_and_late_ones_are_stated() {
    let kafka = events_cluster();
    // A late message on partition 0: it happened at T0+1s but arrives after T0+9s.
    kafka.produce(
        "events",
        &[(
            0,
            T0 + 1_000,
            Some("late"),
            br#"{"n":100,"kind":"a","amount":1000}"#,
            &[],
        )],
    );
    let sandbox = sandbox(&kafka, "");
    let progress = Progress::default();
    let client = connect_stdio_with(progress.clone(), &sandbox.config()).await;

    let result = call_on(
        &client,
        "stream_aggregate",
        json!({"topic": "events", "partitions": [0], "window_ms": 5000, "field": "amount", "stats": ["count", "sum", "max", "p50"]}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    let rows = out["rows"].as_array().expect("present");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["window_start"], "2025-01-01T00:00:00.000Z");
    assert_eq!(rows[0]["count"], 5);
    assert_eq!(rows[0]["sum"], 15.0); // 0 + 1.5 + 3 + 4.5 + 6
    assert_eq!(rows[0]["p50"], 3.0);
    assert_eq!(rows[0]["late"], 1);
    assert_eq!(rows[1]["count"], 5);
    assert_eq!(rows[1]["max"], 13.5);
    assert_eq!(out["late"], 1);
    assert_eq!(out["stopped"], "end_of_data");

    // Grouped, hopping, with lateness allowed: the late message counts.
    let grouped = call_on(
        &client,
        "stream_aggregate",
        json!({"topic": "events", "partitions": [0], "window_ms": 10000, "hop_ms": 5000, "group_by": "kind", "allowed_lateness_ms": 60000}),
    )
    .await;
    let grouped = structured(&grouped);
    assert_eq!(grouped["late"], 0);
    let first: Vec<(String, i64)> = grouped["rows"]
        .as_array()
        .expect("present")
        .iter()
        .filter(|r| r["window_start"] == "2025-01-01T00:00:00.000Z")
        .map(|r| {
            (
                r["group"].as_str().expect("present").to_owned(),
                r["count"].as_i64().expect("present"),
            )
        })
        .collect();
    assert_eq!(first, [("a".to_owned(), 6), ("b".to_owned(), 5)]);

    // Micro-batches: each closed window goes out as progress while the read runs.
    progress.0.lock().expect("present").clear();
    let batches = call_on(
        &client,
        "stream_aggregate",
        json!({"topic": "events", "partitions": [0], "window_ms": 2, "mode": "micro_batch", "time_field": "n"}),
    )
    .await;
    assert!(!is_error(&batches), "{}", text(&batches));
    let sent = progress.0.lock().expect("present").clone();
    assert!(!sent.is_empty(), "windows arrive as progress");
    let first: Value =
        serde_json::from_str(sent[0].message.as_deref().expect("present")).expect("present");
    assert_eq!(
        first[0]["window_start"], "1970-01-01T00:00:00.000Z",
        "{first}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn produce_is_hidden_unless_allowed_and_writes_what_it_says() {
    let kafka = events_cluster();
    let closed = sandbox(&kafka, "");
    let client = connect(Some(&closed.config())).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().all(|t| t.name != "stream_produce"));
    client.cancel().await.expect("close");

    // Writes need the source's allow_produce and a server that is not read-only.
    let open = sandbox(&kafka, "allow_produce = true");
    let config = std::fs::read_to_string(open.config()).expect("config");
    std::fs::write(open.config(), format!("read_only = false\n{config}")).expect("config");
    let client = connect(Some(&open.config())).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let produce = tools
        .iter()
        .find(|t| t.name == "stream_produce")
        .expect("listed");
    assert_eq!(
        produce.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(false)
    );
    let written = call_on(
        &client,
        "stream_produce",
        json!({"topic": "other", "messages": [
            {"key": "a", "value": {"x": 1}, "headers": {"h": "v"}},
            {"value": "plain", "text": true}
        ]}),
    )
    .await;
    assert!(!is_error(&written), "{}", text(&written));
    assert_eq!(
        structured(&written)["written"],
        json!([{"partition": 0, "offset": 0}, {"partition": 0, "offset": 1}])
    );
    let back = read(&client, json!({"topic": "other"})).await;
    assert_eq!(back["messages"][0]["value"], json!({"x": 1}));
    assert_eq!(back["messages"][0]["headers"], json!({"h": "v"}));
    assert_eq!(back["messages"][1]["value"], "plain");

    let refused = call_on(
        &client,
        "stream_produce",
        json!({"topic": "notallowed", "messages": [{"value": 1}]}),
    )
    .await;
    assert!(is_error(&refused));
    assert!(text(&refused).contains("allow-list"), "{}", text(&refused));
    client.cancel().await.expect("close");

    // A read-only server (the default) hides the write whatever the source allows.
    let read_only = sandbox(&kafka, "allow_produce = true");
    let client = connect(Some(&read_only.config())).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().all(|t| t.name != "stream_produce"));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn lag_is_judged_per_group_and_reading_leaves_committed_offsets_alone() {
    let kafka = events_cluster();
    kafka.commit("billing", "events", &[(0, 4), (1, 12)]);
    let before = kafka.committed("billing", "events", 2);
    let sandbox = sandbox(&kafka, "groups = [\"billing\"]");
    let client = connect(Some(&sandbox.config())).await;

    // Reads and aggregations of every kind.
    read(&client, json!({"topic": "events", "max_messages": 100})).await;
    read(&client, json!({"topic": "events", "start": {"tail": 3}})).await;
    let _ = call_on(
        &client,
        "stream_aggregate",
        json!({"topic": "events", "window_ms": 1000}),
    )
    .await;

    let described = call_on(
        &client,
        "stream_describe_topic",
        json!({"topic": "events", "lag_window_ms": 500}),
    )
    .await;
    assert!(!is_error(&described), "{}", text(&described));
    let out = structured(&described);
    assert_eq!(out["partitions"].as_array().expect("present").len(), 2);
    assert_eq!(out["partitions"][1]["high"], 12);
    let billing = &out["consumer_groups"][0];
    assert_eq!(billing["group"], "billing");
    assert_eq!(billing["total_lag"], 6);
    // The mock cluster does not list groups, so nobody knows whether billing has members: an
    // offset that stays put while messages wait is stalled, never guessed to be stopped.
    assert_eq!(billing["verdict"], "stalled", "{billing}");
    assert!(billing.get("members").is_none(), "{billing}");
    assert_eq!(billing["partitions"][0]["lag"], 6);
    assert_eq!(billing["partitions"][1]["verdict"], "ok");
    assert!(billing["samples"].as_u64().expect("present") >= 2);

    assert_eq!(
        kafka.committed("billing", "events", 2),
        before,
        "reading moved no committed offset"
    );
    assert!(
        kafka
            .committed("datamcp-unused", "events", 2)
            .iter()
            .all(|(_, o)| *o == Offset::Invalid),
        "datamcp committed nothing under its own id"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_stream_tool_runs_as_a_workflow_step_beside_sql() {
    let kafka = events_cluster();
    let sandbox = sandbox(&kafka, "");
    let workflow = r#"name: kinds_per_window
description: Counts events per kind and looks up how many customers the shop has.
steps:
  - id: per_kind
    tool: stream_aggregate
    args:
      source: k
      topic: events
      window_ms: 60000
      group_by: kind
  - id: customers
    tool: sql_query
    args:
      sql: SELECT count(*) AS n FROM customers
output:
  rows: "${{ steps.per_kind.output.rows }}"
  customers: "${{ steps.customers.output.rows[0][0] }}"
"#;
    std::fs::write(sandbox.dir.path().join("kinds.yaml"), workflow).expect("workflow");
    std::fs::write(
        sandbox.config(),
        format!(
            "{}\n[workflows]\npaths = [\"kinds.yaml\"]\n",
            std::fs::read_to_string(sandbox.config()).expect("config")
        ),
    )
    .expect("config");
    let client = connect(Some(&sandbox.config())).await;
    let result = call_on(&client, "kinds_per_window", json!({})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    let output = &out["output"];
    assert_eq!(output["customers"], 2500, "{out:?}");
    let counts: Vec<i64> = output["rows"]
        .as_array()
        .expect("present")
        .iter()
        .map(|r| r["count"].as_i64().expect("present"))
        .collect();
    assert_eq!(counts.iter().sum::<i64>(), 22, "{output}");
    client.cancel().await.expect("close");
}
