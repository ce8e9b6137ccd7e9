//! The workflow kind's tools: each workflow as one tool, `workflow_run` (an inline plan, or a
//! dry run), `workflow_run_status` (a run the caller stopped waiting for) and `transform` (an
//! expression over JSON, so reshaping is a step like any other).

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::history::{History, RUNS_URI};
use super::plan::{Plan, Problem, ToolCatalog, ToolInfo, parse_json, plan_batch};
use super::run::{RunReport, RunRoot, RunStatus, execute};
use crate::expr::{Expr, Vars};
use crate::tools::kind::KindHost;
use crate::tools::schema::schema_of;
use crate::tools::{Annotations, CallContext, DynTool, Tool, ToolError, ToolSpec, runtime};

/// Starts runs and waits for them, or hands out a run id when the caller cannot wait.
#[derive(Clone)]
pub struct Runner {
    /// The registry, for the steps.
    pub host: KindHost,
    /// Where runs are kept.
    pub history: Arc<History>,
}

/// The time kept back from the caller's deadline, so that the answer "still running" arrives
/// before the caller's own timeout does.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

impl Runner {
    /// Runs `plan` on `inputs` for the call `ctx`: the run's answer when it ends within `wait`
    /// (and the caller's deadline), else `{status: running, run_id}` while it goes on.
    pub async fn run(
        &self,
        plan: Arc<Plan>,
        inputs: Map<String, Value>,
        ctx: &CallContext,
        wait: Duration,
    ) -> RunReport {
        let run_id = crate::tools::result::new_execution_id();
        let nested = ctx.nested();
        let root = Arc::new(RunRoot {
            run_id: run_id.clone(),
            cancel: CancellationToken::new(),
            deadline: Instant::now() + plan.timeout,
            principal: nested.principal.clone(),
            audit: nested.audit.clone(),
            parent: nested.parent.clone(),
            progress: std::sync::Mutex::new(nested.progress.clone()),
        });
        self.history.start(&run_id, &plan.name, &root.principal);
        let run = {
            let (plan, host, history, root) = (
                Arc::clone(&plan),
                self.host.clone(),
                Arc::clone(&self.history),
                Arc::clone(&root),
            );
            tokio::spawn(async move {
                let report = execute(&plan, inputs, &host, &root).await;
                history.finish(&report);
                report
            })
        };
        // A caller that goes away while it waits (its call cancelled or dropped) takes the run
        // with it; one that stopped waiting on purpose leaves it running.
        let cancel_on_drop = root.cancel.clone().drop_guard();
        let patience = wait.min(ctx.remaining().saturating_sub(ANSWER_MARGIN));
        let joined = |result: Result<RunReport, tokio::task::JoinError>| {
            result.unwrap_or_else(|error| failed_report(&run_id, &plan.name, error.to_string()))
        };
        let mut run = run;
        tokio::select! {
            result = &mut run => joined(result),
            () = ctx.cancellation().cancelled() => {
                root.cancel.cancel();
                joined(run.await)
            }
            () = tokio::time::sleep(patience) => {
                cancel_on_drop.disarm();
                root.detach();
                tracing::info!(workflow = %plan.name, run_id = %run_id, "the caller stopped waiting; the run goes on");
                RunReport::running(&run_id, &plan.name)
            }
        }
    }
}

fn failed_report(run_id: &str, workflow: &str, error: String) -> RunReport {
    RunReport {
        status: RunStatus::Failed,
        error: Some(format!("the run crashed ({error}); please report this")),
        ..RunReport::running(run_id, workflow)
    }
}

