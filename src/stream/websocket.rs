//! WebSocket streams.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::config::Place;
use super::source::Source;
use crate::config::ConfigError;

/// `[streams.NAME]` with `kind = "websocket"`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    /// The stream's URL (`ws://` or `wss://`).
    pub url: String,
    /// Request headers, e.g. `Authorization = "Bearer ${TOKEN}"`; `${ENV}` is expanded.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// What the description says it carries.
    pub description: Option<String>,
}

/// Opens a `kind = "websocket"` source.
pub fn open(
    name: &str,
    config: WebSocketConfig,
    at: &Place<'_>,
) -> Result<Arc<dyn Source>, ConfigError> {
    let _ = (name, config);
    Err(at.invalid(
        "WebSocket sources are not available yet",
        "remove the source",
    ))
}
