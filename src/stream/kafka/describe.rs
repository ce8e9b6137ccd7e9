//! Topics, partitions, configuration and consumer groups, from the cluster's metadata. Groups
//! are looked at with OffsetFetch only (a consumer that names the group but never subscribes):
//! nothing joins, nothing commits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use tokio_util::sync::CancellationToken;

use super::{KafkaSource, run_blocking, upstream};
use crate::stream::lag::{Sample, judge};
use crate::stream::source::{
    DescribeRequest, GroupLag, PartitionInfo, TopicDescription, TopicSummary,
};
use crate::tools::{CallContext, ToolError};

/// Groups looked at when the caller names none.
const MAX_GROUPS: usize = 50;
/// Longest wait for the topic's configuration (some Kafka-compatible brokers never answer).
const CONFIG_TIMEOUT: Duration = Duration::from_secs(2);
/// Partitions whose watermarks a listing fetches, over all topics.
const MAX_LISTED_PARTITIONS: usize = 2_000;

/// The partitions of `topic`, or a clear error when it does not exist.
pub(super) fn partitions(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
    brokers: &str,
) -> Result<Vec<PartitionMeta>, ToolError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| upstream("cannot read the cluster's metadata", brokers, &e))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(missing(topic));
    };
    if found.error().is_some() || found.partitions().is_empty() {
        return Err(missing(topic));
    }
    Ok(found
        .partitions()
        .iter()
        .map(|p| PartitionMeta {
            id: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            in_sync: p.isr().to_vec(),
        })
        .collect())
}

/// A partition's placement, copied out of the metadata (which the client owns).
pub(super) struct PartitionMeta {
    pub id: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub in_sync: Vec<i32>,
}

fn missing(topic: &str) -> ToolError {
    ToolError::InvalidArguments(format!(
        "topic '{topic}' does not exist on this cluster; stream_list_topics lists the topics"
    ))
}

/// What a topic listing needs besides the client settings.
pub(super) struct Listing<'a> {
    pub source: &'a str,
    pub allowed: &'a dyn Fn(&str) -> bool,
    pub timeout: Duration,
    /// The call's deadline: past it, topics are listed without their counts.
    pub deadline: Instant,
    pub cancel: &'a CancellationToken,
}

