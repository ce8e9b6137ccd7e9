//! `stream_aggregate`: reads a bounded window of a stream and summarises it by event-time
//! windows and a group, instead of putting raw messages in the model's context.

use std::any::Any;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Sources, scan_deadline, source, topic, wait};
use crate::stream::scan::{
    Collector, FILTER_VARIABLES, Filter, Formats, Limits, Scan, ScanStats, Stop, Take, View,
};
use crate::stream::source::{NamedStart, ReadPlan, Start};
use crate::stream::window::{FieldRef, MAX_WINDOW_MS, Row, Stat, WindowSpec, Windows, group_key};
use crate::tools::context::ProgressSink;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Rows in a result at most: a summary is for the model's context.
const MAX_ROWS: usize = 5_000;

/// One answer, or one result per window as it closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One answer at the end.
    #[default]
    Batch,
    /// Each window's rows are also sent as a progress notification when the window closes.
    MicroBatch,
}

/// Arguments of `stream_aggregate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateParams {
    /// Default: the only source.
    pub source: Option<String>,
    /// Topic (or path of a live source).
    pub topic: Option<String>,
    /// Default: all.
    pub partitions: Option<Vec<i32>>,
    /// As in stream_read (default "earliest").
    pub start: Option<Start>,
    /// Window length, ms.
    #[schemars(range(min = 1))]
    pub window_ms: u64,
    /// Hopping windows: ms between starts (default window_ms).
    #[schemars(range(min = 1))]
    pub hop_ms: Option<u64>,
    /// Value field with the event time (RFC 3339 or ms); default the message timestamp.
    pub time_field: Option<String>,
    /// "key", "partition" or a value field path, e.g. "customer.country".
    pub group_by: Option<String>,
    /// Numeric value field to summarise, e.g. "amount".
    pub field: Option<String>,
    /// Default count, sum, avg, min, max.
    pub stats: Option<Vec<Stat>>,
    /// Default 0; later messages are counted as late, not added.
    pub allowed_lateness_ms: Option<u64>,
    /// As in stream_read.
    pub filter: Option<String>,
    /// Default 1000000.
    #[schemars(range(min = 1, max = 50_000_000))]
    pub max_scan: Option<u64>,
    /// Default 10000.
    #[schemars(range(max = 600_000))]
    pub max_wait_ms: Option<u64>,
    /// micro_batch: each closed window is also sent as progress.
    pub mode: Option<Mode>,
}

/// Result of `stream_aggregate`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AggregateOutput {
    /// The source read.
    pub source: String,
    /// The topic or path read.
    pub topic: String,
    /// One row per window and group: window_start, window_end, group, count, the statistics,
    /// missing (no number in `field`), late.
    pub rows: Vec<Row>,
    /// Windows in the result.
    pub windows: usize,
    /// Messages that arrived after their window closed: counted here, not in the rows.
    pub late: u64,
    /// Messages without a usable event time.
    #[serde(skip_serializing_if = "is_zero")]
    pub without_time: u64,
    /// Messages left out because the window limit was reached.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// True when percentiles come from a uniform sample of a window's values.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
    /// What the scan saw.
    pub stats: ScanStats,
    /// Why the read stopped.
    pub stopped: Stop,
    /// True when the read stopped before the end of the data: the summary covers part of it.
    pub truncated: bool,
    /// What the read met and worked around.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Folds messages into windows.
struct Fold {
    windows: Windows,
    time_path: Option<Vec<String>>,
    group: Option<FieldRef>,
    field: Option<Vec<String>>,
    progress: Option<Arc<dyn ProgressSink>>,
    emitted: usize,
}

impl Collector for Fold {
    fn take(&mut self, view: &mut View<'_, '_>) -> Take {
        let (partition, timestamp) = (view.raw().partition, view.raw().timestamp_ms);
        let group = match &self.group {
            None => String::new(),
            Some(FieldRef::Partition) => partition.to_string(),
            Some(FieldRef::Key) => group_key(Some(view.key().0)),
            Some(FieldRef::Value(path)) => group_key(FieldRef::in_value(path, view.value().0)),
        };
        let (value, _) = view.value();
        let time = Windows::event_time(self.time_path.as_deref(), value, timestamp);
        let number = self
            .field
            .as_deref()
            .and_then(|path| FieldRef::in_value(path, value))
            .and_then(number);
        let closed = self.windows.add(partition, time, &group, number);
        self.emit(closed);
        Take::Kept
    }

