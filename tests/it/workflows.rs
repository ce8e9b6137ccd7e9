//! Workflows in process: plans given inline to `workflow_run` (the same validation and engine
//! as workflow files) over the SQLite demo data and PostgreSQL. Steps take their time from SQL
//! whose cost is known (a recursive CTE), never from a sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use datamcp::config::Config;
use datamcp::tools::kind::KindHost;
use datamcp::tools::registry::Registration;
use datamcp::tools::{
    Annotations, CallContext, Invocation, Registry, Tool, ToolError, ToolSpec, typed,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// A CTE counting to `n`: about 250 ms per million rows on SQLite in a debug build.
fn counting(n: u64) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT count(*) AS n FROM c"
    )
}

fn sql_step(id: &str, sql: &str) -> Value {
    json!({"id": id, "tool": "sql_query", "args": {"sql": sql}})
}

/// The server's registry for `extra` config (the demo warehouse unless it names another),
/// plus a test kind with a concurrency probe and a tool that writes.
fn server(extra: &str) -> (Arc<Registry>, Arc<Probe>) {
    // Top-level keys first: `extra` may open tables.
    let demo = if extra.contains("[warehouses.") {
        ""
    } else {
        "demo = true\n"
    };
    let text = format!(
        "{demo}data_dir = \"{}\"\n{extra}\n",
        demo_data_dir().display()
    );
    let config = Config::parse(&text, "workflows.toml").expect("config");
    let (registry, kinds) = datamcp::kinds::start(&config).expect("kinds start");
    std::mem::forget(kinds);
    let host = KindHost::new("test", &registry, Arc::new(config.workspace.clone()));
    let probe = Arc::new(Probe {
        host: host.clone(),
        now: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    });
    host.register(Registration::listed(typed(ProbeTool(Arc::clone(&probe)))))
        .expect("register the probe");
    host.register(Registration::listed(typed(Writer("writer"))))
        .expect("register the writer");
    (registry, probe)
}

/// Counts how many of its calls run at once; each call runs a counting query.
struct Probe {
    host: KindHost,
    now: AtomicUsize,
    most: AtomicUsize,
    calls: AtomicUsize,
}

struct ProbeTool(Arc<Probe>);

#[derive(Deserialize, JsonSchema)]
struct ProbeArgs {
    /// Echoed back; a negative number fails the call.
    n: i64,
}

#[derive(Serialize, JsonSchema)]
struct ProbeOut {
    n: i64,
}

impl Tool for ProbeTool {
    type Params = ProbeArgs;
    type Output = ProbeOut;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "probe".into(),
            title: "probe".into(),
            description: "counts concurrent calls".into(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(&self, ctx: &CallContext, params: &ProbeArgs) -> Result<ProbeOut, ToolError> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        if params.n < 0 {
            return Err(ToolError::InvalidArguments(format!(
                "{} is negative",
                params.n
            )));
        }
        let now = self.0.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most.fetch_max(now, Ordering::SeqCst);
        let mut args = Map::new();
        args.insert("sql".into(), Value::from(counting(100_000)));
        let result = self.0.host.call(ctx, "sql_query", args).await;
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        result?.outcome?;
        Ok(ProbeOut { n: params.n })
    }
}

async fn run_with(
    registry: &Registry,
    workflow: Value,
    inputs: Value,
    cancel: CancellationToken,
) -> Result<Value, ToolError> {
    let args = json!({"workflow": workflow, "inputs": inputs});
    let result = registry
        .call(
            "workflow_run",
            args.as_object().cloned(),
            Invocation::local(cancel),
        )
        .await
        .expect("workflow_run is served");
    result.outcome.map(|output| output.structured)
}

/// Runs `steps` (with `extra` workflow keys) and returns the run report.
async fn run(registry: &Registry, steps: Value, extra: Value) -> Result<Value, ToolError> {
    let mut workflow = json!({"name": "test_flow", "description": "a test", "steps": steps});
    if let (Some(workflow), Some(extra)) = (workflow.as_object_mut(), extra.as_object()) {
        workflow.extend(extra.clone());
    }
    run_with(registry, workflow, json!({}), CancellationToken::new())
        .await
        .map(|output| output["run"].clone())
}

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("step {id} in {report}"))
}

