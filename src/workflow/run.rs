//! The engine: a ready queue, not level-by-level barriers. A step starts as soon as its own
//! needs have settled (up to `max_parallel` at once), so a slow step never holds up unrelated
//! ones. Every step is a nested call through the registry, so validation, policies, cache,
//! metrics and audit apply to it as to a client's call; cancelling the run cancels the running
//! steps (their database queries stop) and starts no new ones.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::file::{OnFailure, TriggerRule};
use super::plan::{Plan, PlannedStep};
use crate::expr::Vars;
use crate::tools::audit::AuditIdentity;
use crate::tools::context::{Invocation, ProgressSink};
use crate::tools::kind::KindHost;
use crate::tools::policy::millis;
use crate::tools::{Principal, ToolError};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and its output passed its asserts.
    Succeeded,
    /// It ran and failed (see `error`), or was stopped while running.
    Failed,
    /// It did not run (see `reason`).
    Skipped,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepReport {
    /// Step id.
    pub id: String,
    /// The tool it called.
    pub tool: String,
    /// How it ended.
    pub status: StepStatus,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kind of failure: invalid_arguments, refused, upstream, timeout, cancelled, assert, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// Calls made, retries included (for a for_each step, of its slowest item).
    pub attempts: u32,
    /// Items, for a for_each step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
    /// Whether the fallback output stood in for a failure.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fallback_used: bool,
    /// When it started, in milliseconds from the start of the run.
    pub started_ms: f64,
    /// How long it ran, in milliseconds.
    pub elapsed_ms: f64,
}

/// Figures of one run.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Totals {
    /// Steps in the workflow.
    pub steps: usize,
    /// Steps that ran.
    pub executed: usize,
    /// Steps that succeeded.
    pub succeeded: usize,
    /// Steps that failed.
    pub failed: usize,
    /// Steps that did not run.
    pub skipped: usize,
    /// Succeeded over executed (1 when nothing ran).
    pub success_rate: f64,
    /// Wall time of the run, in milliseconds.
    pub wall_ms: f64,
    /// The longest chain of needs, by the steps' own times, in milliseconds: the floor of the
    /// wall time however wide the run.
    pub critical_path_ms: f64,
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running: poll `workflow_run_status`.
    Running,
    /// Every step settled and the output was built.
    Succeeded,
    /// A step failed with `on_failure: stop`, the deadline passed, or the output failed.
    Failed,
    /// The caller cancelled it.
    Cancelled,
}

/// What a run produced: the declared output and a report per step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunReport {
    /// The run's id (for `workflow_run_status` and the history resources).
    pub run_id: String,
    /// The workflow.
    pub workflow: String,
    /// How it ended.
    pub status: RunStatus,
    /// The declared output (null unless the run succeeded).
    pub output: Value,
    /// The step whose failure ended the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each step, in file order.
    pub steps: Vec<StepReport>,
    /// Figures.
    pub totals: Totals,
}

impl RunReport {
    /// The answer for a run that has not ended yet.
    pub fn running(run_id: &str, workflow: &str) -> Self {
        RunReport {
            run_id: run_id.to_owned(),
            workflow: workflow.to_owned(),
            status: RunStatus::Running,
            output: Value::Null,
            failed_step: None,
            error: None,
            steps: Vec::new(),
            totals: Totals::default(),
        }
    }
}

/// What a run inherits from the call that started it, owned by the run so it can outlive the
/// call (a caller that stopped waiting gets a run id and polls).
pub struct RunRoot {
    /// The run's id.
    pub run_id: String,
    /// Cancels every step.
    pub cancel: CancellationToken,
    /// The run's deadline.
    pub deadline: Instant,
    /// Whom it runs for.
    pub principal: Principal,
    /// Who the audit lines name.
    pub audit: Option<Arc<AuditIdentity>>,
    /// The execution id of the call that started it.
    pub parent: Option<Arc<str>>,
    /// Progress, while the caller waits; dropped when the caller stops waiting.
    pub progress: Mutex<Option<Arc<dyn ProgressSink>>>,
}

