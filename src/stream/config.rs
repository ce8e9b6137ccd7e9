//! The stream kind's part of the config file: `[streams.NAME]` tables, one per source, tagged by
//! `kind`. Each kind of source owns its settings type in its own file; this file only lists
//! them and opens them.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::http::HttpConfig;
use super::kafka::{DemoConfig, KafkaConfig};
use super::source::Source;
use super::websocket::WebSocketConfig;
use crate::config::{ConfigError, ConfigSource};

/// The stream keys of the config file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct StreamsFile {
    /// Stream sources by name: Kafka clusters, HTTP event streams, WebSockets. Without a config
    /// file, one `demo` source (an embedded Kafka cluster of shop events) is served.
    pub streams: Option<BTreeMap<String, SourceConfig>>,
}

/// One `[streams.NAME]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A Kafka cluster (or any Kafka-compatible broker).
    Kafka(KafkaConfig),
    /// A URL that streams newline-delimited JSON or Server-Sent Events.
    Http(HttpConfig),
    /// A `ws://` or `wss://` URL.
    Websocket(WebSocketConfig),
    /// The embedded demo: a Kafka cluster inside datamcp (loopback only) with a topic of shop
    /// events, started on the first call that needs it.
    Demo(DemoConfig),
}

/// The sources of `file`, opened (no I/O: connections are made per call).
pub fn open(
    file: &StreamsFile,
    source: &ConfigSource,
) -> Result<BTreeMap<String, Arc<dyn Source>>, ConfigError> {
    let configs = match &file.streams {
        Some(configs) => configs.clone(),
        None if source.is_none() => {
            BTreeMap::from([("demo".to_owned(), SourceConfig::Demo(DemoConfig::default()))])
        }
        None => BTreeMap::new(),
    };
    let mut sources = BTreeMap::new();
    for (name, config) in configs {
        let at = Place {
            source,
            line: source.line_of_table("streams", &name),
            key: format!("streams.{name}"),
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(at.invalid(
                format!("'{name}' is not a usable source name"),
                "use letters, digits, '_' and '-'",
            ));
        }
        let opened: Arc<dyn Source> = match config {
            SourceConfig::Kafka(config) => super::kafka::open(&name, config, &at)?,
            SourceConfig::Demo(config) => super::kafka::open_demo(&name, config),
            SourceConfig::Http(config) => super::http::open(&name, config, &at)?,
            SourceConfig::Websocket(config) => super::websocket::open(&name, config, &at)?,
        };
        sources.insert(name, opened);
    }
    Ok(sources)
}

/// Where a source's settings are in the file, for errors and `${ENV}` expansion.
pub struct Place<'a> {
    source: &'a ConfigSource,
    line: usize,
    key: String,
}

impl Place<'_> {
    /// An error about the source's table, e.g. `streams.shop`.
    pub fn invalid(&self, message: impl Into<String>, hint: impl Into<String>) -> ConfigError {
        self.source
            .invalid(self.line, self.key.clone(), message, hint)
    }

    /// An error about one of its keys, e.g. `streams.shop.brokers`.
    pub fn invalid_key(
        &self,
        key: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        self.source
            .invalid(self.line, format!("{}.{key}", self.key), message, hint)
    }

    /// `value` of `key` with `${NAME}` references replaced from the environment.
    pub fn expand(&self, key: &str, value: &str) -> Result<String, ConfigError> {
        self.source
            .expand(value, self.line, &format!("{}.{key}", self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<BTreeMap<String, Arc<dyn Source>>, ConfigError> {
        let source = ConfigSource::new(text, "streams.toml", None);
        open(&source.decode::<StreamsFile>()?, &source)
    }

    #[test]
    fn the_example_config_opens_a_source_of_each_kind() {
        let sources = load(include_str!("../../examples/streams.toml")).expect("valid");
        let kinds: Vec<(String, String)> = sources
            .values()
            .map(|s| (s.name().to_owned(), s.info().kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("demo".into(), "demo".into()),
                ("payments".into(), "kafka".into()),
                ("prices".into(), "http".into()),
                ("ticks".into(), "websocket".into())
            ]
        );
    }

    #[test]
    fn settings_that_would_join_a_group_are_refused_with_their_line() {
        let error = load(
            "[streams.k]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\n[streams.k.properties]\n\"group.id\" = \"x\"\n",
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(error.contains("line 1"), "{error}");
        assert!(error.contains("'group.id' is set by datamcp"), "{error}");

        let error = load("[streams.k]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\n[streams.k.properties]\n\"no.such.property\" = \"1\"\n")
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("librdkafka refuses"), "{error}");

        let error = load(
            "[streams.k]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\nallow_produce = true\n",
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(error.contains("explicit allow-list"), "{error}");

        let error = load("[streams.k]\nkind = \"pulsar\"\n")
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("pulsar"), "{error}");
    }

    #[test]
    fn without_a_config_file_the_demo_is_served_and_with_one_nothing_unasked() {
        let none = ConfigSource::none();
        let sources = open(&none.decode::<StreamsFile>().expect("empty"), &none).expect("demo");
        assert_eq!(sources.keys().collect::<Vec<_>>(), ["demo"]);
        assert!(load("read_only = true\n").expect("valid").is_empty());
    }
}
