//! The last runs, bounded, with their per-step reports: polled by `workflow_run_status` and
//! readable as resources, each only by the caller that started it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::run::{RunReport, RunStatus};
use crate::tools::context::Invocation;
use crate::tools::resources::{
    ResourceContent, ResourceInfo, ResourceProvider, ResourceTemplateInfo,
};
use crate::tools::{Principal, Registry, ToolError};

/// URI of the list of the caller's runs.
pub const RUNS_URI: &str = "datamcp://workflow/runs";

struct Entry {
    run_id: String,
    workflow: String,
    owner: Principal,
    started_at_ms: u64,
    report: Option<RunReport>,
}

/// The last `capacity` runs, oldest dropped first.
pub struct History {
    capacity: usize,
    runs: Mutex<VecDeque<Entry>>,
}

impl History {
    /// A history of at most `capacity` runs.
    pub fn new(capacity: usize) -> Self {
        History {
            capacity: capacity.max(1),
            runs: Mutex::new(VecDeque::new()),
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a run that started.
    pub fn start(&self, run_id: &str, workflow: &str, owner: &Principal) {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut runs = self.runs();
        while runs.len() >= self.capacity {
            runs.pop_front();
        }
        runs.push_back(Entry {
            run_id: run_id.to_owned(),
            workflow: workflow.to_owned(),
            owner: owner.clone(),
            started_at_ms,
            report: None,
        });
    }

    /// Records how a run ended.
    pub fn finish(&self, report: &RunReport) {
        if let Some(entry) = self.runs().iter_mut().find(|e| e.run_id == report.run_id) {
            entry.report = Some(report.clone());
        }
    }

    /// The run `run_id` if `owner` started it: its workflow, and its report (`None` while it
    /// runs).
    pub fn get(&self, run_id: &str, owner: &Principal) -> Option<(String, Option<RunReport>)> {
        self.runs()
            .iter()
            .find(|e| e.run_id == run_id && e.owner == *owner)
            .map(|e| (e.workflow.clone(), e.report.clone()))
    }

    /// A line per run of `owner`, newest first.
    pub fn list(&self, owner: &Principal) -> Value {
        let runs: Vec<Value> = self
            .runs()
            .iter()
            .rev()
            .filter(|e| e.owner == *owner)
            .map(|e| {
                let (status, wall_ms, failed_step) = match &e.report {
                    None => (RunStatus::Running, Value::Null, Value::Null),
                    Some(r) => (
                        r.status,
                        Value::from(r.totals.wall_ms),
                        r.failed_step.clone().map_or(Value::Null, Value::from),
                    ),
                };
                json!({
                    "run_id": e.run_id,
                    "workflow": e.workflow,
                    "status": status,
                    "started_at_ms": e.started_at_ms,
                    "wall_ms": wall_ms,
                    "failed_step": failed_step,
                    "uri": format!("{RUNS_URI}/{}", e.run_id),
                })
            })
            .collect();
        json!({ "runs": runs })
    }
}

/// Serves the history as resources.
pub struct RunResources(pub Arc<History>);

impl ResourceProvider for RunResources {
    fn resources(&self) -> Vec<ResourceInfo> {
        vec![ResourceInfo {
            uri: RUNS_URI.to_owned(),
            name: "workflow-runs".to_owned(),
            description: "Your last workflow runs, newest first, with status and wall time"
                .to_owned(),
            mime_type: "application/json".to_owned(),
        }]
    }

    fn templates(&self) -> Vec<ResourceTemplateInfo> {
        vec![ResourceTemplateInfo {
            uri_template: format!("{RUNS_URI}/{{run_id}}"),
            name: "workflow-run".to_owned(),
            description: "One workflow run: its output and a report per step (status, why it was skipped, attempts, time, error)".to_owned(),
            mime_type: "application/json".to_owned(),
        }]
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        _registry: &'a Registry,
        invocation: &'a Invocation,
    ) -> Option<BoxFuture<'a, Result<ResourceContent, ToolError>>> {
        let rest = uri.strip_prefix(RUNS_URI)?;
        Some(Box::pin(async move {
            let value = match rest.strip_prefix('/') {
                None if rest.is_empty() => self.0.list(&invocation.principal),
                Some(run_id) => match self.0.get(run_id, &invocation.principal) {
                    Some((_, Some(report))) => serde_json::to_value(report)
                        .map_err(|e| ToolError::Internal(e.to_string()))?,
                    Some((workflow, None)) => {
                        json!({"run_id": run_id, "workflow": workflow, "status": "running"})
                    }
                    None => {
                        return Err(ToolError::InvalidArguments(format!(
                            "no run '{run_id}' of yours in the history; read {RUNS_URI} for your runs"
                        )));
                    }
                },
                _ => {
                    return Err(ToolError::InvalidArguments(format!(
                        "unknown resource '{uri}'"
                    )));
                }
            };
            Ok(ResourceContent::Text {
                text: serde_json::to_string_pretty(&value).unwrap_or_default(),
                mime_type: "application/json".to_owned(),
            })
        }))
    }
}