fn span(report: &Value, id: &str) -> (f64, f64) {
    let s = step(report, id);
    let start = s["started_ms"].as_f64().expect("started");
    (start, start + s["elapsed_ms"].as_f64().expect("elapsed"))
}

#[tokio::test]
async fn independent_branches_overlap_and_a_join_waits_for_both() {
    let (registry, _) = server("");
    let report = run(
        &registry,
        json!([
            sql_step("a", &counting(1_000_000)),
            sql_step("b", &counting(1_000_000)),
            {"id": "c", "tool": "sql_query", "needs": ["a", "b"], "args": {"sql": "SELECT 1 AS one"}},
        ]),
        json!({}),
    )
    .await
    .expect("runs");
    let (a, b, c) = (span(&report, "a"), span(&report, "b"), span(&report, "c"));
    assert!(a.0 < b.1 && b.0 < a.1, "a {a:?} and b {b:?} overlap");
    assert!(
        c.0 >= a.1.max(b.1) - 1.0,
        "c {c:?} starts after a {a:?} and b {b:?}"
    );
    let totals = &report["totals"];
    assert_eq!(totals["executed"], 3);
    assert!(
        totals["wall_ms"].as_f64() < Some((a.1 - a.0) + (b.1 - b.0)),
        "{totals}"
    );
}

#[tokio::test]
async fn a_short_chain_finishes_before_an_unrelated_long_step() {
    let (registry, _) = server("");
    let report = run(
        &registry,
        json!([
            sql_step("long", &counting(3_000_000)),
            sql_step("first", "SELECT 1 AS one"),
            {"id": "second", "tool": "sql_query", "needs": ["first"], "args": {"sql": "SELECT 2 AS two"}},
            {"id": "third", "tool": "sql_query", "needs": ["second"], "args": {"sql": "SELECT 3 AS three"}},
        ]),
        json!({}),
    )
    .await
    .expect("runs");
    let (long, third) = (span(&report, "long"), span(&report, "third"));
    assert!(
        third.1 < long.1,
        "no level barrier: third {third:?} ended before long {long:?}"
    );
}

