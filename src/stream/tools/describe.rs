//! `stream_describe_topic`: offsets per partition, the topic's configuration, and the consumer
//! groups reading it with their lag judged over a window.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Sources, source, topic};
use crate::stream::source::{DescribeRequest, TopicDescription};
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `stream_describe_topic`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeTopicParams {
    /// Default: the only source.
    pub source: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Groups to judge (default: all with offsets on the topic).
    #[schemars(length(max = 50))]
    pub groups: Option<Vec<String>>,
    /// Sampling window (default 2000; 0: one sample plus earlier calls').
    #[schemars(range(max = 60_000))]
    pub lag_window_ms: Option<u64>,
}

/// `stream_describe_topic`.
pub struct DescribeTopic {
    sources: Arc<Sources>,
}

impl DescribeTopic {
    /// The tool over `sources`.
    pub fn new(sources: Arc<Sources>) -> Self {
        DescribeTopic { sources }
    }
}

impl Tool for DescribeTopic {
    type Params = DescribeTopicParams;
    type Output = TopicDescription;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "stream_describe_topic".to_owned(),
            title: "Describe a topic and its consumers".to_owned(),
            description: "Partition offsets, topic config, and each consumer group's lag with a verdict (ok, lagging, stalled, stopped) judged over a window of samples.".to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &TopicDescription) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &DescribeTopicParams,
    ) -> Result<TopicDescription, ToolError> {
        let source = source(&self.sources, params.source.as_deref())?;
        let topic = topic(source.as_ref(), params.topic.as_deref())?;
        let request = DescribeRequest {
            topic,
            groups: params.groups.clone().unwrap_or_default(),
            lag_window: Duration::from_millis(params.lag_window_ms.unwrap_or(2_000)),
        };
        source.describe_topic(ctx, &request).await
    }

    fn render_text(&self, _params: &DescribeTopicParams, output: &TopicDescription) -> String {
        let mut text = format!(
            "topic {}\n| partition | leader | replicas | in sync | low | high |\n| --- | --- | --- | --- | --- | --- |",
            output.topic
        );
        for p in &output.partitions {
            text.push_str(&format!(
                "\n| {} | {} | {:?} | {:?} | {} | {} |",
                p.partition, p.leader, p.replicas, p.in_sync, p.low, p.high
            ));
        }
        if !output.config.is_empty() {
            text.push_str("\nconfig: ");
            text.push_str(
                &output
                    .config
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        for g in &output.consumer_groups {
            text.push_str(&format!(
                "\ngroup {} ({} members{}): {:?}, lag {} — {} [{} samples over {} ms]",
                g.group,
                g.members.map_or("unknown".to_owned(), |m| m.to_string()),
                g.state
                    .as_deref()
                    .map(|s| format!(", {s}"))
                    .unwrap_or_default(),
                g.verdict,
                g.total_lag,
                g.reason,
                g.samples,
                g.window_ms
            ));
            for p in &g.partitions {
                text.push_str(&format!(
                    "\n  p{}: committed {}, high {}, lag {}, {:?}",
                    p.partition,
                    p.committed.map_or("none".to_owned(), |c| c.to_string()),
                    p.high,
                    p.lag,
                    p.verdict
                ));
            }
        }
        if output.consumer_groups.is_empty() && !output.partitions.is_empty() {
            text.push_str("\nno consumer group has committed offsets on this topic");
        }
        for note in &output.notes {
            text.push_str(&format!("\nnote: {note}"));
        }
        text
    }
}
