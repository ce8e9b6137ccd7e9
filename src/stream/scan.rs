//! One bounded pass over a stream, whatever the source: every message a source receives is
//! offered here, counted, decoded, filtered and handed to a collector, until a limit says stop.
//! A source only moves bytes; the budgets, the filter and the stats live in this one place, so
//! every kind of source is bounded the same way.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::expr::{Expr, Vars};

/// How keys and values are turned into JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON when it parses, else UTF-8 text, else base64.
    #[default]
    Auto,
    /// JSON; anything else counts as a decode error and is shown as text or base64.
    Json,
    /// UTF-8 text (invalid bytes replaced).
    Text,
    /// Base64 of the raw bytes.
    Base64,
}

/// How a part was actually decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Parsed JSON.
    Json,
    /// UTF-8 text.
    Text,
    /// Base64 of bytes that are not UTF-8 (or when asked for).
    Base64,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Text => "text",
            Encoding::Base64 => "base64",
        }
    }
}

/// Decodes `bytes` as `format` asks. The flag says whether the bytes failed the format asked for.
pub fn decode(bytes: &[u8], format: Format) -> (Value, Encoding, bool) {
    let as_text_or_base64 = |bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(text) => (Value::String(text.to_owned()), Encoding::Text),
        Err(_) => (Value::String(BASE64.encode(bytes)), Encoding::Base64),
    };
    match format {
        Format::Auto | Format::Json => {
            let looks_like_json =
                bytes
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|b| {
                        matches!(
                            b,
                            b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
                        )
                    });
            if looks_like_json && let Ok(value) = serde_json::from_slice(bytes) {
                return (value, Encoding::Json, false);
            }
            let (value, encoding) = as_text_or_base64(bytes);
            (value, encoding, format == Format::Json)
        }
        Format::Text => (
            Value::String(String::from_utf8_lossy(bytes).into_owned()),
            Encoding::Text,
            false,
        ),
        Format::Base64 => (Value::String(BASE64.encode(bytes)), Encoding::Base64, false),
    }
}

/// Headers of a raw message, without copying them out of the client's buffers.
pub trait Headers {
    /// Calls `f` with each header's name and value.
    fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>));
}

/// No headers.
pub struct NoHeaders;

impl Headers for NoHeaders {
    fn each(&self, _: &mut dyn FnMut(&str, Option<&[u8]>)) {}
}

impl Headers for [(String, String)] {
    fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>)) {
        for (name, value) in self {
            f(name, Some(value.as_bytes()));
        }
    }
}

/// A message as a source received it.
pub struct RawMessage<'a> {
    /// Partition (0 for a live stream).
    pub partition: i32,
    /// Offset in the partition (none for a live stream).
    pub offset: Option<i64>,
    /// Milliseconds since the epoch: the broker's timestamp, or when a live message arrived.
    pub timestamp_ms: Option<i64>,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes (none: a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a dyn Headers,
}

impl RawMessage<'_> {
    fn size(&self) -> usize {
        let mut size = self.key.map_or(0, <[u8]>::len) + self.value.map_or(0, <[u8]>::len);
        self.headers
            .each(&mut |name, value| size += name.len() + value.map_or(0, <[u8]>::len));
        size
    }
}

/// A message being scanned: its parts are decoded once, when first asked for.
pub struct View<'m, 'a> {
    raw: &'m RawMessage<'a>,
    formats: Formats,
    key: Option<(Value, Encoding)>,
    value: Option<(Value, Encoding)>,
    decode_errors: u32,
}

impl<'m, 'a> View<'m, 'a> {
    fn new(raw: &'m RawMessage<'a>, formats: Formats) -> Self {
        View {
            raw,
            formats,
            key: None,
            value: None,
            decode_errors: 0,
        }
    }

