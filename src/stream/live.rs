//! What the live sources (`http.rs`, `websocket.rs`) share: cutting a byte stream into
//! messages (NDJSON lines, Server-Sent Events) with a hard cap on each message, the URL and
//! path rules, and the common parts of their `Source` answers.
//!
//! The framers hold at most [`MAX_MESSAGE`] bytes of a message at a time: a longer line or
//! event is skipped (counted, never buffered), so one huge message cannot take the server's
//! memory whatever the stream sends.

use std::time::{SystemTime, UNIX_EPOCH};

use super::scan::{Flow, Headers, RawMessage, Scan};
use super::source::{
    AllowList, DescribeRequest, NamedStart, ReadPlan, SourceInfo, Start, TopicDescription,
    TopicSummary, describe_start,
};
use crate::tools::ToolError;

/// The largest single message (line, event, frame) a live source keeps.
pub const MAX_MESSAGE: usize = 1 << 20;

/// One message cut from a stream, borrowed from the framer's buffers.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete message.
    Message {
        /// The SSE `id` of the event, if it had one.
        id: Option<&'a [u8]>,
        /// The SSE `event` name, if it had one.
        event: Option<&'a str>,
        /// The NDJSON line, or the SSE event's data (lines joined with `\n`).
        data: &'a [u8],
    },
    /// A message over [`MAX_MESSAGE`] bytes, skipped; how many bytes it had.
    Oversize(usize),
}

/// Splits bytes into lines without holding more than [`MAX_MESSAGE`] of one line.
#[derive(Debug)]
struct Lines {
    buffer: Vec<u8>,
    /// Bytes of the current line when it is over the cap (its content is dropped).
    oversize: Option<usize>,
    /// Whether a lone `\r` ends a line (SSE) or only `\n` does (NDJSON, where a `\r` before
    /// the `\n` is stripped).
    cr_breaks: bool,
    /// The last byte seen was a `\r` that ended a line: a `\n` right after it is the same break.
    after_cr: bool,
}

/// A line as [`Lines`] hands it out.
enum Line<'a> {
    Text(&'a [u8]),
    Oversize(usize),
}

impl Lines {
    fn new(cr_breaks: bool) -> Self {
        Lines {
            buffer: Vec::new(),
            oversize: None,
            cr_breaks,
            after_cr: false,
        }
    }