impl RunRoot {
    fn invocation(&self, cancel: CancellationToken, deadline: Instant) -> Invocation {
        Invocation {
            cancel,
            progress: None,
            principal: self.principal.clone(),
            deadline: Some(deadline.min(self.deadline)),
            audit: self.audit.clone(),
            parent: self.parent.clone(),
        }
    }

    fn report_progress(&self, done: usize, total: usize, message: String) {
        let sink = self.progress.lock().ok().and_then(|p| p.clone());
        if let Some(sink) = sink {
            sink.report(done as f64, Some(total as f64), Some(message));
        }
    }

    /// Stops progress: the caller no longer listens.
    pub fn detach(&self) {
        if let Ok(mut progress) = self.progress.lock() {
            *progress = None;
        }
    }
}

/// A step's state while the run goes on: its report once it settled.
#[derive(Clone)]
struct State {
    output: Value,
    report: Option<StepReport>,
}

impl State {
    fn status(&self) -> Option<StepStatus> {
        self.report.as_ref().map(|r| r.status)
    }

    fn ok(&self) -> bool {
        self.status() == Some(StepStatus::Succeeded)
            || self.report.as_ref().is_some_and(|r| r.fallback_used)
    }

    fn failed(&self) -> bool {
        self.status() == Some(StepStatus::Failed) && !self.ok()
    }

    /// Settles the step as skipped for `reason`, `at_ms` into the run.
    fn skip(&mut self, step: &PlannedStep, reason: String, at_ms: f64) {
        self.report = Some(StepReport {
            id: step.id.clone(),
            tool: step.tool.clone(),
            status: StepStatus::Skipped,
            reason: Some(reason),
            error: None,
            error_kind: None,
            attempts: 0,
            items: None,
            fallback_used: false,
            started_ms: at_ms,
            elapsed_ms: 0.0,
        });
    }

    fn as_json(&self) -> Value {
        let mut entry = Map::new();
        let status = match self.status() {
            Some(StepStatus::Succeeded) => "succeeded",
            Some(StepStatus::Failed) => "failed",
            Some(StepStatus::Skipped) => "skipped",
            None => "pending",
        };
        entry.insert("status".into(), Value::from(status));
        entry.insert("output".into(), self.output.clone());
        entry.insert(
            "error".into(),
            self.report
                .as_ref()
                .and_then(|r| r.error.clone())
                .map_or(Value::Null, Value::from),
        );
        Value::Object(entry)
    }
}

/// What a step's future returns.
struct Settled {
    index: usize,
    status: StepStatus,
    output: Value,
    error: Option<(String, String)>,
    attempts: u32,
    items: Option<usize>,
    fallback_used: bool,
    started: Instant,
}

/// The inputs with their defaults filled in.
pub fn with_defaults(plan: &Plan, mut inputs: Map<String, Value>) -> Map<String, Value> {
    for (name, spec) in &plan.inputs {
        if !inputs.contains_key(name)
            && let Some(default) = &spec.default
        {
            inputs.insert(name.clone(), default.clone());
        }
    }
    inputs
}

