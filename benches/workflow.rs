//! The workflow engine in process: its own cost per step, how close a wide DAG's wall time
//! comes to its critical path, and how long validation takes.
//!
//! Run with `cargo bench --bench workflow`. Reports:
//! - engine overhead per step: a 1,000-step chain of `transform` steps, the run's wall time
//!   minus the steps' own time (each step's own time includes its nested registry call),
//!   divided by the steps; and the whole cost per step, registry call included;
//! - a DAG of 8 parallel branches that each wait ~50 ms (a bench tool that awaits a timer, so
//!   the figure is the engine's scheduling, not the 2-core machine's CPU) then a join: wall time
//!   against the critical path;
//! - validation of a 200-step workflow (parse from JSON, all checks, the plan).
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::Arc;
use std::time::{Duration, Instant};

use datamcp::config::Config;
use datamcp::tools::kind::KindHost;
use datamcp::tools::registry::Registration;
use datamcp::tools::{
    Annotations, CallContext, Invocation, Registry, Tool, ToolError, ToolSpec, typed,
};
use datamcp::workflow::plan::{parse_json, plan_batch};
use datamcp::workflow::tools::HostCatalog;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Waits `ms` milliseconds without using the CPU.
struct Wait;

#[derive(Deserialize, JsonSchema)]
struct WaitArgs {
    ms: u64,
}

#[derive(Serialize, JsonSchema)]
struct Waited {
    ms: u64,
}

impl Tool for Wait {
    type Params = WaitArgs;
    type Output = Waited;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "bench_wait".into(),
            title: "wait".into(),
            description: "waits".into(),
            annotations: Annotations {
                idempotent_hint: false,
                ..Annotations::READ_ONLY
            },
        }
    }

    async fn invoke(&self, _ctx: &CallContext, params: &WaitArgs) -> Result<Waited, ToolError> {
        tokio::time::sleep(Duration::from_millis(params.ms)).await;
        Ok(Waited { ms: params.ms })
    }
}

fn server() -> (Arc<Registry>, KindHost) {
    let dir = std::env::temp_dir().join("datamcp-bench-workflow");
    // No result cache: every step must run.
    let config = Config::parse(
        &format!(
            "demo = true\ndata_dir = \"{}\"\n[policy]\ncache_ttl_ms = 0\n",
            dir.display()
        ),
        "bench.toml",
    )
    .expect("config");
    let (registry, kinds) = datamcp::kinds::start(&config).expect("kinds");
    std::mem::forget(kinds);
    let host = KindHost::new("bench", &registry, Arc::new(config.workspace.clone()));
    host.register(Registration::listed(typed(Wait)))
        .expect("register");
    (registry, host)
}

async fn run(registry: &Registry, workflow: Value) -> Value {
    let args = json!({"workflow": workflow});
    let result = registry
        .call(
            "workflow_run",
            args.as_object().cloned(),
            Invocation::local(CancellationToken::new()),
        )
        .await
        .expect("served");
    result.outcome.expect("the run succeeds").structured["run"].clone()
}

fn chain(steps: usize) -> Value {
    let steps: Vec<Value> = (0..steps)
        .map(|i| {
            json!({"id": format!("s{i}"), "tool": "transform",
                   "args": {"value": i, "expression": "value + 1"}})
        })
        .collect();
    json!({"name": "chain", "description": "bench", "mode": "sequential",
           "timeout": "10m", "steps": steps, "output": {}})
}

async fn engine_overhead(registry: &Registry) {
    // Warm up the registry, the expression compiler and the allocator.
    run(registry, chain(100)).await;
    let mut overheads = Vec::new();
    let mut per_step = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let report = run(registry, chain(1_000)).await;
        let total = started.elapsed().as_secs_f64() * 1e6;
        let wall_us = report["totals"]["wall_ms"].as_f64().expect("wall") * 1000.0;
        let own_us: f64 = report["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["elapsed_ms"].as_f64().unwrap_or(0.0) * 1000.0)
            .sum();
        overheads.push((wall_us - own_us) / 1000.0);
        per_step.push(total / 1000.0);
    }
    overheads.sort_by(f64::total_cmp);
    per_step.sort_by(f64::total_cmp);
    println!(
        "engine overhead per step (1,000-step chain of transform steps): median {:.1} µs (runs: {:?} µs); whole cost per step incl. validation, nested registry call and the step itself: median {:.1} µs",
        overheads[2],
        overheads
            .iter()
            .map(|o| (o * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        per_step[2]
    );
}

async fn parallel_branches(registry: &Registry) {
    let mut steps: Vec<Value> = (0..8)
        .map(|i| json!({"id": format!("b{i}"), "tool": "bench_wait", "args": {"ms": 50}}))
        .collect();
    steps.push(json!({"id": "join", "tool": "transform",
        "needs": (0..8).map(|i| format!("b{i}")).collect::<Vec<_>>(),
        "args": {"value": 1, "expression": "value"}}));
    let workflow = json!({"name": "wide", "description": "bench", "steps": steps, "output": {}});
    let mut ratios = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..10 {
        let report = run(registry, workflow.clone()).await;
        let wall = report["totals"]["wall_ms"].as_f64().expect("wall");
        let critical = report["totals"]["critical_path_ms"]
            .as_f64()
            .expect("critical");
        ratios.push(wall / critical);
        walls.push((wall, critical));
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "8 parallel 50 ms branches + join: wall / critical path median {:.3}, worst {:.3} (wall, critical ms: {:?})",
        ratios[5],
        ratios[9],
        walls
            .iter()
            .map(|(w, c)| ((w * 10.0).round() / 10.0, (c * 10.0).round() / 10.0))
            .collect::<Vec<_>>()
    );
}

fn validation(host: &KindHost) {
    // 200 steps in 20 levels of 10, each reading a step of the level before.
    let steps: Vec<Value> = (0..200)
        .map(|i| {
            let level = i / 10;
            if level == 0 {
                json!({"id": format!("s{i}"), "tool": "sql_query",
                       "args": {"sql": "SELECT count(*) AS n FROM orders WHERE status = ?1", "params": ["paid"]}})
            } else {
                let need = format!("s{}", (level - 1) * 10 + i % 10);
                json!({"id": format!("s{i}"), "tool": "transform", "needs": [need],
                       "if": format!("steps.{need}.status == 'succeeded'"),
                       "args": {"value": format!("${{{{ steps.{need}.output }}}}"), "expression": "value"}})
            }
        })
        .collect();
    let workflow = json!({"name": "big", "description": "bench",
        "inputs": {"n": {"type": "integer", "description": "n", "default": 3}},
        "steps": steps});
    let catalog = HostCatalog(host);
    let mut samples = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let file = parse_json(workflow.clone()).expect("parses");
        let (plans, problems) = plan_batch(vec![("bench".to_owned(), file)], &catalog, true);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(plans[0].steps.len(), 200);
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "validation of a 200-step workflow: median {:.2} ms, max {:.2} ms (20 runs)",
        samples[10].as_secs_f64() * 1000.0,
        samples[19].as_secs_f64() * 1000.0
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (registry, host) = server();
        engine_overhead(&registry).await;
        parallel_branches(&registry).await;
        validation(&host);
    });
}
