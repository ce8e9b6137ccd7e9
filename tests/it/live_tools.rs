//! The live tool set: config edits swap custom SQL tools in while clients are connected, every
//! client over every transport hears `notifications/tools/list_changed`, a broken edit changes
//! nothing, calls already running finish on the version they started with, internal tools stay
//! out of sight, nested calls inherit their parent's limits, and shutdown closes what the kinds
//! opened.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ProtocolVersion, ReadResourceRequestParams};
use rmcp::service::ClientServiceExt;
use rmcp::service::{ClientLifecycleMode, NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient};
use serde_json::json;
use sqlx::Connection as _;

use crate::http_sse::SseClient;
use crate::support::*;

/// A client that counts the `notifications/tools/list_changed` it hears.
#[derive(Clone, Default)]
struct Changes(Arc<AtomicUsize>);

impl Changes {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl ClientHandler for Changes {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        client_info(ProtocolVersion::V_2025_11_25)
    }
}

type Listening = RunningService<RoleClient, Changes>;

/// `datamcp serve` over stdio with a client that counts list changes.
async fn stdio_client(config: &std::path::Path) -> (Listening, Changes) {
    let changes = Changes::default();
    (connect_stdio_with(changes.clone(), config).await, changes)
}

async fn http_client(server: &HttpServer) -> (Listening, Changes) {
    let changes = Changes::default();
    let client = connect_http_with(changes.clone(), &server.url("/mcp"), None, None).await;
    (client, changes)
}

/// A custom tool counting orders, with `parameters` (TOML) after its statement.
fn orders_tool(statement: &str, parameters: &str) -> String {
    format!(
        "[[sql_tools]]\nname = \"count_orders\"\ndescription = \"Orders counted\"\nstatement = \"{statement}\"\n{parameters}\n"
    )
}

const ONE_PARAMETER: &str = "[[sql_tools.parameters]]\nname = \"status\"\ntype = \"string\"\ndescription = \"Order status\"\n";
const TWO_PARAMETERS: &str = "[[sql_tools.parameters]]\nname = \"status\"\ntype = \"string\"\ndescription = \"Order status\"\n[[sql_tools.parameters]]\nname = \"min_total\"\ntype = \"number\"\ndescription = \"Smallest total\"\n";

/// Replaces the config file the way editors do: a new file renamed over the old one.
fn rewrite(sandbox: &Sandbox, extra: &str) {
    let text = format!(
        "[warehouses.shop]\nurl = \"sqlite://{}\"\n\n{extra}\n",
        sandbox.db().display()
    );
    let next = sandbox.dir.path().join("datamcp.toml.new");
    std::fs::write(&next, text).expect("write");
    std::fs::rename(&next, sandbox.config()).expect("rename");
}

