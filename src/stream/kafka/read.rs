//! A bounded read: resolve the start of each partition, assign, and poll into the scan until a
//! limit, the end of the data as it was when the read began, or the wait runs out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedHeaders, Headers as _, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::upstream;
use crate::stream::scan::{Flow, Headers, RawMessage, Scan, Stop};
use crate::stream::source::{NamedStart, ReadPlan, Start};
use crate::tools::ToolError;

/// Longest one poll blocks, so cancellation and the deadline are seen promptly.
const POLL_SLICE: Duration = Duration::from_millis(50);

struct KafkaHeaders<'a>(Option<&'a BorrowedHeaders>);

impl Headers for KafkaHeaders<'_> {
    fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>)) {
        if let Some(headers) = self.0 {
            for header in headers.iter() {
                f(header.key, header.value);
            }
        }
    }
}

/// One partition's range for this read.
struct Range {
    start: i64,
    /// The high watermark when the read began; `None` for a `latest` read, which waits for
    /// new messages instead of stopping at the end.
    end: Option<i64>,
    done: bool,
}

pub(super) fn read(
    config: &ClientConfig,
    source: &str,
    timeout: Duration,
    plan: ReadPlan,
    mut scan: Scan,
    cancel: &CancellationToken,
    call_deadline: Instant,
) -> Result<Scan, ToolError> {
    let (consumer, brokers) = super::consumer(config)?;
    // Finding the partitions and their offsets has the source's timeout within the call's
    // deadline; the wait for messages (`max_wait_ms`) starts once the read is assigned.
    let setup_deadline = call_deadline;
    let io_timeout =
        |deadline: Instant| timeout.min(deadline.saturating_duration_since(Instant::now()));
    let partitions =
        super::describe::partitions(&consumer, &plan.topic, io_timeout(setup_deadline), &brokers)?;
    let chosen: Vec<i32> = match (&plan.resume, &plan.partitions) {
        (Some(resume), _) => resume.keys().copied().collect(),
        (None, Some(asked)) => asked.clone(),
        (None, None) => partitions.iter().map(|p| p.id).collect(),
    };
    for partition in &chosen {
        if !partitions.iter().any(|p| p.id == *partition) {
            return Err(ToolError::InvalidArguments(format!(
                "topic '{}' has no partition {partition}; it has partitions 0..{} (source '{source}')",
                plan.topic,
                partitions.len()
            )));
        }
    }

    let mut ranges = BTreeMap::new();
    let mut lows = BTreeMap::new();
    let mut by_time = TopicPartitionList::new();
    for &partition in &chosen {
        let (low, high) = consumer
            .fetch_watermarks(&plan.topic, partition, io_timeout(setup_deadline))
            .map_err(|e| upstream("cannot read the partition offsets", &brokers, &e))?;
        lows.insert(partition, low);
        let latest = plan.resume.is_none() && plan.start == Start::Named(NamedStart::Latest);
        let start = match (&plan.resume, &plan.start) {
            (Some(resume), _) => resume.get(&partition).copied().unwrap_or(low),
            (None, Start::Named(NamedStart::Earliest)) => low,
            (None, Start::Named(NamedStart::Latest)) => high,
            (None, Start::Tail { tail }) => high
                .saturating_sub(i64::try_from(*tail).unwrap_or(i64::MAX))
                .max(low),
            (None, Start::Offset { offset }) => *offset,
            (None, Start::Timestamp { timestamp }) => {
                by_time
                    .add_partition_offset(
                        &plan.topic,
                        partition,
                        Offset::Offset(timestamp.millis()),
                    )
                    .map_err(|e| ToolError::Internal(e.to_string()))?;
                high
            }
        };
        if start < low && start >= 0 {
            scan.note(format!(
                "partition {partition} starts at offset {low}: older messages were deleted or compacted away"
            ));
        } else if start > high {
            scan.note(format!(
                "partition {partition} ends at offset {high}: nothing at offset {start} yet"
            ));
        }
        let start = start.clamp(low, high.max(low));
        ranges.insert(
            partition,
            Range {
                start,
                end: (!latest).then_some(high),
                done: false,
            },
        );
    }
    // Partitions whose messages before this time are skipped while reading: where the broker
    // could not find the first offset at the time itself, or a cursor says so.
    let mut skip_before: Option<i64> = plan.resume_skip_before;
    let mut skipping: Vec<i32> = match skip_before {
        Some(_) => ranges.keys().copied().collect(),
        None => Vec::new(),
    };
    if by_time.count() > 0 {
        let found = consumer
            .offsets_for_times(by_time, io_timeout(setup_deadline))
            .map_err(|e| upstream("cannot find offsets by time", &brokers, &e))?;
        let Start::Timestamp { timestamp } = &plan.start else {
            return Err(ToolError::Internal("offsets by time without a time".into()));
        };
        let wanted = timestamp.millis();
        for element in found.elements() {
            let partition = element.partition();
            let Some(range) = ranges.get_mut(&partition) else {
                continue;
            };
            match element.offset() {
                Offset::Offset(offset) => range.start = offset.min(range.start),
                // "No message at or after the time" -- or a broker that cannot look offsets up
                // by time (librdkafka's mock cluster answers the same). The newest message
                // tells which: if it is older, nothing is to be read; if not, read from the
                // oldest and skip the older ones (the scan limits bound the cost).
                _ => {
                    let low = lows.get(&partition).copied().unwrap_or(range.start);
                    let newest = newest_timestamp(
                        &consumer,
                        &plan.topic,
                        partition,
                        range.start,
                        io_timeout(setup_deadline),
                    );
                    if low < range.start && newest.is_none_or(|t| t >= wanted) {
                        range.start = low;
                        skip_before = Some(wanted);
                        skipping.push(partition);
                    }
                }
            }
        }
        if !skipping.is_empty() && plan.resume_skip_before.is_none() {
            scan.note("the broker did not find offsets by time for some partitions; they were read from their oldest message, skipping older ones (counted as scanned)");
        }
    }

    if let Some(t) = skip_before {
        scan.skipping_before(t);
    }

    // Every partition is announced before any is reported done: a watermark over the read's
    // partitions must know them all.
    for (&partition, range) in &ranges {
        scan.start_partition(partition, range.start);
    }
    let mut assignment = TopicPartitionList::new();
    for (&partition, range) in &mut ranges {
        if range.end.is_some_and(|end| range.start >= end) {
            range.done = true;
            scan.partition_done(partition);
            continue;
        }
        assignment
            .add_partition_offset(&plan.topic, partition, Offset::Offset(range.start))
            .map_err(|e| ToolError::Internal(e.to_string()))?;
    }
    if ranges.values().all(|r| r.done) {
        scan.stop(Stop::EndOfData);
        return Ok(scan);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| upstream("cannot assign the partitions", &brokers, &e))?;
    let deadline = scan.deadline().min(Instant::now() + plan.max_wait);

    let mut last_error: Option<KafkaError> = None;
    loop {
        if cancel.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            scan.stop(Stop::MaxWait);
            break;
        }
        match consumer.poll(POLL_SLICE.min(deadline - now)) {
            None => {}
            Some(Ok(message)) => {
                let partition = message.partition();
                let offset = message.offset();
                let Some(range) = ranges.get_mut(&partition) else {
                    continue;
                };
                if range.done || range.end.is_some_and(|end| offset >= end) {
                    if !range.done {
                        range.done = true;
                        scan.partition_done(partition);
                    }
                } else {
                    let headers = KafkaHeaders(message.headers());
                    let raw = RawMessage {
                        partition,
                        offset: Some(offset),
                        timestamp_ms: message.timestamp().to_millis(),
                        key: message.key(),
                        value: message.payload(),
                        headers: &headers,
                    };
                    let early = skip_before.is_some_and(|t| {
                        skipping.contains(&partition) && raw.timestamp_ms.is_some_and(|ts| ts < t)
                    });
                    let flow = if early {
                        scan.pass(&raw)
                    } else {
                        scan.offer(&raw)
                    };
                    if flow == Flow::Stop {
                        break;
                    }
                    if range.end.is_some_and(|end| offset + 1 >= end) {
                        range.done = true;
                        scan.partition_done(partition);
                    }
                }
                if ranges.values().all(|r| r.done) {
                    scan.stop(Stop::EndOfData);
                    break;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                if let Some(range) = ranges.get_mut(&partition)
                    && range.end.is_some()
                    && !range.done
                {
                    range.done = true;
                    scan.partition_done(partition);
                }
                if ranges.values().all(|r| r.done) {
                    scan.stop(Stop::EndOfData);
                    break;
                }
            }
            Some(Err(error)) => {
                scan.note(format!("the consumer reported: {error}"));
                last_error = Some(error);
            }
        }
    }
    if let (Some(error), 0) = (&last_error, scan.scanned()) {
        return Err(upstream(
            &format!("no message could be read from '{}'", plan.topic),
            &brokers,
            error,
        ));
    }
    Ok(scan)
}

/// The timestamp of the newest message before `end` in `partition`, read with a short
/// assignment of `consumer` (which is not yet assigned for the read itself).
fn newest_timestamp(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    partition: i32,
    end: i64,
    timeout: Duration,
) -> Option<i64> {
    if end <= 0 {
        return None;
    }
    let mut one = TopicPartitionList::new();
    one.add_partition_offset(topic, partition, Offset::Offset(end - 1))
        .ok()?;
    consumer.assign(&one).ok()?;
    let until = Instant::now() + timeout;
    let mut found = None;
    while Instant::now() < until {
        match consumer.poll(POLL_SLICE) {
            Some(Ok(message)) if message.partition() == partition => {
                found = message.timestamp().to_millis();
                break;
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            _ => {}
        }
    }
    let _ = consumer.unassign();
    found
}
