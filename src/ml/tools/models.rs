//! `ml_list_models`: the registered models with their aliases and latest versions.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Servers, pairs, query, server, text, time};
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `ml_list_models`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListModelsParams {
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

/// One registered model.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelSummary {
    /// Its name, for `ml_get_model`.
    pub name: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Alias → version, e.g. `champion` → `3`.
    pub aliases: BTreeMap<String, String>,
    /// The newest version.
    pub latest_version: Option<String>,
    /// When it last changed (RFC 3339).
    pub last_updated: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, Value>,
}

/// Result of `ml_list_models`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListModelsOutput {
    /// The server asked.
    pub server: String,
    /// The registered models.
    pub models: Vec<ModelSummary>,
    /// Pass as page_token for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `ml_list_models`.
pub struct ListModels {
    servers: Arc<Servers>,
}

impl ListModels {
    /// The tool over `servers`.
    pub fn new(servers: Arc<Servers>) -> Self {
        ListModels { servers }
    }
}

impl Tool for ListModels {
    type Params = ListModelsParams;
    type Output = ListModelsOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_list_models".to_owned(),
            title: "List registered models".to_owned(),
            description: "The model registry: each model's aliases (which version serves as champion, …) and newest version.".to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                open_world_hint: true,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &ListModelsOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ListModelsParams,
    ) -> Result<ListModelsOutput, ToolError> {
        let mlflow = server(&self.servers, params.server.as_deref())?;
        let answer = mlflow
            .get(
                ctx,
                "registered-models/search",
                &query(&[
                    (
                        "max_results",
                        Some(params.max_results.unwrap_or(50).clamp(1, 1000).to_string()),
                    ),
                    ("filter", params.filter.clone()),
                    ("page_token", params.page_token.clone()),
                ]),
            )
            .await?;
        let models = answer
            .get("registered_models")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| ModelSummary {
                name: text(m, "name").unwrap_or_default(),
                description: text(m, "description").filter(|d| !d.is_empty()),
                aliases: aliases(m),
                latest_version: m
                    .get("latest_versions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| text(v, "version"))
                    .max_by_key(|v| v.parse::<u64>().unwrap_or(0)),
                last_updated: time(m.get("last_updated_timestamp")),
                tags: pairs(m.get("tags"), false),
            })
            .collect();
        Ok(ListModelsOutput {
            server: mlflow.name().to_owned(),
            models,
            next_page_token: text(&answer, "next_page_token").filter(|t| !t.is_empty()),
        })
    }

    fn render_text(&self, _params: &ListModelsParams, output: &ListModelsOutput) -> String {
        let mut text =
            String::from("| model | latest | aliases | updated |\n| --- | --- | --- | --- |");
        for m in &output.models {
            let aliases: Vec<String> = m.aliases.iter().map(|(a, v)| format!("{a}→v{v}")).collect();
            text.push_str(&format!(
                "\n| {} | {} | {} | {} |",
                m.name,
                m.latest_version.as_deref().unwrap_or(""),
                aliases.join(", "),
                m.last_updated.as_deref().unwrap_or("")
            ));
        }
        if let Some(token) = &output.next_page_token {
            text.push_str(&format!("\nMore: page_token = \"{token}\""));
        }
        text
    }
}

/// A registered model's `aliases: [{alias, version}]` as alias → version.
pub(super) fn aliases(model: &Value) -> BTreeMap<String, String> {
    model
        .get("aliases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| Some((text(a, "alias")?, text(a, "version")?)))
        .collect()
}