    /// The raw message.
    pub fn raw(&self) -> &RawMessage<'a> {
        self.raw
    }

    /// The decoded value (null for a tombstone) and how it was decoded.
    pub fn value(&mut self) -> (&Value, Encoding) {
        let (bytes, format) = (self.raw.value, self.formats.value);
        Self::decoded(&mut self.value, &mut self.decode_errors, bytes, format)
    }

    /// The decoded key (null when there is none) and how it was decoded.
    pub fn key(&mut self) -> (&Value, Encoding) {
        let (bytes, format) = (self.raw.key, self.formats.key);
        Self::decoded(&mut self.key, &mut self.decode_errors, bytes, format)
    }

    /// `slot`, decoded from `bytes` the first time it is asked for.
    fn decoded<'s>(
        slot: &'s mut Option<(Value, Encoding)>,
        errors: &mut u32,
        bytes: Option<&[u8]>,
        format: Format,
    ) -> (&'s Value, Encoding) {
        let (value, encoding) = slot.get_or_insert_with(|| match bytes {
            Some(bytes) => {
                let (value, encoding, failed) = decode(bytes, format);
                *errors += u32::from(failed);
                (value, encoding)
            }
            None => (Value::Null, Encoding::Json),
        });
        (value, *encoding)
    }

    /// Takes the decoded value out (decoding it if it was not yet).
    pub fn take_value(&mut self) -> (Value, Encoding) {
        self.value();
        self.value.take().unwrap_or((Value::Null, Encoding::Json))
    }

    /// Takes the decoded key out.
    pub fn take_key(&mut self) -> (Value, Encoding) {
        self.key();
        self.key.take().unwrap_or((Value::Null, Encoding::Json))
    }

    /// Headers as an object of text values (base64 for binary ones, null for absent ones).
    pub fn headers(&self) -> Map<String, Value> {
        let mut map = Map::new();
        self.raw.headers.each(&mut |name, value| {
            let value = match value {
                None => Value::Null,
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => Value::String(text.to_owned()),
                    Err(_) => Value::String(BASE64.encode(bytes)),
                },
            };
            map.insert(name.to_owned(), value);
        });
        map
    }
}

/// The formats of keys and values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Formats {
    /// Keys.
    pub key: Format,
    /// Values.
    pub value: Format,
}

/// What a collector did with a message.
pub enum Take {
    /// Kept it (or folded it in).
    Kept,
    /// It does not fit the byte budget: the scan stops before it.
    Full,
}

/// What a scan does with the messages that pass the filter: keep them (a read), fold them into
/// windows (an aggregation).
pub trait Collector: Send + std::any::Any {
    /// Takes a message that passed the filter.
    fn take(&mut self, message: &mut View<'_, '_>) -> Take;

    /// A partition the read covers, told before any message (event-time watermarks wait
    /// for every partition).
    fn partition_started(&mut self, _partition: i32) {}

    /// A partition that has no more messages for this read.
    fn partition_done(&mut self, _partition: i32) {}
}

/// A filter in the expression language, evaluated on each message.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
    /// Which variables the expression reads, so only those are built per message.
    reads: Reads,
}

#[derive(Debug, Clone, Copy, Default)]
struct Reads {
    key: bool,
    value: bool,
    headers: bool,
    partition: bool,
    offset: bool,
    timestamp: bool,
    format: bool,
    size: bool,
}

/// The variables a filter may read, for messages and the tools' descriptions.
pub const FILTER_VARIABLES: &str = "key, value (decoded JSON), headers (map), partition, offset, timestamp (ms), format (json|text|base64), size (bytes)";

impl Filter {
    /// Compiles a filter; refuses one that reads a variable messages do not have.
    pub fn compile(text: &str) -> Result<Filter, String> {
        let expr = Expr::compile(text).map_err(|e| e.to_string())?;
        let mut reads = Reads::default();
        for reference in expr.references() {
            match reference.root.as_str() {
                "key" => reads.key = true,
                "value" => reads.value = true,
                "headers" => reads.headers = true,
                "partition" => reads.partition = true,
                "offset" => reads.offset = true,
                "timestamp" => reads.timestamp = true,
                "format" => reads.format = true,
                "size" => reads.size = true,
                other => {
                    return Err(format!(
                        "filter `{text}` reads `{other}`, which messages do not have; use {FILTER_VARIABLES}"
                    ));
                }
            }
        }
        Ok(Filter { expr, reads })
    }

    /// The expression's text.
    pub fn source(&self) -> &str {
        self.expr.source()
    }

