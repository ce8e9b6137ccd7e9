//! What a kind of stream source (Kafka, an HTTP event stream, a WebSocket, …) provides to the
//! tools. The tools know only this trait: a new kind of source (Pub/Sub, Kinesis) is a new
//! implementation and one arm in `config.rs`, never a change to a tool.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scan::Scan;
use super::time::TimeArg;
use crate::tools::{CallContext, ToolError};

/// A configured source of messages.
pub trait Source: Send + Sync {
    /// Its name in the config (`[streams.NAME]`).
    fn name(&self) -> &str;

    /// What the listing shows about it.
    fn info(&self) -> SourceInfo;

    /// Whether `topic` (a Kafka topic, a URL path) is on the allow-list.
    fn allows(&self, topic: &str) -> bool;

    /// The allow-listed topics with their size, or the one live stream of an HTTP/WebSocket
    /// source.
    fn list_topics<'a>(
        &'a self,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<TopicSummary>, ToolError>>;

    /// Per-partition offsets, configuration, and the consumer groups reading the topic with
    /// their lag judged over `lag`.
    fn describe_topic<'a>(
        &'a self,
        ctx: &'a CallContext,
        request: &'a DescribeRequest,
    ) -> BoxFuture<'a, Result<TopicDescription, ToolError>>;

    /// Reads messages into `scan` until one of its limits, the end of the data, or `plan`'s
    /// wait runs out; returns the scan, stopped, with its positions.
    fn read<'a>(
        &'a self,
        ctx: &'a CallContext,
        plan: ReadPlan,
        scan: Scan,
    ) -> BoxFuture<'a, Result<Scan, ToolError>>;

    /// Writes messages. Only sources configured with `allow_produce` do.
    fn produce<'a>(
        &'a self,
        ctx: &'a CallContext,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Produced>, ToolError>> {
        let _ = (ctx, topic, messages);
        Box::pin(async move {
            Err(ToolError::Refused(format!(
                "source '{}' does not accept messages; only Kafka sources with allow_produce = true do",
                self.name()
            )))
        })
    }

    /// Stops what the source keeps running (a demo cluster). Runs once, at shutdown.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// One source, as `stream_list_sources` shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SourceInfo {
    /// Name to pass as `source`.
    pub name: String,
    /// kafka, http, websocket or demo (a Kafka source on an embedded cluster).
    pub kind: String,
    /// What it carries, from the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The topics or paths that may be read (`*` matches any run of characters).
    pub topics: Vec<String>,
    /// Whether it keeps messages with offsets (Kafka: reads can start in the past and continue
    /// from a cursor) or is a live stream read from now on.
    pub replayable: bool,
    /// Whether `stream_produce` may write to it.
    pub can_produce: bool,
}

/// One topic in `stream_list_topics`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TopicSummary {
    /// Topic name (for a live HTTP/WebSocket stream: its path, or empty for the source's URL).
    pub name: String,
    /// Number of partitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Replicas per partition (the smallest over the partitions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<u32>,
    /// Messages held, approximately: the sum of high minus low watermarks (compaction and
    /// transaction markers make it an upper bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approx_messages: Option<i64>,
    /// Per partition: [partition, low watermark, high watermark].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watermarks: Vec<[i64; 3]>,
}

/// What `stream_describe_topic` asks of a source.
#[derive(Debug, Clone)]
pub struct DescribeRequest {
    /// The topic (already checked against the allow-list).
    pub topic: String,
    /// Consumer groups to judge; empty means every group the cluster lists that reads the topic.
    pub groups: Vec<String>,
    /// How long to sample committed offsets during the call.
    pub lag_window: Duration,
}

/// Result of `stream_describe_topic`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TopicDescription {
    /// The topic.
    pub topic: String,
    /// Per-partition offsets and placement.
    pub partitions: Vec<PartitionInfo>,
    /// The topic's configuration entries that differ from the broker's defaults (all of them
    /// when the broker does not say which are defaults).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Consumer groups with committed offsets on this topic, and how they keep up.
    pub consumer_groups: Vec<GroupLag>,
    /// What could not be found out, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One partition's placement and offsets.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PartitionInfo {
    /// Partition id.
    pub partition: i32,
    /// Broker id of the leader.
    pub leader: i32,
    /// Broker ids of the replicas.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub in_sync: Vec<i32>,
    /// Oldest offset still held.
    pub low: i64,
    /// Offset the next message will get.
    pub high: i64,
}

/// How a consumer group keeps up with a topic.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GroupLag {
    /// Group id.
    pub group: String,
    /// The group's state as the coordinator reports it (Stable, Empty, …), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Active members, when the cluster lists the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<u32>,
    /// Messages behind, over all partitions, at the last sample.
    pub total_lag: i64,
    /// The worst partition's verdict: ok, lagging, stalled, stopped, or unknown.
    pub verdict: Verdict,
    /// Why the verdict is what it is, in one sentence.
    pub reason: String,
    /// Per partition.
    pub partitions: Vec<PartitionLag>,
    /// Samples the verdict was judged on, and the time they span.
    pub samples: u32,
    /// Milliseconds between the first and the last sample.
    pub window_ms: u64,
}

