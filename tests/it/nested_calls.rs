//! Calls made on behalf of another call: a tool of a test kind calls `sql_query` through its
//! `KindHost`, as a workflow step will. The child inherits the parent's cancellation and
//! deadline, which stop its query on PostgreSQL, and is counted like any call.

use std::sync::Arc;
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

/// Runs until stopped: PostgreSQL counts for minutes.
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 3000000000)";

#[derive(Deserialize, JsonSchema)]
struct ParentArgs {
    /// The child tool (default sql_query).
    tool: Option<String>,
    /// SQL for sql_query.
    sql: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ParentOutput {
    /// The child's result.
    child: Value,
}

/// A tool that runs `sql_query` as its child.
struct Parent {
    host: KindHost,
}

impl Tool for Parent {
    type Params = ParentArgs;
    type Output = ParentOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "nest_parent".to_owned(),
            title: "Nested call test".to_owned(),
            description: "Calls sql_query on its own behalf".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ParentArgs,
    ) -> Result<ParentOutput, ToolError> {
        let mut args = Map::new();
        if let Some(sql) = &params.sql {
            args.insert("sql".to_owned(), Value::from(sql.clone()));
        }
        let tool = params.tool.as_deref().unwrap_or("sql_query");
        let result = self.host.call(ctx, tool, args).await?;
        let (structured, text) = result.into_content(datamcp::tools::result::ResultText::Full);
        Ok(ParentOutput {
            child: structured.unwrap_or(Value::from(text)),
        })
    }
}

/// The server's registry for `extra` config on a PostgreSQL warehouse, plus the test kind.
fn registry(application: &str, extra: &str) -> Arc<Registry> {
    let config = Config::parse(
        &format!(
            "{extra}\n[warehouses.pg]\nurl = \"{PG_SERVER}?application_name={application}\"\nallow_privileged_account = true\n"
        ),
        "nested.toml",
    )
    .expect("config");
    let (registry, kinds) = datamcp::kinds::start(&config).expect("kinds start");
    // The kinds live as long as the test; their pools close with the process.
    std::mem::forget(kinds);
    let host = KindHost::new("test", &registry, Arc::new(config.workspace.clone()));
    host.register(Registration::listed(typed(Parent { host: host.clone() })))
        .expect("register the parent");
    registry
}

fn args(sql: &str) -> Option<Map<String, Value>> {
    // The parent's child is sql_query unless the arguments name another tool.
    json!({ "sql": sql }).as_object().cloned()
}

#[tokio::test]
async fn cancelling_the_parent_stops_the_childs_query_on_the_database() {
    let application = format!("datamcp_nested_cancel_{}", std::process::id());
    let registry = registry(&application, "");
    let cancel = CancellationToken::new();
    let call = {
        let registry = Arc::clone(&registry);
        let invocation = Invocation::local(cancel.clone());
        tokio::spawn(async move { registry.call("nest_parent", args(SLOW), invocation).await })
    };
    let running = eventually(20, || async { pg_running_series(&application).await >= 1 }).await;
    if !running {
        cancel.cancel();
        let result = call.await.expect("joins").expect("known tool");
        panic!(
            "the child's query never ran on PostgreSQL: {:?}",
            result.into_content(datamcp::tools::result::ResultText::Full)
        );
    }
    cancel.cancel();
    let result = call.await.expect("joins").expect("known tool");
    let error = result.outcome.expect_err("cancelled");
    assert!(matches!(error, ToolError::Cancelled), "{error}");
    assert!(
        eventually(10, || async { pg_running_series(&application).await == 0 }).await,
        "cancelling the parent stopped the child's query on the database"
    );
    let metrics = registry.metrics();
    assert_eq!(metrics["sql_query"].calls, 1, "the child is counted");
    assert_eq!(metrics["sql_query"].errors, 1);
}

#[tokio::test]
async fn a_child_gets_no_more_time_than_its_parent_has_left() {
    let application = format!("datamcp_nested_deadline_{}", std::process::id());
    // The parent may take 1 s; sql_query alone would be allowed a minute.
    let registry = registry(
        &application,
        "[policy]\ntimeout_ms = 1000\n[tools.sql_query]\ntimeout_ms = 60000\n",
    );
    let started = Instant::now();
    let result = registry
        .call(
            "nest_parent",
            args(SLOW),
            Invocation::local(CancellationToken::new()),
        )
        .await
        .expect("known tool");
    let error = result.outcome.expect_err("timed out");
    assert!(matches!(error, ToolError::Timeout(_)), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        eventually(10, || async { pg_running_series(&application).await == 0 }).await,
        "the child's query stopped with the parent's deadline"
    );

    // A child whose own result arrives in time reports through the parent.
    let quick = registry
        .call(
            "nest_parent",
            args("SELECT 41 + 1 AS answer"),
            Invocation::local(CancellationToken::new()),
        )
        .await
        .expect("known tool");
    let output = quick.outcome.expect("succeeds");
    assert_eq!(output.structured["child"]["rows"], json!([[42]]));
    assert_eq!(registry.metrics()["sql_query"].calls, 2);
}

#[tokio::test]
async fn an_internal_tool_answers_a_nested_call_but_no_client() {
    let application = format!("datamcp_nested_internal_{}", std::process::id());
    let registry = registry(
        &application,
        "[[sql_tools]]\nname = \"answer\"\ndescription = \"The answer\"\nstatement = \"SELECT 42 AS answer\"\nwarehouse = \"pg\"\ninternal = true\n",
    );
    assert!(registry.get("answer").is_none(), "not listed");
    let client = registry
        .call("answer", None, Invocation::local(CancellationToken::new()))
        .await;
    assert!(client.is_err(), "a client cannot call it");
    let nested = registry
        .call(
            "nest_parent",
            json!({"tool": "answer"}).as_object().cloned(),
            Invocation::local(CancellationToken::new()),
        )
        .await
        .expect("known tool");
    let output = nested.outcome.expect("succeeds");
    assert_eq!(output.structured["child"]["rows"], json!([[42]]));
}