    fn matches(&self, view: &mut View<'_, '_>) -> Result<bool, String> {
        let mut vars = Vars::new();
        let raw = view.raw;
        if self.reads.partition {
            vars.set("partition", Value::from(raw.partition));
        }
        if self.reads.offset {
            vars.set("offset", raw.offset.map_or(Value::Null, Value::from));
        }
        if self.reads.timestamp {
            vars.set(
                "timestamp",
                raw.timestamp_ms.map_or(Value::Null, Value::from),
            );
        }
        if self.reads.size {
            vars.set("size", Value::from(raw.size()));
        }
        if self.reads.headers {
            vars.set("headers", Value::Object(view.headers()));
        }
        if self.reads.format {
            let (_, encoding) = view.value();
            vars.set("format", Value::from(encoding.name()));
        }
        if self.reads.key {
            view.key();
        }
        if self.reads.value {
            view.value();
        }
        if self.reads.key
            && let Some((key, _)) = &view.key
        {
            vars.set("key", key);
        }
        if self.reads.value
            && let Some((value, _)) = &view.value
        {
            vars.set("value", value);
        }
        self.expr.eval_bool(&vars).map_err(|e| e.to_string())
    }
}

/// The bounds of one scan.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages kept at most.
    pub max_messages: u64,
    /// Messages examined at most (the filter's cost bound).
    pub max_scan: u64,
    /// When the scan stops, whatever it found.
    pub deadline: Instant,
}

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `max_messages` messages matched.
    MaxMessages,
    /// The next message would have passed `max_bytes`.
    MaxBytes,
    /// `max_scan` messages were examined.
    MaxScan,
    /// `max_wait_ms` (or the call's deadline) passed.
    MaxWait,
    /// Every partition was read to its end.
    EndOfData,
    /// The live stream ended (the server closed it).
    StreamClosed,
}

impl Stop {
    /// Whether more data may be waiting: every stop but the end of the data.
    pub fn truncates(&self) -> bool {
        !matches!(self, Stop::EndOfData | Stop::StreamClosed)
    }
}

/// What a scan saw.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ScanStats {
    /// Messages examined.
    pub scanned: u64,
    /// Messages that passed the filter and were kept.
    pub matched: u64,
    /// Bytes of the examined messages' keys, values and headers, as received.
    pub bytes_scanned: u64,
    /// Messages whose key or value did not decode as the format asked.
    #[serde(skip_serializing_if = "is_zero")]
    pub decode_errors: u64,
    /// Messages on which the filter failed (counted as not matching).
    #[serde(skip_serializing_if = "is_zero")]
    pub filter_errors: u64,
    /// Milliseconds the scan took.
    pub elapsed_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A scan in progress. Sources call [`Scan::offer`] for each message and [`Scan::stop`] when
/// their data or time ends.
pub struct Scan {
    limits: Limits,
    formats: Formats,
    filter: Option<Filter>,
    collector: Box<dyn Collector>,
    stats: ScanStats,
    first_filter_error: Option<String>,
    positions: BTreeMap<i32, i64>,
    stopped: Option<Stop>,
    started: Instant,
    /// Problems a source met and worked around (a broker that dropped, a partial message).
    notes: Vec<String>,
    skip_before: Option<i64>,
}

/// Whether the source should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Offer the next message.
    Continue,
    /// Stop reading.
    Stop,
}

impl Scan {
    /// A scan within `limits` that feeds `collector`.
    pub fn new(
        limits: Limits,
        formats: Formats,
        filter: Option<Filter>,
        collector: Box<dyn Collector>,
    ) -> Self {
        Scan {
            limits,
            formats,
            filter,
            collector,
            stats: ScanStats::default(),
            first_filter_error: None,
            positions: BTreeMap::new(),
            stopped: None,
            started: Instant::now(),
            notes: Vec::new(),
            skip_before: None,
        }
    }

    /// When the source must stop waiting.
    pub fn deadline(&self) -> Instant {
        self.limits.deadline
    }

    /// Records where a partition's read starts, so the cursor covers partitions that sent
    /// nothing.
    pub fn start_partition(&mut self, partition: i32, offset: i64) {
        self.positions.insert(partition, offset);
        self.collector.partition_started(partition);
    }

    /// Records that a partition has no more messages for this read.
    pub fn partition_done(&mut self, partition: i32) {
        self.collector.partition_done(partition);
    }