    fn partition_started(&mut self, partition: i32) {
        self.windows.expect_partition(partition);
    }

    fn partition_done(&mut self, partition: i32) {
        let closed = self.windows.partition_done(partition);
        self.emit(closed);
    }
}

impl Fold {
    /// In micro-batch mode, sends each newly closed window's rows as a progress notification.
    fn emit(&mut self, closed: Vec<i64>) {
        let Some(progress) = &self.progress else {
            return;
        };
        for start in closed {
            let rows = self.windows.rows_of(start, self.group.is_some());
            self.emitted += 1;
            let rows = Value::from(rows.into_iter().map(Value::Object).collect::<Vec<_>>());
            progress.report(self.emitted as f64, None, Some(rows.to_string()));
        }
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `stream_aggregate`.
pub struct Aggregate {
    sources: Arc<Sources>,
}

impl Aggregate {
    /// The tool over `sources`.
    pub fn new(sources: Arc<Sources>) -> Self {
        Aggregate { sources }
    }
}

impl Tool for Aggregate {
    type Params = AggregateParams;
    type Output = AggregateOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "stream_aggregate".to_owned(),
            title: "Summarise a stream by time window".to_owned(),
            description: "Summarise a bounded read by event-time windows (tumbling or hopping) and a group: count, sum, avg, min, max, percentiles; late messages counted.".to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &AggregateOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &AggregateParams,
    ) -> Result<AggregateOutput, ToolError> {
        let source = source(&self.sources, params.source.as_deref())?;
        let topic = topic(source.as_ref(), params.topic.as_deref())?;
        let invalid = ToolError::InvalidArguments;
        let filter = params
            .filter
            .as_deref()
            .map(Filter::compile)
            .transpose()
            .map_err(|e| invalid(format!("{e} (variables: {FILTER_VARIABLES})")))?;
        let value_path = |name: &str, text: &str| match FieldRef::parse(text) {
            Ok(FieldRef::Value(path)) => Ok(path),
            Ok(_) => Err(invalid(format!(
                "{name} must be a field of the value, not '{text}'"
            ))),
            Err(e) => Err(invalid(format!("{name}: {e}"))),
        };
        let time_path = params
            .time_field
            .as_deref()
            .map(|t| value_path("time_field", t))
            .transpose()?;
        let field = params
            .field
            .as_deref()
            .map(|f| value_path("field", f))
            .transpose()?;
        let group = params
            .group_by
            .as_deref()
            .map(FieldRef::parse)
            .transpose()
            .map_err(|e| invalid(format!("group_by: {e}")))?;
        if params.window_ms > MAX_WINDOW_MS {
            return Err(invalid(format!(
                "window_ms is at most {MAX_WINDOW_MS} (a thousand years)"
            )));
        }
        let size_ms = params.window_ms as i64;
        let hop_ms = params
            .hop_ms
            .map_or(size_ms, |h| h.min(MAX_WINDOW_MS) as i64);
        if hop_ms > size_ms {
            return Err(invalid(format!(
                "hop_ms ({hop_ms}) is longer than window_ms ({size_ms}): messages between windows would be lost; use hop_ms <= window_ms"
            )));
        }
        if size_ms / hop_ms > 100 {
            return Err(invalid(format!(
                "each message would fall in {} windows; keep window_ms / hop_ms at most 100",
                size_ms / hop_ms
            )));
        }
        let mut stats = params
            .stats
            .clone()
            .unwrap_or_else(|| vec![Stat::Sum, Stat::Avg, Stat::Min, Stat::Max]);
        if field.is_none() {
            if stats.iter().any(|s| *s != Stat::Count) && params.stats.is_some() {
                return Err(invalid(
                    "statistics other than count need `field`, the numeric value field to summarise".into(),
                ));
            }
            stats.clear();
        }
        stats.dedup();
        let mode = params.mode.unwrap_or_default();
        let fold = Fold {
            windows: Windows::new(
                WindowSpec {
                    size_ms,
                    hop_ms,
                    lateness_ms: params.allowed_lateness_ms.unwrap_or(0).min(MAX_WINDOW_MS) as i64,
                },
                stats,
            ),
            time_path,
            group,
            field,
            progress: (mode == Mode::MicroBatch)
                .then(|| ctx.progress_sink())
                .flatten(),
            emitted: 0,
        };
        let max_wait = wait(ctx, params.max_wait_ms.unwrap_or(10_000));
        let scan = Scan::new(
            Limits {
                max_messages: u64::MAX,
                max_scan: params.max_scan.unwrap_or(1_000_000).max(1),
                deadline: scan_deadline(ctx, max_wait),
            },
            Formats::default(),
            filter,
            Box::new(fold),
        );
        let plan = ReadPlan {
            topic: topic.clone(),
            partitions: params.partitions.clone(),
            start: params
                .start
                .clone()
                .unwrap_or(Start::Named(NamedStart::Earliest)),
            resume: None,
            resume_skip_before: None,
            max_wait,
        };
        let finished = source.read(ctx, plan, scan).await?.finish();
        let collector: Box<dyn Any> = finished.collector;
        let Ok(mut fold) = collector.downcast::<Fold>() else {
            return Err(ToolError::Internal(
                "the aggregation lost its windows".into(),
            ));
        };
        let grouped = fold.group.is_some();
        let mut rows = fold.windows.finish(grouped);
        ctx.add_records(finished.stats.scanned);
        let mut notes = finished.notes;
        if fold.windows.late() > 0 {
            notes.push(format!(
                "{} message(s) arrived after their window closed and are counted in `late`, not in the rows; raise allowed_lateness_ms to include them",
                fold.windows.late()
            ));
        }
        if rows.len() > MAX_ROWS {
            notes.push(format!(
                "{} rows were made and the first {MAX_ROWS} (earliest windows) are given; use a longer window_ms, a coarser group_by or a narrower start",
                rows.len()
            ));
            rows.truncate(MAX_ROWS);
        }
        if fold.windows.dropped() > 0 {
            notes.push(format!(
                "{} message(s) were left out: the result holds at most {} windows; use a longer window_ms or a narrower start",
                fold.windows.dropped(),
                crate::stream::window::MAX_WINDOWS
            ));
        }
        Ok(AggregateOutput {
            source: source.name().to_owned(),
            topic,
            windows: fold.windows.window_count(),
            late: fold.windows.late(),
            without_time: fold.windows.without_time(),
            dropped: fold.windows.dropped(),
            approximate: fold.windows.approximate(),
            rows,
            truncated: finished.stop.truncates(),
            stopped: finished.stop,
            stats: finished.stats,
            notes,
        })
    }

    fn render_text(&self, _params: &AggregateParams, output: &AggregateOutput) -> String {
        let mut columns: Vec<&str> = Vec::new();
        for row in &output.rows {
            for key in row.keys() {
                if !columns.contains(&key.as_str()) {
                    columns.push(key);
                }
            }
        }
        let mut text = format!(
            "| {} |\n|{}",
            columns.join(" | "),
            " --- |".repeat(columns.len())
        );
        for row in &output.rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| match row.get(*c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                })
                .collect();
            text.push_str(&format!("\n| {} |", cells.join(" | ")));
        }
        text.push_str(&format!(
            "\n{} windows; late {}; scanned {}, matched {}; stopped: {}{}",
            output.windows,
            output.late,
            output.stats.scanned,
            output.stats.matched,
            serde_json::to_value(&output.stopped)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            if output.truncated {
                " (partial: the read stopped before the end)"
            } else {
                ""
            }
        ));
        for note in &output.notes {
            text.push_str(&format!("\nnote: {note}"));
        }
        text
    }
}
