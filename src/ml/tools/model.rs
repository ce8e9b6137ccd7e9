//! `ml_get_model`: one registered model: its versions with stage, aliases, source run and, for
//! the versions that matter (aliased, newest), the input signature from the model's MLmodel file.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::models::aliases;
use super::{Servers, pairs, server, text, time};
use crate::ml::mlflow::{Mlflow, proxied_path};
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Versions whose signature is read (one or two requests each).
const SIGNATURES: usize = 3;

/// Arguments of `ml_get_model`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetModelParams {
    /// The registered model's name.
    pub name: String,
    /// Newest versions shown (default 10).
    #[schemars(range(min = 1, max = 200))]
    pub max_versions: Option<u32>,
    /// Default: the only one.
    pub server: Option<String>,
}

/// One model version.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Version {
    /// The version number.
    pub version: String,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
    /// The legacy stage (None, Staging, Production, Archived).
    pub stage: Option<String>,
    /// READY, PENDING_REGISTRATION or FAILED_REGISTRATION.
    pub status: Option<String>,
    /// The run that produced it.
    pub run_id: Option<String>,
    /// Where its files are.
    pub source: Option<String>,
    /// When it was registered (RFC 3339).
    pub created: Option<String>,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, Value>,
    /// The inputs and outputs it expects, from its MLmodel file, when it has a signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Value>,
}

/// Result of `ml_get_model`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetModelOutput {
    /// The model's name.
    pub name: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Alias → version.
    pub aliases: BTreeMap<String, String>,
    /// Its versions, newest first.
    pub versions: Vec<Version>,
    /// Its tags.
    pub tags: BTreeMap<String, Value>,
}

/// `ml_get_model`.
pub struct GetModel {
    servers: Arc<Servers>,
}

impl GetModel {
    /// The tool over `servers`.
    pub fn new(servers: Arc<Servers>) -> Self {
        GetModel { servers }
    }
}