#[tokio::test]
async fn a_false_if_skips_its_branch_and_the_skip_propagates_by_trigger_rule() {
    let (registry, _) = server("");
    let report = run(
        &registry,
        json!([
            sql_step("count", "SELECT count(*) AS n FROM orders"),
            {"id": "big", "tool": "sql_query", "needs": ["count"],
             "if": "steps.count.output.rows[0][0] > 1000000000",
             "args": {"sql": "SELECT 'big' AS branch"}},
            {"id": "after_big", "tool": "sql_query", "needs": ["big"], "args": {"sql": "SELECT 1 AS one"}},
            {"id": "join", "tool": "sql_query", "needs": ["count", "big"],
             "trigger": "none_failed_min_one_success", "args": {"sql": "SELECT 'joined' AS j"}},
            {"id": "needs_a_failure", "tool": "sql_query", "needs": ["count"], "trigger": "one_failed",
             "args": {"sql": "SELECT 1 AS one"}},
        ]),
        json!({"output": {"joined": "${{ steps.join.output.rows[0][0] }}", "big": "${{ steps.big.status }}"}}),
    )
    .await
    .expect("runs");
    assert_eq!(step(&report, "big")["status"], "skipped");
    assert!(
        step(&report, "big")["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("if was false")
    );
    assert_eq!(step(&report, "after_big")["status"], "skipped");
    assert!(
        step(&report, "after_big")["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("skipped")
    );
    assert_eq!(step(&report, "join")["status"], "succeeded");
    assert_eq!(step(&report, "needs_a_failure")["status"], "skipped");
    assert_eq!(
        report["output"],
        json!({"joined": "joined", "big": "skipped"})
    );
}

#[tokio::test]
async fn on_failure_continue_carries_on_and_stop_ends_the_run_naming_the_step() {
    let (registry, _) = server("");
    let steps = |on_failure: &str| {
        json!([
            {"id": "broken", "tool": "sql_query", "on_failure": on_failure,
             "args": {"sql": "DELETE FROM orders"}},
            {"id": "after", "tool": "sql_query", "needs": ["broken"], "args": {"sql": "SELECT 1 AS one"}},
            {"id": "cleanup", "tool": "sql_query", "needs": ["broken"], "trigger": "all_done",
             "args": {"sql": "SELECT 'cleaned' AS c"}},
        ])
    };
    let carried = run(&registry, steps("continue"), json!({}))
        .await
        .expect("continues");
    assert_eq!(carried["status"], "succeeded");
    assert_eq!(step(&carried, "broken")["status"], "failed");
    assert_eq!(step(&carried, "broken")["error_kind"], "refused");
    assert_eq!(step(&carried, "after")["status"], "skipped");
    assert_eq!(step(&carried, "cleanup")["status"], "succeeded");

    let stopped = run(&registry, steps("stop"), json!({}))
        .await
        .expect_err("stops");
    let message = stopped.to_string();
    assert!(message.contains("step 'broken' (sql_query)"), "{message}");
    assert!(message.contains("DELETE"), "{message}");
    assert!(message.contains("datamcp://workflow/runs/"), "{message}");
}

#[tokio::test]
async fn a_fallback_stands_in_for_a_failed_step() {
    let (registry, _) = server("");
    let report = run(
        &registry,
        json!([
            {"id": "broken", "tool": "sql_query", "on_failure": "continue",
             "fallback": {"rows": [[0]]}, "args": {"sql": "DELETE FROM orders"}},
            {"id": "uses_it", "tool": "transform", "needs": ["broken"],
             "args": {"value": "${{ steps.broken.output.rows }}", "expression": "size(value)"}},
        ]),
        json!({"output": {"n": "${{ steps.uses_it.output.result }}"}}),
    )
    .await
    .expect("runs");
    assert_eq!(step(&report, "broken")["fallback_used"], true);
    assert_eq!(report["output"]["n"], 1);
}

#[tokio::test]
async fn retries_count_and_happen_only_for_the_declared_error_kinds() {
    let (registry, _) = server("");
    let report = run(
        &registry,
        json!([
            {"id": "retried", "tool": "sql_query", "on_failure": "continue",
             "retry": {"attempts": 3, "backoff": "10ms", "on": ["refused"]},
             "args": {"sql": "DELETE FROM orders"}},
            {"id": "not_retried", "tool": "sql_query", "on_failure": "continue",
             "retry": {"attempts": 3, "backoff": "10ms", "on": ["timeout"]},
             "args": {"sql": "DELETE FROM orders"}},
        ]),
        json!({}),
    )
    .await
    .expect("runs");
    assert_eq!(step(&report, "retried")["attempts"], 3);
    assert_eq!(step(&report, "not_retried")["attempts"], 1);
}

#[tokio::test]
async fn a_step_timeout_stops_its_call() {
    let (registry, _) = server("");
    let report = run(
        &registry,
        json!([{"id": "slow", "tool": "sql_query", "timeout": "150ms", "on_failure": "continue",
                "args": {"sql": counting(100_000_000)}}]),
        json!({}),
    )
    .await
    .expect("runs");
    let slow = step(&report, "slow");
    assert_eq!(slow["status"], "failed");
    assert_eq!(slow["error_kind"], "timeout", "{slow}");
    assert!(slow["elapsed_ms"].as_f64() < Some(3_000.0), "{slow}");
}

#[tokio::test]
async fn for_each_over_fifty_items_honours_its_cap_and_keeps_input_order() {
    let (registry, probe) = server("");
    let items: Vec<i64> = (0..50).collect();
    let report = run(
        &registry,
        json!([{"id": "each", "tool": "probe", "for_each": "inputs.items", "max_parallel": 4,
                "args": {"n": "${{ item * 10 }}"}}]),
        json!({"inputs": {"items": {"type": "array", "items": "integer", "description": "items", "default": items}},
               "output": {"ns": "${{ steps.each.output.map(o, o.n) }}"}}),
    )
    .await
    .expect("runs");
    let expected: Vec<i64> = (0..50).map(|i| i * 10).collect();
    assert_eq!(report["output"]["ns"], json!(expected));
    assert_eq!(step(&report, "each")["items"], 50);
    let most = probe.most.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&most),
        "at most 4 at once, and more than one: {most}"
    );
}

