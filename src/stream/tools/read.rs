//! `stream_read`: a bounded read of a topic or a live stream, optionally filtered while
//! scanning, with a cursor to continue.

use std::any::Any;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Sources, scan_deadline, source, topic, wait};
use crate::stream::cursor;
use crate::stream::scan::{
    Collector, Encoding, FILTER_VARIABLES, Filter, Format, Formats, Limits, Scan, ScanStats, Stop,
    Take, View,
};
use crate::stream::source::{NamedStart, ReadPlan, Start};
use crate::stream::time::format_millis;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `stream_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    /// Default: the only source.
    pub source: Option<String>,
    /// Topic (or path of a live source).
    pub topic: Option<String>,
    /// Default: all.
    pub partitions: Option<Vec<i32>>,
    /// "earliest" (default), "latest" (new only), {"tail":N} per partition, {"offset":N},
    /// {"timestamp": ms or RFC 3339}.
    pub start: Option<Start>,
    /// From an earlier read: continue where it stopped.
    pub cursor: Option<String>,
    /// Default 20.
    #[schemars(range(min = 1, max = 10_000))]
    pub max_messages: Option<u64>,
    /// Bytes of returned messages (default 65536).
    #[schemars(range(min = 1_024, max = 8_388_608))]
    pub max_bytes: Option<u64>,
    /// Messages examined, matching or not (default 100000).
    #[schemars(range(min = 1, max = 50_000_000))]
    pub max_scan: Option<u64>,
    /// Default 3000.
    #[schemars(range(max = 600_000))]
    pub max_wait_ms: Option<u64>,
    /// Expression over key, value, headers, partition, offset, timestamp, format, size, e.g.
    /// `value.amount > 100.0` or `format != 'json'`.
    pub filter: Option<String>,
    /// Value decoding (default auto: JSON, else text, else base64).
    pub value_format: Option<Format>,
}

/// One message.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StreamMessage {
    /// Partition.
    pub partition: i32,
    /// Offset (absent for live streams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Timestamp, RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Decoded key.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub key: Value,
    /// Decoded value (null: a tombstone).
    pub value: Value,
    /// How the value was decoded, when not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Headers.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub headers: Map<String, Value>,
}

/// Result of `stream_read`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadOutput {
    /// The source read.
    pub source: String,
    /// The topic or path read.
    pub topic: String,
    /// The messages, in the order they arrived (per partition in offset order).
    pub messages: Vec<StreamMessage>,
    /// What the scan saw: scanned N, matched M.
    pub stats: ScanStats,
    /// Why the read stopped.
    pub stopped: Stop,
    /// True when more messages may be waiting: pass `cursor` to continue.
    pub truncated: bool,
    /// Continue from here with `cursor` (Kafka sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// What the read met and worked around.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Keeps messages within the byte budget.
struct Keep {
    messages: Vec<StreamMessage>,
    bytes: u64,
    max_bytes: u64,
}

impl Collector for Keep {
    fn take(&mut self, view: &mut View<'_, '_>) -> Take {
        let raw = view.raw();
        let (offset, partition, timestamp_ms) = (raw.offset, raw.partition, raw.timestamp_ms);
        let headers = view.headers();
        let (key, _) = view.take_key();
        let (value, encoding) = view.take_value();
        let size = approx_size(&key)
            + approx_size(&value)
            + 64
            + headers
                .iter()
                .map(|(k, v)| k.len() as u64 + approx_size(v))
                .sum::<u64>();
        if self.bytes + size > self.max_bytes && !self.messages.is_empty() {
            return Take::Full;
        }
        if self.bytes + size > self.max_bytes {
            // Even the first message is over budget: keep a note of it instead of its body.
            self.bytes = self.max_bytes;
            self.messages.push(StreamMessage {
                partition,
                offset,
                timestamp: timestamp_ms.map(format_millis),
                key,
                value: Value::String(format!(
                    "(value of about {size} bytes left out: over max_bytes; raise max_bytes to see it)"
                )),
                encoding: Some(Encoding::Text),
                headers,
            });
            return Take::Kept;
        }
        self.bytes += size;
        self.messages.push(StreamMessage {
            partition,
            offset,
            timestamp: timestamp_ms.map(format_millis),
            key,
            value,
            encoding: (encoding != Encoding::Json).then_some(encoding),
            headers,
        });
        Take::Kept
    }
}

/// The JSON text size of a value, without writing it out for the common small cases.
fn approx_size(value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::String(s) => s.len() as u64 + 2,
        Value::Bool(_) | Value::Number(_) => 8,
        other => serde_json::to_string(other).map_or(0, |s| s.len() as u64),
    }
}

/// `stream_read`.
pub struct Read {
    sources: Arc<Sources>,
}

impl Read {
    /// The tool over `sources`.
    pub fn new(sources: Arc<Sources>) -> Self {
        Read { sources }
    }
}

impl Tool for Read {
    type Params = ReadParams;
    type Output = ReadOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "stream_read".to_owned(),
            title: "Read a stream".to_owned(),
            description: "Bounded read of a Kafka topic or live HTTP/WebSocket stream, filtered while scanning; continue with the cursor. Never joins a consumer group.".to_owned(),
            annotations: Annotations {
                // A read of live data gives a different answer each time: never cached.
                idempotent_hint: false,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &ReadOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ReadParams,
    ) -> Result<ReadOutput, ToolError> {
        let source = source(&self.sources, params.source.as_deref())?;
        let topic = topic(source.as_ref(), params.topic.as_deref())?;
        let filter = params
            .filter
            .as_deref()
            .map(Filter::compile)
            .transpose()
            .map_err(|e| {
                ToolError::InvalidArguments(format!("{e} (variables: {FILTER_VARIABLES})"))
            })?;
        let resume = params
            .cursor
            .as_deref()
            .map(|c| cursor::decode(c, source.name(), &topic))
            .transpose()
            .map_err(ToolError::InvalidArguments)?;
        let max_wait = wait(ctx, params.max_wait_ms.unwrap_or(3_000));
        let max_bytes = params.max_bytes.unwrap_or(65_536);
        let scan = Scan::new(
            Limits {
                max_messages: params.max_messages.unwrap_or(20).max(1),
                max_scan: params.max_scan.unwrap_or(100_000).max(1),
                deadline: scan_deadline(ctx, max_wait),
            },
            Formats {
                key: Format::Auto,
                value: params.value_format.unwrap_or_default(),
            },
            filter,
            Box::new(Keep {
                messages: Vec::new(),
                bytes: 0,
                max_bytes,
            }),
        );
        let plan = ReadPlan {
            topic: topic.clone(),
            partitions: params.partitions.clone(),
            start: params
                .start
                .clone()
                .unwrap_or(Start::Named(NamedStart::Earliest)),
            resume_skip_before: resume.as_ref().and_then(|r| r.skip_before),
            resume: resume.map(|r| r.positions),
            max_wait,
        };
        let finished = source.read(ctx, plan, scan).await?.finish();
        let replayable = source.info().replayable;
        let truncated = finished.stop.truncates();
        let cursor = (replayable && !finished.positions.is_empty()).then(|| {
            let resume = cursor::Resume {
                positions: finished.positions.clone(),
                skip_before: finished.skip_before,
            };
            cursor::encode(source.name(), &topic, &resume)
        });
        let collector: Box<dyn Any> = finished.collector;
        let messages = match collector.downcast::<Keep>() {
            Ok(keep) => keep.messages,
            Err(_) => return Err(ToolError::Internal("the read lost its messages".into())),
        };
        ctx.add_records(messages.len() as u64);
        Ok(ReadOutput {
            source: source.name().to_owned(),
            topic,
            messages,
            stats: finished.stats,
            stopped: finished.stop,
            truncated,
            cursor,
            notes: finished.notes,
        })
    }

    fn render_text(&self, _params: &ReadParams, output: &ReadOutput) -> String {
        let mut text = String::new();
        for m in &output.messages {
            let position = match m.offset {
                Some(offset) => format!("p{}@{offset}", m.partition),
                None => format!("p{}", m.partition),
            };
            text.push_str(&position);
            if let Some(ts) = &m.timestamp {
                text.push(' ');
                text.push_str(ts);
            }
            if !m.key.is_null() {
                text.push_str(" key=");
                text.push_str(&compact(&m.key));
            }
            text.push(' ');
            text.push_str(&compact(&m.value));
            if !m.headers.is_empty() {
                text.push_str(" headers=");
                text.push_str(&Value::Object(m.headers.clone()).to_string());
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "scanned {}, matched {}, stopped: {}{}",
            output.stats.scanned,
            output.stats.matched,
            serde_json::to_value(&output.stopped)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            if output.truncated {
                " (more may follow: pass the cursor)"
            } else {
                ""
            }
        ));
        if let Some(cursor) = &output.cursor {
            text.push_str(&format!("\ncursor: {cursor}"));
        }
        for note in &output.notes {
            text.push_str(&format!("\nnote: {note}"));
        }
        text
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