/// One partition of a group.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PartitionLag {
    /// Partition id.
    pub partition: i32,
    /// The group's committed offset (absent: none committed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<i64>,
    /// High watermark at the last sample.
    pub high: i64,
    /// Messages behind at the last sample.
    pub lag: i64,
    /// This partition's verdict.
    pub verdict: Verdict,
}

/// A Burrow-style judgement of a consumer over a window of samples (not one threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Caught up at some sample, or the lag is shrinking.
    Ok,
    /// Too few samples to judge.
    Unknown,
    /// Committing, but the lag did not shrink in any interval.
    Lagging,
    /// Members are active but the committed offset did not move while messages wait.
    Stalled,
    /// No active member and messages wait: nobody consumes.
    Stopped,
}

/// Where a read starts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Start {
    /// `earliest` (the oldest message held) or `latest` (only messages that arrive during the
    /// read).
    Named(NamedStart),
    /// The last `tail` messages of each partition.
    Tail { tail: u64 },
    /// This offset in each partition.
    Offset { offset: i64 },
    /// The first message at or after this time.
    Timestamp { timestamp: TimeArg },
}

/// The schema is written out: the generated one repeats every variant's docs, and every model
/// that sees `stream_read` pays for its size. The tools' parameter docs explain the forms.
impl JsonSchema for Start {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Start".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                {"enum": ["earliest", "latest"]},
                {
                    "type": "object",
                    "properties": {
                        "tail": {"type": "integer", "minimum": 0},
                        "offset": {"type": "integer"},
                        "timestamp": {"type": ["integer", "string"]}
                    },
                    "additionalProperties": false,
                    "minProperties": 1,
                    "maxProperties": 1
                }
            ]
        })
    }
}

/// `earliest` or `latest`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NamedStart {
    /// The oldest message held.
    Earliest,
    /// Only messages that arrive during the read.
    Latest,
}

/// What to read, resolved by the tool: the source does the I/O.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// Topic or path, already on the allow-list (empty: the source's own URL).
    pub topic: String,
    /// Partitions to read (none: all).
    pub partitions: Option<Vec<i32>>,
    /// Where to start.
    pub start: Start,
    /// Exact next offsets per partition, from a cursor; overrides `start` and `partitions`.
    pub resume: Option<BTreeMap<i32, i64>>,
    /// From a cursor too: messages before this time are skipped (the read it continues
    /// started at a time the broker could not look up).
    pub resume_skip_before: Option<i64>,
    /// Longest the read waits for messages (already capped by the call's deadline).
    pub max_wait: Duration,
}

/// A message to write.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Partition, or the partitioner's choice.
    pub partition: Option<i32>,
}

/// Where a written message landed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Produced {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// A source's configured description and allow-list, the part every kind of source shares.
#[derive(Debug, Clone)]
pub struct AllowList {
    patterns: Vec<String>,
}

impl AllowList {
    /// Patterns where `*` matches any run of characters and `?` one character.
    pub fn new(patterns: Vec<String>) -> Self {
        AllowList { patterns }
    }

    /// The patterns.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `name` matches a pattern.
    pub fn allows(&self, name: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// Shell-style matching of `*` and `?` (no classes), iterative with one backtrack point.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The JSON a start position was given as, for messages.
pub fn describe_start(start: &Start) -> String {
    match start {
        Start::Named(NamedStart::Earliest) => "earliest".into(),
        Start::Named(NamedStart::Latest) => "latest".into(),
        Start::Tail { tail } => format!("tail {tail}"),
        Start::Offset { offset } => format!("offset {offset}"),
        Start::Timestamp { timestamp } => format!("timestamp {}", Value::from(timestamp.millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_globs_whole_names_only() {
        let list = AllowList::new(vec!["orders".into(), "payments.*".into(), "a?c".into()]);
        assert!(list.allows("orders"));
        assert!(!list.allows("orders2"));
        assert!(list.allows("payments.eu"));
        assert!(list.allows("payments."));
        assert!(!list.allows("payment.eu"));
        assert!(list.allows("abc"));
        assert!(!list.allows("abbc"));
        assert!(AllowList::new(vec!["*".into()]).allows("anything"));
        assert!(!AllowList::new(vec![]).allows("anything"));
    }

    #[test]
    fn start_positions_parse_from_the_documented_forms() {
        let parse = |v: Value| serde_json::from_value::<Start>(v).expect("valid");
        assert_eq!(parse("earliest".into()), Start::Named(NamedStart::Earliest));
        assert_eq!(
            parse(serde_json::json!({"tail": 5})),
            Start::Tail { tail: 5 }
        );
        assert_eq!(
            parse(serde_json::json!({"offset": 7})),
            Start::Offset { offset: 7 }
        );
        assert_eq!(
            parse(serde_json::json!({"timestamp": "2024-12-31T10:00:00Z"})),
            Start::Timestamp {
                timestamp: TimeArg::Millis(1_735_639_200_000)
            }
        );
    }
}