    /// Offers one message. After [`Flow::Stop`] the source must stop; the message that got
    /// `Stop` for the byte budget or the scan limit was not consumed, so a cursor resumes at it.
    pub fn offer(&mut self, raw: &RawMessage<'_>) -> Flow {
        if let Some(stop) = self.examine(raw) {
            return stop;
        }
        let mut view = View::new(raw, self.formats);
        let matched = match &self.filter {
            None => true,
            Some(filter) => match filter.matches(&mut view) {
                Ok(matched) => matched,
                Err(error) => {
                    self.stats.filter_errors += 1;
                    self.first_filter_error.get_or_insert(error);
                    false
                }
            },
        };
        if matched && let Take::Full = self.collector.take(&mut view) {
            self.stats.scanned -= 1;
            self.stats.bytes_scanned -= raw.size() as u64;
            self.stats.decode_errors += u64::from(view.decode_errors);
            return self.stop(Stop::MaxBytes);
        }
        self.stats.decode_errors += u64::from(view.decode_errors);
        if let Some(offset) = raw.offset {
            self.positions.insert(raw.partition, offset + 1);
        }
        if matched {
            self.stats.matched += 1;
            if self.stats.matched >= self.limits.max_messages {
                return self.stop(Stop::MaxMessages);
            }
        }
        Flow::Continue
    }

    /// Counts a message the source examined but skips before the filter (it precedes the
    /// requested start time), so it counts against `max_scan` and moves the cursor.
    pub fn pass(&mut self, raw: &RawMessage<'_>) -> Flow {
        if let Some(stop) = self.examine(raw) {
            return stop;
        }
        if let Some(offset) = raw.offset {
            self.positions.insert(raw.partition, offset + 1);
        }
        Flow::Continue
    }

    /// Counts `raw` as examined, or says why the scan must stop before it.
    fn examine(&mut self, raw: &RawMessage<'_>) -> Option<Flow> {
        if self.stopped.is_some() {
            return Some(Flow::Stop);
        }
        if self.stats.scanned >= self.limits.max_scan {
            return Some(self.stop(Stop::MaxScan));
        }
        self.stats.scanned += 1;
        self.stats.bytes_scanned += raw.size() as u64;
        None
    }

    /// Stops the scan for `reason` (the first reason given wins).
    pub fn stop(&mut self, reason: Stop) -> Flow {
        self.stopped.get_or_insert(reason);
        Flow::Stop
    }

    /// Whether the scan has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.is_some()
    }

    /// Records that the source skips messages older than `ms` (to be carried in the cursor).
    pub fn skipping_before(&mut self, ms: i64) {
        self.skip_before = Some(ms);
    }

    /// Adds a note for the result (something the source met and worked around).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) && self.notes.len() < 10 {
            self.notes.push(note);
        }
    }

    /// Messages examined so far.
    pub fn scanned(&self) -> u64 {
        self.stats.scanned
    }

    /// Ends the scan: why it stopped (a source that returned without saying is taken to have
    /// run out of time), the stats, the next offset per partition, notes, and the collector.
    pub fn finish(mut self) -> Finished {
        self.stats.elapsed_ms = self.started.elapsed().as_millis() as u64;
        if let Some(error) = self.first_filter_error.take() {
            self.notes.insert(
                0,
                format!(
                    "the filter failed on {} message(s), counted as not matching; the first: {error}",
                    self.stats.filter_errors
                ),
            );
        }
        Finished {
            stop: self.stopped.unwrap_or(Stop::MaxWait),
            stats: self.stats,
            positions: self.positions,
            notes: self.notes,
            skip_before: self.skip_before,
            collector: self.collector,
        }
    }
}