pub(super) fn list_topics(
    config: &ClientConfig,
    listing: &Listing<'_>,
) -> Result<Vec<TopicSummary>, ToolError> {
    let (consumer, brokers) = super::consumer(config)?;
    let metadata = consumer
        .fetch_metadata(None, listing.timeout)
        .map_err(|e| {
            upstream(
                &format!("cannot list the topics of source '{}'", listing.source),
                &brokers,
                &e,
            )
        })?;
    // Leave time to answer: counts are fetched one partition at a time.
    let counts_until = listing.deadline
        - Duration::from_millis(300)
            .min(listing.deadline.saturating_duration_since(Instant::now()));
    let mut budget = MAX_LISTED_PARTITIONS;
    let mut topics = Vec::new();
    for topic in metadata
        .topics()
        .iter()
        .filter(|t| (listing.allowed)(t.name()))
    {
        if listing.cancel.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        let mut summary = TopicSummary {
            name: topic.name().to_owned(),
            partitions: Some(topic.partitions().len() as u32),
            replication: topic
                .partitions()
                .iter()
                .map(|p| p.replicas().len() as u32)
                .min(),
            approx_messages: None,
            watermarks: Vec::new(),
        };
        if budget >= topic.partitions().len() {
            budget -= topic.partitions().len();
            let mut total = 0;
            for partition in topic.partitions() {
                let left = counts_until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                if let Ok((low, high)) = consumer.fetch_watermarks(
                    topic.name(),
                    partition.id(),
                    listing.timeout.min(left),
                ) {
                    summary
                        .watermarks
                        .push([i64::from(partition.id()), low, high]);
                    total += high - low;
                }
            }
            // Only complete counts are given.
            if summary.watermarks.len() == topic.partitions().len() {
                summary.approx_messages = Some(total);
            }
        }
        topics.push(summary);
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}

pub(super) async fn describe(
    source: &KafkaSource,
    bootstrap: &str,
    ctx: &CallContext,
    request: &DescribeRequest,
) -> Result<TopicDescription, ToolError> {
    let config = source.consumer_config(bootstrap);
    let timeout = source.timeout.min(ctx.remaining());
    let topic = request.topic.clone();
    let groups_asked = request.groups.clone();
    let (partitions, groups) = {
        let config = config.clone();
        let topic = topic.clone();
        run_blocking(move || {
            let (consumer, brokers) = super::consumer(&config)?;
            let metadata = partitions(&consumer, &topic, timeout, &brokers)?;
            let mut partitions = Vec::new();
            for p in metadata {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p.id, timeout)
                    .map_err(|e| upstream("cannot read the partition offsets", &brokers, &e))?;
                partitions.push(PartitionInfo {
                    partition: p.id,
                    leader: p.leader,
                    replicas: p.replicas,
                    in_sync: p.in_sync,
                    low,
                    high,
                });
            }
            let groups = consumer.fetch_group_list(None, timeout).map(|list| {
                list.groups()
                    .iter()
                    .map(|g| {
                        (
                            g.name().to_owned(),
                            (g.state().to_owned(), g.members().len() as u32),
                        )
                    })
                    .collect::<BTreeMap<_, _>>()
            });
            Ok((partitions, groups))
        })
        .await?
    };

    let mut notes = Vec::new();
    let known_groups = match groups {
        Ok(groups) => groups,
        Err(error) => {
            notes.push(format!(
                "the cluster did not list its consumer groups ({error}); judged: the groups named in `groups` or in the source's config"
            ));
            BTreeMap::new()
        }
    };
    let candidates: Vec<String> = if groups_asked.is_empty() {
        let mut all: std::collections::BTreeSet<String> = source.groups.iter().cloned().collect();
        all.extend(known_groups.keys().cloned());
        if all.len() > MAX_GROUPS {
            notes.push(format!(
                "the cluster has {} groups; the first {MAX_GROUPS} by name were looked at: name the ones you care about in `groups`",
                all.len()
            ));
        }
        all.into_iter().take(MAX_GROUPS).collect()
    } else {
        groups_asked.clone()
    };

    // Sample the candidates' committed offsets and the watermarks over the window, while the
    // topic's configuration is fetched.
    let partition_ids: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
    // The window fits in the call with time for the last sample and the answer; the samples
    // are spread over the window it really has, never bunched into a shorter one.
    let window = request.lag_window.min(
        ctx.remaining()
            .saturating_sub(Duration::from_millis(500) + timeout),
    );
    if window < request.lag_window {
        notes.push(format!(
            "the lag window was shortened to {} ms to fit the call's timeout",
            window.as_millis()
        ));
    }
    let samples_wanted = if window < Duration::from_millis(250) {
        1
    } else {
        (window.as_millis() / 250).clamp(2, 20) as u32
    };
    let sample_deadline = ctx.deadline() - Duration::from_millis(300).min(ctx.remaining());
    let sampling = async {
        let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        let started = Instant::now();
        for index in 0..samples_wanted {
            if index > 0 {
                let due = started + window * index / (samples_wanted - 1).max(1);
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
                }
            }
            let config = source.client_config(bootstrap);
            let topic = topic.clone();
            let ids = partition_ids.clone();
            let groups = candidates.clone();
            let taken = run_blocking(move || {
                sample(&config, &topic, &ids, &groups, timeout, sample_deadline)
            })
            .await?;
            for (group, sample) in taken {
                samples.entry(group).or_default().push(sample);
            }
        }
        Ok(samples)
    };
    let configuration = async {
        if source.describe_configs {
            Some(topic_config(&config, &topic, timeout.min(CONFIG_TIMEOUT)).await)
        } else {
            None
        }
    };
    let (samples, configuration) = tokio::join!(sampling, configuration);
    let samples = samples?;
    let config = match configuration {
        Some(Ok(entries)) => entries,
        Some(Err(error)) => {
            notes.push(format!(
                "the topic's configuration could not be read: {error}"
            ));
            BTreeMap::new()
        }
        None => BTreeMap::new(),
    };

    let mut consumer_groups = Vec::new();
    for (group, taken) in samples {
        let reads_topic = taken
            .iter()
            .any(|s| s.committed.values().any(Option::is_some));
        if !reads_topic && groups_asked.is_empty() {
            continue;
        }
        let all = source.history.record(&group, &topic, taken);
        // A group the cluster did not list (or a cluster that lists none) has members nobody
        // knows of: the verdict must not call it stopped.
        let (state, members) = known_groups
            .get(&group)
            .map_or((None, None), |(state, members)| {
                (Some(state.clone()), Some(*members))
            });
        let (verdict, reason, partitions) = judge(&all, members);
        let window_ms = match (all.first(), all.last()) {
            (Some(first), Some(last)) => last.at.duration_since(first.at).as_millis() as u64,
            _ => 0,
        };
        consumer_groups.push(GroupLag {
            group,
            state,
            members,
            total_lag: partitions.iter().map(|p| p.lag).sum(),
            verdict,
            reason,
            partitions,
            samples: all.len() as u32,
            window_ms,
        });
    }
    Ok(TopicDescription {
        topic,
        partitions,
        config,
        consumer_groups,
        notes,
    })
}

