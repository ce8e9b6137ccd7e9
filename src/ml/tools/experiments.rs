//! `ml_list_experiments`: a tracking server's experiments, newest first.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Servers, pairs, server, text, time};
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `ml_list_experiments`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListExperimentsParams {
    /// MLflow filter, e.g. `name LIKE 'churn%'`.
    pub filter: Option<String>,
    /// Default 50.
    #[schemars(range(min = 1, max = 1000))]
    pub max_results: Option<u32>,
    /// From a previous answer's next_page_token.
    pub page_token: Option<String>,
    /// Default: the only one.
    pub server: Option<String>,
}

/// One experiment.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Experiment {
    /// Its id, for `ml_search_runs`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: Option<String>,
    /// When it last changed (RFC 3339).
    pub last_update_time: Option<String>,
    /// Its tags (MLflow's own `mlflow.*` tags left out).
    pub tags: BTreeMap<String, Value>,
}

/// Result of `ml_list_experiments`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListExperimentsOutput {
    /// The server asked.
    pub server: String,
    /// The experiments, most recently updated first.
    pub experiments: Vec<Experiment>,
    /// Pass as page_token for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `ml_list_experiments`.
pub struct ListExperiments {
    servers: Arc<Servers>,
}

impl ListExperiments {
    /// The tool over `servers`.
    pub fn new(servers: Arc<Servers>) -> Self {
        ListExperiments { servers }
    }
}

impl Tool for ListExperiments {
    type Params = ListExperimentsParams;
    type Output = ListExperimentsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_list_experiments".to_owned(),
            title: "List MLflow experiments".to_owned(),
            description:
                "A tracking server's experiments, most recently updated first. Then ml_search_runs."
                    .to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                open_world_hint: true,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &ListExperimentsOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ListExperimentsParams,
    ) -> Result<ListExperimentsOutput, ToolError> {
        let mlflow = server(&self.servers, params.server.as_deref())?;
        let mut body = json!({
            "max_results": params.max_results.unwrap_or(50).clamp(1, 1000),
            "order_by": ["last_update_time DESC"],
        });
        if let Some(filter) = &params.filter {
            body["filter"] = json!(filter);
        }
        if let Some(token) = &params.page_token {
            body["page_token"] = json!(token);
        }
        let answer = mlflow.post(ctx, "experiments/search", &body).await?;
        let experiments = answer
            .get("experiments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| Experiment {
                id: text(e, "experiment_id").unwrap_or_default(),
                name: text(e, "name").unwrap_or_default(),
                lifecycle_stage: text(e, "lifecycle_stage"),
                last_update_time: time(e.get("last_update_time")),
                tags: pairs(e.get("tags"), false),
            })
            .collect();
        Ok(ListExperimentsOutput {
            server: mlflow.name().to_owned(),
            experiments,
            next_page_token: text(&answer, "next_page_token").filter(|t| !t.is_empty()),
        })
    }

    fn render_text(
        &self,
        _params: &ListExperimentsParams,
        output: &ListExperimentsOutput,
    ) -> String {
        let mut text = String::from("| id | name | stage | updated |\n| --- | --- | --- | --- |");
        for e in &output.experiments {
            text.push_str(&format!(
                "\n| {} | {} | {} | {} |",
                e.id,
                e.name,
                e.lifecycle_stage.as_deref().unwrap_or(""),
                e.last_update_time.as_deref().unwrap_or("")
            ));
        }
        if let Some(token) = &output.next_page_token {
            text.push_str(&format!("\nMore: page_token = \"{token}\""));
        }
        text
    }
}
