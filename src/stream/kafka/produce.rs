//! Writing messages, only for sources with `allow_produce`: one idempotent producer per source,
//! made on first use, so a retried send never duplicates a message.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::{KafkaSource, upstream};
use crate::stream::source::{OutgoingMessage, Produced};
use crate::tools::{CallContext, ToolError};

pub(super) async fn produce(
    source: &KafkaSource,
    bootstrap: &str,
    ctx: &CallContext,
    topic: &str,
    messages: Vec<OutgoingMessage>,
) -> Result<Vec<Produced>, ToolError> {
    let producer = source
        .producer
        .get_or_try_init(|| async {
            let mut config = source.client_config(bootstrap);
            config
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                .set(
                    "message.timeout.ms",
                    source.timeout.as_millis().max(1_000).to_string(),
                );
            config
                .create::<FutureProducer>()
                .map_err(|e| upstream("cannot create a Kafka producer", bootstrap, &e))
        })
        .await?;
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
        let delivery = tokio::select! {
            delivery = send => delivery,
            _ = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
        };
        match delivery {
            Ok(delivery) => produced.push(Produced {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((error, _)) => {
                return Err(upstream(
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
    Ok(produced)
}
