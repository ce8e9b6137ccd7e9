//! MySQL/MariaDB warehouses against the real MariaDB server on loopback (`.ci/run` makes sure it
//! runs).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::*;

const SERVER: &str = "mysql://root@127.0.0.1:3306/test";

/// A table of its own for one test, dropped at the end.
struct Table {
    name: String,
}

impl Table {
    async fn new(test: &str, columns: &str, rows: &str) -> Table {
        let name = format!("it_{}_{test}", std::process::id());
        let mut conn = sqlx::MySqlConnection::connect(SERVER)
            .await
            .expect("connect to MariaDB");
        for sql in [
            format!("DROP TABLE IF EXISTS {name}"),
            format!("CREATE TABLE {name} ({columns})"),
            format!("INSERT INTO {name} VALUES {rows}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("fixture");
        }
        Table { name }
    }

    async fn drop(self) {
        let mut conn = sqlx::MySqlConnection::connect(SERVER)
            .await
            .expect("connect");
        let sql = format!("DROP TABLE IF EXISTS {}", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("drop");
    }
}

fn config(url: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("datamcp.toml"),
        // root is the test server's account.
        format!(
            "[warehouses.my]\nurl = \"{url}\"\nconnect_timeout_ms = 2000\nallow_privileged_account = true\n{extra}\n"
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
    let table = Table::new(
        "types",
        "id int PRIMARY KEY, ti tinyint, si smallint, mi mediumint, bi bigint, ub bigint unsigned,
         f float, d double, num decimal(30,10), b boolean, vc varchar(20), txt text, bin varbinary(8),
         bl blob, dt date, dtt datetime(6), ts timestamp NULL, tm time(3), yr year, js json,
         en enum('a','b'), st set('x','y'), bt bit(8)",
        "(1, -5, -300, -70000, 9007199254740993, 18446744073709551615, 1.5, 2.25,
          12345678901234567890.0123456789, true, 'héllo', 'long ''text''', x'deadbeef', x'00ff',
          '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15', '-838:59:59.5', 2024,
          '{\"a\": [1, 2]}', 'b', 'x,y', b'00001010'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .await;
    let dir = config(SERVER, "");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(
        &client,
        json!({"sql": format!("SELECT * FROM {} ORDER BY id", table.name)}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    assert_eq!(
        body["rows"][0],
        json!([
            1,
            -5,
            -300,
            -70000,
            9007199254740993i64,
            18446744073709551615u64,
            1.5,
            2.25,
            "12345678901234567890.0123456789",
            true,
            "héllo",
            "long 'text'",
            "3q2+7w==",
            "AP8=",
            "2024-02-29",
            "2024-02-29T13:14:15.123456",
            "2024-02-29T13:14:15",
            "-838:59:59.5",
            2024,
            "{\"a\": [1, 2]}",
            "b",
            "x,y",
            10
        ])
    );
    let types: Vec<&str> = body["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(&types[..4], ["INT", "TINYINT", "SMALLINT", "MEDIUMINT"]);
    assert!(
        types.contains(&"DECIMAL") && types.contains(&"VARBINARY") && types.contains(&"BOOLEAN")
    );
    let nulls = body["rows"][1].as_array().expect("row");
    assert!(nulls[1..].iter().all(Value::is_null), "{nulls:?}");
    client.cancel().await.expect("close");
    table.drop().await;
}

#[tokio::test]
async fn parameters_bind_and_a_truncated_read_leaves_the_pool_usable() {
    let dir = config(SERVER, "max_connections = 1\n");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(
        &client,
        json!({"sql": "SELECT ? + 1 AS n, ? AS s, ? IS NULL AS missing", "params": [41, "x", null]}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["rows"], json!([[42, "x", 1]]));
    for _ in 0..3 {
        let result = query(
            &client,
            json!({"sql": "SELECT seq FROM seq_1_to_1000000", "max_rows": 5}),
        )
        .await;
        let body = structured(&result);
        assert_eq!(body["row_count"], 5);
        assert_eq!(body["truncated"], true);
    }
    let empty = query(
        &client,
        json!({"sql": "SELECT 1 AS one FROM DUAL WHERE 1 = 0"}),
    )
    .await;
    assert_eq!(
        structured(&empty)["columns"],
        json!([{"name": "one", "type": "INT"}])
    );
    client.cancel().await.expect("close");
}

/// Whether a query carrying `marker` in a comment still runs on the server.
async fn running(marker: &str) -> bool {
    let mut observer = sqlx::MySqlConnection::connect(SERVER)
        .await
        .expect("connect");
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()",
    )
    .bind(marker)
    .fetch_one(&mut observer)
    .await
    .expect("processlist");
    count > 0
}

async fn wait_until(expected: bool, marker: &str, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if running(marker).await == expected {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_timeout_stops_the_query_on_the_server() {
    let dir = config(
        SERVER,
        "[tools.sql_query]\ntimeout_ms = 500\nmax_attempts = 1\ncache_ttl_ms = 0\n",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let marker = format!("timeout_probe_{}", std::process::id());
    let sql = format!("SELECT /* {marker} */ sum(seq % 7) FROM seq_1_to_100000000000");
    let result = query(&client, json!({"sql": sql})).await;
    assert!(is_error(&result));
    assert!(
        text(&result).starts_with("timed out after 500 ms"),
        "{}",
        text(&result)
    );
    assert!(
        wait_until(false, &marker, Duration::from_secs(3)).await,
        "still running"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_client_cancellation_kills_the_query_on_the_server() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::service::PeerRequestOptions;

    let dir = config(
        SERVER,
        "statement_timeout_ms = 60000\n[tools.sql_query]\ntimeout_ms = 60000\n",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let marker = format!("cancel_probe_{}", std::process::id());
    let sql = format!("SELECT /* {marker} */ sum(seq % 7) FROM seq_1_to_100000000000");
    let Value::Object(arguments) = json!({"sql": sql}) else {
        unreachable!()
    };
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("sql_query").with_arguments(arguments),
    ));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    assert!(
        wait_until(true, &marker, Duration::from_secs(5)).await,
        "the query started"
    );
    handle
        .cancel(Some("test".to_owned()))
        .await
        .expect("cancel sent");
    assert!(
        wait_until(false, &marker, Duration::from_secs(3)).await,
        "still running"
    );
    let result = query(&client, json!({"sql": "SELECT 1"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn queries_run_in_a_read_only_transaction() {
    // The guard refuses writes first; beneath it, each query runs inside the transaction
    // datamcp started (as READ ONLY), with the server's statement time limit set.
    let dir = config(SERVER, "");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(
        &client,
        json!({"sql": "SELECT @@in_transaction, @@max_statement_time > 0"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["rows"], json!([[1, 1]]));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn an_unreachable_warehouse_fails_its_calls_and_recovers_without_a_restart() {
    let proxy = Proxy::start("127.0.0.1:3306").await;
    let url = format!("mysql://root@{}/test", proxy.address());
    let dir = config(
        &url,
        "[tools.sql_query]\nmax_attempts = 1\ncache_ttl_ms = 0\n",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let result = query(&client, json!({"sql": "SELECT 1"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    proxy.set_up(false).await;
    let result = query(&client, json!({"sql": "SELECT 2"})).await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("warehouse 'my'"),
        "{}",
        text(&result)
    );
    proxy.set_up(true).await;
    let result = query(&client, json!({"sql": "SELECT 3"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    client.cancel().await.expect("close");
}
