//! The MCP conversation over stdio, as an agent host has it.

use rmcp::model::{GetPromptRequestParams, ProtocolVersion, ReadResourceRequestParams};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn every_protocol_version_is_negotiated_and_served() {
    for version in [
        ProtocolVersion::V_2024_11_05,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
        ProtocolVersion::LATEST,
    ] {
        let (client, _) = connect_with(None, version.clone()).await;
        let info = client.peer_info().expect("server info");
        assert_eq!(info.protocol_version, version, "negotiated version");
        let tools = client.list_all_tools().await.expect("tools/list");
        assert!(tools.iter().any(|t| t.name == "sql_query"), "{version:?}");
        let result = call(
            &client,
            "sql_query",
            json!({"sql": "SELECT 41 + 1 AS answer"}),
        )
        .await;
        assert!(!is_error(&result), "{version:?}: {}", text(&result));
        assert_eq!(structured(&result)["rows"], json!([[42]]), "{version:?}");
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn tools_list_advertises_generated_schemas_and_annotations() {
    let client = connect(None).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let query = tools
        .iter()
        .find(|t| t.name == "sql_query")
        .expect("sql_query listed");
    let input = Value::Object((*query.input_schema).clone());
    assert_eq!(input["type"], "object");
    assert_eq!(input["required"], json!(["sql"]));
    assert_eq!(input["additionalProperties"], false);
    assert!(input["properties"]["max_rows"]["description"].is_string());
    let output = Value::Object((*query.output_schema.clone().expect("output schema")).clone());
    // `warnings` and `cached` are declared in the full schema (schemas/); the lean one the
    // wire carries leaves extra fields open.
    for field in ["columns", "rows", "row_count", "truncated"] {
        assert!(
            output["properties"][field].is_object(),
            "output schema lacks {field}"
        );
    }
    let annotations = query.annotations.clone().expect("annotations");
    assert_eq!(annotations.read_only_hint, Some(true));
    assert_eq!(
        annotations.destructive_hint, None,
        "meaningless for a read-only tool, so not sent"
    );
    assert_eq!(annotations.idempotent_hint, Some(true));
    assert_eq!(annotations.open_world_hint, Some(false));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn sql_query_on_the_demo_data_returns_rows_that_match_the_output_schema() {
    let client = connect(None).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let query = tools
        .iter()
        .find(|t| t.name == "sql_query")
        .expect("sql_query");
    let output_schema = Value::Object((*query.output_schema.clone().expect("schema")).clone());
    let validator = jsonschema::validator_for(&output_schema).expect("output schema compiles");

    let result = call(
        &client,
        "sql_query",
        json!({
            "sql": "SELECT id, name, marketing_opt_in, phone FROM customers WHERE country = ? ORDER BY id",
            "params": ["DE"],
            "max_rows": 3
        }),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let content = result
        .structured_content
        .clone()
        .expect("structured content");
    if let Err(error) = validator.validate(&content) {
        panic!("structuredContent does not match outputSchema: {error}\n{content:#}");
    }
    let body = structured(&result);
    assert_eq!(body["row_count"], 3);
    assert_eq!(
        body["truncated"], true,
        "more German customers exist than 3"
    );
    assert_eq!(
        body["columns"],
        json!([
            {"name": "id", "type": "INTEGER"},
            {"name": "name", "type": "TEXT"},
            {"name": "marketing_opt_in", "type": "BOOLEAN"},
            {"name": "phone", "type": "TEXT"}
        ])
    );
    let rows = body["rows"].as_array().expect("rows");
    assert!(
        rows.iter().all(|r| r[2].is_boolean()),
        "BOOLEAN columns come back as booleans"
    );
    let facts = execution(&result);
    assert!(
        facts["execution_id"]
            .as_str()
            .is_some_and(|id| id.len() == 32)
    );
    assert_eq!(facts["records"], 3);
    assert!(
        body.get("execution").is_none(),
        "the facts are not the model's to read"
    );
    assert!(
        text(&result).contains("warning: only the first 3 rows"),
        "{}",
        text(&result)
    );

    // The demo data is as large as promised, with NULLs, decimals and JSON text.
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM orders WHERE discount IS NULL) > 0, \
                       (SELECT min(total) FROM orders) > 0, (SELECT json_extract(attributes, '$.color') IS NOT NULL FROM products LIMIT 1)"}),
    )
    .await;
    let row = structured(&result)["rows"][0].clone();
    assert!(row[0].as_i64().expect("count") >= 20_000);
    assert_eq!(row[1], 1);
    assert_eq!(row[2], 1);
    assert_eq!(row[3], 1);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn text_content_follows_the_requested_format() {
    let client = connect(None).await;
    let sql = "SELECT id, sku FROM products ORDER BY id LIMIT 2";
    let csv = text(&call(&client, "sql_query", json!({"sql": sql, "format": "csv"})).await);
    assert!(csv.starts_with("id,sku\r\n1,"), "{csv}");
    let markdown = text(
        &call(
            &client,
            "sql_query",
            json!({"sql": sql, "format": "markdown"}),
        )
        .await,
    );
    assert!(
        markdown.starts_with("| id | sku |\n| --- | --- |\n| 1 |"),
        "{markdown}"
    );
    let json_text = text(&call(&client, "sql_query", json!({"sql": sql})).await);
    let parsed: Value = serde_json::from_str(&json_text).expect("json text parses");
    assert_eq!(parsed["columns"], json!(["id", "sku"]));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn prompts_are_listed_and_rendered_with_their_arguments() {
    let client = connect(None).await;
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let answer = prompts
        .iter()
        .find(|p| p.name == "answer_with_sql")
        .expect("answer_with_sql");
    let arguments = answer.arguments.clone().unwrap_or_default();
    assert!(
        arguments
            .iter()
            .any(|a| a.name == "question" && a.required == Some(true))
    );
    assert!(prompts.iter().any(|p| p.name == "explore_warehouse"));

    let mut args = serde_json::Map::new();
    args.insert("question".into(), json!("Which country buys the most?"));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("answer_with_sql").with_arguments(args))
        .await
        .expect("prompts/get");
    let message = serde_json::to_value(&prompt.messages[0]).expect("message");
    let body = message["content"]["text"].as_str().expect("text");
    assert!(body.contains("Which country buys the most?"), "{body}");
    assert!(
        !body.contains("{{"),
        "every placeholder is substituted: {body}"
    );

    let missing = client
        .get_prompt(GetPromptRequestParams::new("answer_with_sql"))
        .await
        .expect_err("question is required");
    assert!(missing.to_string().contains("question"), "{missing}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn call_statistics_are_a_resource() {
    let client = connect(None).await;
    let _ = call(&client, "sql_query", json!({"sql": "SELECT 1"})).await;
    let _ = call(&client, "sql_query", json!({"sql": "DELETE FROM orders"})).await;
    let resources = client.list_all_resources().await.expect("resources/list");
    assert!(resources.iter().any(|r| r.uri == "datamcp://server/stats"));
    let stats = client
        .read_resource(ReadResourceRequestParams::new("datamcp://server/stats"))
        .await
        .expect("resources/read");
    let stats = serde_json::to_value(&stats.contents[0]).expect("contents");
    let stats: Value = serde_json::from_str(stats["text"].as_str().expect("text")).expect("json");
    let query = &stats["tools"]["sql_query"];
    assert_eq!(query["calls"], 2);
    assert_eq!(query["errors"], 1);
    assert_eq!(query["success_rate"], 0.5);
    assert!(query["latency_ms"]["p99"].as_f64().expect("p99") > 0.0);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_byte_cap_stops_reading_and_says_so() {
    let client = connect(None).await;
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT * FROM orders", "max_rows": 10000, "max_bytes": 4096}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    assert_eq!(body["truncated"], true);
    let rows = body["row_count"].as_u64().expect("row_count");
    assert!((10..100).contains(&rows), "{rows} rows in 4 KiB");
    let rows_json = serde_json::to_string(&body["rows"]).expect("json");
    assert!(rows_json.len() <= 4096, "{} bytes", rows_json.len());
    let warning = body["warnings"][0].as_str().expect("warning");
    assert!(warning.contains("4096-byte cap"), "{warning}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn large_results_can_be_written_to_parquet_and_read_back_as_a_resource() {
    use base64::Engine as _;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use rmcp::model::ReadResourceRequestParams;

    let client = connect(None).await;
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT id, status, total, discount, ordered_at FROM orders ORDER BY id", "max_rows": 30000, "format": "parquet"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    assert_eq!(body["row_count"], 25000);
    assert_eq!(
        body["rows"],
        json!([]),
        "the rows went to the file, not inline"
    );
    let uri = body["file"]["uri"].as_str().expect("file uri").to_owned();
    let link = serde_json::to_value(&result.content[1]).expect("link");
    assert_eq!(link["type"], "resource_link");
    assert_eq!(link["uri"], uri);

    let read = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .expect("resources/read");
    let contents = serde_json::to_value(&read.contents[0]).expect("contents");
    assert_eq!(contents["mimeType"], "application/vnd.apache.parquet");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(contents["blob"].as_str().expect("blob"))
        .expect("base64");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("result.parquet");
    std::fs::write(&path, bytes).expect("write");
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).expect("open"))
            .expect("a valid Parquet file");
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "status", "total", "discount", "ordered_at"]);
    let rows: usize = reader
        .build()
        .expect("reader")
        .map(|b| b.expect("batch").num_rows())
        .sum();
    assert_eq!(rows, 25000);

    let escape = client
        .read_resource(ReadResourceRequestParams::new(
            "datamcp://output/../demo-v2.sqlite",
        ))
        .await;
    assert!(escape.is_err(), "no way out of the output folder");
    client.cancel().await.expect("close");
}
