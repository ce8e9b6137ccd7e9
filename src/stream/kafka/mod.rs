//! Kafka sources, through librdkafka (rdkafka with its bundled library).
//!
//! Reads use a consumer that is *assigned* partitions and has no group: it never joins a group
//! and never commits, so production consumers are not disturbed. Each call makes its own
//! consumer (isolated per caller) and runs it on a blocking thread, polling in short slices
//! that watch the call's deadline and cancellation.

mod demo;
mod describe;
mod produce;
mod read;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::OnceCell;

use self::demo::DemoCluster;
use super::config::Place;
use super::lag::LagHistory;
use super::scan::Scan;
use super::source::{
    AllowList, DescribeRequest, OutgoingMessage, Produced, ReadPlan, Source, SourceInfo,
    TopicDescription, TopicSummary,
};
use crate::config::ConfigError;
use crate::tools::{CallContext, ToolError};

pub use demo::DEMO_TOPIC;

/// `[streams.NAME]` with `kind = "kafka"`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Topics that may be read (and written, with `allow_produce`); `*` matches any run of
    /// characters. Default: every topic except internal ones (names starting with `_`).
    pub topics: Option<Vec<String>>,
    /// librdkafka client properties passed through, e.g. `"security.protocol" = "SASL_SSL"`,
    /// `"sasl.username" = "${KAFKA_USER}"`; `${ENV}` references are expanded. Properties that
    /// would make datamcp join a group or commit are refused.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Offer `stream_produce` for this source (default false).
    #[serde(default)]
    pub allow_produce: bool,
    /// Consumer groups `stream_describe_topic` judges when the caller names none, besides the
    /// groups the cluster lists (some Kafka-compatible brokers list none).
    #[serde(default)]
    pub groups: Vec<String>,
    /// What the cluster carries, shown to the model.
    pub description: Option<String>,
    /// How long to wait for the brokers' metadata, in milliseconds (default 5000).
    pub timeout_ms: Option<u64>,
}

/// `[streams.NAME]` with `kind = "demo"`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Offer `stream_produce` on the demo topic (default false).
    #[serde(default)]
    pub allow_produce: bool,
}

/// Properties datamcp sets itself, so that reads never join a group or commit.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
    "enable.idempotence",
];

/// Where the brokers are.
enum Brokers {
    Fixed(String),
    /// The embedded demo cluster, started on first use.
    Demo(OnceCell<Result<DemoCluster, String>>),
}

/// A Kafka source.
pub struct KafkaSource {
    name: String,
    description: Option<String>,
    brokers: Brokers,
    properties: BTreeMap<String, String>,
    allow: AllowList,
    allow_produce: bool,
    groups: Vec<String>,
    /// Whether the brokers answer DescribeConfigs (the mock cluster does not, and times out).
    describe_configs: bool,
    timeout: Duration,
    history: LagHistory,
}

/// Opens a `kind = "kafka"` source.
pub fn open(
    name: &str,
    config: KafkaConfig,
    at: &Place<'_>,
) -> Result<Arc<dyn Source>, ConfigError> {
    let brokers = at.expand("brokers", &config.brokers)?;
    if brokers.trim().is_empty() {
        return Err(at.invalid_key("brokers", "no brokers given", "set brokers = \"host:9092\""));
    }
    let mut properties = BTreeMap::new();
    for (key, value) in &config.properties {
        if RESERVED.contains(&key.as_str()) {
            return Err(at.invalid_key(
                &format!("properties.\"{key}\""),
                format!("'{key}' is set by datamcp"),
                "remove it: reads use an assigned consumer with no group and never commit",
            ));
        }
        properties.insert(key.clone(), at.expand(&format!("properties.{key}"), value)?);
    }
    // librdkafka checks property names and values when a client is made: do it now, so a typo
    // is a config error with its line rather than a failure at the first call.
    let mut check = ClientConfig::new();
    check.set("bootstrap.servers", &brokers);
    for (key, value) in &properties {
        check.set(key, value);
    }
    if let Err(error) = check.create::<rdkafka::consumer::BaseConsumer>() {
        return Err(at.invalid_key(
            "properties",
            format!("librdkafka refuses the client settings: {error}"),
            "check the property names and values against librdkafka's CONFIGURATION.md (this build has no SSL/SASL support unless built with the `kafka-tls` feature)",
        ));
    }
    if config.allow_produce && config.topics.is_none() {
        return Err(at.invalid_key(
            "allow_produce",
            "a source that accepts writes needs an explicit allow-list",
            "list the topics that may be written in `topics`",
        ));
    }
    let topics = config.topics.clone().unwrap_or_else(|| vec!["*".into()]);
    Ok(Arc::new(KafkaSource {
        name: name.to_owned(),
        description: config.description,
        brokers: Brokers::Fixed(brokers),
        properties,
        allow: AllowList::new(topics),
        allow_produce: config.allow_produce,
        groups: config.groups,
        describe_configs: true,
        timeout: Duration::from_millis(config.timeout_ms.unwrap_or(5_000).max(100)),
        history: LagHistory::default(),
    }))
}