/// Runs `plan` to the end: every step settled, or the run stopped.
pub async fn execute(
    plan: &Plan,
    inputs: Map<String, Value>,
    host: &KindHost,
    root: &RunRoot,
) -> RunReport {
    let started = Instant::now();
    let inputs = Value::Object(with_defaults(plan, inputs));
    let total = plan.steps.len();
    let mut states = vec![
        State {
            output: Value::Null,
            report: None,
        };
        total
    ];
    let mut waiting: Vec<usize> = plan.steps.iter().map(|s| s.needs.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); total];
    for (index, step) in plan.steps.iter().enumerate() {
        for &need in &step.needs {
            dependents[need].push(index);
        }
    }
    let mut ready: std::collections::VecDeque<usize> = plan
        .order
        .iter()
        .copied()
        .filter(|&i| waiting[i] == 0)
        .collect();
    let stop = root.cancel.child_token();
    let mut running = FuturesUnordered::new();
    let mut settled_count = 0;
    let mut stopped_by: Option<(String, String)> = None;
    let mut timed_out = false;
    let deadline = tokio::time::Instant::from_std(root.deadline);

    loop {
        // Start what is ready, up to the limit; decide skips on the spot.
        while running.len() < plan.max_parallel && stopped_by.is_none() && !stop.is_cancelled() {
            let Some(index) = ready.pop_front() else {
                break;
            };
            let step = &plan.steps[index];
            let skip = match judge_trigger(step, &states) {
                Err(reason) => Some(reason),
                Ok(()) => match &step.condition {
                    None => None,
                    Some(condition) => match condition
                        .eval_bool(&vars_for(plan, step, &inputs, &states))
                    {
                        Ok(true) => None,
                        Ok(false) => Some(format!("if was false: {}", condition.source())),
                        Err(error) => {
                            let settled = Settled {
                                index,
                                status: StepStatus::Failed,
                                output: Value::Null,
                                error: Some((format!("if: {error}"), "invalid_arguments".into())),
                                attempts: 0,
                                items: None,
                                fallback_used: false,
                                started: Instant::now(),
                            };
                            settle(plan, settled, &mut states, started);
                            settled_count += 1;
                            after_settle(index, &mut waiting, &dependents, &mut ready);
                            if plan.steps[index].on_failure == OnFailure::Stop
                                && !states[index].ok()
                            {
                                stopped_by = Some((step.id.clone(), format!("if: {error}")));
                                stop.cancel();
                            }
                            continue;
                        }
                    },
                },
            };
            if let Some(reason) = skip {
                states[index].skip(step, reason, millis(started.elapsed()));
                settled_count += 1;
                root.report_progress(
                    settled_count,
                    total,
                    format!("{settled_count}/{total} steps: {} skipped", step.id),
                );
                after_settle(index, &mut waiting, &dependents, &mut ready);
                continue;
            }
            let vars = vars_for(plan, step, &inputs, &states);
            running.push(run_step(plan, index, vars, host, root, stop.clone()));
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = root.cancel.cancelled(), if !stop.is_cancelled() => {
                stop.cancel();
            }
            () = tokio::time::sleep_until(deadline), if !timed_out => {
                timed_out = true;
                stop.cancel();
            }
            Some(settled) = running.next() => {
                let index = settled.index;
                settle(plan, settled, &mut states, started);
                settled_count += 1;
                let step = &plan.steps[index];
                let status = match states[index].status() {
                    Some(StepStatus::Succeeded) => "ok",
                    _ if states[index].ok() => "failed, fallback used",
                    _ => "failed",
                };
                root.report_progress(settled_count, total, format!("{settled_count}/{total} steps: {} {status}", step.id));
                if states[index].failed() && step.on_failure == OnFailure::Stop && stopped_by.is_none() && !stop.is_cancelled() {
                    let error = states[index].report.as_ref().and_then(|r| r.error.clone()).unwrap_or_default();
                    stopped_by = Some((step.id.clone(), error));
                    stop.cancel();
                }
                after_settle(index, &mut waiting, &dependents, &mut ready);
            }
        }
    }

    // Whatever never started did not run.
    let why = match (&stopped_by, timed_out, root.cancel.is_cancelled()) {
        (Some((id, _)), _, _) => format!("the run stopped after step '{id}' failed"),
        (None, true, _) => "the run's deadline passed".to_owned(),
        (None, false, true) => "the run was cancelled".to_owned(),
        _ => "a step it needs did not settle".to_owned(),
    };
    let now_ms = millis(started.elapsed());
    for (step, state) in plan.steps.iter().zip(states.iter_mut()) {
        if state.report.is_none() {
            state.skip(step, why.clone(), now_ms);
        }
    }

    let mut report = RunReport {
        run_id: root.run_id.clone(),
        workflow: plan.name.clone(),
        status: RunStatus::Succeeded,
        output: Value::Null,
        failed_step: None,
        error: None,
        steps: states.iter().filter_map(|s| s.report.clone()).collect(),
        totals: Totals::default(),
    };
    if let Some((id, error)) = stopped_by {
        report.status = RunStatus::Failed;
        report.failed_step = Some(id);
        report.error = Some(error);
    } else if timed_out {
        report.status = RunStatus::Failed;
        report.error = Some(format!(
            "the run passed its deadline ({} ms); raise the workflow's timeout or narrow its inputs",
            plan.timeout.as_millis()
        ));
    } else if root.cancel.is_cancelled() {
        report.status = RunStatus::Cancelled;
        report.error = Some("cancelled by the caller".to_owned());
    } else {
        let all = Vars::new()
            .with("inputs", inputs.clone())
            .with("steps", all_steps(plan, &states));
        match plan.output.render(&all) {
            Ok(output) => report.output = output,
            Err(error) => {
                report.status = RunStatus::Failed;
                report.error = Some(format!("building the output failed: {error}"));
            }
        }
    }
    report.totals = totals(plan, &report.steps, started.elapsed());
    report
}

