//! The embedded demo cluster: librdkafka's in-process mock cluster on loopback, holding a
//! deterministic topic of the demo shop's order events and two consumer groups, one caught up
//! and one that lags. Started on the first stream call, never at start-up, so the server's cold
//! start is unchanged.
//!
//! The events continue the demo warehouse: orders 25001 onwards, on 2025-01-01 (the warehouse's
//! orders end with 2024), by its customers 1–2500, so a stream result joins with SQL lookups.

use std::sync::mpsc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;

use crate::stream::time::format_millis;

/// The demo topic.
pub const DEMO_TOPIC: &str = "shop.orders";
/// The demo's consumer groups: one caught up, one behind.
pub const DEMO_GROUPS: [&str; 2] = ["billing", "shipping"];
const PARTITIONS: i32 = 3;
const ORDERS: i64 = 2_000;
const FIRST_ORDER: i64 = 25_001;
const CUSTOMERS: i64 = 2_500;
/// 2025-01-01T00:00:00Z.
const DAY_START_MS: i64 = 1_735_689_600_000;

/// A running demo cluster; dropping the stop sender ends its thread, which drops the cluster.
pub struct DemoCluster {
    bootstrap: String,
    stop: std::sync::Mutex<Option<mpsc::Sender<()>>>,
}

impl DemoCluster {
    /// Starts the cluster on its own thread (the mock cluster must stay on the thread that made
    /// it) and fills it. Blocking.
    pub fn start() -> Result<DemoCluster, String> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("datamcp-demo-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                let bootstrap = cluster.bootstrap_servers();
                let filled = cluster
                    .create_topic(DEMO_TOPIC, PARTITIONS, 1)
                    .map_err(|e| e.to_string())
                    .and_then(|()| fill(&bootstrap));
                let _ = ready_tx.send(filled.map(|()| bootstrap));
                // Keep the cluster until shutdown (or until the server drops the sender).
                let _ = stop_rx.recv();
                drop(cluster);
            })
            .map_err(|e| e.to_string())?;
        let bootstrap = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the demo cluster did not start within 30 s".to_owned())??;
        tracing::info!(%bootstrap, topic = DEMO_TOPIC, "demo Kafka cluster started");
        Ok(DemoCluster {
            bootstrap,
            stop: std::sync::Mutex::new(Some(stop_tx)),
        })
    }

    /// Its bootstrap servers (loopback).
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Stops the cluster.
    pub fn stop(&self) {
        if let Ok(mut stop) = self.stop.lock()
            && let Some(stop) = stop.take()
        {
            let _ = stop.send(());
        }
    }
}

/// One demo event.
struct Event {
    at_ms: i64,
    order_id: i64,
    value: Vec<u8>,
}

/// The events, deterministic: placed orders all day, most paid minutes later, many shipped
/// hours later; a few arrive hours after they happened (late), three are malformed.
fn events() -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(20_250_101);
    let mut events = Vec::new();
    let currencies = ["USD", "USD", "EUR", "GBP"];
    for i in 0..ORDERS {
        let order_id = FIRST_ORDER + i;
        let customer_id = rng.i64(1..=CUSTOMERS);
        let currency = currencies[rng.usize(..currencies.len())];
        let amount = (rng.i64(1_000..=50_000) as f64) / 100.0;
        let placed = DAY_START_MS + i * (86_400_000 / ORDERS) + rng.i64(0..30_000);
        let mut push = |event: &str, at_ms: i64| {
            let value = json!({
                "event": event,
                "order_id": order_id,
                "customer_id": customer_id,
                "amount": amount,
                "currency": currency,
                "at": format_millis(at_ms),
            });
            events.push(Event {
                at_ms,
                order_id,
                value: value.to_string().into_bytes(),
            });
        };
        push("order_placed", placed);
        if rng.f64() < 0.9 {
            let paid = placed + rng.i64(60_000..1_800_000);
            push("order_paid", paid);
            if rng.f64() < 0.7 {
                push("order_shipped", paid + rng.i64(7_200_000..72_000_000));
            }
        }
    }
    events.sort_by_key(|e| e.at_ms);
    // Late arrivals: a few events are appended three hours after they happened (their
    // timestamp and their `at` say when they happened).
    for index in (500..events.len()).step_by(997) {
        let event = &mut events[index];
        event.at_ms -= 3 * 3_600_000;
        if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&event.value) {
            value["at"] = format_millis(event.at_ms).into();
            event.value = value.to_string().into_bytes();
        }
    }
    for (n, index) in [1_000, 2_000, 3_000].into_iter().enumerate() {
        if let Some(event) = events.get_mut(index) {
            event.value = format!(
                "{{\"event\":\"order_paid\",\"order_id\":{},\"amount\":",
                30_000 + n
            )
            .into_bytes();
        }
    }
    events
}

fn fill(bootstrap: &str) -> Result<(), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("log_level", "3")
        .create()
        .map_err(|e| e.to_string())?;
    for event in events() {
        let key = event.order_id.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: "schema",
            value: Some("order-event/v1"),
        });
        let mut record = BaseRecord::to(DEMO_TOPIC)
            .key(key.as_bytes())
            .payload(&event.value)
            .partition((event.order_id % i64::from(PARTITIONS)) as i32)
            .timestamp(event.at_ms)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    // The local queue is full: let it drain, then try again.
                    producer.poll(Duration::from_millis(10));
                    record = returned;
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(20))
        .map_err(|e| format!("the demo events were not written: {e}"))?;

    // Two groups: `shipping` caught up, `billing` 40% behind and with no member (stopped).
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "datamcp-demo")
        .set("log_level", "3")
        .create()
        .map_err(|e| e.to_string())?;
    let mut highs = Vec::new();
    for partition in 0..PARTITIONS {
        let (_, high) = probe
            .fetch_watermarks(DEMO_TOPIC, partition, Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        highs.push((partition, high));
    }
    for (group, share) in [("shipping", 1.0), ("billing", 0.6)] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create()
            .map_err(|e| e.to_string())?;
        let mut offsets = TopicPartitionList::new();
        for &(partition, high) in &highs {
            offsets
                .add_partition_offset(
                    DEMO_TOPIC,
                    partition,
                    Offset::Offset((high as f64 * share) as i64),
                )
                .map_err(|e| e.to_string())?;
        }
        consumer
            .commit(&offsets, CommitMode::Sync)
            .map_err(|e| format!("the demo group {group} could not commit: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_events_are_deterministic_and_continue_the_warehouse() {
        let (a, b) = (events(), events());
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.value == y.value && x.at_ms == y.at_ms)
        );
        assert!(a.len() > 4_000, "{}", a.len());
        assert!(
            a.iter()
                .all(|e| (FIRST_ORDER..FIRST_ORDER + ORDERS).contains(&e.order_id))
        );
        let malformed = a
            .iter()
            .filter(|e| serde_json::from_slice::<serde_json::Value>(&e.value).is_err())
            .count();
        assert_eq!(malformed, 3);
        let late = a
            .windows(2)
            .filter(|w| w[1].at_ms + 3_600_000 < w[0].at_ms)
            .count();
        assert!(
            late >= 4,
            "some events arrive hours after they happened: {late}"
        );
    }
}