/// A run that did not succeed becomes an error the model can act on: which step, and why.
fn outcome(report: RunReport) -> Result<RunReport, ToolError> {
    match report.status {
        RunStatus::Succeeded | RunStatus::Running => Ok(report),
        RunStatus::Cancelled => Err(ToolError::Cancelled),
        RunStatus::Failed => {
            let totals = &report.totals;
            let what = match &report.failed_step {
                Some(step) => {
                    let tool = report
                        .steps
                        .iter()
                        .find(|s| &s.id == step)
                        .map(|s| s.tool.clone())
                        .unwrap_or_default();
                    format!(
                        "workflow '{}' failed at step '{step}' ({tool}): {}",
                        report.workflow,
                        report.error.clone().unwrap_or_default()
                    )
                }
                None => format!(
                    "workflow '{}' failed: {}",
                    report.workflow,
                    report.error.clone().unwrap_or_default()
                ),
            };
            Err(ToolError::Upstream {
                message: format!(
                    "{what}. Steps: {} succeeded, {} failed, {} skipped. The full report: {RUNS_URI}/{}",
                    totals.succeeded, totals.failed, totals.skipped, report.run_id
                ),
                transient: false,
            })
        }
    }
}

/// One workflow, served as one tool.
pub struct WorkflowTool {
    plan: Arc<Plan>,
    runner: Runner,
}

impl WorkflowTool {
    /// The tool for `plan`.
    pub fn build(plan: Plan, runner: Runner) -> Arc<dyn DynTool> {
        let input_schema = plan.input_schema.clone();
        let output_schema = output_schema(&plan);
        runtime(
            WorkflowTool {
                plan: Arc::new(plan),
                runner,
            },
            input_schema,
            Some(output_schema),
        )
    }
}

/// The run report's schema as clients see it: its top level, with the declared output's
/// fields named. A step report's fields are in the report itself and in `schemas/`; repeating
/// them in every workflow tool would cost each model turn a kilobyte.
fn output_schema(plan: &Plan) -> Value {
    report_schema(&plan.output_fields)
}

fn report_schema(output_fields: &[String]) -> Value {
    let output: Map<String, Value> = output_fields
        .iter()
        .map(|name| (name.clone(), json!({})))
        .collect();
    json!({
        "type": "object",
        "description": "A run: its output, one report per step (status, reason, error, attempts, elapsed_ms) and totals.",
        "properties": {
            "run_id": {"type": "string"},
            "workflow": {"type": "string"},
            "status": {"enum": ["running", "succeeded", "failed", "cancelled"]},
            "output": {"type": ["object", "null"], "properties": output},
            "failed_step": {"type": "string"},
            "error": {"type": "string"},
            "steps": {"type": "array", "items": {"type": "object"}},
            "totals": {"type": "object"},
        },
        "required": ["run_id", "workflow", "status", "output", "steps", "totals"],
    })
}

impl Tool for WorkflowTool {
    type Params = Map<String, Value>;
    type Output = RunReport;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.plan.name.clone(),
            title: self.plan.title.clone(),
            description: format!(
                "{} (workflow, {} steps)",
                self.plan.description,
                self.plan.steps.len()
            ),
            annotations: self.plan.annotations,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        args: &Map<String, Value>,
    ) -> Result<RunReport, ToolError> {
        let report = self
            .runner
            .run(Arc::clone(&self.plan), args.clone(), ctx, self.plan.wait)
            .await;
        outcome(report)
    }

    fn render_text(&self, _args: &Map<String, Value>, report: &RunReport) -> String {
        render(report)
    }

    /// A run still going is not the answer; the next call must start or find the real one.
    fn cacheable(&self, report: &RunReport) -> bool {
        report.status == RunStatus::Succeeded
    }
}

/// The text a model reads: the output, then one line of figures.
fn render(report: &RunReport) -> String {
    match report.status {
        RunStatus::Running => format!(
            "workflow '{}' is still running (run_id {}); call workflow_run_status with this run_id for the result",
            report.workflow, report.run_id
        ),
        _ => {
            let t = &report.totals;
            format!(
                "{}\n({} steps: {} succeeded, {} failed, {} skipped; {:.0} ms; run_id {})",
                serde_json::to_string(&report.output).unwrap_or_default(),
                t.steps,
                t.succeeded,
                t.failed,
                t.skipped,
                t.wall_ms,
                report.run_id
            )
        }
    }
}

