//! `ml_get_run`: one run whole: params, metrics with a summary of their history, tags and the
//! artifacts it logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Servers, cell, pairs, server, text, time};
use crate::ml::data::number;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Metrics whose history is fetched (one request each).
const MAX_HISTORIES: usize = 25;
/// Artifacts listed at most.
const MAX_ARTIFACTS: usize = 100;

/// Arguments of `ml_get_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRunParams {
    /// The run's id.
    pub run_id: String,
    /// Default: the only one.
    pub server: Option<String>,
}

/// A metric with its history.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MetricSummary {
    /// The latest value.
    pub last: Option<f64>,
    /// The step of the latest value.
    pub last_step: Option<i64>,
    /// Values logged.
    pub count: Option<usize>,
    /// The lowest logged value.
    pub min: Option<f64>,
    /// The highest logged value.
    pub max: Option<f64>,
    /// The first logged value.
    pub first: Option<f64>,
}

/// One artifact.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Artifact {
    /// Path in the run's artifacts.
    pub path: String,
    /// Whether it is a folder.
    pub is_dir: bool,
    /// Size in bytes (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

/// Result of `ml_get_run`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetRunOutput {
    /// The run's id.
    pub run_id: String,
    /// Its name.
    pub run_name: Option<String>,
    /// Its experiment.
    pub experiment_id: Option<String>,
    /// RUNNING, FINISHED, FAILED or KILLED.
    pub status: Option<String>,
    /// When it started (RFC 3339).
    pub start_time: Option<String>,
    /// When it ended (RFC 3339).
    pub end_time: Option<String>,
    /// Where its artifacts are.
    pub artifact_uri: Option<String>,
    /// Its parameters.
    pub params: BTreeMap<String, Value>,
    /// Its metrics with their history.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Its tags, MLflow's own included.
    pub tags: BTreeMap<String, Value>,
    /// The top level of its artifacts.
    pub artifacts: Vec<Artifact>,
}

/// `ml_get_run`.
pub struct GetRun {
    servers: Arc<Servers>,
}

impl GetRun {
    /// The tool over `servers`.
    pub fn new(servers: Arc<Servers>) -> Self {
        GetRun { servers }
    }
}

