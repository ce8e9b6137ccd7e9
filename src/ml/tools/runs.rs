//! `ml_search_runs`: runs filtered by their params, metrics and tags, side by side with the
//! params and metrics that differ between them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Servers, cell, pairs, server, text, time};
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `ml_search_runs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRunsParams {
    /// Experiment ids or names (default: every active experiment).
    #[serde(default)]
    pub experiments: Vec<String>,
    /// MLflow filter, e.g. `metrics.roc_auc > 0.8 and params.C = '1.0' and tags.team = 'risk'`.
    pub filter: Option<String>,
    /// E.g. `["metrics.roc_auc DESC"]` (default: newest first).
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Default 20.
    #[schemars(range(min = 1, max = 500))]
    pub max_results: Option<u32>,
    /// From a previous answer's next_page_token.
    pub page_token: Option<String>,
    /// Default: the only one.
    pub server: Option<String>,
}

/// One run.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunSummary {
    /// Its id, for `ml_get_run`.
    pub run_id: String,
    /// Its name.
    pub run_name: Option<String>,
    /// Its experiment.
    pub experiment_id: Option<String>,
    /// RUNNING, FINISHED, FAILED or KILLED.
    pub status: Option<String>,
    /// When it started (RFC 3339).
    pub start_time: Option<String>,
    /// Its parameters.
    pub params: BTreeMap<String, Value>,
    /// Its metrics' latest values.
    pub metrics: BTreeMap<String, Value>,
    /// Its tags (MLflow's own `mlflow.*` tags left out).
    pub tags: BTreeMap<String, Value>,
}

/// Result of `ml_search_runs`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchRunsOutput {
    /// The server asked.
    pub server: String,
    /// The runs, in the order asked.
    pub runs: Vec<RunSummary>,
    /// The params whose values differ between the runs.
    pub differing_params: Vec<String>,
    /// The metrics whose values differ between the runs.
    pub differing_metrics: Vec<String>,
    /// Pass as page_token for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `ml_search_runs`.
pub struct SearchRuns {
    servers: Arc<Servers>,
}

impl SearchRuns {
    /// The tool over `servers`.
    pub fn new(servers: Arc<Servers>) -> Self {
        SearchRuns { servers }
    }
}

impl Tool for SearchRuns {
    type Params = SearchRunsParams;
    type Output = SearchRunsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_search_runs".to_owned(),
            title: "Search MLflow runs".to_owned(),
            description: "Runs filtered by params/metrics/tags (MLflow filter syntax), compared side by side on what differs.".to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                open_world_hint: true,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &SearchRunsOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &SearchRunsParams,
    ) -> Result<SearchRunsOutput, ToolError> {
        let mlflow = server(&self.servers, params.server.as_deref())?;
        let experiment_ids = experiment_ids(ctx, mlflow, &params.experiments).await?;
        let mut body = json!({
            "experiment_ids": experiment_ids,
            "max_results": params.max_results.unwrap_or(20).clamp(1, 500),
            "order_by": if params.order_by.is_empty() { vec!["attributes.start_time DESC".to_owned()] } else { params.order_by.clone() },
        });
        if let Some(filter) = &params.filter {
            body["filter"] = json!(filter);
        }
        if let Some(token) = &params.page_token {
            body["page_token"] = json!(token);
        }
        let answer = mlflow.post(ctx, "runs/search", &body).await?;
        let runs: Vec<RunSummary> = answer
            .get("runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(summary)
            .collect();
        Ok(SearchRunsOutput {
            server: mlflow.name().to_owned(),
            differing_params: differing(runs.iter().map(|r| &r.params)),
            differing_metrics: differing(runs.iter().map(|r| &r.metrics)),
            runs,
            next_page_token: text(&answer, "next_page_token").filter(|t| !t.is_empty()),
        })
    }

    fn render_text(&self, _params: &SearchRunsParams, output: &SearchRunsOutput) -> String {
        let mut header = vec!["run".to_owned(), "status".to_owned()];
        header.extend(
            output
                .differing_params
                .iter()
                .map(|p| format!("params.{p}")),
        );
        header.extend(
            output
                .differing_metrics
                .iter()
                .map(|m| format!("metrics.{m}")),
        );
        let mut text = format!(
            "| {} |\n|{}",
            header.join(" | "),
            " --- |".repeat(header.len())
        );
        for run in &output.runs {
            let mut row = vec![
                run.run_name.clone().unwrap_or_else(|| run.run_id.clone()),
                run.status.clone().unwrap_or_default(),
            ];
            row.extend(
                output
                    .differing_params
                    .iter()
                    .map(|p| cell(run.params.get(p).unwrap_or(&Value::Null))),
            );
            row.extend(
                output
                    .differing_metrics
                    .iter()
                    .map(|m| cell(run.metrics.get(m).unwrap_or(&Value::Null))),
            );
            text.push_str(&format!("\n| {} |", row.join(" | ")));
        }
        if output.runs.len() > 1
            && output.differing_params.is_empty()
            && output.differing_metrics.is_empty()
        {
            text.push_str("\nThe runs have the same params and metrics.");
        }
        if let Some(token) = &output.next_page_token {
            text.push_str(&format!("\nMore: page_token = \"{token}\""));
        }
        text
    }
}

/// The ids of experiments named by id or name; every active one when none is named.
pub(super) async fn experiment_ids(
    ctx: &CallContext,
    mlflow: &crate::ml::mlflow::Mlflow,
    named: &[String],
) -> Result<Vec<String>, ToolError> {
    let answer = mlflow
        .post(ctx, "experiments/search", &json!({"max_results": 1000}))
        .await?;
    let known: Vec<(String, String)> = answer
        .get("experiments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((text(e, "experiment_id")?, text(e, "name")?)))
        .collect();
    if named.is_empty() {
        return Ok(known.into_iter().map(|(id, _)| id).collect());
    }
    named
        .iter()
        .map(|wanted| {
            known
                .iter()
                .find(|(id, name)| id == wanted || name == wanted)
                .map(|(id, _)| id.clone())
                .ok_or_else(|| {
                    ToolError::InvalidArguments(format!(
                        "no experiment '{wanted}' on MLflow '{}'; ml_list_experiments lists them",
                        mlflow.name()
                    ))
                })
        })
        .collect()
}

/// A run as listed.
pub(super) fn summary(run: &Value) -> RunSummary {
    let info = run.get("info").cloned().unwrap_or(Value::Null);
    let data = run.get("data").cloned().unwrap_or(Value::Null);
    RunSummary {
        run_id: text(&info, "run_id").unwrap_or_default(),
        run_name: text(&info, "run_name"),
        experiment_id: text(&info, "experiment_id"),
        status: text(&info, "status"),
        start_time: time(info.get("start_time")),
        params: pairs(data.get("params"), false),
        metrics: pairs(data.get("metrics"), false),
        tags: pairs(data.get("tags"), false),
    }
}

/// The keys whose values are not the same in every map (a key missing somewhere differs); every
/// key of a lone map.
fn differing<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, Value>> + Clone) -> Vec<String> {
    let keys: BTreeSet<&String> = maps.clone().flat_map(|m| m.keys()).collect();
    // One run differs from nothing: show all of it.
    let alone = maps.clone().count() <= 1;
    keys.into_iter()
        .filter(|key| {
            if alone {
                return true;
            }
            let mut values = maps.clone().map(|m| m.get(*key));
            let first = values.next().flatten();
            values.any(|v| v != first)
        })
        .cloned()
        .collect()
}