/// What validation asks of the registry.
pub struct HostCatalog<'a>(pub &'a KindHost);

impl ToolCatalog for HostCatalog<'_> {
    fn tool(&self, name: &str) -> Option<ToolInfo> {
        self.0.tool(name).map(|entry| ToolInfo {
            annotations: entry.tool().spec().annotations,
            input_schema: entry.tool().input_schema().clone(),
            refused_read_only: entry.is_refused_read_only(),
        })
    }
}

/// Arguments of `workflow_run`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// The workflow, as in a workflow file (name, description, inputs, steps, output).
    pub workflow: Map<String, Value>,
    /// Its inputs.
    #[serde(default)]
    pub inputs: Map<String, Value>,
    /// Only validate and return the plan.
    #[serde(default)]
    pub dry_run: bool,
}

/// One step of a validated plan.
#[derive(Serialize, JsonSchema)]
pub struct PlannedStepView {
    /// Step id.
    pub id: String,
    /// The tool it calls.
    pub tool: String,
    /// Steps it waits for.
    pub needs: Vec<String>,
    /// Its depth: 0 needs nothing.
    pub level: usize,
}

/// What `workflow_run` returns.
#[derive(Serialize, JsonSchema)]
pub struct RunOutput {
    /// The validated plan, steps in an order that respects their needs.
    pub plan: Vec<PlannedStepView>,
    /// The run (absent in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunReport>,
}

/// `workflow_run`: an ad-hoc plan in one round trip.
pub struct RunInline {
    runner: Runner,
}

impl RunInline {
    /// The tool.
    pub fn build(runner: Runner) -> Arc<dyn DynTool> {
        let output = json!({
            "type": "object",
            "properties": {
                "plan": {"type": "array", "items": {"type": "object"}},
                "run": report_schema(&[]),
            },
            "required": ["plan"],
        });
        runtime(RunInline { runner }, schema_of::<RunParams>(), Some(output))
    }
}

/// The plan as steps in execution order with their levels.
pub fn plan_view(plan: &Plan) -> Vec<PlannedStepView> {
    let mut level_of = vec![0; plan.steps.len()];
    for (level, members) in plan.levels().iter().enumerate() {
        for &index in members {
            level_of[index] = level;
        }
    }
    plan.order
        .iter()
        .map(|&index| {
            let step = &plan.steps[index];
            PlannedStepView {
                id: step.id.clone(),
                tool: step.tool.clone(),
                needs: step
                    .needs
                    .iter()
                    .map(|&n| plan.steps[n].id.clone())
                    .collect(),
                level: level_of[index],
            }
        })
        .collect()
}

impl Tool for RunInline {
    type Params = RunParams;
    type Output = RunOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "workflow_run".to_owned(),
            title: "Run an ad-hoc workflow".to_owned(),
            description: "Run several tool calls as one DAG in one round trip: a workflow (steps with tool, args, needs, if, for_each; ${{ }} over inputs and steps.<id>.output) and inputs. dry_run only plans.".to_owned(),
            annotations: Annotations {
                read_only_hint: self.runner.host.read_only(),
                destructive_hint: false,
                idempotent_hint: false,
                open_world_hint: false,
            },
        }
    }

    async fn invoke(&self, ctx: &CallContext, params: &RunParams) -> Result<RunOutput, ToolError> {
        let file = parse_json(Value::Object(params.workflow.clone()))
            .map_err(|problem| ToolError::InvalidArguments(problem.to_string()))?;
        let catalog = HostCatalog(&self.runner.host);
        let (mut plans, problems) = plan_batch(
            vec![("inline".to_owned(), file)],
            &catalog,
            self.runner.host.read_only(),
        );
        if !problems.is_empty() {
            return Err(ToolError::InvalidArguments(list(&problems)));
        }
        let Some(plan) = plans.pop() else {
            return Err(ToolError::Internal("the plan vanished".into()));
        };
        let view = plan_view(&plan);
        if params.dry_run {
            return Ok(RunOutput {
                plan: view,
                run: None,
            });
        }
        // The inputs pass the plan's own schema, as a workflow tool's arguments do.
        crate::tools::schema::ArgumentValidator::compile(&plan.input_schema)
            .and_then(|v| v.check(&Value::Object(params.inputs.clone())))
            .map_err(|message| ToolError::InvalidArguments(format!("inputs: {message}")))?;
        let wait = plan.wait;
        let report = self
            .runner
            .run(Arc::new(plan), params.inputs.clone(), ctx, wait)
            .await;
        Ok(RunOutput {
            plan: view,
            run: Some(outcome(report)?),
        })
    }
}