/// Whether a step's trigger rule lets it run, judged over its settled needs.
fn judge_trigger(step: &PlannedStep, states: &[State]) -> Result<(), String> {
    if step.needs.is_empty() {
        return Ok(());
    }
    let needs: Vec<&State> = step.needs.iter().map(|&n| &states[n]).collect();
    let failed = needs.iter().any(|s| s.failed());
    let any_ok = needs.iter().any(|s| s.ok());
    let all_ok = needs.iter().all(|s| s.ok());
    let verdict = match step.trigger {
        TriggerRule::AllSuccess if all_ok => Ok(()),
        TriggerRule::AllSuccess if failed => Err("a step it needs failed (trigger all_success)"),
        TriggerRule::AllSuccess => Err("a step it needs was skipped (trigger all_success)"),
        TriggerRule::AllDone => Ok(()),
        TriggerRule::OneSuccess if any_ok => Ok(()),
        TriggerRule::OneSuccess => Err("no step it needs succeeded (trigger one_success)"),
        TriggerRule::OneFailed if failed => Ok(()),
        TriggerRule::OneFailed => Err("no step it needs failed (trigger one_failed)"),
        TriggerRule::NoneFailed if !failed => Ok(()),
        TriggerRule::NoneFailed => Err("a step it needs failed (trigger none_failed)"),
        TriggerRule::NoneFailedMinOneSuccess if !failed && any_ok => Ok(()),
        TriggerRule::NoneFailedMinOneSuccess if failed => {
            Err("a step it needs failed (trigger none_failed_min_one_success)")
        }
        TriggerRule::NoneFailedMinOneSuccess => {
            Err("no step it needs succeeded (trigger none_failed_min_one_success)")
        }
    };
    verdict.map_err(str::to_owned)
}

fn after_settle(
    index: usize,
    waiting: &mut [usize],
    dependents: &[Vec<usize>],
    ready: &mut std::collections::VecDeque<usize>,
) {
    for &dependent in &dependents[index] {
        waiting[dependent] -= 1;
        if waiting[dependent] == 0 {
            ready.push_back(dependent);
        }
    }
}

fn settle(plan: &Plan, settled: Settled, states: &mut [State], run_started: Instant) {
    let step = &plan.steps[settled.index];
    let (error, error_kind) = match settled.error {
        Some((error, kind)) => (Some(error), Some(kind)),
        None => (None, None),
    };
    let output = if settled.fallback_used {
        step.fallback.clone().unwrap_or(Value::Null)
    } else {
        settled.output
    };
    let state = &mut states[settled.index];
    state.output = output;
    state.report = Some(StepReport {
        id: step.id.clone(),
        tool: step.tool.clone(),
        status: settled.status,
        reason: None,
        error,
        error_kind,
        attempts: settled.attempts,
        items: settled.items,
        fallback_used: settled.fallback_used,
        started_ms: millis(settled.started.saturating_duration_since(run_started)),
        elapsed_ms: millis(settled.started.elapsed()),
    });
}

