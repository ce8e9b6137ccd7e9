//! Streams: Kafka topics, HTTP event streams and WebSockets, read in bounded, isolated calls.
//!
//! `source.rs` is the contract every kind of source implements (`kafka/`, `http.rs`,
//! `websocket.rs`); `scan.rs` is the one bounded pass every read makes (limits, decoding, the
//! filter, stats); `window.rs` the event-time aggregation; `lag.rs` the Burrow-style judgement
//! of consumer groups; `cursor.rs` the continuation token; `tools/` one file per tool. The tools
//! know sources only through the [`source::Source`] trait.

pub mod config;
pub mod cursor;
pub mod http;
pub mod kafka;
pub mod lag;
pub mod live;
pub mod scan;
pub mod source;
pub mod time;
pub mod tools;
pub mod websocket;
pub mod window;

use std::sync::Arc;

use futures::future::BoxFuture;

use self::config::StreamsFile;
use self::tools::Sources;
use crate::config::ConfigSource;
use crate::tools::kind::{Kind, KindError, KindHost, Reloaded};
use crate::tools::registry::Registration;
use crate::tools::typed;

/// The stream kind.
pub struct Streams {
    sources: Arc<Sources>,
    config: Option<std::collections::BTreeMap<String, config::SourceConfig>>,
}

impl Kind for Streams {
    const NAME: &'static str = "stream";
    type File = StreamsFile;

    fn start(file: StreamsFile, source: &ConfigSource, host: KindHost) -> Result<Self, KindError> {
        let sources = Arc::new(config::open(&file, source)?);
        if !sources.is_empty() {
            let mut tools = vec![
                Registration::listed(typed(tools::ListSources::new(Arc::clone(&sources)))),
                Registration::listed(typed(tools::ListTopics::new(Arc::clone(&sources)))),
                Registration::listed(typed(tools::DescribeTopic::new(Arc::clone(&sources)))),
                Registration::listed(typed(tools::Read::new(Arc::clone(&sources)))),
                Registration::listed(typed(tools::Aggregate::new(Arc::clone(&sources)))),
            ];
            if sources.values().any(|s| s.info().can_produce) {
                tools.push(Registration::listed(typed(tools::Produce::new(
                    Arc::clone(&sources),
                ))));
            }
            for tool in tools {
                host.register(tool.in_group("streams"))?;
            }
        }
        Ok(Streams {
            sources,
            config: file.streams,
        })
    }

    fn reload(&self, file: StreamsFile, _source: &ConfigSource) -> Result<Reloaded, KindError> {
        let mut reloaded = Reloaded::default();
        if file.streams != self.config {
            reloaded.restart_needed.push("streams".to_owned());
        }
        Ok(reloaded)
    }

    fn instructions(&self) -> Option<String> {
        (!self.sources.is_empty()).then(|| {
            "Streams: stream_list_sources, then stream_read (bounded; filter while scanning; continue with the cursor) or stream_aggregate (windowed summaries instead of raw messages); stream_describe_topic judges consumer lag.".to_owned()
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            futures::future::join_all(self.sources.values().map(|s| s.shutdown())).await;
        })
    }
}
