//! Workflows end to end: a workflow file served as one tool to real MCP clients over stdio and
//! Streamable HTTP, with ordered progress, the run readable from the history, the long-run path
//! (a run id, then `workflow_run_status`), hot reload of the file, and the command line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ProgressNotificationParam, ProtocolVersion, ReadResourceRequestParams,
    ResourceContents,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

use crate::support::*;

/// A client that keeps the progress it hears and counts list changes.
#[derive(Clone, Default)]
struct Listener {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    changes: Arc<Mutex<usize>>,
}

impl ClientHandler for Listener {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().expect("log").push(params);
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        *self.changes.lock().expect("count") += 1;
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        client_info(ProtocolVersion::V_2025_11_25)
    }
}

type Session = RunningService<RoleClient, Listener>;

/// Order counts per status, fanned out with for_each: three steps and a join.
const COUNTS: &str = r#"name: status_counts
description: Orders per status, one query each
inputs:
  statuses:
    type: array
    items: string
    description: statuses to count
    default: [paid, shipped, returned]
steps:
  - id: per_status
    tool: sql_query
    for_each: inputs.statuses
    max_parallel: 2
    args:
      sql: SELECT ?1 AS status, count(*) AS n FROM orders WHERE status = ?1
      params: ["${{ item }}"]
  - id: total
    tool: sql_query
    args:
      sql: SELECT count(*) AS n FROM orders
  - id: shares
    tool: transform
    needs: [per_status, total]
    args:
      value:
        counts: "${{ steps.per_status.output.map(o, o.rows[0]) }}"
        total: "${{ steps.total.output.rows[0][0] }}"
      expression: "value.counts.map(c, {'status': c[0], 'share': double(c[1]) / double(value.total)})"
output:
  shares: "${{ steps.shares.output.result }}"
"#;

/// A sandbox whose config serves the workflow folder `workflows/` holding `files`.
fn sandbox(files: &[(&str, &str)]) -> Sandbox {
    let sandbox = Sandbox::new("");
    let folder = sandbox.dir.path().join("workflows");
    std::fs::create_dir_all(&folder).expect("folder");
    for (name, text) in files {
        std::fs::write(folder.join(name), text).expect("workflow file");
    }
    std::fs::write(
        sandbox.config(),
        format!(
            "[warehouses.shop]\nurl = \"sqlite://{}\"\n\n[workflows]\npaths = [\"workflows\"]\n",
            sandbox.db().display()
        ),
    )
    .expect("config");
    sandbox
}

async fn over_stdio(sandbox: &Sandbox) -> (Session, Listener) {
    let listener = Listener::default();
    (
        connect_stdio_with(listener.clone(), &sandbox.config()).await,
        listener,
    )
}

async fn read_json(client: &Session, uri: &str) -> Value {
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .expect("resources/read");
    match &read.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => {
            serde_json::from_str(text).expect("json")
        }
        other => panic!("text expected: {other:?}"),
    }
}

/// Lists the workflow, calls it with a progress token, checks the answer and the progress,
/// then reads the run back from the history.
async fn the_workflow_tool_works(client: &Session) {
    let tools = client.list_all_tools().await.expect("tools/list");
    let tool = tools
        .iter()
        .find(|t| t.name == "status_counts")
        .expect("the workflow is a tool");
    assert_eq!(tool.input_schema["properties"]["statuses"]["type"], "array");
    assert_eq!(
        tool.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );
    let result = client
        .call_tool(CallToolRequestParams::new("status_counts"))
        .await
        .expect("tools/call");
    assert!(!is_error(&result), "{}", text(&result));
    let report = structured(&result);
    assert_eq!(report["status"], "succeeded");
    let shares = report["output"]["shares"].as_array().expect("shares");
    assert_eq!(shares.len(), 3);
    assert_eq!(shares[0]["status"], "paid");
    assert_eq!(report["totals"]["steps"], 3);
    let run_id = report["run_id"].as_str().expect("run id").to_owned();

    let history = read_json(client, "datamcp://workflow/runs").await;
    assert!(
        history["runs"]
            .as_array()
            .is_some_and(|runs| runs.iter().any(|r| r["run_id"] == run_id.as_str())),
        "{history}"
    );
    let run = read_json(client, &format!("datamcp://workflow/runs/{run_id}")).await;
    assert_eq!(run["steps"][0]["id"], "per_status");
    assert_eq!(run["steps"][0]["items"], 3);
}

