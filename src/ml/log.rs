//! Logging results back to MLflow: metrics, params and tags into a run (a new one, or one the
//! caller names), through `runs/log-batch`. Only for servers with `allow_log = true`, and only
//! when datamcp is not read-only.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::mlflow::Mlflow;
use super::tools::{Servers, server, text};
use crate::tools::{Annotations, CallContext, ToolError};

/// Where to log.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogTarget {
    /// Existing run, or:
    pub run_id: Option<String>,
    /// New run's experiment.
    pub experiment: Option<String>,
    pub run_name: Option<String>,
    pub server: Option<String>,
}

/// Where a result was logged.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Logged {
    /// The server.
    pub server: String,
    /// The run.
    pub run_id: String,
    /// The run's experiment.
    pub experiment_id: String,
    /// The run's artifact location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_uri: Option<String>,
}

/// What may be logged, decided when the kind starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogAccess {
    /// A server allows it and datamcp is not read-only.
    Allowed,
    /// datamcp is read-only.
    ReadOnly,
    /// No server allows it.
    NotConfigured,
}

impl LogAccess {
    /// The annotations of a tool that reads, and writes to MLflow only when asked to log: a
    /// writer (not idempotent, open world) exactly when logging is possible.
    pub fn annotations(self) -> Annotations {
        let writes = self == LogAccess::Allowed;
        Annotations {
            read_only_hint: !writes,
            idempotent_hint: !writes,
            open_world_hint: writes,
            ..Annotations::READ_ONLY
        }
    }
}

/// The server to log to, or why logging is refused.
pub fn target<'a>(
    servers: &'a Servers,
    access: LogAccess,
    log: &LogTarget,
) -> Result<&'a Mlflow, ToolError> {
    match access {
        LogAccess::ReadOnly => {
            return Err(ToolError::Refused(
                "logging to MLflow writes, and this datamcp is read-only; set read_only = false (and allow_log = true on the [ml.NAME] table), or call without `log`".into(),
            ));
        }
        LogAccess::NotConfigured if servers.is_empty() => {
            return Err(ToolError::Refused(
                "no MLflow server is configured; add an [ml.NAME] table with allow_log = true, or call without `log`".into(),
            ));
        }
        _ => {}
    }
    let mlflow = server(servers, log.server.as_deref())?;
    if !mlflow.config().allow_log {
        return Err(ToolError::Refused(format!(
            "MLflow '{}' does not allow logging; set allow_log = true in its [ml.{}] table, or call without `log`",
            mlflow.name(),
            mlflow.name()
        )));
    }
    if log.run_id.is_none() && log.experiment.is_none() {
        return Err(ToolError::InvalidArguments(
            "`log` needs a run_id to add to, or an experiment for a new run".into(),
        ));
    }
    Ok(mlflow)
}

/// Logs `metrics`, `params` and `tags` to the run `log` names, or to a new run (finished at
/// once). MLflow takes at most 1000 metrics and 100 params per batch; datamcp's results are far
/// smaller.
pub async fn log(
    ctx: &CallContext,
    mlflow: &Mlflow,
    log: &LogTarget,
    tool: &str,
    metrics: &BTreeMap<String, f64>,
    params: &BTreeMap<String, String>,
) -> Result<Logged, ToolError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (run_id, created) = match &log.run_id {
        Some(run_id) => (run_id.clone(), false),
        None => {
            let experiment = log.experiment.as_deref().unwrap_or("Default");
            let experiment_id = experiment_id(ctx, mlflow, experiment).await?;
            let mut body = json!({
                "experiment_id": experiment_id,
                "start_time": now,
                "tags": [{"key": "datamcp.tool", "value": tool}],
            });
            if let Some(name) = &log.run_name {
                body["run_name"] = json!(name);
            }
            let answer = mlflow.post(ctx, "runs/create", &body).await?;
            let run_id = answer
                .pointer("/run/info/run_id")
                .and_then(Value::as_str)
                .ok_or_else(|| ToolError::Upstream {
                    message: "MLflow created a run but did not say its id".into(),
                    transient: false,
                })?
                .to_owned();
            (run_id, true)
        }
    };
    let metrics: Vec<Value> = metrics
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| json!({"key": k, "value": v, "timestamp": now, "step": 0}))
        .collect();
    let params: Vec<Value> = params
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let mut batch = json!({"run_id": run_id, "metrics": metrics, "params": params});
    if !created {
        batch["tags"] = json!([{"key": "datamcp.tool", "value": tool}]);
    }
    mlflow.post(ctx, "runs/log-batch", &batch).await?;
    if created {
        mlflow
            .post(
                ctx,
                "runs/update",
                &json!({"run_id": run_id, "status": "FINISHED", "end_time": now}),
            )
            .await?;
    }
    let run = mlflow
        .get(ctx, "runs/get", &[("run_id", run_id.clone())])
        .await?;
    let info = run.pointer("/run/info").cloned().unwrap_or(Value::Null);
    tracing::info!(server = %mlflow.name(), run_id = %run_id, tool, "logged to MLflow");
    Ok(Logged {
        server: mlflow.name().to_owned(),
        experiment_id: text(&info, "experiment_id").unwrap_or_default(),
        artifact_uri: text(&info, "artifact_uri"),
        run_id,
    })
}

/// The id of the experiment named `name`, created when there is none.
async fn experiment_id(
    ctx: &CallContext,
    mlflow: &Mlflow,
    name: &str,
) -> Result<String, ToolError> {
    match mlflow
        .get(
            ctx,
            "experiments/get-by-name",
            &[("experiment_name", name.to_owned())],
        )
        .await
    {
        Ok(answer) => answer
            .get("experiment")
            .and_then(|e| text(e, "experiment_id"))
            .ok_or_else(|| ToolError::Upstream {
                message: format!("MLflow did not say the id of experiment '{name}'"),
                transient: false,
            }),
        Err(ToolError::InvalidArguments(_)) => {
            let answer = mlflow
                .post(ctx, "experiments/create", &json!({"name": name}))
                .await?;
            text(&answer, "experiment_id").ok_or_else(|| ToolError::Upstream {
                message: format!("MLflow created experiment '{name}' but did not say its id"),
                transient: false,
            })
        }
        Err(other) => Err(other),
    }
}
