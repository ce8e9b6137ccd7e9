//! PostgreSQL warehouses against the real server on loopback (`.ci/run` makes sure it runs).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::*;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A config serving the test server as warehouse `pg`, followed by `extra`.
fn config(url: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("datamcp.toml"),
        // The test server's only account is a superuser.
        format!(
            "[warehouses.pg]\nurl = \"{url}\"\nconnect_timeout_ms = 2000\nallow_privileged_account = true\n{extra}\n"
        ),
    )
    .expect("write config");
    dir
}

async fn query(client: &Client, arguments: Value) -> rmcp::model::CallToolResult {
    call(client, "sql_query", arguments).await
}

#[tokio::test]
async fn every_common_type_maps_to_json_without_loss() {
    let schema = PgSchema::new(
        "types",
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE TABLE t (id int PRIMARY KEY, small int2, big int8, r real, d double precision,
           n numeric(30,10), m money, b boolean, txt text, vc varchar(10), ch char(3), dt date,
           tm time, tmtz timetz, ts timestamp, tstz timestamptz, iv interval, u uuid, j json,
           jb jsonb, bin bytea, arr int[], grid int[][], tags text[], mood mood, ip inet, net cidr,
           mac macaddr, flags bit(4), special numeric, f double precision);
         INSERT INTO t VALUES (1, -2, 9007199254740993, 1.5, 2.25, 12345678901234567890.0123456789,
           12.34, true, 'héllo ''quoted''', 'v', 'ab', '2024-02-29', '13:14:15.5', '13:14:15+02',
           '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15+01', '1 year 2 months 3 days 04:05:06.5',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": 1}', '{\"b\": [1, 2.5, null]}', '\\xdeadbeef',
           '{1,2,NULL}', '{{1,2},{3,4}}', '{\"x\",\"y z\"}', 'happy', '192.168.0.1', '10.0.0.0/8',
           '08:00:2b:01:02:03', B'1010', 'NaN', 'Infinity');
         INSERT INTO t (id) VALUES (2);",
    )
    .await;
    let dir = config(SERVER, "");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(
        &client,
        json!({"sql": format!("SELECT * FROM {}.t ORDER BY id", schema.name), "warehouse": "pg"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    let columns: Vec<String> = body["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["name"].as_str().unwrap_or(""),
                c["type"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(columns.contains(&"n:NUMERIC".to_owned()), "{columns:?}");
    assert!(
        columns.contains(&"tstz:TIMESTAMPTZ".to_owned()),
        "{columns:?}"
    );
    assert!(
        columns.contains(&format!("mood:{}.mood", schema.name)),
        "{columns:?}"
    );
    let row = &body["rows"][0];
    let expected = json!([
        1, -2, 9007199254740993i64, 1.5, 2.25, "12345678901234567890.0123456789", "12.34", true,
        "héllo 'quoted'", "v", "ab ", "2024-02-29", "13:14:15.5", "13:14:15+02:00",
        "2024-02-29T13:14:15.123456", "2024-02-29T12:14:15Z", "P1Y2M3DT4H5M6.5S",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", {"a": 1}, {"b": [1, 2.5, null]}, "3q2+7w==",
        [1, 2, null], [[1, 2], [3, 4]], ["x", "y z"], "happy", "192.168.0.1", "10.0.0.0/8",
        "08:00:2b:01:02:03", "1010", "NaN", "Infinity"
    ]);
    assert_eq!(row, &expected);
    let nulls = body["rows"][1].as_array().expect("row");
    assert_eq!(nulls[0], 2);
    assert!(nulls[1..].iter().all(Value::is_null), "{nulls:?}");
    client.cancel().await.expect("close");
    schema.drop().await;
}

#[tokio::test]
async fn parameters_bind_with_their_json_types_and_rows_stop_at_the_cap() {
    let dir = config(SERVER, "");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(
        &client,
        json!({
            "sql": "SELECT $1::int + 1 AS n, $2::text AS s, $3::boolean AS b, $4::text IS NULL AS missing, $5::jsonb -> 'k' AS j",
            "params": [41, "x", true, null, {"k": [1]}],
            "warehouse": "pg"
        }),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(
        structured(&result)["rows"],
        json!([[42, "x", true, true, [1]]])
    );

    let result = query(
        &client,
        json!({"sql": "SELECT g FROM generate_series(1, 100000) AS g", "max_rows": 10, "warehouse": "pg"}),
    )
    .await;
    let body = structured(&result);
    assert_eq!(body["row_count"], 10);
    assert_eq!(body["truncated"], true);
    assert_eq!(body["rows"][9], json!([10]));

    let capped = query(
        &client,
        json!({"sql": "SELECT g, repeat('x', 100) FROM generate_series(1, 100000) AS g", "max_rows": 1000, "max_bytes": 2048, "warehouse": "pg"}),
    )
    .await;
    let body = structured(&capped);
    assert_eq!(body["truncated"], true);
    assert!(
        body["row_count"].as_u64().is_some_and(|n| n > 0 && n < 30),
        "{}",
        body["row_count"]
    );

    let empty = query(
        &client,
        json!({"sql": "SELECT 1 AS one, 'x'::text AS two WHERE false", "warehouse": "pg"}),
    )
    .await;
    let body = structured(&empty);
    assert_eq!(body["row_count"], 0);
    assert_eq!(
        body["columns"],
        json!([{"name": "one", "type": "INT4"}, {"name": "two", "type": "TEXT"}])
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn sql_errors_are_reported_and_never_retried() {
    let dir = config(SERVER, "");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(
        &client,
        json!({"sql": "SELECT no_such_column FROM pg_class", "warehouse": "pg"}),
    )
    .await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("no_such_column"),
        "{}",
        text(&result)
    );
    let meta = result.meta.clone().expect("_meta");
    let facts = &meta.get("datamcp").expect("datamcp")["execution"];
    assert_eq!(facts["attempts"], 1, "a SQL error is not transient");
    // The failed session was closed; the next query works.
    let result = query(&client, json!({"sql": "SELECT 1", "warehouse": "pg"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_timeout_stops_the_query_on_the_server() {
    // Only this test's sessions carry this application name.
    let marker = format!("timeout_probe_{}", std::process::id());
    let url = format!("{SERVER}?application_name={marker}");
    let dir = config(
        &url,
        "[tools.sql_query]\ntimeout_ms = 500\nmax_attempts = 1\ncache_ttl_ms = 0\n",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let sql = "SELECT count(*) FROM generate_series(1, 20000000000)";
    let started = Instant::now();
    let result = query(&client, json!({"sql": sql, "warehouse": "pg"})).await;
    assert!(is_error(&result));
    assert!(
        text(&result).starts_with("timed out after 500 ms"),
        "{}",
        text(&result)
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    assert!(
        wait_until(false, &marker, Duration::from_secs(3)).await,
        "the timed-out query still runs"
    );
    client.cancel().await.expect("close");
}

/// Whether, within `wait`, the server comes to have (`running`) or no longer have an active
/// query in a session named `marker`.
async fn wait_until(running: bool, marker: &str, wait: Duration) -> bool {
    let mut observer = sqlx::PgConnection::connect(SERVER).await.expect("connect");
    let deadline = Instant::now() + wait;
    loop {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
        )
        .bind(marker)
        .fetch_one(&mut observer)
        .await
        .expect("pg_stat_activity");
        if (active > 0) == running {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_cancellation_stops_the_query_on_the_server() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::service::PeerRequestOptions;

    // The server-side statement timeout is far away: only the cancellation can stop the query.
    let marker = format!("cancel_probe_{}", std::process::id());
    let url = format!("{SERVER}?application_name={marker}");
    let dir = config(
        &url,
        "statement_timeout_ms = 60000\n[tools.sql_query]\ntimeout_ms = 60000\n",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let sql = "SELECT count(*) FROM generate_series(1, 20000000000)";
    let Value::Object(arguments) = json!({"sql": sql, "warehouse": "pg"}) else {
        unreachable!()
    };
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("sql_query").with_arguments(arguments),
    ));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    if !wait_until(true, &marker, Duration::from_secs(5)).await {
        let response = tokio::time::timeout(Duration::from_secs(1), handle.await_response()).await;
        panic!("the query did not start: {response:?}");
    }
    handle
        .cancel(Some("test".to_owned()))
        .await
        .expect("cancel sent");
    assert!(
        wait_until(false, &marker, Duration::from_secs(3)).await,
        "the cancelled query still runs"
    );

    // The server keeps serving.
    let result = query(&client, json!({"sql": "SELECT 1", "warehouse": "pg"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_session_itself_is_read_only() {
    // The guard refuses writes before they reach the server; this checks the layer beneath it.
    let dir = config(SERVER, "");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(
        &client,
        json!({"sql": "SELECT current_setting('transaction_read_only') AS tx, current_setting('default_transaction_read_only') AS session", "warehouse": "pg"}),
    )
    .await;
    assert_eq!(structured(&result)["rows"], json!([["on", "on"]]));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn an_unreachable_warehouse_fails_its_calls_and_recovers_without_a_restart() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let url = format!("postgres://postgres@{}/test", proxy.address());
    let dir = config(
        &url,
        "[tools.sql_query]\nmax_attempts = 1\ncache_ttl_ms = 0\n",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;

    let result = query(&client, json!({"sql": "SELECT 1", "warehouse": "pg"})).await;
    assert!(!is_error(&result), "{}", text(&result));

    proxy.set_up(false).await;
    let result = query(&client, json!({"sql": "SELECT 2", "warehouse": "pg"})).await;
    assert!(is_error(&result));
    let message = text(&result);
    assert!(message.contains("warehouse 'pg'"), "{message}");
    assert!(
        message.contains(&proxy.address()),
        "names the host: {message}"
    );

    proxy.set_up(true).await;
    let result = query(&client, json!({"sql": "SELECT 3", "warehouse": "pg"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["rows"], json!([[3]]));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn regression_consecutive_queries_on_one_connection_keep_their_own_column_types() {
    // Every cursor is fetched with the same FETCH text; a cached description of it once decoded
    // one query's rows with the previous query's column types.
    let dir = config(
        SERVER,
        "max_connections = 1\n[tools.sql_query]\ncache_ttl_ms = 0\n",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    for (sql, expected) in [
        (
            "SELECT 1::int AS a, 'x'::text AS b, true AS c",
            json!([[1, "x", true]]),
        ),
        ("SELECT 'y'::text AS only", json!([["y"]])),
        (
            "SELECT 2.5::numeric AS n, 7::int8 AS big",
            json!([["2.5", 7]]),
        ),
        (
            "SELECT 1::int AS a, 'x'::text AS b, true AS c",
            json!([[1, "x", true]]),
        ),
    ] {
        let result = query(&client, json!({"sql": sql, "warehouse": "pg"})).await;
        assert!(!is_error(&result), "{sql}: {}", text(&result));
        assert_eq!(structured(&result)["rows"], expected, "{sql}");
    }
    client.cancel().await.expect("close");
}