/// The variables a step's expressions see: inputs, the steps it reads, `previous`, and `item`.
fn vars_for(plan: &Plan, step: &PlannedStep, inputs: &Value, states: &[State]) -> Vars<'static> {
    // Only the steps its expressions read: copying every output for every step would make a
    // long workflow quadratic.
    let steps: Map<String, Value> = step
        .reads
        .iter()
        .map(|&read| (plan.steps[read].id.clone(), states[read].as_json()))
        .collect();
    let mut vars = Vars::new()
        .with("inputs", inputs.clone())
        .with("steps", Value::Object(steps));
    if let Some(previous) = step.previous {
        vars = vars.with("previous", states[previous].output.clone());
    }
    vars
}

fn all_steps(plan: &Plan, states: &[State]) -> Value {
    Value::Object(
        plan.steps
            .iter()
            .zip(states)
            .map(|(step, state)| (step.id.clone(), state.as_json()))
            .collect(),
    )
}

/// One call's output and attempts, or its error, error kind and attempts.
type ItemResult = Result<(Value, u32), (String, String, u32)>;

/// Runs one step: its items (or its one call), each with its retries, then its asserts.
async fn run_step(
    plan: &Plan,
    index: usize,
    vars: Vars<'static>,
    host: &KindHost,
    root: &RunRoot,
    stop: CancellationToken,
) -> Settled {
    let step = &plan.steps[index];
    let started = Instant::now();
    let failed = |error: String, kind: &str, attempts: u32, items: Option<usize>| Settled {
        index,
        status: StepStatus::Failed,
        output: Value::Null,
        error: Some((error, kind.to_owned())),
        attempts,
        items,
        fallback_used: step.on_failure == OnFailure::Continue && step.fallback.is_some(),
        started,
    };
    let (output, attempts, items) = match &step.for_each {
        None => match call_with_retry(step, &vars, host, root, &stop).await {
            Ok((output, attempts)) => (output, attempts, None),
            Err((error, kind, attempts)) => return failed(error, &kind, attempts, None),
        },
        Some(list) => {
            let items = match list.eval(&vars) {
                Ok(Value::Array(items)) => items,
                Ok(other) => {
                    return failed(
                        format!("for_each must give a list, got {}", type_name(&other)),
                        "invalid_arguments",
                        0,
                        None,
                    );
                }
                Err(error) => {
                    return failed(format!("for_each: {error}"), "invalid_arguments", 0, None);
                }
            };
            if items.len() > step.max_items {
                return failed(
                    format!(
                        "for_each gave {} items; max_items is {}: narrow the list or raise max_items",
                        items.len(),
                        step.max_items
                    ),
                    "invalid_arguments",
                    0,
                    Some(items.len()),
                );
            }
            let count = items.len();
            // A failed item fails the step: the items still running are cancelled and no
            // more start.
            let items_stop = stop.child_token();
            // Built in a loop rather than a stream closure: a closure over borrowed state
            // trips the compiler's Send check inside a spawned run.
            let mut calls: Vec<futures::future::BoxFuture<'_, ItemResult>> =
                Vec::with_capacity(count);
            for (position, item) in items.iter().enumerate() {
                let vars = vars
                    .clone()
                    .with("item", item.clone())
                    .with("index", Value::from(position));
                let items_stop = items_stop.clone();
                calls.push(Box::pin(async move {
                    call_with_retry(step, &vars, host, root, &items_stop).await
                }));
            }
            let mut results = futures::stream::iter(calls).buffered(step.max_parallel);
            let mut outputs = Vec::with_capacity(count);
            let mut most_attempts = 0;
            while let Some(result) = results.next().await {
                match result {
                    Ok((output, attempts)) => {
                        most_attempts = most_attempts.max(attempts);
                        outputs.push(output);
                    }
                    Err((error, kind, attempts)) => {
                        items_stop.cancel();
                        return failed(
                            format!("item {} failed: {error}", outputs.len()),
                            &kind,
                            most_attempts.max(attempts),
                            Some(count),
                        );
                    }
                }
            }
            (Value::Array(outputs), most_attempts, Some(count))
        }
    };
    for (gate, message) in &step.asserts {
        let vars = vars.clone().with("output", output.clone());
        match gate.eval_bool(&vars) {
            Ok(true) => {}
            Ok(false) => {
                return failed(
                    format!("assert failed: {message} ({})", gate.source()),
                    "assert",
                    attempts,
                    items,
                );
            }
            Err(error) => {
                return failed(
                    format!("assert could not be checked: {error}"),
                    "assert",
                    attempts,
                    items,
                );
            }
        }
    }
    Settled {
        index,
        status: StepStatus::Succeeded,
        output,
        error: None,
        attempts,
        items,
        fallback_used: false,
        started,
    }
}

