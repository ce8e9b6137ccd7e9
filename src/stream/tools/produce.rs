//! `stream_produce`: writes messages to a topic of a source that allows it. Registered only when
//! some source has `allow_produce = true`, and annotated as a write, so a read-only server
//! refuses it.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Sources, source, topic};
use crate::stream::source::{OutgoingMessage, Produced};
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Largest value or key accepted, in bytes.
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Largest batch, in bytes.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Arguments of `stream_produce`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceParams {
    /// Source (default: the only one).
    pub source: Option<String>,
    /// Topic.
    pub topic: String,
    /// The messages, written in order.
    #[schemars(length(min = 1, max = 100))]
    pub messages: Vec<OutgoingParam>,
}

/// One message to write.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutgoingParam {
    /// Key, as text.
    pub key: Option<String>,
    /// Value: any JSON, written as compact JSON text; with `"text": true`, a string written as is.
    pub value: Value,
    /// Write `value` (a string) as raw text instead of JSON.
    #[serde(default)]
    pub text: bool,
    /// Headers (text values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Partition (default: by key).
    pub partition: Option<i32>,
}

/// Result of `stream_produce`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProduceOutput {
    /// The topic written.
    pub topic: String,
    /// Where each message landed, in order.
    pub written: Vec<Produced>,
}

/// `stream_produce`.
pub struct Produce {
    sources: Arc<Sources>,
}

impl Produce {
    /// The tool over `sources`.
    pub fn new(sources: Arc<Sources>) -> Self {
        Produce { sources }
    }
}

impl Tool for Produce {
    type Params = ProduceParams;
    type Output = ProduceOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "stream_produce".to_owned(),
            title: "Write messages to a topic".to_owned(),
            description: "Write messages to an allow-listed topic of a Kafka source with allow_produce (idempotent producer, acks=all). Returns partition and offset of each.".to_owned(),
            annotations: Annotations {
                read_only_hint: false,
                destructive_hint: false,
                idempotent_hint: false,
                open_world_hint: false,
            },
        }
    }

    fn cacheable(&self, _output: &ProduceOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ProduceParams,
    ) -> Result<ProduceOutput, ToolError> {
        let source = source(&self.sources, params.source.as_deref())?;
        let topic = topic(source.as_ref(), Some(&params.topic))?;
        let mut total = 0;
        let mut messages = Vec::with_capacity(params.messages.len());
        for (index, message) in params.messages.iter().enumerate() {
            let value = match (&message.value, message.text) {
                (Value::String(text), true) => text.clone().into_bytes(),
                (_, true) => {
                    return Err(ToolError::InvalidArguments(format!(
                        "messages[{index}]: text = true needs a string value"
                    )));
                }
                (value, false) => value.to_string().into_bytes(),
            };
            let size = value.len() + message.key.as_ref().map_or(0, String::len);
            if size > MAX_MESSAGE_BYTES {
                return Err(ToolError::InvalidArguments(format!(
                    "messages[{index}] is {size} bytes; at most {MAX_MESSAGE_BYTES} are accepted"
                )));
            }
            total += size;
            if total > MAX_BATCH_BYTES {
                return Err(ToolError::InvalidArguments(format!(
                    "the messages pass {MAX_BATCH_BYTES} bytes together; write them in smaller batches"
                )));
            }
            messages.push(OutgoingMessage {
                key: message.key.clone().map(String::into_bytes),
                value,
                headers: message.headers.clone().into_iter().collect(),
                partition: message.partition,
            });
        }
        let written = source.produce(ctx, &topic, messages).await?;
        ctx.add_records(written.len() as u64);
        Ok(ProduceOutput { topic, written })
    }

    fn render_text(&self, _params: &ProduceParams, output: &ProduceOutput) -> String {
        let places: Vec<String> = output
            .written
            .iter()
            .map(|p| format!("p{}@{}", p.partition, p.offset))
            .collect();
        format!(
            "wrote {} message(s) to {}: {}",
            output.written.len(),
            output.topic,
            places.join(", ")
        )
    }
}
