//! `ml_deploy`: points a registry alias (e.g. `champion`) at a model version. A write: listed
//! only when a tracking server has `allow_deploy = true` and the server is not read-only, and
//! refused for a version whose named metric fails the stated threshold.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Bound, Servers, server, text};
use crate::ml::data::number;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `ml_deploy`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployParams {
    /// The registered model.
    pub model: String,
    /// The alias to set or move, e.g. `champion`.
    pub alias: String,
    /// The version it should point at.
    pub version: u32,
    /// A metric of the version's source run that must pass, e.g. `{"metric": "roc_auc", "min": 0.8}`.
    pub require: Option<Requirement>,
    /// Default: the only one.
    pub server: Option<String>,
}

/// A metric the version must meet before the alias moves.
#[derive(Debug, Clone, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The metric of the version's source run.
    pub metric: String,
    /// Lowest passing value.
    pub min: Option<f64>,
    /// Highest passing value.
    pub max: Option<f64>,
}

impl Requirement {
    fn bound(&self) -> Bound {
        Bound {
            min: self.min,
            max: self.max,
        }
    }
}

/// Result of `ml_deploy`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeployOutput {
    /// The model.
    pub model: String,
    /// The alias.
    pub alias: String,
    /// The version it now points at.
    pub version: String,
    /// The version it pointed at before (absent when the alias is new).
    pub previous_version: Option<String>,
    /// The checked metric's value, when a requirement was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked: Option<Checked>,
}

/// A requirement that was met.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Checked {
    /// The metric.
    pub metric: String,
    /// Its value on the version's source run.
    pub value: f64,
    /// What it had to meet.
    pub bound: Bound,
}

/// `ml_deploy`.
pub struct Deploy {
    servers: Arc<Servers>,
}

impl Deploy {
    /// The tool over `servers` (only those with `allow_deploy` accept it).
    pub fn new(servers: Arc<Servers>) -> Self {
        Deploy { servers }
    }
}

impl Tool for Deploy {
    type Params = DeployParams;
    type Output = DeployOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_deploy".to_owned(),
            title: "Move a model alias".to_owned(),
            description: "Point a registry alias (e.g. champion) at a model version: what serves from that alias changes. Give `require` to refuse a version whose source-run metric fails a threshold.".to_owned(),
            annotations: Annotations {
                read_only_hint: false,
                destructive_hint: true,
                idempotent_hint: true,
                open_world_hint: true,
            },
        }
    }

    fn cacheable(&self, _output: &DeployOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &DeployParams,
    ) -> Result<DeployOutput, ToolError> {
        let mlflow = server(&self.servers, params.server.as_deref())?;
        if !mlflow.config().allow_deploy {
            return Err(ToolError::Refused(format!(
                "MLflow '{}' does not allow deploys; set allow_deploy = true in its [ml.{}] table",
                mlflow.name(),
                mlflow.name()
            )));
        }
        let version = params.version.to_string();
        let found = mlflow
            .get(
                ctx,
                "model-versions/get",
                &[("name", params.model.clone()), ("version", version.clone())],
            )
            .await?;
        let found = found.get("model_version").cloned().unwrap_or(Value::Null);
        let mut checked = None;
        if let Some(requirement) = &params.require {
            requirement.bound().check(&requirement.metric)?;
            let run_id = text(&found, "run_id").filter(|r| !r.is_empty()).ok_or_else(|| {
                ToolError::Refused(format!(
                    "version {version} of '{}' has no source run, so its {} cannot be checked; deploy without `require` or register it from a run",
                    params.model, requirement.metric
                ))
            })?;
            let run = mlflow
                .get(ctx, "runs/get", &[("run_id", run_id.clone())])
                .await?;
            let value = run
                .pointer("/run/data/metrics")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|m| m.get("key").and_then(Value::as_str) == Some(requirement.metric.as_str()))
                .and_then(|m| m.get("value").and_then(number))
                .ok_or_else(|| {
                    ToolError::Refused(format!(
                        "run {run_id} (version {version} of '{}') has no metric '{}'; ml_get_run shows its metrics",
                        params.model, requirement.metric
                    ))
                })?;
            if !requirement.bound().passes(value) {
                return Err(ToolError::Refused(format!(
                    "not deployed: version {version} of '{}' has {} = {value}, which must be {}; '{}' was left where it was",
                    params.model,
                    requirement.metric,
                    requirement.bound().describe(),
                    params.alias
                )));
            }
            checked = Some(Checked {
                metric: requirement.metric.clone(),
                value,
                bound: requirement.bound(),
            });
        }
        let previous = match mlflow
            .get(
                ctx,
                "registered-models/alias",
                &[
                    ("name", params.model.clone()),
                    ("alias", params.alias.clone()),
                ],
            )
            .await
        {
            Ok(answer) => answer.get("model_version").and_then(|v| text(v, "version")),
            // No such alias yet.
            Err(ToolError::InvalidArguments(_)) => None,
            Err(other) => return Err(other),
        };
        mlflow
            .post(
                ctx,
                "registered-models/alias",
                &json!({"name": params.model, "alias": params.alias, "version": version}),
            )
            .await?;
        tracing::info!(model = %params.model, alias = %params.alias, version = %version, previous = ?previous, "ml_deploy moved an alias");
        Ok(DeployOutput {
            model: params.model.clone(),
            alias: params.alias.clone(),
            version,
            previous_version: previous,
            checked,
        })
    }

    fn render_text(&self, _params: &DeployParams, output: &DeployOutput) -> String {
        let mut text = format!(
            "'{}' of {} now points at version {}",
            output.alias, output.model, output.version
        );
        match &output.previous_version {
            Some(previous) if *previous == output.version => text.push_str(" (unchanged)"),
            Some(previous) => text.push_str(&format!(" (was version {previous})")),
            None => text.push_str(" (new alias)"),
        }
        if let Some(checked) = &output.checked {
            text.push_str(&format!(
                "; {} = {} met {}",
                checked.metric,
                checked.value,
                checked.bound.describe()
            ));
        }
        text
    }
}
