//! `stream_list_sources`: the configured stream sources.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Sources;
use crate::stream::source::SourceInfo;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `stream_list_sources` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSourcesParams {}

/// Result of `stream_list_sources`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListSourcesOutput {
    /// The sources, by name.
    pub sources: Vec<SourceInfo>,
}

/// `stream_list_sources`.
pub struct ListSources {
    sources: Arc<Sources>,
}

impl ListSources {
    /// The tool over `sources`.
    pub fn new(sources: Arc<Sources>) -> Self {
        ListSources { sources }
    }
}

impl Tool for ListSources {
    type Params = ListSourcesParams;
    type Output = ListSourcesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "stream_list_sources".to_owned(),
            title: "List stream sources".to_owned(),
            description: "List the stream sources (Kafka clusters, HTTP event streams, WebSockets) with their allowed topics. Then stream_list_topics or stream_read.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        _ctx: &CallContext,
        _params: &ListSourcesParams,
    ) -> Result<ListSourcesOutput, ToolError> {
        Ok(ListSourcesOutput {
            sources: self.sources.values().map(|s| s.info()).collect(),
        })
    }

    fn render_text(&self, _params: &ListSourcesParams, output: &ListSourcesOutput) -> String {
        let mut text = String::from(
            "| source | kind | topics | replayable | produce | description |\n| --- | --- | --- | --- | --- | --- |",
        );
        for s in &output.sources {
            text.push_str(&format!(
                "\n| {} | {} | {} | {} | {} | {} |",
                s.name,
                s.kind,
                s.topics.join(", "),
                s.replayable,
                s.can_produce,
                s.description.as_deref().unwrap_or("")
            ));
        }
        text
    }
}