#[tokio::test]
async fn a_failed_item_fails_its_step_and_no_more_items_start() {
    let (registry, probe) = server("");
    let mut items: Vec<i64> = (0..20).collect();
    items[1] = -1;
    let report = run(
        &registry,
        json!([{"id": "each", "tool": "probe", "for_each": "inputs.items", "max_parallel": 1,
                "on_failure": "continue", "args": {"n": "${{ item }}"}}]),
        json!({"inputs": {"items": {"type": "array", "items": "integer", "description": "items", "default": items}}}),
    )
    .await
    .expect("runs");
    let each = step(&report, "each");
    assert_eq!(each["status"], "failed");
    assert!(
        each["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("item 1 failed: "),
        "{each}"
    );
    let calls = probe.calls.load(Ordering::SeqCst);
    assert!(
        calls <= 3,
        "the items after the failure did not run: {calls} calls"
    );
}

#[tokio::test]
async fn an_assert_fails_its_step_with_its_message() {
    let (registry, _) = server("");
    let failed = run(
        &registry,
        json!([{"id": "orders", "tool": "sql_query", "args": {"sql": "SELECT count(*) AS n FROM orders"},
                "assert": [{"that": "output.rows[0][0] > 100000000", "message": "fewer orders than expected"}]}]),
        json!({}),
    )
    .await
    .expect_err("the gate fails the run");
    assert!(
        failed.to_string().contains("fewer orders than expected"),
        "{failed}"
    );
}

#[tokio::test]
async fn a_pipeline_passes_the_previous_output_on() {
    let (registry, _) = server("");
    let report = run(
        &registry,
        json!([
            sql_step("first", "SELECT 21 AS n"),
            {"id": "double", "tool": "transform",
             "args": {"value": "${{ previous.rows[0][0] }}", "expression": "value * 2"}},
        ]),
        json!({"mode": "pipeline", "output": {"n": "${{ steps.double.output.result }}"}}),
    )
    .await
    .expect("runs");
    assert_eq!(report["output"]["n"], 42);
}

#[tokio::test]
async fn cancelling_a_run_stops_its_query_on_postgresql() {
    let application = format!("datamcp_workflow_cancel_{}", std::process::id());
    let (registry, _) = server(&format!(
        "[warehouses.pg]\nurl = \"{PG_SERVER}?application_name={application}\"\nallow_privileged_account = true\n"
    ));
    let cancel = CancellationToken::new();
    let call = {
        let registry = Arc::clone(&registry);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            run_with(
                &registry,
                json!({"name": "slow", "description": "slow", "steps": [
                    {"id": "slow", "tool": "sql_query",
                     "args": {"sql": "SELECT count(*) FROM generate_series(1, 3000000000)"}},
                    {"id": "never", "tool": "sql_query", "needs": ["slow"], "args": {"sql": "SELECT 1"}}]}),
                json!({}),
                cancel,
            )
            .await
        })
    };
    let running = || pg_running_series(&application);
    assert!(
        eventually(20, || async { running().await >= 1 }).await,
        "the step's query runs"
    );
    cancel.cancel();
    let result = call.await.expect("joins");
    assert!(matches!(result, Err(ToolError::Cancelled)), "{result:?}");
    assert!(
        eventually(10, || async { running().await == 0 }).await,
        "cancelling the run stopped the query on the database"
    );
}