#[tokio::test]
async fn a_workflow_is_one_tool_over_stdio_with_its_run_in_the_history() {
    let sandbox = sandbox(&[("status_counts.yaml", COUNTS)]);
    let (client, _) = over_stdio(&sandbox).await;
    the_workflow_tool_works(&client).await;
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_workflow_reports_ordered_progress_over_streamable_http() {
    let sandbox = sandbox(&[("status_counts.yaml", COUNTS)]);
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let listener = Listener::default();
    let client = connect_http_with(listener.clone(), &server.url("/mcp"), None, None).await;
    the_workflow_tool_works(&client).await;

    let seen = listener.progress.lock().expect("log").clone();
    assert!(!seen.is_empty(), "progress arrives");
    assert!(
        seen.windows(2).all(|w| w[0].progress <= w[1].progress),
        "{seen:?}"
    );
    assert!(seen.iter().all(|p| p.total == Some(3.0)), "{seen:?}");
    assert!(
        seen.iter().any(|p| p
            .message
            .as_deref()
            .is_some_and(|m| m.contains("steps: per_status ok"))),
        "{seen:?}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_long_run_answers_with_a_run_id_and_completes_through_workflow_run_status() {
    let slow = r#"name: slow_count
description: counts slowly
wait: 100ms
steps:
  - id: count
    tool: sql_query
    args:
      sql: WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) AS n FROM c
output:
  n: "${{ steps.count.output.rows[0][0] }}"
"#;
    let sandbox = sandbox(&[("slow.yaml", slow)]);
    let (client, _) = over_stdio(&sandbox).await;
    let started = client
        .call_tool(CallToolRequestParams::new("slow_count"))
        .await
        .expect("tools/call");
    assert!(!is_error(&started), "{}", text(&started));
    let report = structured(&started);
    assert_eq!(report["status"], "running", "{report:?}");
    assert!(
        text(&started).contains("workflow_run_status"),
        "{}",
        text(&started)
    );
    let run_id = report["run_id"].as_str().expect("run id").to_owned();
    let done = client
        .call_tool(
            CallToolRequestParams::new("workflow_run_status")
                .with_arguments(arguments(json!({"run_id": run_id, "wait_ms": 20000}))),
        )
        .await
        .expect("tools/call");
    assert!(!is_error(&done), "{}", text(&done));
    let done = structured(&done);
    assert_eq!(done["status"], "succeeded", "{done:?}");
    assert_eq!(done["output"]["n"], 2_000_000);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn editing_a_workflow_file_swaps_the_tool_and_a_broken_edit_keeps_the_last_good_one() {
    let sandbox = sandbox(&[("status_counts.yaml", COUNTS)]);
    let (client, listener) = over_stdio(&sandbox).await;
    let folder = sandbox.dir.path().join("workflows");
    let edited = COUNTS.replace(
        "inputs:\n",
        "inputs:\n  note:\n    type: string\n    description: a note\n    default: none\n",
    );
    let next = folder.join("status_counts.yaml.tmp");
    std::fs::write(&next, &edited).expect("write");
    std::fs::rename(&next, folder.join("status_counts.yaml")).expect("rename");
    assert!(
        eventually(10, || async {
            *listener.changes.lock().expect("count") == 1
        })
        .await,
        "list_changed after the edit"
    );
    let tools = client.list_all_tools().await.expect("tools/list");
    let tool = tools
        .iter()
        .find(|t| t.name == "status_counts")
        .expect("listed");
    assert!(
        tool.input_schema["properties"]["note"].is_object(),
        "{:?}",
        tool.input_schema
    );

    std::fs::write(
        folder.join("status_counts.yaml"),
        "name: status_counts\nsteps: [oops\n",
    )
    .expect("write");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        *listener.changes.lock().expect("count"),
        1,
        "a broken edit sends nothing"
    );
    let still = client
        .call_tool(CallToolRequestParams::new("status_counts"))
        .await
        .expect("tools/call");
    assert!(
        !is_error(&still),
        "the last good version serves: {}",
        text(&still)
    );
    client.cancel().await.expect("close");
}

/// `datamcp workflow …` with the sandbox's config.
fn cli(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("workflow")
        .args(args)
        .arg("--config")
        .arg(sandbox.config())
        .env("DATAMCP_DATA_DIR", demo_data_dir())
        .output()
        .expect("run datamcp workflow")
}

#[test]
fn the_command_line_validates_runs_and_draws_workflows() {
    let sandbox = sandbox(&[]);
    let good = sandbox.dir.path().join("counts.yaml");
    std::fs::write(&good, COUNTS.replace("status_counts", "counts_cli")).expect("write");
    let validated = cli(&sandbox, &["validate", &good.display().to_string()]);
    assert_eq!(
        validated.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    assert!(
        String::from_utf8_lossy(&validated.stdout).contains("ok: counts_cli (3 steps, 2 levels)")
    );

    let bad = sandbox.dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\ndescription: x\nsteps:\n  - id: a\n    tool: sql_query\n    args: {sql: [unclosed\n").expect("write");
    let refused = cli(&sandbox, &["validate", &bad.display().to_string()]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert!(
        stderr.contains("line 6"),
        "YAML errors name the line: {stderr}"
    );

    let ran = cli(
        &sandbox,
        &[
            "run",
            &good.display().to_string(),
            r#"{"statuses": ["paid"]}"#,
        ],
    );
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let report: Value = serde_json::from_slice(&ran.stdout).expect("a JSON report");
    assert_eq!(report["status"], "succeeded");
    assert!(
        String::from_utf8_lossy(&ran.stderr).contains("3/3 steps"),
        "progress on stderr"
    );

    let drawn = cli(&sandbox, &["graph", &good.display().to_string()]);
    let mermaid = String::from_utf8_lossy(&drawn.stdout);
    assert!(mermaid.starts_with("flowchart TD"), "{mermaid}");
    assert!(mermaid.contains("per_status --> shares"), "{mermaid}");
    let dot = cli(&sandbox, &["graph", "--dot", &good.display().to_string()]);
    assert!(String::from_utf8_lossy(&dot.stdout).contains("\"total\" -> \"shares\""));
}