impl Tool for GetRun {
    type Params = GetRunParams;
    type Output = GetRunOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_get_run".to_owned(),
            title: "Get an MLflow run".to_owned(),
            description:
                "One run: params, metrics with history (count/min/max/first/last), tags, artifacts."
                    .to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                open_world_hint: true,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &GetRunOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &GetRunParams,
    ) -> Result<GetRunOutput, ToolError> {
        let mlflow = server(&self.servers, params.server.as_deref())?;
        let answer = mlflow
            .get(ctx, "runs/get", &[("run_id", params.run_id.clone())])
            .await?;
        let run = answer.get("run").cloned().unwrap_or(Value::Null);
        let info = run.get("info").cloned().unwrap_or(Value::Null);
        let data = run.get("data").cloned().unwrap_or(Value::Null);
        let latest = data
            .get("metrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if latest.len() > MAX_HISTORIES {
            ctx.warn(format!(
                "the run has {} metrics; the history of the first {MAX_HISTORIES} is summarised, the others show their latest value",
                latest.len()
            ));
        }
        let mut metrics = BTreeMap::new();
        for (index, metric) in latest.iter().enumerate() {
            let Some(key) = metric.get("key").and_then(Value::as_str) else {
                continue;
            };
            let mut summary = MetricSummary {
                last: metric.get("value").and_then(number),
                last_step: metric.get("step").and_then(number).map(|s| s as i64),
                count: None,
                min: None,
                max: None,
                first: None,
            };
            if index < MAX_HISTORIES {
                let history = mlflow
                    .get(
                        ctx,
                        "metrics/get-history",
                        &[
                            ("run_id", params.run_id.clone()),
                            ("metric_key", key.to_owned()),
                            ("max_results", "25000".to_owned()),
                        ],
                    )
                    .await?;
                let mut points: Vec<(i64, i64, f64)> = history
                    .get("metrics")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|m| {
                        Some((
                            m.get("step").and_then(number).unwrap_or(0.0) as i64,
                            m.get("timestamp").and_then(number).unwrap_or(0.0) as i64,
                            m.get("value").and_then(number)?,
                        ))
                    })
                    .collect();
                if text(&history, "next_page_token").is_some_and(|t| !t.is_empty()) {
                    ctx.warn(format!(
                        "'{key}' has more than 25000 logged values; its count, min, max and first describe the first 25000"
                    ));
                }
                points.sort_by_key(|p| (p.0, p.1));
                summary.count = Some(points.len());
                summary.first = points.first().map(|p| p.2);
                summary.min = points.iter().map(|p| p.2).reduce(f64::min);
                summary.max = points.iter().map(|p| p.2).reduce(f64::max);
            }
            metrics.insert(key.to_owned(), summary);
        }
        let listing = mlflow
            .get(ctx, "artifacts/list", &[("run_id", params.run_id.clone())])
            .await
            .unwrap_or_else(|error| {
                ctx.warn(format!("the artifacts could not be listed: {error}"));
                Value::Null
            });
        let files = listing
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if files.len() > MAX_ARTIFACTS {
            ctx.warn(format!(
                "{} artifacts; the first {MAX_ARTIFACTS} are listed",
                files.len()
            ));
        }
        let artifacts = files
            .iter()
            .take(MAX_ARTIFACTS)
            .map(|f| Artifact {
                path: text(f, "path").unwrap_or_default(),
                is_dir: f.get("is_dir").and_then(Value::as_bool).unwrap_or(false),
                file_size: f.get("file_size").and_then(number).map(|n| n as u64),
            })
            .collect();
        Ok(GetRunOutput {
            run_id: text(&info, "run_id").unwrap_or_else(|| params.run_id.clone()),
            run_name: text(&info, "run_name"),
            experiment_id: text(&info, "experiment_id"),
            status: text(&info, "status"),
            start_time: time(info.get("start_time")),
            end_time: time(info.get("end_time")),
            artifact_uri: text(&info, "artifact_uri"),
            params: pairs(data.get("params"), false),
            metrics,
            tags: pairs(data.get("tags"), true),
            artifacts,
        })
    }

    fn render_text(&self, _params: &GetRunParams, output: &GetRunOutput) -> String {
        let mut text = format!(
            "Run {} ({}) {} in experiment {}",
            output.run_name.as_deref().unwrap_or(""),
            output.run_id,
            output.status.as_deref().unwrap_or(""),
            output.experiment_id.as_deref().unwrap_or("")
        );
        if !output.params.is_empty() {
            text.push_str("\nParams: ");
            let params: Vec<String> = output
                .params
                .iter()
                .map(|(k, v)| format!("{k}={}", cell(v)))
                .collect();
            text.push_str(&params.join(", "));
        }
        if !output.metrics.is_empty() {
            text.push_str("\n| metric | last | step | count | min | max |\n| --- | --- | --- | --- | --- | --- |");
            let show = |v: Option<f64>| v.map(|v| super::tidy(v).to_string()).unwrap_or_default();
            for (key, m) in &output.metrics {
                text.push_str(&format!(
                    "\n| {key} | {} | {} | {} | {} | {} |",
                    show(m.last),
                    m.last_step.map(|s| s.to_string()).unwrap_or_default(),
                    m.count.map(|c| c.to_string()).unwrap_or_default(),
                    show(m.min),
                    show(m.max)
                ));
            }
        }
        if !output.artifacts.is_empty() {
            let names: Vec<String> = output
                .artifacts
                .iter()
                .map(|a| {
                    if a.is_dir {
                        format!("{}/", a.path)
                    } else {
                        a.path.clone()
                    }
                })
                .collect();
            text.push_str(&format!("\nArtifacts: {}", names.join(", ")));
        }
        text
    }
}
