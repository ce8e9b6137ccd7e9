//! HTTP event streams: a URL that streams newline-delimited JSON or Server-Sent Events.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::config::Place;
use super::source::Source;
use crate::config::ConfigError;

/// `[streams.NAME]` with `kind = "http"`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The stream's URL (`http://` or `https://`).
    pub url: String,
    /// Request headers, e.g. `Authorization = "Bearer ${TOKEN}"`; `${ENV}` is expanded.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// What the description says it carries.
    pub description: Option<String>,
}

/// Opens a `kind = "http"` source.
pub fn open(
    name: &str,
    config: HttpConfig,
    at: &Place<'_>,
) -> Result<Arc<dyn Source>, ConfigError> {
    let _ = (name, config);
    Err(at.invalid(
        "HTTP stream sources are not available yet",
        "remove the source",
    ))
}