/// Opens a `kind = "demo"` source. Nothing starts until a call needs the cluster.
pub fn open_demo(name: &str, config: DemoConfig) -> Arc<dyn Source> {
    Arc::new(KafkaSource {
        name: name.to_owned(),
        description: Some(format!(
            "Embedded demo cluster: topic {DEMO_TOPIC} holds order events (placed, paid, shipped) of the demo shop, keyed by order id, over 3 partitions; consumer groups billing and shipping read it."
        )),
        brokers: Brokers::Demo(OnceCell::new()),
        properties: BTreeMap::new(),
        allow: AllowList::new(vec![DEMO_TOPIC.to_owned()]),
        allow_produce: config.allow_produce,
        groups: demo::DEMO_GROUPS.iter().map(|g| (*g).to_owned()).collect(),
        describe_configs: false,
        timeout: Duration::from_secs(5),
        history: LagHistory::default(),
    })
}

impl KafkaSource {
    /// The bootstrap servers, starting the demo cluster if this is the demo.
    async fn bootstrap(&self) -> Result<String, ToolError> {
        match &self.brokers {
            Brokers::Fixed(brokers) => Ok(brokers.clone()),
            Brokers::Demo(cluster) => {
                let started = cluster
                    .get_or_init(|| async {
                        tokio::task::spawn_blocking(DemoCluster::start)
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|started| started)
                    })
                    .await;
                match started {
                    Ok(cluster) => Ok(cluster.bootstrap().to_owned()),
                    Err(error) => Err(ToolError::Internal(format!(
                        "the demo Kafka cluster did not start: {error}"
                    ))),
                }
            }
        }
    }

    /// Client settings every client of this source shares.
    fn client_config(&self, bootstrap: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("client.id", "datamcp")
            .set("socket.timeout.ms", self.timeout.as_millis().to_string())
            // Reconnect quickly: a call has seconds, not minutes.
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000")
            .set("log_level", "3");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Settings of a read's consumer: assigned partitions, no group, no commit.
    fn consumer_config(&self, bootstrap: &str) -> ClientConfig {
        let mut config = self.client_config(bootstrap);
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", "100")
            // librdkafka prefetches into a local queue of up to 64 MiB by default: the largest
            // part of a read's memory. 8 MiB keeps a read's memory near max_bytes plus a
            // fixed overhead without slowing a scan (measured in benches/stream.rs).
            .set("queued.max.messages.kbytes", "8192")
            .set("fetch.max.bytes", "8388608")
            // When that queue is full the fetcher pauses this long (1 s by default), which
            // would leave a fast scan waiting on an empty queue.
            .set("fetch.queue.backoff.ms", "5")
            .set("topic.metadata.refresh.interval.ms", "-1")
            // librdkafka refuses to assign partitions to a consumer without a group id
            // ("Unknown group"); the id is never used to join or commit, since nothing
            // subscribes and auto-commit is off.
            .set("group.id", "datamcp-unused");
        config
    }

    fn check_topic(&self, topic: &str) -> Result<(), ToolError> {
        if self.allows(topic) {
            Ok(())
        } else {
            Err(ToolError::Refused(format!(
                "topic '{topic}' is not on the allow-list of source '{}' ({}); stream_list_topics lists the readable topics",
                self.name,
                self.allow.patterns().join(", ")
            )))
        }
    }
}

