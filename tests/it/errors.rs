//! Bad input gets a clear error and loses nothing.

use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_schema_violation_is_an_error_result_naming_path_expectation_and_value() {
    let client = connect(None).await;
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 1", "max_rows": "ten"}),
    )
    .await;
    assert!(is_error(&result));
    let message = text(&result);
    assert!(message.contains("/max_rows"), "{message}");
    assert!(message.contains("\"ten\""), "{message}");
    assert!(message.contains("integer"), "{message}");

    let result = call(&client, "sql_query", json!({"query": "SELECT 1"})).await;
    let message = text(&result);
    assert!(is_error(&result));
    assert!(
        message.contains("sql"),
        "names the missing property: {message}"
    );
    assert!(
        message.contains("query"),
        "names the unexpected property: {message}"
    );

    // The server keeps serving.
    let result = call(&client, "sql_query", json!({"sql": "SELECT 1"})).await;
    assert!(!is_error(&result));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error() {
    let client = connect(None).await;
    let error = client
        .call_tool(CallToolRequestParams::new("drop_everything"))
        .await
        .expect_err("unknown tool");
    let message = error.to_string();
    assert!(message.contains("drop_everything"), "{message}");
    assert!(
        message.contains("-32602") || message.contains("nvalid"),
        "{message}"
    );
    let result = call(&client, "sql_query", json!({"sql": "SELECT 1"})).await;
    assert!(!is_error(&result), "still serving");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn refused_statements_leave_the_database_byte_for_byte_unchanged() {
    let sandbox = Sandbox::new("");
    let before = file_bytes(&sandbox.db());
    let attached = sandbox.dir.path().join("attached.db");
    let copy = sandbox.dir.path().join("copy.db");
    let client = connect(Some(&sandbox.config())).await;
    for (sql, reason) in [
        ("DELETE FROM orders".to_owned(), "DELETE is not allowed"),
        ("SELECT 1; DROP TABLE orders".to_owned(), "2 statements"),
        (
            "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone".to_owned(),
            "data-modifying DELETE",
        ),
        (
            format!("ATTACH DATABASE '{}' AS evil", attached.display()),
            "ATTACH",
        ),
        (format!("VACUUM INTO '{}'", copy.display()), "refused"),
        ("PRAGMA query_only = OFF".to_owned(), "refused"),
        (
            "UPDATE customers SET email = NULL".to_owned(),
            "UPDATE is not allowed",
        ),
        (
            "SELECT load_extension('/tmp/evil')".to_owned(),
            "load_extension",
        ),
    ] {
        let result = call(
            &client,
            "sql_query",
            json!({"sql": sql, "warehouse": "shop"}),
        )
        .await;
        assert!(is_error(&result), "{sql} must be refused");
        let message = text(&result);
        assert!(message.starts_with("refused: "), "{sql}: {message}");
        assert!(message.contains(reason), "{sql}: {message}");
        let meta = result.meta.clone().expect("_meta on errors");
        assert_eq!(
            meta.get("datamcp").expect("datamcp meta")["errorKind"],
            "refused"
        );
    }
    client.cancel().await.expect("close");
    assert!(
        file_bytes(&sandbox.db()) == before,
        "the database file changed"
    );
    assert!(!attached.exists(), "ATTACH created a file");
    assert!(!copy.exists(), "VACUUM INTO created a file");
}

#[tokio::test]
async fn sql_errors_and_unknown_warehouses_are_actionable_error_results() {
    let client = connect(None).await;
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT nope FROM orders"}),
    )
    .await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("no such column: nope"),
        "{}",
        text(&result)
    );

    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 1", "warehouse": "sales"}),
    )
    .await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("unknown warehouse 'sales'"),
        "{}",
        text(&result)
    );
    assert!(
        text(&result).contains("demo"),
        "lists the configured ones: {}",
        text(&result)
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_missing_database_file_fails_the_call_not_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("datamcp.toml");
    std::fs::write(
        &config,
        format!(
            "demo = true\n[warehouses.gone]\nurl = \"sqlite://{}\"\n",
            dir.path().join("missing.db").display()
        ),
    )
    .expect("write config");
    let client = connect(Some(&config)).await;
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 1", "warehouse": "gone"}),
    )
    .await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("warehouse 'gone'"),
        "{}",
        text(&result)
    );
    assert!(
        !dir.path().join("missing.db").exists(),
        "a read-only warehouse never creates files"
    );
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 1", "warehouse": "demo"}),
    )
    .await;
    assert!(!is_error(&result), "other warehouses keep working");
    client.cancel().await.expect("close");
}