    /// Feeds `chunk`, calling `each` with every completed line until it says stop.
    fn feed(&mut self, mut chunk: &[u8], each: &mut dyn FnMut(Line<'_>) -> Flow) -> Flow {
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while !chunk.is_empty() {
            let end = chunk
                .iter()
                .position(|&b| b == b'\n' || (self.cr_breaks && b == b'\r'));
            let Some(end) = end else {
                self.append(chunk);
                return Flow::Continue;
            };
            self.append(&chunk[..end]);
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            chunk = &chunk[next..];
            let flow = match self.oversize.take() {
                Some(bytes) => each(Line::Oversize(bytes)),
                None => {
                    if !self.cr_breaks && self.buffer.last() == Some(&b'\r') {
                        self.buffer.pop();
                    }
                    each(Line::Text(&self.buffer))
                }
            };
            self.buffer.clear();
            if flow == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn append(&mut self, bytes: &[u8]) {
        if let Some(total) = &mut self.oversize {
            *total += bytes.len();
        } else if self.buffer.len() + bytes.len() > MAX_MESSAGE {
            self.oversize = Some(self.buffer.len() + bytes.len());
            // Give the memory back: the line will never be delivered.
            self.buffer = Vec::new();
        } else {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// Bytes of an unterminated line.
    fn pending(&self) -> usize {
        self.oversize.unwrap_or(self.buffer.len())
    }
}

/// Newline-delimited JSON (or any text): one message per non-blank line.
#[derive(Debug)]
pub struct Ndjson {
    lines: Lines,
}

impl Default for Ndjson {
    fn default() -> Self {
        Ndjson {
            lines: Lines::new(false),
        }
    }
}

impl Ndjson {
    /// Feeds a chunk of the body; `each` gets every complete line and returns whether to go on.
    pub fn feed(&mut self, chunk: &[u8], each: &mut dyn FnMut(Frame<'_>) -> Flow) -> Flow {
        self.lines.feed(chunk, &mut |line| match line {
            Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => Flow::Continue,
            Line::Text(data) => each(Frame::Message {
                id: None,
                event: None,
                data,
            }),
            Line::Oversize(bytes) => each(Frame::Oversize(bytes)),
        })
    }

    /// The stream ended. When it ended cleanly, a last line without its newline is still a
    /// message; when it broke, that line may be cut short, and is returned as discarded bytes.
    pub fn finish(&mut self, clean: bool, each: &mut dyn FnMut(Frame<'_>) -> Flow) -> usize {
        let pending = self.lines.pending();
        let blank = self.lines.buffer.iter().all(u8::is_ascii_whitespace);
        if pending == 0 || (self.lines.oversize.is_none() && blank) {
            return 0;
        }
        if clean {
            // A newline completes the line: `feed` hands it out like any other.
            self.lines.feed(b"\n", &mut |line| match line {
                Line::Text(data) => each(Frame::Message {
                    id: None,
                    event: None,
                    data,
                }),
                Line::Oversize(bytes) => each(Frame::Oversize(bytes)),
            });
            return 0;
        }
        pending
    }
}

/// Server-Sent Events (the `text/event-stream` format of the HTML standard): `data:` lines
/// joined with `\n`, `event:` and `id:` fields, comments (`:`) and `retry:` ignored, an event
/// dispatched at a blank line. The key of a message is the `id` given in that event (the
/// standard's "last event id", which carries over to later events, is not used as a key).
#[derive(Debug)]
pub struct Sse {
    lines: Lines,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    id: Option<Vec<u8>>,
    /// The event's data went over the cap: its size so far.
    oversize: Option<usize>,
    /// Whether the first line (which may start with a byte-order mark) is still to come.
    first: bool,
}

impl Default for Sse {
    fn default() -> Self {
        Sse {
            lines: Lines::new(true),
            data: Vec::new(),
            has_data: false,
            event: None,
            id: None,
            oversize: None,
            first: true,
        }
    }
}

impl Sse {
    /// Feeds a chunk of the body; `each` gets every complete event and returns whether to go on.
    pub fn feed(&mut self, chunk: &[u8], each: &mut dyn FnMut(Frame<'_>) -> Flow) -> Flow {
        let Sse {
            lines,
            data,
            has_data,
            event,
            id,
            oversize,
            first,
        } = self;
        lines.feed(chunk, &mut |line| {
            let line = match line {
                Line::Oversize(bytes) => {
                    // A line over the cap can only be a field of an event too big to keep.
                    *oversize = Some(oversize.unwrap_or(data.len()) + bytes);
                    *has_data = true;
                    data.clear();
                    return Flow::Continue;
                }
                Line::Text(line) => line,
            };
            let line = if std::mem::take(first) {
                line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
            } else {
                line
            };
            if line.is_empty() {
                // The standard dispatches nothing for an empty data buffer (`data:` alone).
                let flow = if !*has_data || (data.is_empty() && oversize.is_none()) {
                    Flow::Continue
                } else if let Some(bytes) = oversize.take() {
                    each(Frame::Oversize(bytes))
                } else {
                    each(Frame::Message {
                        id: id.as_deref(),
                        event: event.as_deref(),
                        data: data.as_slice(),
                    })
                };
                data.clear();
                *has_data = false;
                *event = None;
                *id = None;
                return flow;
            }
            if line[0] == b':' {
                return Flow::Continue;
            }
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            match field {
                b"data" => {
                    let separator = usize::from(*has_data);
                    if let Some(total) = oversize {
                        *total += separator + value.len();
                    } else if data.len() + separator + value.len() > MAX_MESSAGE {
                        *oversize = Some(data.len() + separator + value.len());
                        *data = Vec::new();
                    } else {
                        if *has_data {
                            data.push(b'\n');
                        }
                        data.extend_from_slice(value);
                    }
                    *has_data = true;
                }
                b"event" => *event = Some(String::from_utf8_lossy(value).into_owned()),
                // The standard ignores an id holding NUL.
                b"id" if !value.contains(&0) => *id = Some(value.to_vec()),
                _ => {}
            }
            Flow::Continue
        })
    }

    /// The stream ended. An event not closed by a blank line is never dispatched (as the
    /// standard says); returns its size, to note that it was discarded.
    pub fn finish(&mut self) -> usize {
        let pending = self.lines.pending()
            + if self.has_data {
                self.oversize.unwrap_or(self.data.len()).max(1)
            } else {
                0
            };
        self.data = Vec::new();
        self.has_data = false;
        pending
    }
}

/// Milliseconds since the epoch, now: the timestamp of a live message.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The one header of a live message: the SSE event name, when the event had one.
struct EventHeader<'a>(Option<&'a str>);

impl Headers for EventHeader<'_> {
    fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>)) {
        if let Some(name) = self.0 {
            f("event", Some(name.as_bytes()));
        }
    }
}

/// Offers a frame to the scan as a live message (partition 0, no offset, arrival time).
pub fn offer(scan: &mut Scan, frame: Frame<'_>, skipped: &mut u64) -> Flow {
    match frame {
        Frame::Oversize(bytes) => {
            *skipped += 1;
            scan.note(format!(
                "message(s) over {} bytes were skipped (the largest seen: about {bytes} bytes)",
                MAX_MESSAGE
            ));
            Flow::Continue
        }
        Frame::Message { id, event, data } => scan.offer(&RawMessage {
            partition: 0,
            offset: None,
            timestamp_ms: Some(now_ms()),
            key: id,
            value: Some(data),
            headers: &EventHeader(event),
        }),
    }
}

/// The allow-list of a live source: its path patterns, or the one empty topic that stands for
/// the URL itself.
pub fn allow_list(paths: Option<&[String]>) -> AllowList {
    match paths {
        Some(paths) => AllowList::new(paths.to_vec()),
        None => AllowList::new(vec![String::new()]),
    }
}

/// Whether `path` may be put after a URL: no query or fragment, no `.`/`..` segment, no
/// characters a URL path cannot hold as they are. `*` in a pattern then cannot be used to
/// climb out of the configured URL or to add parameters to it.
pub fn safe_path(path: &str) -> bool {
    // No `%`: the URL parser reads `%2e%2e` as `..`. No `?`, `#` or backslash either.
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&b))
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

/// What every live source shares: its name and description, its path allow-list, and the URL
/// as the config writes it (expansion may have put secrets in the real one).
pub struct Live {
    pub name: String,
    /// `http` or `websocket`.
    pub kind: &'static str,
    /// `HTTP` or `WebSocket`, for messages.
    pub label: &'static str,
    pub description: Option<String>,
    pub shown_url: String,
    pub allow: AllowList,
}

impl Live {
    /// The source as `stream_list_sources` shows it.
    pub fn info(&self) -> SourceInfo {
        SourceInfo {
            name: self.name.clone(),
            kind: self.kind.to_owned(),
            description: self.description.clone(),
            topics: self.allow.patterns().to_vec(),
            replayable: false,
            can_produce: false,
        }
    }

    /// Whether `topic` (a path) is allowed and safe to append to the URL.
    pub fn allows(&self, topic: &str) -> bool {
        self.allow.allows(topic) && safe_path(topic)
    }

    /// Refuses a path that is not allowed, saying what is.
    pub fn check_topic(&self, topic: &str) -> Result<(), ToolError> {
        if self.allows(topic) {
            return Ok(());
        }
        Err(ToolError::Refused(format!(
            "'{topic}' is not a readable path of source '{}' (allowed: {}); paths may not hold '..', '%', '?', '#' or spaces",
            self.name,
            self.allow.patterns().join(", ")
        )))
    }

    /// `stream_describe_topic` of a live stream: its URL, no partitions or groups.
    pub fn describe(&self, request: &DescribeRequest) -> TopicDescription {
        describe(
            self.label,
            &url_for(&self.shown_url, &request.topic),
            request,
        )
    }
}

/// The URL of a read: the configured one, or it with `/path` appended.
pub fn url_for(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_owned();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// `list_topics` of a live source: the one stream, or the path patterns.
pub fn topics(allow: &AllowList) -> Vec<TopicSummary> {
    allow
        .patterns()
        .iter()
        .map(|pattern| TopicSummary {
            name: pattern.clone(),
            partitions: Some(1),
            replication: None,
            approx_messages: None,
            watermarks: Vec::new(),
        })
        .collect()
}

/// `describe_topic` of a live source: there are no offsets or groups to describe, and the
/// answer says so rather than inventing them.
pub fn describe(kind: &str, url: &str, request: &DescribeRequest) -> TopicDescription {
    let mut config = std::collections::BTreeMap::new();
    config.insert("url".to_owned(), url.to_owned());
    TopicDescription {
        topic: request.topic.clone(),
        partitions: Vec::new(),
        config,
        consumer_groups: Vec::new(),
        notes: vec![format!(
            "a live {kind} stream: it keeps no messages, offsets or consumer groups; stream_read and stream_aggregate read a bounded window of what arrives from now on"
        )],
    }
}

/// Checks what a read asks of a live stream and notes what cannot apply.
pub fn check_plan(plan: &ReadPlan, scan: &mut Scan) -> Result<(), ToolError> {
    if let Some(asked) = &plan.partitions
        && asked.iter().any(|&p| p != 0)
    {
        return Err(ToolError::InvalidArguments(
            "a live stream has one partition, 0; leave partitions out".into(),
        ));
    }
    if plan.resume.is_some() {
        scan.note("a live stream has no cursor: the read starts from now");
    }
    match &plan.start {
        Start::Named(NamedStart::Earliest | NamedStart::Latest) => {}
        other => scan.note(format!(
            "a live stream is read from now: start {} does not apply",
            describe_start(other)
        )),
    }
    Ok(())
}

/// The first bytes of an error body, as text for a message.
pub fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let cut = &body[..body.len().min(MAX)];
    let mut text = String::from_utf8_lossy(cut)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if body.len() > MAX {
        text.push('…');
    }
    text
}

/// An error and its causes, one after the other: reqwest's and tungstenite's own messages
/// say only the outer step ("error sending request").
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of `input` fed as chunks cut at every `cut`-th byte, owned.
    fn frames<F>(
        input: &[u8],
        cut: usize,
        mut feed: F,
    ) -> Vec<(Option<String>, Option<String>, String)>
    where
        F: FnMut(&[u8], &mut dyn FnMut(Frame<'_>) -> Flow),
    {
        let mut out = Vec::new();
        for chunk in input.chunks(cut.max(1)) {
            feed(chunk, &mut |frame| {
                out.push(owned(frame));
                Flow::Continue
            });
        }
        out
    }

    fn owned(frame: Frame<'_>) -> (Option<String>, Option<String>, String) {
        match frame {
            Frame::Message { id, event, data } => (
                id.map(|i| String::from_utf8_lossy(i).into_owned()),
                event.map(str::to_owned),
                String::from_utf8_lossy(data).into_owned(),
            ),
            Frame::Oversize(bytes) => (None, None, format!("oversize {bytes}")),
        }
    }

    fn text(data: &str) -> (Option<String>, Option<String>, String) {
        (None, None, data.to_owned())
    }

    #[test]
    fn ndjson_lines_whatever_the_chunking_blank_lines_skipped_crlf_stripped() {
        let input = b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\n[3]\n";
        for cut in 1..=input.len() {
            let mut ndjson = Ndjson::default();
            let got = frames(input, cut, |chunk, each| {
                ndjson.feed(chunk, each);
            });
            assert_eq!(
                got,
                vec![text("{\"a\":1}"), text("{\"b\":2}"), text("[3]")],
                "cut {cut}"
            );
            assert_eq!(ndjson.finish(false, &mut |_| Flow::Continue), 0);
        }
    }

    #[test]
    fn ndjson_last_line_kept_on_a_clean_end_discarded_on_a_broken_one() {
        let mut ndjson = Ndjson::default();
        ndjson.feed(b"{\"a\":1}\n{\"b\":", &mut |_| Flow::Continue);
        assert_eq!(ndjson.finish(false, &mut |_| Flow::Continue), 5);

        let mut ndjson = Ndjson::default();
        let mut got = Vec::new();
        ndjson.feed(b"{\"a\":1}\n{\"b\":2}", &mut |_| Flow::Continue);
        let discarded = ndjson.finish(true, &mut |f| {
            got.push(owned(f));
            Flow::Continue
        });
        assert_eq!((discarded, got), (0, vec![text("{\"b\":2}")]));
    }

    #[test]
    fn ndjson_stop_is_obeyed_mid_chunk() {
        let mut ndjson = Ndjson::default();
        let mut seen = 0;
        let flow = ndjson.feed(b"1\n2\n3\n", &mut |_| {
            seen += 1;
            if seen == 2 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        assert_eq!((flow, seen), (Flow::Stop, 2));
    }

    #[test]
    fn an_oversize_line_is_skipped_without_being_buffered() {
        let mut ndjson = Ndjson::default();
        let big = vec![b'x'; 300_000];
        let mut got = Vec::new();
        ndjson.feed(b"1\n", &mut |f| {
            got.push(owned(f));
            Flow::Continue
        });
        for _ in 0..4 {
            ndjson.feed(&big, &mut |f| {
                got.push(owned(f));
                Flow::Continue
            });
            assert!(ndjson.lines.buffer.capacity() <= MAX_MESSAGE * 2);
        }
        ndjson.feed(b"\n2\n", &mut |f| {
            got.push(owned(f));
            Flow::Continue
        });
        assert_eq!(got, vec![text("1"), text("oversize 1200000"), text("2")]);
    }

    #[test]
    fn sse_events_with_names_ids_multiline_data_and_comments() {
        let input = b"\xEF\xBB\xBF: keep-alive\n\
            event: order\nid: 7\ndata: {\"a\":\ndata: 1}\n\n\
            data:no space\r\n\r\n\
            retry: 100\nevent: only-a-name\n\n\
            data\n\n\
            id: 9\revent: x\rdata: cr\r\r\
            data: cut off";
        for cut in 1..=input.len() {
            let mut sse = Sse::default();
            let got = frames(input, cut, |chunk, each| {
                sse.feed(chunk, each);
            });
            assert_eq!(
                got,
                vec![
                    (Some("7".into()), Some("order".into()), "{\"a\":\n1}".into()),
                    text("no space"),
                    // `data` alone leaves the data buffer empty: nothing is dispatched.
                    (Some("9".into()), Some("x".into()), "cr".into()),
                ],
                "cut {cut}"
            );
            assert!(sse.finish() > 0, "the unterminated event is reported");
        }
    }

    #[test]
    fn sse_oversize_event_is_skipped_and_the_next_one_kept() {
        let mut sse = Sse::default();
        let line = format!("data: {}\n", "y".repeat(400_000));
        let mut input = String::new();
        for _ in 0..3 {
            input.push_str(&line);
        }
        input.push_str("\ndata: small\n\n");
        let got = frames(input.as_bytes(), 65_536, |chunk, each| {
            sse.feed(chunk, each);
        });
        assert_eq!(got.len(), 2);
        assert!(got[0].2.starts_with("oversize "), "{:?}", got[0].2);
        assert_eq!(got[1], text("small"));
        assert_eq!(sse.finish(), 0);
    }

    #[test]
    fn paths_cannot_leave_the_url_or_add_a_query() {
        assert!(safe_path("orders"));
        assert!(safe_path("v1/events/eu-west"));
        assert!(!safe_path("../admin"));
        assert!(!safe_path("events/./x"));
        assert!(!safe_path("events?admin=1"));
        assert!(!safe_path("events#x"));
        assert!(!safe_path("a b"));
        assert!(
            !safe_path("prices/%2e%2e/%2e%2e/admin"),
            "percent-encoded dots"
        );
        assert_eq!(url_for("http://h/s/", "/x"), "http://h/s/x");
        assert_eq!(url_for("http://h/s", ""), "http://h/s");
        let list = allow_list(None);
        assert!(list.allows(""));
        assert!(!list.allows("x"));
    }
}