/// One call of the step's tool (for one item), retried on the declared error kinds.
async fn call_with_retry(
    step: &PlannedStep,
    vars: &Vars<'_>,
    host: &KindHost,
    root: &RunRoot,
    stop: &CancellationToken,
) -> Result<(Value, u32), (String, String, u32)> {
    let args = match step.args.render(vars) {
        Ok(Value::Object(args)) => args,
        Ok(_) => {
            return Err((
                "args must be an object".into(),
                "invalid_arguments".into(),
                0,
            ));
        }
        Err(error) => return Err((format!("args: {error}"), "invalid_arguments".into(), 0)),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let deadline = match step.timeout {
            Some(timeout) => Instant::now() + timeout,
            None => root.deadline,
        };
        let invocation = root.invocation(stop.child_token(), deadline);
        let error = match host.call_with(&step.tool, args.clone(), invocation).await {
            Ok(result) => match result.outcome {
                Ok(output) => return Ok((output.structured, attempt)),
                Err(error) => error,
            },
            Err(error) => error,
        };
        let kind = error.kind();
        let retry = attempt < step.retry.attempts
            && step.retry.on.iter().any(|k| k == kind)
            && !stop.is_cancelled();
        if !retry {
            // Cancelled by the run itself (a failed step, the deadline, the caller), not by a
            // client of this step.
            if stop.is_cancelled() && matches!(error, ToolError::Cancelled) {
                return Err((
                    "cancelled: the run stopped".to_owned(),
                    "cancelled".to_owned(),
                    attempt,
                ));
            }
            return Err((error.to_string(), kind.to_owned(), attempt));
        }
        let pause = step
            .retry
            .backoff
            .saturating_mul(1 << (attempt - 1).min(10));
        tokio::select! {
            () = stop.cancelled() => return Err((error.to_string(), kind.to_owned(), attempt)),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

fn totals(plan: &Plan, steps: &[StepReport], wall: Duration) -> Totals {
    let executed = steps
        .iter()
        .filter(|s| s.status != StepStatus::Skipped)
        .count();
    let succeeded = steps
        .iter()
        .filter(|s| s.status == StepStatus::Succeeded)
        .count();
    let failed = steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .count();
    let mut finish = vec![0.0f64; plan.steps.len()];
    for &index in &plan.order {
        let start = plan.steps[index]
            .needs
            .iter()
            .map(|&n| finish[n])
            .fold(0.0, f64::max);
        finish[index] = start + steps.get(index).map_or(0.0, |s| s.elapsed_ms);
    }
    Totals {
        steps: plan.steps.len(),
        executed,
        succeeded,
        failed,
        skipped: plan.steps.len() - executed,
        success_rate: if executed == 0 {
            1.0
        } else {
            succeeded as f64 / executed as f64
        },
        wall_ms: millis(wall),
        critical_path_ms: (finish.iter().copied().fold(0.0, f64::max) * 1000.0).round() / 1000.0,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
