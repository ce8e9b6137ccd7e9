//! Writing messages, only for sources with `allow_produce`, with an idempotent producer, so a
//! send librdkafka retries is never written twice.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::{KafkaSource, upstream};

/// `upstream`, but never retried.
fn upstream_final(what: &str, brokers: &str, error: &rdkafka::error::KafkaError) -> ToolError {
    match upstream(what, brokers, error) {
        ToolError::Upstream { message, .. } => ToolError::Upstream {
            message,
            transient: false,
        },
        other => other,
    }
}
use crate::stream::source::{OutgoingMessage, Produced};
use crate::tools::{CallContext, ToolError};

pub(super) async fn produce(
    source: &KafkaSource,
    bootstrap: &str,
    ctx: &CallContext,
    topic: &str,
    messages: Vec<OutgoingMessage>,
) -> Result<Vec<Produced>, ToolError> {
    // A producer per call: callers are isolated, and no producer state outlives a broker
    // that restarted (an idempotent producer's id and sequence numbers would be stale).
    let mut config = source.client_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        // Delivery is awaited within the call's deadline below; librdkafka keeps retrying for
        // this long, so a broker that is briefly away still gets the message.
        .set("message.timeout.ms", "30000");
    let producer: FutureProducer = config
        .create()
        .map_err(|e| upstream("cannot create a Kafka producer", bootstrap, &e))?;
    let mut sends = Vec::with_capacity(messages.len());
    for message in &messages {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (name, value) in &message.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .payload(&message.value)
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key);
        }
        if let Some(partition) = message.partition {
            record = record.partition(partition);
        }
        let wait = Timeout::After(ctx.remaining().saturating_sub(Duration::from_millis(100)));
        sends.push(producer.send(record, wait));
    }
    let mut produced = Vec::with_capacity(sends.len());
    for (index, send) in sends.into_iter().enumerate() {
        let remaining = ctx.remaining().saturating_sub(Duration::from_millis(100));
        let delivery = tokio::select! {
            delivery = send => delivery,
            _ = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
            _ = tokio::time::sleep(remaining) => {
                return Err(ToolError::Upstream {
                    message: format!(
                        "message {index} was not confirmed before the call's deadline ({} of {} were); it may still be written: read the topic before sending it again",
                        produced.len(),
                        messages.len()
                    ),
                    transient: false,
                });
            }
        };
        match delivery {
            Ok(delivery) => produced.push(Produced {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((error, _)) => {
                // Never transient: a retry would write again the messages before this one.
                return Err(upstream_final(
                    &format!(
                        "message {index} was not written ({} of {} were)",
                        produced.len(),
                        messages.len()
                    ),
                    bootstrap,
                    &error,
                ));
            }
        }
    }
    // Dropping a producer waits for librdkafka to flush and stop its threads: not on the
    // async workers.
    tokio::task::spawn_blocking(move || drop(producer));
    Ok(produced)
}
