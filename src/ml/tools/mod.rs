//! The ML tools. One file per tool; what they share (finding a tracking server, timestamps,
//! the JSON MLflow answers with) is here.

mod deploy;
mod evaluate;
mod experiments;
mod model;
mod models;
mod monitor;
mod predict;
mod run;
mod runs;
mod train;

pub use deploy::{Deploy, DeployParams};
pub use evaluate::{Evaluate, EvaluateParams};
pub use experiments::{ListExperiments, ListExperimentsParams};
pub use model::{GetModel, GetModelParams};
pub use models::{ListModels, ListModelsParams};
pub use monitor::{Monitor, MonitorParams};
pub use predict::{Predict, PredictParams};
pub use run::{GetRun, GetRunParams};
pub use runs::{SearchRuns, SearchRunsParams};
pub use train::{Train, TrainParams};

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::mlflow::Mlflow;
use crate::tools::ToolError;

/// The configured tracking servers, by name.
pub type Servers = BTreeMap<String, Arc<Mlflow>>;

/// The tracking server named `name`, or the only one when there is one.
pub(crate) fn server<'a>(
    servers: &'a Servers,
    name: Option<&str>,
) -> Result<&'a Arc<Mlflow>, ToolError> {
    let names = || {
        if servers.is_empty() {
            "(none configured: add an [ml.NAME] table with its tracking_uri)".to_owned()
        } else {
            servers.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    };
    match name {
        Some(name) => servers.get(name).ok_or_else(|| {
            ToolError::InvalidArguments(format!(
                "no MLflow server '{name}'; the servers are: {}",
                names()
            ))
        }),
        None if servers.len() == 1 => servers
            .values()
            .next()
            .ok_or_else(|| ToolError::Internal("one server expected".into())),
        None => Err(ToolError::InvalidArguments(format!(
            "name the MLflow server: one of {}",
            names()
        ))),
    }
}

// The names say it all, and every description here is paid for in every tools/list.
/// Passing range.
#[derive(Debug, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Bound {
    /// The bound, if it says something: a bound without `min` and `max` would pass anything.
    pub fn check(&self, what: &str) -> Result<(), ToolError> {
        match (self.min, self.max) {
            (None, None) => Err(ToolError::InvalidArguments(format!(
                "the bound for {what} has neither min nor max; give at least one"
            ))),
            (Some(min), Some(max)) if min > max => Err(ToolError::InvalidArguments(format!(
                "the bound for {what} has min {min} above max {max}"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether `value` meets the bound.
    pub fn passes(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    /// The bound as text, e.g. `≥ 0.8`.
    pub fn describe(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("between {min} and {max}"),
            (Some(min), None) => format!("≥ {min}"),
            (None, Some(max)) => format!("≤ {max}"),
            (None, None) => "anything".into(),
        }
    }
}

/// An MLflow timestamp (milliseconds since the epoch, as a number or a string) as RFC 3339.
pub(crate) fn time(value: Option<&Value>) -> Option<String> {
    let ms = match value? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some(crate::calendar::format_millis(ms))
}

/// Text of `key` in an MLflow object.
pub(crate) fn text(object: &Value, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// MLflow's `[{key, value}]` lists as a map; keys starting with `mlflow.` (MLflow's own
/// bookkeeping) are left out unless `all`.
pub(crate) fn pairs(list: Option<&Value>, all: bool) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for item in list.and_then(Value::as_array).into_iter().flatten() {
        let Some(key) = item.get("key").and_then(Value::as_str) else {
            continue;
        };
        if !all && key.starts_with("mlflow.") {
            continue;
        }
        map.insert(
            key.to_owned(),
            item.get("value").cloned().unwrap_or(Value::Null),
        );
    }
    map
}

/// Query pairs without the empty ones.
pub(crate) fn query(pairs: &[(&'static str, Option<String>)]) -> Vec<(&'static str, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
        .collect()
}

/// Cells for a Markdown table: `|` and line breaks would break the row.
pub(crate) fn cell(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{}", tidy(f)),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    text.replace('|', "\\|").replace('\n', " ")
}

/// `value` rounded to 6 significant digits, for text; structured results keep every digit.
pub(crate) fn tidy(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let digits = 6 - 1 - value.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits.clamp(-300, 300));
    (value * scale).round() / scale
}