/// One sample of every group in `groups`: committed offsets and the watermarks.
fn sample(
    config: &ClientConfig,
    topic: &str,
    partitions: &[i32],
    groups: &[String],
    timeout: Duration,
    deadline: Instant,
) -> Result<Vec<(String, Sample)>, ToolError> {
    let brokers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_owned();
    let mut taken = Vec::new();
    if groups.is_empty() {
        return Ok(taken);
    }
    let (consumer, _) = super::consumer(config)?;
    let mut high = BTreeMap::new();
    for &partition in partitions {
        let (_, h) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| upstream("cannot read the partition offsets", &brokers, &e))?;
        high.insert(partition, h);
    }
    let at = Instant::now();
    for group in groups {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let timeout = timeout.min(left);
        // A consumer that names the group only to ask for its offsets (OffsetFetch); it never
        // subscribes, so it never joins, and never commits.
        let mut group_config = config.clone();
        group_config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let consumer: BaseConsumer = group_config
            .create()
            .map_err(|e| upstream("cannot create a Kafka client", &brokers, &e))?;
        let mut asked = TopicPartitionList::new();
        for &partition in partitions {
            asked.add_partition(topic, partition);
        }
        let committed = consumer.committed_offsets(asked, timeout).map_err(|e| {
            upstream(
                &format!("cannot read the offsets of group '{group}'"),
                &brokers,
                &e,
            )
        })?;
        let committed = committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                };
                (e.partition(), offset)
            })
            .collect();
        taken.push((
            group.clone(),
            Sample {
                at,
                committed,
                high: high.clone(),
            },
        ));
    }
    Ok(taken)
}

/// The topic's non-default configuration entries (sensitive values masked).
async fn topic_config(
    config: &ClientConfig,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, String>, String> {
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|e| e.to_string())?;
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let resources = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await
        .map_err(|e| e.to_string())?;
    let mut entries = BTreeMap::new();
    for resource in resources {
        let resource = resource.map_err(|e| e.to_string())?;
        for entry in resource.entries {
            if entry.is_default {
                continue;
            }
            let value = if entry.is_sensitive {
                "(sensitive)".to_owned()
            } else {
                entry.value.unwrap_or_default()
            };
            entries.insert(entry.name, value);
        }
    }
    Ok(entries)
}
