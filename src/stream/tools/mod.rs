//! The stream tools. One file per tool; what they share (finding a source and a topic, the
//! limits every read obeys) is here.

mod aggregate;
mod describe;
mod produce;
mod read;
mod sources;
mod topics;

pub use aggregate::{Aggregate, AggregateParams};
pub use describe::{DescribeTopic, DescribeTopicParams};
pub use produce::{Produce, ProduceParams};
pub use read::{Read, ReadParams};
pub use sources::{ListSources, ListSourcesParams};
pub use topics::{ListTopics, ListTopicsParams};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::source::Source;
use crate::tools::{CallContext, ToolError};

/// The configured sources, by name.
pub type Sources = BTreeMap<String, Arc<dyn Source>>;

/// Time kept back from the call's deadline so a read that stops at its wait still has time to
/// build and send its result.
const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// The source named `name`, or the only one when there is one.
pub(crate) fn source<'a>(
    sources: &'a Sources,
    name: Option<&str>,
) -> Result<&'a Arc<dyn Source>, ToolError> {
    match name {
        Some(name) => sources.get(name).ok_or_else(|| {
            ToolError::InvalidArguments(format!(
                "no stream source '{name}'; the sources are: {}",
                names(sources)
            ))
        }),
        None if sources.len() == 1 => Ok(sources.values().next().expect("one source")),
        None => Err(ToolError::InvalidArguments(format!(
            "name the source: one of {}",
            names(sources)
        ))),
    }
}

fn names(sources: &Sources) -> String {
    if sources.is_empty() {
        return "(none configured)".into();
    }
    sources.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The topic a call names, checked against the source's allow-list. Sources whose only stream
/// is their URL take no topic (empty).
pub(crate) fn topic(source: &dyn Source, topic: Option<&str>) -> Result<String, ToolError> {
    let allowed = source.info().topics;
    // A source that allows exactly one topic needs no name.
    let only = match allowed.as_slice() {
        [one] if !one.contains(['*', '?']) => Some(one.as_str()),
        _ => None,
    };
    let topic = topic.or(only).unwrap_or("");
    if source.allows(topic) {
        return Ok(topic.to_owned());
    }
    Err(if topic.is_empty() {
        ToolError::InvalidArguments(format!(
            "name the topic of source '{}' (allowed: {})",
            source.name(),
            allowed.join(", ")
        ))
    } else {
        ToolError::Refused(format!(
            "'{topic}' is not on the allow-list of source '{}' (allowed: {}); stream_list_topics lists what can be read",
            source.name(),
            allowed.join(", ")
        ))
    })
}

/// How long a read may wait: what it asked, within the call's deadline.
pub(crate) fn wait(ctx: &CallContext, asked_ms: u64) -> Duration {
    Duration::from_millis(asked_ms).min(ctx.remaining().saturating_sub(ANSWER_MARGIN))
}

/// The instant a scan must stop by.
pub(crate) fn scan_deadline(ctx: &CallContext, wait: Duration) -> Instant {
    Instant::now() + wait.min(ctx.remaining().saturating_sub(ANSWER_MARGIN))
}
