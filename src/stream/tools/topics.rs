//! `stream_list_topics`: a source's readable topics with their size.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Sources, source};
use crate::stream::source::TopicSummary;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `stream_list_topics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTopicsParams {
    /// Default: the only source.
    pub source: Option<String>,
}

/// Result of `stream_list_topics`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListTopicsOutput {
    /// The source listed.
    pub source: String,
    /// Its allow-listed topics, by name.
    pub topics: Vec<TopicSummary>,
}

/// `stream_list_topics`.
pub struct ListTopics {
    sources: Arc<Sources>,
}

impl ListTopics {
    /// The tool over `sources`.
    pub fn new(sources: Arc<Sources>) -> Self {
        ListTopics { sources }
    }
}

impl Tool for ListTopics {
    type Params = ListTopicsParams;
    type Output = ListTopicsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "stream_list_topics".to_owned(),
            title: "List topics".to_owned(),
            description: "A source's readable topics: partitions, replication, watermarks, approximate message counts.".to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &ListTopicsOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ListTopicsParams,
    ) -> Result<ListTopicsOutput, ToolError> {
        let source = source(&self.sources, params.source.as_deref())?;
        let topics = source.list_topics(ctx).await?;
        Ok(ListTopicsOutput {
            source: source.name().to_owned(),
            topics,
        })
    }

    fn render_text(&self, _params: &ListTopicsParams, output: &ListTopicsOutput) -> String {
        let mut text = String::from(
            "| topic | partitions | replication | messages (approx.) |\n| --- | --- | --- | --- |",
        );
        let show = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        for t in &output.topics {
            text.push_str(&format!(
                "\n| {} | {} | {} | {} |",
                t.name,
                show(t.partitions),
                show(t.replication),
                t.approx_messages.map(|n| n.to_string()).unwrap_or_default()
            ));
        }
        text
    }
}
