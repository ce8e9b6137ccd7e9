//! `ml_predict`: predictions for rows from a SQL query (or given inline), from a configured
//! scoring endpoint (MLflow's `/invocations`, `dataframe_split`) or, in process, from a model
//! `ml_train` logged to a run. Returned beside the rows' keys; bounded in rows and bytes.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Servers, cell, server, text};
use crate::ml::config::Endpoint;
use crate::ml::data::{Input, Warehouse};
use crate::ml::mlflow::{Mlflow, proxied_path};
use crate::ml::train::{Cell, Model};
use crate::tools::kind::KindHost;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Rows scored unless the caller says.
const DEFAULT_ROWS: u32 = 100;
/// Rows one call may score.
const MAX_ROWS: u32 = 10_000;
/// Rows per request to a scoring endpoint, so one request body stays small...
const BATCH_ROWS: usize = 1_000;
/// ... and bytes of feature values per request (about; a single larger row goes alone).
const BATCH_BYTES: usize = 2 << 20;
/// Distinct keys inline rows may have.
const MAX_COLUMNS: usize = 1_000;
/// Where `ml_train` logs its model in a run's artifacts.
pub const MODEL_ARTIFACT: &str = "datamcp-model/model.json";

/// Arguments of `ml_predict`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictParams {
    /// A configured scoring endpoint, by name; or else `run_id`.
    pub endpoint: Option<String>,
    /// A run ml_train logged: its model is scored in process.
    pub run_id: Option<String>,
    /// SELECT of the rows to score; or else `rows`.
    pub sql: Option<String>,
    /// Placeholder values of `sql`.
    #[serde(default)]
    pub params: Vec<Value>,
    /// Rows to score, as objects.
    pub rows: Option<Vec<Map<String, Value>>>,
    /// Columns returned beside each prediction (default: the first column).
    pub keys: Option<Vec<String>>,
    /// Columns sent to the model (default: every column but the keys).
    pub features: Option<Vec<String>>,
    /// Default 100.
    #[schemars(range(min = 1, max = 10_000))]
    pub max_rows: Option<u32>,
    /// Default: the default warehouse.
    pub warehouse: Option<String>,
    /// Default: the only one.
    pub server: Option<String>,
}

/// One scored row.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Scored {
    /// The row's keys.
    pub keys: Map<String, Value>,
    /// The model's prediction.
    pub prediction: Value,
    /// Class probabilities, when the model gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Map<String, Value>>,
}

/// Result of `ml_predict`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PredictOutput {
    /// What scored the rows: `endpoint NAME` or `run ID`.
    pub model: String,
    /// The feature columns sent, in order.
    pub features: Vec<String>,
    /// One entry per row, in the rows' order.
    pub predictions: Vec<Scored>,
    /// Whether more rows existed than were scored.
    pub truncated: bool,
}

/// `ml_predict`.
pub struct Predict {
    host: KindHost,
    servers: Arc<Servers>,
}

impl Predict {
    /// The tool over `servers`, reading rows through `host`'s SQL tools.
    pub fn new(host: KindHost, servers: Arc<Servers>) -> Self {
        Predict { host, servers }
    }
}

impl Tool for Predict {
    type Params = PredictParams;
    type Output = PredictOutput;

