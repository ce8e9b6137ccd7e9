//! Custom SQL tools declared in the config.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

const TOOL: &str = r#"
[[sql_tools]]
name = "orders_by_status"
description = "Orders with a given status above a minimum total"
statement = "SELECT id, total FROM orders WHERE status = ?1 AND total >= ?2 ORDER BY {order_by} DESC"
max_rows = 5

[[sql_tools.parameters]]
name = "status"
type = "string"
description = "Order status"
allowed_values = ["placed", "paid", "shipped", "delivered", "cancelled", "returned"]

[[sql_tools.parameters]]
name = "min_total"
type = "number"
description = "Smallest total"
default = 0
minimum = 0

[[sql_tools.identifiers]]
name = "order_by"
description = "Column to sort by, largest first"
allowed = ["total", "ordered_at"]
"#;

fn config(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("c.toml"), text).expect("config");
    dir
}

#[tokio::test]
async fn a_custom_tool_is_served_with_a_generated_schema_and_runs_bound() {
    let dir = config(TOOL);
    let client = connect(Some(&dir.path().join("c.toml"))).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let tool = tools
        .iter()
        .find(|t| t.name == "orders_by_status")
        .expect("listed");
    let schema = Value::Object((*tool.input_schema).clone());
    assert_eq!(schema["required"], json!(["status"]));
    assert_eq!(
        schema["properties"]["order_by"]["enum"],
        json!(["total", "ordered_at"])
    );
    assert_eq!(schema["properties"]["min_total"]["minimum"], 0.0);
    assert_eq!(
        tool.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );

    let result = call(
        &client,
        "orders_by_status",
        json!({"status": "paid", "min_total": 1000, "order_by": "total"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    assert_eq!(body["row_count"], 5);
    assert_eq!(body["truncated"], true);
    let warning = body["warnings"][0].as_str().expect("warning");
    assert!(
        warning.contains("only the first 5 rows were returned and more exist"),
        "{warning}"
    );
    let totals: Vec<f64> = body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r[1].as_f64())
        .collect();
    assert!(
        totals.windows(2).all(|w| w[0] >= w[1]),
        "sorted by total: {totals:?}"
    );
    assert!(totals.iter().all(|t| *t >= 1000.0));

    let bad_value = call(&client, "orders_by_status", json!({"status": "lost"})).await;
    assert!(is_error(&bad_value));
    assert!(text(&bad_value).contains("/status"), "{}", text(&bad_value));
    let injected = call(
        &client,
        "orders_by_status",
        json!({"status": "paid", "order_by": "total; DROP TABLE orders"}),
    )
    .await;
    assert!(is_error(&injected));
    assert!(text(&injected).contains("/order_by"), "{}", text(&injected));
    client.cancel().await.expect("close");
}

fn start_fails_with(config_text: &str, expected: &str) {
    let dir = config(config_text);
    let output = Command::new(BIN)
        .args(["tools", "--config"])
        .arg(dir.path().join("c.toml"))
        .env("DATAMCP_DATA_DIR", demo_data_dir())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in:\n{stderr}"
    );
}

#[test]
fn a_write_or_a_miscounted_statement_in_the_config_stops_the_start() {
    start_fails_with(
        "[[sql_tools]]\nname = \"wipe\"\ndescription = \"x\"\nstatement = \"DELETE FROM orders\"\n",
        "line 2: sql_tools.wipe: the statement is refused: DELETE is not allowed",
    );
    start_fails_with(
        "[[sql_tools]]\nname = \"count\"\ndescription = \"x\"\nstatement = \"SELECT count(*) FROM orders WHERE status = ?1\"\n",
        "1 placeholder(s) but 0 parameter(s)",
    );
    start_fails_with(
        "[[sql_tools]]\nname = \"sorted\"\ndescription = \"x\"\nstatement = \"SELECT * FROM orders ORDER BY total\"\n[[sql_tools.identifiers]]\nname = \"col\"\ndescription = \"x\"\nallowed = [\"total\"]\n",
        "identifier 'col' is not used as {col} in the statement",
    );
}

#[tokio::test]
async fn a_custom_tool_says_when_the_byte_cap_cut_the_result_short() {
    // Every order (25,000 rows) is about 2 MiB of JSON, over the 1 MiB a custom tool reads.
    let dir = config(
        "[[sql_tools]]\nname = \"all_orders\"\ndescription = \"Every order\"\nstatement = \"SELECT * FROM orders ORDER BY id\"\nmax_rows = 100000\n",
    );
    let client = connect(Some(&dir.path().join("c.toml"))).await;
    let result = call(&client, "all_orders", json!({})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    assert_eq!(body["truncated"], true);
    let rows = body["row_count"].as_u64().expect("row_count");
    assert!((1_000..25_000).contains(&rows), "{rows} rows in 1 MiB");
    let warnings = &body["warnings"];
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{warnings}");
    let warning = warnings[0].as_str().expect("warning");
    assert!(
        warning.contains(&format!("only the first {rows} rows were returned"))
            && warning.contains("1048576-byte cap"),
        "{warning}"
    );
    client.cancel().await.expect("close");
}