/// Every problem, one per line.
pub fn list(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("the workflow is not valid:\n{}", lines.join("\n"))
}

/// Arguments of `workflow_run_status`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {
    /// The run_id of the running answer.
    pub run_id: String,
    /// Milliseconds to wait for the end (default 0, at most 50000).
    #[serde(default)]
    pub wait_ms: u64,
}

/// `workflow_run_status`: the report of a run the caller stopped waiting for.
pub struct RunStatusTool {
    history: Arc<History>,
}

impl RunStatusTool {
    /// The tool.
    pub fn build(history: Arc<History>) -> Arc<dyn DynTool> {
        runtime(
            RunStatusTool { history },
            schema_of::<StatusParams>(),
            Some(report_schema(&[])),
        )
    }
}

impl Tool for RunStatusTool {
    type Params = StatusParams;
    type Output = RunReport;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "workflow_run_status".to_owned(),
            title: "Workflow run status".to_owned(),
            description:
                "The result of a workflow run that answered status running; wait_ms waits for it."
                    .to_owned(),
            annotations: Annotations {
                idempotent_hint: false,
                ..Annotations::READ_ONLY
            },
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &StatusParams,
    ) -> Result<RunReport, ToolError> {
        let until = Instant::now()
            + Duration::from_millis(params.wait_ms.min(50_000))
                .min(ctx.remaining().saturating_sub(ANSWER_MARGIN));
        loop {
            match self.history.get(&params.run_id, ctx.principal()) {
                None => {
                    return Err(ToolError::InvalidArguments(format!(
                        "no run '{}' of yours in the history; read {RUNS_URI} for your runs",
                        params.run_id
                    )));
                }
                Some((_, Some(report))) => return outcome(report),
                Some((workflow, None)) if Instant::now() >= until => {
                    return Ok(RunReport::running(&params.run_id, &workflow));
                }
                Some((_, None)) => {
                    tokio::select! {
                        () = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
        }
    }

    fn render_text(&self, _params: &StatusParams, report: &RunReport) -> String {
        render(report)
    }
}

/// Arguments of `transform`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformParams {
    /// The JSON to reshape, seen as `value` by the expression.
    pub value: Value,
    /// A CEL expression over `value`, e.g. `value.rows.map(r, r[0])`.
    pub expression: String,
}

/// What `transform` returns.
#[derive(Serialize, JsonSchema)]
pub struct TransformOutput {
    /// The expression's result.
    pub result: Value,
}

/// `transform`: an expression applied to JSON, so reshaping is a step like any other.
pub struct Transform;

impl Tool for Transform {
    type Params = TransformParams;
    type Output = TransformOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "transform".to_owned(),
            title: "Transform JSON".to_owned(),
            description: "Applies a CEL expression to a JSON value (`value` in the expression) and returns the result: reshape, filter, count, pick fields.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        _ctx: &CallContext,
        params: &TransformParams,
    ) -> Result<TransformOutput, ToolError> {
        let expr = Expr::compile(&params.expression)
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
        let result = expr
            .eval(&Vars::new().with("value", params.value.clone()))
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
        Ok(TransformOutput { result })
    }
}