fn input_properties(tools: &[rmcp::model::Tool], name: &str) -> Vec<String> {
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} is listed"));
    let mut names: Vec<String> = tool.input_schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_config_edit_reaches_every_client_on_every_transport_and_a_broken_edit_changes_nothing() {
    let sandbox = Sandbox::new(&orders_tool(
        "SELECT count(*) AS n FROM orders WHERE status = ?1",
        ONE_PARAMETER,
    ));
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let (stdio, stdio_changes) = stdio_client(&sandbox.config()).await;
    let (first, first_changes) = http_client(&server).await;
    let (second, second_changes) = http_client(&server).await;
    let mut sse = SseClient::open(&server.base, None).await;
    let init = sse.initialize().await;
    assert_eq!(
        init["result"]["capabilities"]["tools"]["listChanged"],
        json!(true),
        "the server advertises list changes: {init}"
    );
    let info = stdio.peer_info().expect("initialized");
    assert_eq!(
        info.capabilities
            .tools
            .as_ref()
            .and_then(|t| t.list_changed),
        Some(true)
    );
    // Give the Streamable HTTP clients a moment to open their standalone streams.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let edited = Instant::now();
    rewrite(
        &sandbox,
        &orders_tool(
            "SELECT count(*) AS n FROM orders WHERE status = ?1 AND total >= ?2",
            TWO_PARAMETERS,
        ),
    );
    let notified = eventually(10, || async {
        stdio_changes.count() == 1 && first_changes.count() == 1 && second_changes.count() == 1
    })
    .await;
    assert!(
        notified,
        "list_changed: stdio {}, http {} and {}; server log:\n{}",
        stdio_changes.count(),
        first_changes.count(),
        second_changes.count(),
        server.logs()
    );
    eprintln!(
        "config edit to list_changed on every rmcp client: {:?}",
        edited.elapsed()
    );
    let notification = sse.next().await.expect("the SSE stream is open");
    assert_eq!(
        notification["method"], "notifications/tools/list_changed",
        "{notification}"
    );
    for client in [&stdio, &first, &second] {
        let tools = client.list_all_tools().await.expect("tools/list");
        assert_eq!(
            input_properties(&tools, "count_orders"),
            ["min_total", "status"]
        );
    }
    let (listed, _) = sse.request(10, "tools/list", json!({})).await;
    let tools: Vec<rmcp::model::Tool> =
        serde_json::from_value(listed["result"]["tools"].clone()).expect("tools");
    assert_eq!(
        input_properties(&tools, "count_orders"),
        ["min_total", "status"]
    );
    let result = first
        .call_tool(
            CallToolRequestParams::new("count_orders")
                .with_arguments(arguments(json!({"status": "paid", "min_total": 0}))),
        )
        .await
        .expect("tools/call");
    assert!(!is_error(&result), "{}", text(&result));

    // A write in the statement: refused, logged, and nothing changes for anyone.
    rewrite(
        &sandbox,
        &orders_tool("DELETE FROM orders WHERE status = ?1", ONE_PARAMETER),
    );
    let logged = eventually(10, || async { server.logs().contains("not reloaded") }).await;
    assert!(logged, "the refusal is logged:\n{}", server.logs());
    assert!(server.logs().contains("count_orders"), "{}", server.logs());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (
            stdio_changes.count(),
            first_changes.count(),
            second_changes.count()
        ),
        (1, 1, 1),
        "a broken edit sends nothing"
    );
    for client in [&stdio, &first] {
        let tools = client.list_all_tools().await.expect("tools/list");
        assert_eq!(
            input_properties(&tools, "count_orders"),
            ["min_total", "status"]
        );
    }
    let still = second
        .call_tool(
            CallToolRequestParams::new("count_orders")
                .with_arguments(arguments(json!({"status": "paid", "min_total": 0}))),
        )
        .await
        .expect("tools/call");
    assert!(
        !is_error(&still),
        "the last good version serves: {}",
        text(&still)
    );
    let (listed, before) = sse.request(11, "tools/list", json!({})).await;
    assert!(before.is_empty(), "no notification on SSE: {before:?}");
    assert!(listed["result"]["tools"].is_array());

    for client in [stdio, first, second] {
        client.cancel().await.expect("close");
    }
}

/// A slow statement on SQLite: about a second of counting, then the version it belongs to.
/// The description names the version too: a new statement behind the same description and
/// schema changes nothing a client sees, so it sends no `list_changed`.
fn slow_version_tool(version: &str, rows: u64) -> String {
    format!(
        "[[sql_tools]]\nname = \"which_version\"\ndescription = \"Says which version answered ({version})\"\nstatement = \"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) SELECT '{version}' AS version, count(*) AS n FROM c\"\n"
    )
}

#[tokio::test]
async fn a_call_running_when_its_tool_is_replaced_finishes_on_the_old_version() {
    let sandbox = Sandbox::new(&slow_version_tool("v1", 3_000_000));
    let (client, changes) = stdio_client(&sandbox.config()).await;
    let client = Arc::new(client);
    let running = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            client
                .call_tool(CallToolRequestParams::new("which_version"))
                .await
                .expect("tools/call")
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    rewrite(&sandbox, &slow_version_tool("v2", 1));
    assert!(
        eventually(10, || async { changes.count() == 1 }).await,
        "list_changed"
    );
    let replaced = client
        .call_tool(CallToolRequestParams::new("which_version"))
        .await
        .expect("tools/call");
    assert_eq!(structured(&replaced)["rows"], json!([["v2", 1]]));
    let old = running.await.expect("joins");
    assert!(!is_error(&old), "{}", text(&old));
    assert_eq!(
        structured(&old)["rows"],
        json!([["v1", 3_000_000]]),
        "the running call kept the version it started with"
    );
}