impl Source for KafkaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: self.name.clone(),
            kind: match self.brokers {
                Brokers::Fixed(_) => "kafka",
                Brokers::Demo(_) => "demo",
            }
            .to_owned(),
            description: self.description.clone(),
            topics: self.allow.patterns().to_vec(),
            replayable: true,
            can_produce: self.allow_produce,
        }
    }

    fn allows(&self, topic: &str) -> bool {
        topic_allowed(&self.allow, topic)
    }

    fn list_topics<'a>(
        &'a self,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<TopicSummary>, ToolError>> {
        Box::pin(async move {
            let bootstrap = self.bootstrap().await?;
            let config = self.consumer_config(&bootstrap);
            let timeout = self.timeout.min(ctx.remaining());
            let name = self.name.clone();
            let allow = self.allow.clone();
            let deadline = ctx.deadline();
            let cancel = ctx.cancellation().clone();
            run_blocking(move || {
                let listing = describe::Listing {
                    source: &name,
                    allowed: &|topic| topic_allowed(&allow, topic),
                    timeout,
                    deadline,
                    cancel: &cancel,
                };
                describe::list_topics(&config, &listing)
            })
            .await
        })
    }

    fn describe_topic<'a>(
        &'a self,
        ctx: &'a CallContext,
        request: &'a DescribeRequest,
    ) -> BoxFuture<'a, Result<TopicDescription, ToolError>> {
        Box::pin(async move {
            self.check_topic(&request.topic)?;
            let bootstrap = self.bootstrap().await?;
            describe::describe(self, &bootstrap, ctx, request).await
        })
    }

    fn read<'a>(
        &'a self,
        ctx: &'a CallContext,
        plan: ReadPlan,
        scan: Scan,
    ) -> BoxFuture<'a, Result<Scan, ToolError>> {
        Box::pin(async move {
            self.check_topic(&plan.topic)?;
            let bootstrap = self.bootstrap().await?;
            let config = self.consumer_config(&bootstrap);
            let cancel = ctx.cancellation().clone();
            let source = self.name.clone();
            let timeout = self.timeout;
            let call_deadline = ctx.deadline();
            run_blocking(move || {
                read::read(
                    &config,
                    &source,
                    timeout,
                    plan,
                    scan,
                    &cancel,
                    call_deadline,
                )
            })
            .await
        })
    }

    fn produce<'a>(
        &'a self,
        ctx: &'a CallContext,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Produced>, ToolError>> {
        Box::pin(async move {
            if !self.allow_produce {
                return Err(ToolError::Refused(format!(
                    "source '{}' does not accept messages; set allow_produce = true in [streams.{}] to allow it",
                    self.name, self.name
                )));
            }
            self.check_topic(topic)?;
            let bootstrap = self.bootstrap().await?;
            produce::produce(self, &bootstrap, ctx, topic, messages).await
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Brokers::Demo(cluster) = &self.brokers
                && let Some(Ok(cluster)) = cluster.get()
            {
                cluster.stop();
            }
        })
    }
}

/// Whether `topic` is on `allow`: internal topics (`__consumer_offsets`, `_schemas`) only when
/// named exactly, never through a pattern.
fn topic_allowed(allow: &AllowList, topic: &str) -> bool {
    if topic.starts_with('_') {
        allow.patterns().iter().any(|p| p == topic)
    } else {
        allow.allows(topic)
    }
}

/// A consumer made from `config` (which never subscribes), and the brokers it names, for
/// messages.
fn consumer(config: &ClientConfig) -> Result<(rdkafka::consumer::BaseConsumer, String), ToolError> {
    let brokers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_owned();
    let consumer = config
        .create()
        .map_err(|e| upstream("cannot create a Kafka client", &brokers, &e))?;
    Ok((consumer, brokers))
}

/// Runs librdkafka's blocking calls off the async threads.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::Internal(format!("the Kafka worker failed: {e}")))?
}

/// A librdkafka error as a tool error the model can act on.
fn upstream(what: &str, brokers_hint: &str, error: &KafkaError) -> ToolError {
    let code = error.rdkafka_error_code();
    let transient = matches!(
        code,
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
        )
    );
    let hint = match code {
        Some(
            RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::RequestTimedOut,
        ) => format!(
            "; the brokers ({brokers_hint}) did not answer: check that they are up and reachable, then retry"
        ),
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::GroupAuthorizationFailed,
        ) => "; the configured credentials may not read this".to_owned(),
        _ => String::new(),
    };
    ToolError::Upstream {
        message: format!("{what}: {error}{hint}"),
        transient,
    }
}