/// The message `workflow_run` gives for an invalid plan.
async fn invalid(registry: &Registry, workflow: Value) -> String {
    let args = json!({"workflow": workflow, "dry_run": true});
    let result = registry
        .call(
            "workflow_run",
            args.as_object().cloned(),
            Invocation::local(CancellationToken::new()),
        )
        .await
        .expect("served");
    match result.outcome {
        Err(ToolError::InvalidArguments(message)) => message,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn validation_lists_every_problem_at_once() {
    let (registry, _) = server("");
    let message = invalid(
        &registry,
        json!({"name": "bad", "description": "x",
        "inputs": {"n": {"type": "integer", "description": "n", "default": "three"}},
        "steps": [
            {"id": "a", "tool": "no_such_tool"},
            {"id": "b", "tool": "sql_query", "needs": ["nobody"], "args": {"sql": "SELECT 1"}},
            {"id": "c", "tool": "sql_query", "args": {"sql": "${{ steps.ghost.output }}"}},
            {"id": "d", "tool": "sql_query", "if": "inputs.n >", "args": {"sql": "SELECT 1"}},
            {"id": "e", "tool": "sql_query", "args": {"sql": 42, "max_rows": "many"}},
            {"id": "f", "tool": "sql_query", "args": {"sql": "${{ steps.a.output }}"}},
            {"id": "g", "tool": "writer"},
            {"id": "h", "tool": "sql_query", "args": {"query": "SELECT 1"}},
            {"id": "i", "tool": "sql_query", "for_each": "[1, 2]", "if": "item > 1",
             "args": {"sql": "SELECT ?1 AS n", "params": ["${{ item }}"]}},
        ]}),
    )
    .await;
    for expected in [
        "inputs.n.default: the default does not fit the input's own type",
        "steps.a.tool: unknown tool 'no_such_tool'",
        "steps.b.needs: unknown step 'nobody'",
        "steps.c.args: unknown step 'ghost'",
        "steps.d.if:",
        "steps.e.args: the arguments do not fit the tool's input schema",
        "at /sql: 42 is not of type \"string\"",
        "at /max_rows: \"many\"",
        "steps.f.args: reads step 'a' but does not wait for it; add it to needs",
        "steps.g.tool: 'writer' can write and this server is read-only",
        "'query' was unexpected",
        "\"sql\" is a required property",
        "steps.i.if: item and index exist only in the args of a for_each step",
    ] {
        assert!(message.contains(expected), "{expected:?} in:\n{message}");
    }
}

#[tokio::test]
async fn cycles_are_reported_with_their_path() {
    let (registry, _) = server("");
    let message = invalid(
        &registry,
        json!({"name": "loop", "description": "x", "steps": [
            {"id": "a", "tool": "sql_query", "needs": ["c"], "args": {"sql": "SELECT 1"}},
            {"id": "b", "tool": "sql_query", "needs": ["a"], "args": {"sql": "SELECT 1"}},
            {"id": "c", "tool": "sql_query", "needs": ["b"], "args": {"sql": "SELECT 1"}},
        ]}),
    )
    .await;
    assert!(message.contains("form a cycle"), "{message}");
    for id in ["a", "b", "c"] {
        assert!(message.contains(&format!("{id} -> ")), "{message}");
    }
}

#[tokio::test]
async fn a_dry_run_returns_the_plan_and_runs_nothing() {
    let (registry, probe) = server("");
    let args = json!({"dry_run": true, "workflow": {"name": "plan", "description": "x", "steps": [
        {"id": "a", "tool": "probe", "args": {"n": 1}},
        {"id": "b", "tool": "probe", "args": {"n": 2}},
        {"id": "c", "tool": "sql_query", "needs": ["a", "b"], "args": {"sql": "SELECT 1"}},
    ]}});
    let result = registry
        .call(
            "workflow_run",
            args.as_object().cloned(),
            Invocation::local(CancellationToken::new()),
        )
        .await
        .expect("served");
    let output = result.outcome.expect("valid").structured;
    assert!(output.get("run").is_none(), "{output}");
    let plan = output["plan"].as_array().expect("plan");
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[2]["id"], "c");
    assert_eq!(plan[2]["level"], 1);
    assert_eq!(plan[2]["needs"], json!(["a", "b"]));
    assert_eq!(probe.most.load(Ordering::SeqCst), 0, "nothing ran");
}

#[tokio::test]
async fn workflow_files_validate_together_and_cycles_through_nested_workflows_are_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("inner.yaml"),
        "name: inner\ndescription: calls outer\nsteps:\n  - id: back\n    tool: outer\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("outer.yaml"),
        "name: outer\ndescription: calls inner\nsteps:\n  - id: down\n    tool: inner\n",
    )
    .expect("write");
    let text = format!(
        "demo = true\ndata_dir = \"{}\"\n[workflows]\npaths = [\"{}\"]\n",
        demo_data_dir().display(),
        dir.path().display()
    );
    let config = Config::parse(&text, "c.toml").expect("config");
    let error = datamcp::kinds::start(&config)
        .err()
        .expect("a cycle refuses the start");
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    assert!(
        message.contains("workflows call each other in a cycle"),
        "{message}"
    );
    assert!(
        message.contains("inner -> outer -> inner") || message.contains("outer -> inner -> outer"),
        "{message}"
    );
}

