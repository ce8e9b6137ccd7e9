//! The workflow file format: one workflow per YAML file (or JSON, for `workflow_run`), decoded
//! into these types. Their JSON Schema is `schemas/workflow.schema.json`, generated, for editor
//! completion.
//!
//! Values in `args` and `output` are templates: a string that is exactly `${{ expr }}` becomes
//! the expression's JSON value (a list stays a list), text around `${{ … }}` interpolates. `if`,
//! `for_each` and `assert[].that` are bare expressions. Expressions are CEL (see `crate::expr`)
//! over `inputs`, `steps.<id>.output|status|error`, `item` and `index` (in a `for_each`),
//! `previous` (a pipeline's previous output) and, in an assert, `output`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One workflow, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFile {
    /// Tool name (`[A-Za-z0-9_.-]`, unique among all tools).
    pub name: String,
    /// Short human-readable title (default: the name).
    pub title: Option<String>,
    /// What the workflow answers and when to use it, for the model.
    pub description: String,
    /// Arguments of the tool, by name; they become its input schema.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    /// The steps. Without `mode`, they form a DAG through `needs`.
    pub steps: Vec<StepFile>,
    /// The answer, built from step outputs: a template (usually a map of `${{ … }}` values).
    /// Default: every step's output by step id.
    pub output: Option<Value>,
    /// Shorthand for `needs`: `sequential` (each step needs the one before), `parallel` (no
    /// step needs another), `pipeline` (sequential, and `previous` is the step before's output)
    /// or `conditional` (sequential, and a skipped step does not skip the rest).
    pub mode: Option<Mode>,
    /// Deadline for the whole run, e.g. `30s`, `5m`, `500ms` (default 5m).
    pub timeout: Option<String>,
    /// Steps running at once, at most (default 8).
    pub max_parallel: Option<usize>,
    /// How long a caller waits for the answer before it gets `{status: running, run_id}` and
    /// polls `workflow_run_status`, e.g. `45s` (default 45s; the run goes on either way).
    pub wait: Option<String>,
}

/// A workflow argument.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// string, integer, number, boolean, array or object.
    #[serde(rename = "type")]
    pub kind: InputType,
    /// What to pass, for the model.
    pub description: String,
    /// Value used when the argument is absent.
    pub default: Option<Value>,
    /// The only values allowed.
    #[serde(rename = "enum")]
    pub allowed: Option<Vec<Value>>,
    /// Whether the argument must be given (default true unless a default is set).
    pub required: Option<bool>,
    /// Element type when `type = array` (default: any).
    pub items: Option<InputType>,
}

/// The JSON type of a workflow argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// true or false.
    Boolean,
    /// A list.
    Array,
    /// A JSON object.
    Object,
}

impl InputType {
    /// The JSON Schema type name.
    pub fn json_type(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Array => "array",
            InputType::Object => "object",
        }
    }
}

/// Execution-mode shorthands for `needs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each step needs the one before.
    Sequential,
    /// No step needs another.
    Parallel,
    /// Sequential; `previous` holds the step before's output.
    Pipeline,
    /// Sequential; a skipped step does not skip the ones after it.
    Conditional,
}

/// One step, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// Step id, unique in the workflow (`[A-Za-z_][A-Za-z0-9_]*`, so expressions can name it).
    pub id: String,
    /// The tool to call: any registered tool, internal ones and other workflows included.
    pub tool: String,
    /// The tool's arguments; values may be templates.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// Steps that must settle before this one starts.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Run the step only when this expression is true (evaluated once, before any item).
    #[serde(rename = "if")]
    pub condition: Option<String>,
    /// Run the tool once per element of this list expression; `item` and `index` name the
    /// element. The step's output is the list of the items' outputs, in input order.
    pub for_each: Option<String>,
    /// Items running at once, at most (default 4).
    pub max_parallel: Option<usize>,
    /// Most items allowed (default 100, at most 1000); more fails the step.
    pub max_items: Option<usize>,
    /// Try again on the listed kinds of error.
    pub retry: Option<RetryFile>,
    /// Deadline of each attempt, e.g. `10s` (default: what is left of the workflow's).
    pub timeout: Option<String>,
    /// What a failure of this step does to the run (default `stop`).
    pub on_failure: Option<OnFailure>,
    /// With `on_failure: continue`, the output used instead when the step fails; steps after
    /// it then run as if it had succeeded.
    pub fallback: Option<Value>,
    /// When the step runs, judged over its `needs` (default `all_success`).
    pub trigger: Option<TriggerRule>,
    /// Quality gates on the step's output (`output` in the expression); one that is false
    /// fails the step with its message.
    #[serde(rename = "assert", default)]
    pub asserts: Vec<AssertFile>,
}

/// Retries of one step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryFile {
    /// Attempts in all, the first included (at least 1, at most 10).
    pub attempts: u32,
    /// Pause before the first retry, doubled each time, e.g. `200ms` (default 100ms).
    pub backoff: Option<String>,
    /// Error kinds that are retried (default `[upstream_transient, timeout]`): invalid_arguments,
    /// refused, upstream_transient, upstream, timeout, internal.
    pub on: Option<Vec<String>>,
}

/// What a failed step does to its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop the run: running steps are cancelled, no new ones start, the call fails.
    Stop,
    /// Carry on; steps after it judge the failure by their trigger rule.
    Continue,
}

/// When a step runs, judged over its needs once they have all settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every need succeeded (a skipped or failed need skips this step).
    AllSuccess,
    /// Every need settled, however.
    AllDone,
    /// At least one need succeeded.
    OneSuccess,
    /// At least one need failed.
    OneFailed,
    /// No need failed (skipped ones are fine).
    NoneFailed,
    /// No need failed and at least one succeeded: the join after an `if` branch.
    NoneFailedMinOneSuccess,
}

/// A quality gate.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertFile {
    /// An expression over `output` (and `inputs`, `steps`) that must be true.
    pub that: String,
    /// Why the step fails when it is not.
    pub message: String,
}

/// Reads a duration written as `250ms`, `30s`, `5m` or `1h`, or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration; write e.g. 500ms, 30s or 5m"))?;
    let millis = match unit.trim() {
        "" | "ms" => value,
        "s" => value * 1_000.0,
        "m" => value * 60_000.0,
        "h" => value * 3_600_000.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}'; use ms, s, m or h"
            ));
        }
    };
    if !millis.is_finite() || !(0.0..=86_400_000.0).contains(&millis) {
        return Err(format!("'{text}' is out of range (at most a day)"));
    }
    Ok(std::time::Duration::from_millis(millis as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(
            parse_duration("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("30s"),
            Ok(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("1.5m"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("1200"),
            Ok(std::time::Duration::from_millis(1200))
        );
        assert!(parse_duration("soon").is_err());
        assert!(
            parse_duration("3d")
                .expect_err("unit")
                .contains("ms, s, m or h")
        );
    }
}