/// A finished scan.
pub struct Finished {
    /// Why it stopped.
    pub stop: Stop,
    /// What it saw.
    pub stats: ScanStats,
    /// The next offset to read per partition.
    pub positions: BTreeMap<i32, i64>,
    /// What the source met and worked around.
    pub notes: Vec<String>,
    /// Messages older than this were being skipped.
    pub skip_before: Option<i64>,
    /// The collector, to take its result from.
    pub collector: Box<dyn Collector>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn auto_decoding_prefers_json_then_text_then_base64() {
        assert_eq!(decode(br#"{"a":1}"#, Format::Auto).1, Encoding::Json);
        assert_eq!(decode(b"42", Format::Auto).0, Value::from(42));
        assert_eq!(
            decode(b"hello", Format::Auto),
            (Value::from("hello"), Encoding::Text, false)
        );
        assert_eq!(
            decode(b"{broken", Format::Auto),
            (Value::from("{broken"), Encoding::Text, false)
        );
        assert_eq!(
            decode(&[0xff, 0x00], Format::Auto),
            (Value::from("/wA="), Encoding::Base64, false)
        );
        assert!(
            decode(b"{broken", Format::Json).2,
            "a failed JSON decode is flagged"
        );
        assert_eq!(
            decode(br#"{"a":1}"#, Format::Text).0,
            Value::from(r#"{"a":1}"#)
        );
        assert_eq!(decode(b"ab", Format::Base64).0, Value::from("YWI="));
    }

    struct Count(u64, Option<u64>);

    impl Collector for Count {
        fn take(&mut self, _: &mut View<'_, '_>) -> Take {
            if self.1.is_some_and(|cap| self.0 >= cap) {
                return Take::Full;
            }
            self.0 += 1;
            Take::Kept
        }
    }

    fn scan(max_messages: u64, max_scan: u64, filter: Option<&str>, cap: Option<u64>) -> Scan {
        Scan::new(
            Limits {
                max_messages,
                max_scan,
                deadline: Instant::now() + Duration::from_secs(5),
            },
            Formats::default(),
            filter.map(|f| Filter::compile(f).expect("valid")),
            Box::new(Count(0, cap)),
        )
    }

    fn offer_all(scan: &mut Scan, values: &[&str]) -> usize {
        let mut offered = 0;
        for (offset, value) in values.iter().enumerate() {
            offered += 1;
            let raw = RawMessage {
                partition: 0,
                offset: Some(offset as i64),
                timestamp_ms: Some(offset as i64 * 1000),
                key: None,
                value: Some(value.as_bytes()),
                headers: &NoHeaders,
            };
            if scan.offer(&raw) == Flow::Stop {
                break;
            }
        }
        offered
    }

    #[test]
    fn a_filter_counts_scanned_and_matched_and_the_cursor_follows_the_last_examined() {
        let mut s = scan(100, 100, Some("value.n > 1"), None);
        offer_all(
            &mut s,
            &[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":0}"#],
        );
        let done = s.finish();
        assert_eq!((done.stats.scanned, done.stats.matched), (4, 2));
        assert_eq!(done.positions[&0], 4);
        assert_eq!(done.stop, Stop::MaxWait);
    }

    #[test]
    fn limits_stop_the_scan_and_a_message_over_budget_is_left_for_the_cursor() {
        let mut s = scan(2, 100, None, None);
        assert_eq!(offer_all(&mut s, &["1", "2", "3"]), 2);
        let done = s.finish();
        assert_eq!((done.stop, done.positions[&0]), (Stop::MaxMessages, 2));

        let mut s = scan(100, 2, None, None);
        assert_eq!(offer_all(&mut s, &["1", "2", "3"]), 3);
        let done = s.finish();
        assert_eq!(
            (done.stop, done.stats.scanned, done.positions[&0]),
            (Stop::MaxScan, 2, 2)
        );

        let mut s = scan(100, 100, None, Some(1));
        offer_all(&mut s, &["1", "2", "3"]);
        let done = s.finish();
        assert_eq!(
            (done.stop, done.stats.matched, done.positions[&0]),
            (Stop::MaxBytes, 1, 1)
        );
    }

    #[test]
    fn filter_errors_count_as_not_matching_and_are_reported_once() {
        let mut s = scan(100, 100, Some("value.n > 1"), None);
        offer_all(&mut s, &["text", r#"{"n":5}"#, "[1]"]);
        let done = s.finish();
        assert_eq!((done.stats.matched, done.stats.filter_errors), (1, 2));
        assert!(done.notes[0].contains("2 message(s)"), "{:?}", done.notes);
    }

    #[test]
    fn a_filter_may_only_read_message_variables() {
        let error = Filter::compile("steps.x == 1").expect_err("an error");
        assert!(error.contains("`steps`"), "{error}");
        assert!(Filter::compile("format != 'json' && size > 10").is_ok());
    }
}