#[tokio::test]
async fn a_workflow_calls_another_workflow() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("count_orders.yaml"),
        "name: count_orders\ndescription: orders with a status\ninputs:\n  status:\n    type: string\n    description: status\nsteps:\n  - id: n\n    tool: sql_query\n    args:\n      sql: SELECT count(*) AS n FROM orders WHERE status = ?1\n      params: [\"${{ inputs.status }}\"]\noutput:\n  n: \"${{ steps.n.output.rows[0][0] }}\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("both.yaml"),
        "name: both\ndescription: paid and returned\nmode: parallel\nsteps:\n  - id: paid\n    tool: count_orders\n    args: {status: paid}\n  - id: returned\n    tool: count_orders\n    args: {status: returned}\noutput:\n  paid: \"${{ steps.paid.output.output.n }}\"\n  returned: \"${{ steps.returned.output.output.n }}\"\n",
    )
    .expect("write");
    let (registry, _) = server(&format!(
        "[workflows]\npaths = [\"{}\"]",
        dir.path().display()
    ));
    let result = registry
        .call("both", None, Invocation::local(CancellationToken::new()))
        .await
        .expect("served");
    let output = result.outcome.expect("runs").structured;
    assert!(output["output"]["paid"].as_i64() > Some(0), "{output}");
    assert!(output["output"]["returned"].as_i64() > Some(0), "{output}");
    let tool = registry.get("both").expect("listed");
    assert!(tool.tool().spec().annotations.read_only_hint);
}

#[tokio::test]
async fn a_workflow_input_that_violates_the_schema_is_refused_before_any_step_runs() {
    let (registry, probe) = server("");
    let dir = tempfile::tempdir().expect("temp dir");
    let _ = dir;
    let args = json!({"workflow": {"name": "typed", "description": "x",
        "inputs": {"n": {"type": "integer", "description": "n"}},
        "steps": [{"id": "a", "tool": "probe", "args": {"n": "${{ inputs.n }}"}}]},
        "inputs": {"n": "not a number"}});
    let started = Instant::now();
    let result = registry
        .call(
            "workflow_run",
            args.as_object().cloned(),
            Invocation::local(CancellationToken::new()),
        )
        .await
        .expect("served");
    let error = result.outcome.expect_err("refused");
    assert!(matches!(error, ToolError::InvalidArguments(_)), "{error}");
    assert!(error.to_string().contains("inputs"), "{error}");
    assert_eq!(probe.most.load(Ordering::SeqCst), 0, "no step ran");
    assert!(started.elapsed() < Duration::from_secs(5));
}