impl Tool for GetModel {
    type Params = GetModelParams;
    type Output = GetModelOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_get_model".to_owned(),
            title: "Get a registered model".to_owned(),
            description:
                "A registered model's versions: aliases, stage, source run, input signature."
                    .to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                open_world_hint: true,
                ..Annotations::READ_ONLY
            },
        }
    }

    fn cacheable(&self, _output: &GetModelOutput) -> bool {
        false
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &GetModelParams,
    ) -> Result<GetModelOutput, ToolError> {
        let mlflow = server(&self.servers, params.server.as_deref())?;
        let answer = mlflow
            .get(
                ctx,
                "registered-models/get",
                &[("name", params.name.clone())],
            )
            .await?;
        let model = answer
            .get("registered_model")
            .cloned()
            .unwrap_or(Value::Null);
        let aliases = aliases(&model);
        let listed = mlflow
            .get(
                ctx,
                "model-versions/search",
                &[
                    ("filter", name_filter(&params.name)?),
                    (
                        "max_results",
                        params.max_versions.unwrap_or(10).clamp(1, 200).to_string(),
                    ),
                    ("order_by", "version_number DESC".to_owned()),
                ],
            )
            .await?;
        let mut versions: Vec<Version> = listed
            .get("model_versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| {
                let version = text(v, "version").unwrap_or_default();
                Version {
                    aliases: aliases
                        .iter()
                        .filter(|(_, target)| **target == version)
                        .map(|(alias, _)| alias.clone())
                        .collect(),
                    version,
                    stage: text(v, "current_stage"),
                    status: text(v, "status"),
                    run_id: text(v, "run_id").filter(|r| !r.is_empty()),
                    source: text(v, "source"),
                    created: time(v.get("creation_timestamp")),
                    description: text(v, "description").filter(|d| !d.is_empty()),
                    tags: pairs(v.get("tags"), false),
                    signature: None,
                }
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.version.parse::<u64>().unwrap_or(0)));
        // The versions a caller most likely acts on: aliased ones, then the newest.
        let mut wanted: Vec<usize> = (0..versions.len())
            .filter(|&i| !versions[i].aliases.is_empty())
            .collect();
        wanted.extend(0..versions.len());
        wanted.dedup();
        let mut seen = Vec::new();
        for index in wanted {
            if seen.contains(&index) {
                continue;
            }
            if seen.len() == SIGNATURES {
                break;
            }
            seen.push(index);
            match signature(ctx, mlflow, &params.name, &versions[index].version).await {
                Ok(signature) => versions[index].signature = signature,
                Err(error) => ctx.warn(format!(
                    "the signature of version {} could not be read: {error}",
                    versions[index].version
                )),
            }
        }
        Ok(GetModelOutput {
            name: text(&model, "name").unwrap_or_else(|| params.name.clone()),
            description: text(&model, "description").filter(|d| !d.is_empty()),
            aliases,
            versions,
            tags: pairs(model.get("tags"), false),
        })
    }

    fn render_text(&self, _params: &GetModelParams, output: &GetModelOutput) -> String {
        let mut text = format!("Model {}", output.name);
        if let Some(d) = &output.description {
            text.push_str(&format!(": {d}"));
        }
        text.push_str("\n| version | aliases | stage | status | run | created | inputs |\n| --- | --- | --- | --- | --- | --- | --- |");
        for v in &output.versions {
            let inputs = v
                .signature
                .as_ref()
                .and_then(|s| s.get("inputs"))
                .and_then(Value::as_array)
                .map(|inputs| {
                    inputs
                        .iter()
                        .map(|i| format!("{}:{}", text_of(i, "name"), text_of(i, "type")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            text.push_str(&format!(
                "\n| {} | {} | {} | {} | {} | {} | {} |",
                v.version,
                v.aliases.join(", "),
                v.stage.as_deref().unwrap_or(""),
                v.status.as_deref().unwrap_or(""),
                v.run_id.as_deref().unwrap_or(""),
                v.created.as_deref().unwrap_or(""),
                inputs
            ));
        }
        text
    }
}

/// `name='…'` for MLflow's filter, which has no escapes: the name goes in whichever quotes it
/// does not contain.
fn name_filter(name: &str) -> Result<String, ToolError> {
    if !name.contains('\'') {
        Ok(format!("name='{name}'"))
    } else if !name.contains('"') {
        Ok(format!("name=\"{name}\""))
    } else {
        Err(ToolError::InvalidArguments(
            "a model name with both kinds of quotes cannot be searched in MLflow".into(),
        ))
    }
}

fn text_of(value: &Value, key: &str) -> String {
    text(value, key).unwrap_or_default()
}

/// The signature in a version's MLmodel file (`inputs`/`outputs` as JSON), or None when the
/// model was logged without one.
async fn signature(
    ctx: &CallContext,
    mlflow: &Mlflow,
    name: &str,
    version: &str,
) -> Result<Option<Value>, ToolError> {
    let answer = mlflow
        .get(
            ctx,
            "model-versions/get-download-uri",
            &[("name", name.to_owned()), ("version", version.to_owned())],
        )
        .await?;
    let Some(uri) = text(&answer, "artifact_uri") else {
        return Ok(None);
    };
    let path = proxied_path(&uri)?;
    let bytes = mlflow.download(ctx, &format!("{path}/MLmodel")).await?;
    let text = String::from_utf8_lossy(&bytes);
    let mlmodel: Value = serde_saphyr::from_str(&text).map_err(|e| ToolError::Upstream {
        message: format!("the MLmodel file of version {version} is not YAML: {e}"),
        transient: false,
    })?;
    let Some(signature) = mlmodel.get("signature").filter(|s| s.is_object()) else {
        return Ok(None);
    };
    // MLflow stores each part as JSON text inside the YAML.
    let mut parsed = serde_json::Map::new();
    for part in ["inputs", "outputs", "params"] {
        if let Some(Value::String(json)) = signature.get(part)
            && let Ok(value) = serde_json::from_str::<Value>(json)
        {
            parsed.insert(part.to_owned(), value);
        }
    }
    Ok(Some(Value::Object(parsed)))
}