    fn spec(&self) -> ToolSpec {
        let endpoints: Vec<String> = self
            .servers
            .values()
            .flat_map(|s| s.config().endpoints.keys().cloned())
            .collect();
        let endpoints = if endpoints.is_empty() {
            String::new()
        } else {
            format!(" Endpoints: {}.", endpoints.join(", "))
        };
        ToolSpec {
            name: "ml_predict".to_owned(),
            title: "Score rows with a model".to_owned(),
            description: format!(
                "Predictions for rows from SQL (or inline) by a scoring endpoint, or in process by a model ml_train logged (run_id); returned beside the rows' keys.{endpoints}"
            ),
            annotations: Annotations {
                idempotent_hint: false,
                open_world_hint: true,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &PredictOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &PredictParams,
    ) -> Result<PredictOutput, ToolError> {
        let max_rows = params.max_rows.unwrap_or(DEFAULT_ROWS).clamp(1, MAX_ROWS);
        let (columns, rows, truncated) = self.rows(ctx, params, max_rows).await?;
        let keys = params
            .keys
            .clone()
            .unwrap_or_else(|| columns.first().cloned().into_iter().collect());
        let features: Vec<String> = match &params.features {
            Some(features) => features.clone(),
            None => columns
                .iter()
                .filter(|c| !keys.contains(c))
                .cloned()
                .collect(),
        };
        for name in keys.iter().chain(&features) {
            if !columns.contains(name) {
                return Err(ToolError::InvalidArguments(format!(
                    "the rows have no column '{name}'; they have: {}",
                    columns.join(", ")
                )));
            }
        }
        if features.is_empty() {
            return Err(ToolError::InvalidArguments(
                "no feature columns to send: the rows hold only the keys".into(),
            ));
        }
        let at = |name: &String| columns.iter().position(|c| c == name).unwrap_or(0);
        let feature_at: Vec<usize> = features.iter().map(at).collect();
        let key_at: Vec<usize> = keys.iter().map(at).collect();
        let (model, scored) = match (&params.endpoint, &params.run_id) {
            (Some(endpoint), None) => {
                let (mlflow, url) = self.endpoint(endpoint, params.server.as_deref())?;
                let mut scored = Vec::with_capacity(rows.len());
                for batch in batches(&rows, &feature_at) {
                    let batch = &rows[batch];
                    let data: Vec<Vec<&Value>> = batch
                        .iter()
                        .map(|row| feature_at.iter().map(|&i| &row[i]).collect())
                        .collect();
                    let body = json!({"dataframe_split": {"columns": features, "data": data}});
                    let answer = mlflow.score(ctx, endpoint, url, &body).await?;
                    scored.extend(predictions(answer, batch.len(), endpoint)?);
                }
                (format!("endpoint {endpoint}"), scored)
            }
            (None, Some(run_id)) => {
                let model = self
                    .logged_model(ctx, params.server.as_deref(), run_id)
                    .await?;
                let cells: Vec<Vec<Cell>> = rows
                    .iter()
                    .map(|row| {
                        feature_at
                            .iter()
                            .map(|&i| Cell::from_json(&row[i]))
                            .collect()
                    })
                    .collect();
                let predictions = model
                    .predict(&features, &cells)
                    .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
                let scored = predictions
                    .into_iter()
                    .map(|p| {
                        let probabilities = p.probabilities.map(|list| {
                            list.into_iter()
                                .map(|(class, prob)| (class, json!(prob)))
                                .collect()
                        });
                        (p.value, probabilities)
                    })
                    .collect();
                (format!("run {run_id}"), scored)
            }
            _ => {
                return Err(ToolError::InvalidArguments(
                    "name exactly one model: `endpoint` (a configured scoring endpoint) or `run_id` (a run ml_train logged)".into(),
                ));
            }
        };
        let predictions = rows
            .iter()
            .zip(scored)
            .map(|(row, (prediction, probabilities))| Scored {
                keys: key_at
                    .iter()
                    .map(|&i| (columns[i].clone(), row[i].clone()))
                    .collect(),
                prediction,
                probabilities,
            })
            .collect();
        if truncated {
            ctx.warn(format!(
                "only the first {max_rows} rows were scored and more exist; raise max_rows (at most {MAX_ROWS}) or filter in SQL"
            ));
        }
        Ok(PredictOutput {
            model,
            features,
            predictions,
            truncated,
        })
    }

    fn render_text(&self, _params: &PredictParams, output: &PredictOutput) -> String {
        let Some(first) = output.predictions.first() else {
            return format!("No rows to score ({}).", output.model);
        };
        let keys: Vec<&String> = first.keys.keys().collect();
        let mut text = format!(
            "{} predictions by {}\n| {} | prediction |\n|{}",
            output.predictions.len(),
            output.model,
            keys.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
            " --- |".repeat(keys.len() + 1)
        );
        for p in &output.predictions {
            let row: Vec<String> = p.keys.values().map(cell).collect();
            text.push_str(&format!(
                "\n| {} | {} |",
                row.join(" | "),
                cell(&p.prediction)
            ));
        }
        text
    }
}

/// A row's prediction and class probabilities.
type Prediction = (Value, Option<Map<String, Value>>);

impl Predict {
    /// The rows to score: from the SQL query or inline, at most `max_rows`.
    async fn rows(
        &self,
        ctx: &CallContext,
        params: &PredictParams,
        max_rows: u32,
    ) -> Result<(Vec<String>, Vec<Vec<Value>>, bool), ToolError> {
        match (&params.sql, &params.rows) {
            (Some(sql), None) => {
                let w = Warehouse::open(&self.host, ctx, params.warehouse.as_deref()).await?;
                let input = Input {
                    table: String::new(),
                    params: params.params.clone(),
                };
                let rows = w.rows(sql, &input, max_rows).await?;
                Ok((rows.columns, rows.rows, rows.truncated))
            }
            (None, Some(objects)) => {
                let objects = &objects[..objects.len().min(max_rows as usize)];
                let mut columns: Vec<String> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for key in objects.iter().flat_map(|o| o.keys()) {
                    if seen.insert(key.as_str()) {
                        if columns.len() == MAX_COLUMNS {
                            return Err(ToolError::InvalidArguments(format!(
                                "the rows have more than {MAX_COLUMNS} distinct keys; send the model's features only"
                            )));
                        }
                        columns.push(key.clone());
                    }
                }
                let truncated = params
                    .rows
                    .as_ref()
                    .is_some_and(|all| all.len() > objects.len());
                let rows = objects
                    .iter()
                    .map(|o| {
                        columns
                            .iter()
                            .map(|c| o.get(c).cloned().unwrap_or(Value::Null))
                            .collect()
                    })
                    .collect();
                Ok((columns, rows, truncated))
            }
            _ => Err(ToolError::InvalidArguments(
                "give the rows to score: `sql` (a SELECT) or `rows` (objects), not both".into(),
            )),
        }
    }

    fn endpoint<'a>(
        &'a self,
        name: &str,
        server_name: Option<&str>,
    ) -> Result<(&'a Mlflow, &'a Endpoint), ToolError> {
        let mut found = self
            .servers
            .values()
            .filter(|s| server_name.is_none_or(|n| n == s.name()))
            .filter_map(|s| Some((s.as_ref(), s.config().endpoints.get(name)?)));
        found.next().ok_or_else(|| {
            let known: Vec<String> = self
                .servers
                .values()
                .flat_map(|s| s.config().endpoints.keys().cloned())
                .collect();
            ToolError::InvalidArguments(format!(
                "no scoring endpoint '{name}'; the endpoints are: {}",
                if known.is_empty() {
                    "(none configured: add them under [ml.NAME.endpoints])".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// The model `ml_train` logged to run `run_id`.
    async fn logged_model(
        &self,
        ctx: &CallContext,
        server_name: Option<&str>,
        run_id: &str,
    ) -> Result<Model, ToolError> {
        let mlflow = server(&self.servers, server_name)?;
        let run = mlflow
            .get(ctx, "runs/get", &[("run_id", run_id.to_owned())])
            .await?;
        let uri = run
            .pointer("/run/info")
            .and_then(|info| text(info, "artifact_uri"))
            .ok_or_else(|| ToolError::Upstream {
                message: format!("MLflow did not say where run {run_id} keeps its artifacts"),
                transient: false,
            })?;
        let path = proxied_path(&uri)?;
        let bytes = mlflow
            .download(ctx, &format!("{path}/{MODEL_ARTIFACT}"))
            .await
            .map_err(|e| match e {
                ToolError::InvalidArguments(_) => ToolError::InvalidArguments(format!(
                    "run {run_id} has no model logged by ml_train ({MODEL_ARTIFACT}); for other models, serve them (mlflow models serve) and use `endpoint`"
                )),
                other => other,
            })?;
        Model::from_json(&String::from_utf8_lossy(&bytes)).map_err(|e| {
            ToolError::InvalidArguments(format!(
                "{MODEL_ARTIFACT} of run {run_id} is not a datamcp model: {e}"
            ))
        })
    }
}

/// The rows of each request: at most [`BATCH_ROWS`] rows and about [`BATCH_BYTES`] of values.
fn batches(rows: &[Vec<Value>], feature_at: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, row) in rows.iter().enumerate() {
        let size: usize = feature_at
            .iter()
            .map(|&i| serde_json::to_string(&row[i]).map_or(0, |t| t.len() + 1))
            .sum();
        if index > start && (index - start == BATCH_ROWS || bytes + size > BATCH_BYTES) {
            ranges.push(start..index);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < rows.len() {
        ranges.push(start..rows.len());
    }
    ranges
}

/// The endpoint's `{"predictions": …}` as one value per row: a list of values, a list of
/// objects, or an object of columns.
fn predictions(answer: Value, rows: usize, endpoint: &str) -> Result<Vec<Prediction>, ToolError> {
    let predictions = match answer {
        Value::Object(mut map) => map.remove("predictions").unwrap_or(Value::Null),
        // Older servers answer with the bare list.
        list @ Value::Array(_) => list,
        _ => Value::Null,
    };
    let values: Vec<Value> = match predictions {
        Value::Array(values) => values,
        Value::Object(columns) => (0..rows)
            .map(|i| {
                Value::Object(
                    columns
                        .iter()
                        .map(|(k, v)| (k.clone(), v.get(i).cloned().unwrap_or(Value::Null)))
                        .collect(),
                )
            })
            .collect(),
        _ => {
            return Err(ToolError::Upstream {
                message: format!(
                    "the scoring endpoint '{endpoint}' answered without `predictions`"
                ),
                transient: false,
            });
        }
    };
    if values.len() != rows {
        return Err(ToolError::Upstream {
            message: format!(
                "the scoring endpoint '{endpoint}' returned {} predictions for {rows} rows",
                values.len()
            ),
            transient: false,
        });
    }
    Ok(values.into_iter().map(|v| (v, None)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_cut_by_rows_and_by_bytes() {
        let small: Vec<Vec<Value>> = (0..2_500).map(|i| vec![json!(i), json!("x")]).collect();
        let cut = batches(&small, &[0, 1]);
        assert_eq!(cut, [0..1_000, 1_000..2_000, 2_000..2_500]);
        let wide = "y".repeat(1 << 20);
        let large: Vec<Vec<Value>> = (0..5).map(|_| vec![json!(wide)]).collect();
        let cut = batches(&large, &[0]);
        assert_eq!(
            cut,
            [0..1, 1..2, 2..3, 3..4, 4..5],
            "each 1 MiB row with the next passes 2 MiB"
        );
        assert!(batches(&[], &[0]).is_empty());
    }
}