#[tokio::test]
async fn internal_and_hidden_tools_are_out_of_sight_but_serve_other_calls() {
    let sandbox = Sandbox::new("");
    // Top-level keys come before the warehouse's table.
    std::fs::write(
        sandbox.config(),
        format!(
            "disable_tools = [\"sql_describe_table\"]\n\n[warehouses.shop]\nurl = \"sqlite://{}\"\n\n[[sql_tools]]\nname = \"order_totals\"\ndescription = \"Totals by status\"\nstatement = \"SELECT status, sum(total) AS total FROM orders GROUP BY status\"\ninternal = true\n",
            sandbox.db().display()
        ),
    )
    .expect("config");
    let client = connect(Some(&sandbox.config())).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(!names.contains(&"order_totals"), "{names:?}");
    assert!(!names.contains(&"sql_describe_table"), "{names:?}");
    for name in ["order_totals", "sql_describe_table"] {
        let refused = client
            .call_tool(
                CallToolRequestParams::new(name)
                    .with_arguments(arguments(json!({"table": "orders"}))),
            )
            .await
            .expect_err("clients may not call it");
        assert!(refused.to_string().contains("unknown tool"), "{refused}");
    }
    // The table-schema resource runs sql_describe_table on the reader's behalf.
    let read = client
        .read_resource(ReadResourceRequestParams::new(
            "datamcp://warehouse/shop/table/orders",
        ))
        .await
        .expect("resources/read through the hidden tool");
    let body = serde_json::to_string(&read).expect("json");
    assert!(body.contains("customer_id"), "{body}");
    client.cancel().await.expect("close");
}

/// The number of PostgreSQL sessions named `application`.
async fn sessions_named(application: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(PG_SERVER)
        .await
        .expect("connect");
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(application)
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_activity")
}

#[tokio::test]
async fn ending_a_stdio_session_runs_the_kinds_shutdown_and_closes_their_connections() {
    let application = format!("datamcp_shutdown_{}", std::process::id());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[warehouses.pg]\nurl = \"{PG_SERVER}?application_name={application}\"\nallow_privileged_account = true\n"
        ),
    )
    .expect("config");
    let (transport, stderr) = TokioChildProcess::builder(serve_command(Some(&config)))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let logs = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = stderr {
        let logs = Arc::clone(&logs);
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                logs.lock().expect("logs").push_str(&format!("{line}\n"));
            }
        });
    }
    let client = client_info(ProtocolVersion::V_2025_11_25)
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
        .expect("connect");
    let result = client
        .call_tool(
            CallToolRequestParams::new("sql_query")
                .with_arguments(arguments(json!({"sql": "SELECT 1 AS one"}))),
        )
        .await
        .expect("tools/call");
    assert!(!is_error(&result), "{}", text(&result));
    assert!(
        sessions_named(&application).await >= 1,
        "the pool holds a connection"
    );
    client.cancel().await.expect("close stdin");
    let closed = eventually(10, || async {
        logs.lock()
            .expect("logs")
            .contains("closed the warehouses' connections")
    })
    .await;
    assert!(
        closed,
        "the SQL kind's shutdown ran:\n{}",
        logs.lock().expect("logs")
    );
    assert!(
        eventually(10, || async { sessions_named(&application).await == 0 }).await,
        "no connection left behind"
    );
}

#[tokio::test]
async fn a_2026_client_hears_list_changes_on_its_subscriptions_listen_stream() {
    let sandbox = Sandbox::new(&orders_tool(
        "SELECT count(*) AS n FROM orders WHERE status = ?1",
        ONE_PARAMETER,
    ));
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let client = connect_http_with(
        client_info(ProtocolVersion::V_2026_07_28),
        &server.url("/mcp"),
        None,
        Some(ProtocolVersion::V_2026_07_28),
    )
    .await;
    let mut filter = rmcp::model::SubscriptionFilter::new();
    filter.tools_list_changed = Some(true);
    let mut subscription = client
        .peer()
        .listen(filter)
        .await
        .expect("subscriptions/listen");
    assert_eq!(subscription.acknowledged().tools_list_changed, Some(true));
    rewrite(
        &sandbox,
        &orders_tool(
            "SELECT count(*) AS n FROM orders WHERE status = ?1 AND total >= ?2",
            TWO_PARAMETERS,
        ),
    );
    let notification = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a notification in time")
        .expect("the stream is open")
        .expect("a notification");
    assert!(
        matches!(
            notification,
            rmcp::model::ServerNotification::ToolListChangedNotification(_)
        ),
        "{notification:?}"
    );
    client.cancel().await.expect("close");
}
