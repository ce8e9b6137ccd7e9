//! The adversarial review's guard findings, replayed through `sql_query` against the real
//! binary and the real servers: each attack is refused or contained, and the server keeps
//! answering.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::*;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const MY: &str = "mysql://root@127.0.0.1:3306/test";

/// A config with one warehouse `w` at `url`, then `extra` (inside the warehouse table).
fn config(url: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("datamcp.toml"),
        format!("[warehouses.w]\nurl = \"{url}\"\nconnect_timeout_ms = 2000\n{extra}\n"),
    )
    .expect("write config");
    dir
}

async fn sql(client: &Client, statement: &str) -> rmcp::model::CallToolResult {
    call(client, "sql_query", json!({ "sql": statement })).await
}

fn refused_with(result: &rmcp::model::CallToolResult, words: &str) {
    assert!(is_error(result), "expected a refusal, got {}", text(result));
    assert!(
        text(result).contains(words),
        "the refusal should say {words:?}: {}",
        text(result)
    );
}

fn first_value(result: &rmcp::model::CallToolResult) -> Value {
    assert!(!is_error(result), "{}", text(result));
    structured(result)["rows"][0][0].clone()
}

fn chain(separator: &str, terms: usize) -> String {
    let mut sql = String::from("SELECT 1");
    for _ in 1..terms {
        sql.push_str(separator);
        sql.push('1');
    }
    sql
}

#[tokio::test]
async fn one_deep_query_cannot_kill_the_server() {
    let client = connect(None).await;
    for separator in ["+", " AND 1 = ", " || ", " UNION ALL SELECT "] {
        let started = Instant::now();
        let result = sql(&client, &chain(separator, 40_000)).await;
        assert!(is_error(&result), "{separator}: {}", text(&result));
        assert!(
            text(&result).contains("max_sql_"),
            "the refusal names the limit: {}",
            text(&result)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The deepest chain the default accepts is computed, and the server still answers.
    let deep = sql(&client, &chain("+", 990)).await;
    assert_eq!(first_value(&deep), json!(990));
    // SQLite's own limit is 2,000 result columns.
    let wide = sql(&client, &format!("SELECT {}", vec!["1"; 1_500].join(","))).await;
    assert_eq!(
        structured(&wide)["columns"].as_array().map(Vec::len),
        Some(1_500)
    );
    assert_eq!(first_value(&sql(&client, "SELECT 2").await), json!(2));
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_warehouse_can_raise_its_own_bounds() {
    let dir = config(
        PG,
        "allow_privileged_account = true\nmax_sql_depth = 3000\nmax_sql_tokens = 100000\nmax_sql_bytes = 1000000",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let deep = sql(&client, &chain("+", 2_500)).await;
    assert_eq!(first_value(&deep), json!(2_500));
    client.cancel().await.ok();
}

#[tokio::test]
async fn mariadb_executable_comments_and_hints_are_refused_in_every_form() {
    let dir = config(MY, "allow_privileged_account = true");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    for statement in [
        "SELECT 1 /*! , LOAD_FILE('/etc/hostname') */",
        "SELECT 1 /*!50000 , SLEEP(2) */",
        "SELECT 1 /*M! , LOAD_FILE('/etc/hostname') */",
        "SELECT 1 /*M!100000 , SLEEP(2) */",
        "SELECT 1 /*M!100000 INTO OUTFILE '/tmp/datamcp_exec_comment' */",
    ] {
        refused_with(&sql(&client, statement).await, "executable comments");
    }
    refused_with(
        &sql(&client, "SELECT /*+ MAX_EXECUTION_TIME(99999999) */ 1").await,
        "optimizer hints",
    );
    // The same text inside a string is data.
    assert_eq!(
        first_value(&sql(&client, "SELECT '/*M! not a comment */'").await),
        json!("/*M! not a comment */")
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn user_variables_and_last_insert_id_cannot_carry_state_between_callers() {
    let dir = config(MY, "allow_privileged_account = true");
    let config = dir.path().join("datamcp.toml");
    let first = connect(Some(&config)).await;
    for statement in [
        "SELECT @leak := 42",
        "SELECT 1 INTO @leak",
        "SELECT LAST_INSERT_ID(42)",
    ] {
        assert!(is_error(&sql(&first, statement).await), "{statement}");
    }
    let second = connect(Some(&config)).await;
    for statement in ["SELECT @leak", "SELECT LAST_INSERT_ID()"] {
        refused_with(&sql(&second, statement).await, "not allowed");
    }
    first.cancel().await.ok();
    second.cancel().await.ok();
}

#[tokio::test]
async fn mysql_stored_functions_run_only_when_declared_read_only() {
    let db = format!("it_funcs_{}", std::process::id());
    let mut admin = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306")
        .await
        .expect("connect to MariaDB");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
         CREATE FUNCTION {db}.doubled(x INT) RETURNS INT DETERMINISTIC READS SQL DATA RETURN x * 2;
         CREATE FUNCTION {db}.tripled(x INT) RETURNS INT DETERMINISTIC RETURN x * 3;"
    )))
    .execute(&mut admin)
    .await
    .expect("fixture");
    let dir = config(
        &format!("mysql://root@127.0.0.1:3306/{db}"),
        "allow_privileged_account = true",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    assert_eq!(
        first_value(&sql(&client, "SELECT doubled(21)").await),
        json!(42)
    );
    assert_eq!(
        first_value(&sql(&client, &format!("SELECT {db}.doubled(4)")).await),
        json!(8)
    );
    refused_with(&sql(&client, "SELECT tripled(1)").await, "CONTAINS SQL");
    refused_with(
        &sql(&client, "SELECT no_such_udf(1)").await,
        "allow_functions",
    );
    client.cancel().await.ok();

    // The config can vouch for a function the catalog does not.
    let dir = config(
        &format!("mysql://root@127.0.0.1:3306/{db}"),
        "allow_privileged_account = true\nallow_functions = [\"tripled\"]",
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    assert_eq!(
        first_value(&sql(&client, "SELECT tripled(2)").await),
        json!(6)
    );
    client.cancel().await.ok();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
        .execute(&mut admin)
        .await
        .expect("drop database");
}

#[tokio::test]
async fn postgres_functions_are_judged_by_the_catalog_under_their_real_names() {
    let fixture = PgSchema::new(
        "functions",
        "CREATE TABLE pages (id int, body text);
         INSERT INTO pages SELECT g, 'page ' || g FROM generate_series(1, 200) g;
         CREATE INDEX pages_brin ON pages USING brin (id);
         CREATE FUNCTION stable_double(x int) RETURNS int STABLE LANGUAGE sql AS 'SELECT x * 2';
         CREATE FUNCTION volatile_double(x int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT x * 2';",
    )
    .await;
    let schema = fixture.name.clone();
    let dir = config(PG, "allow_privileged_account = true");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let refusals = [
        (
            r#"SELECT U&"pg\005fread\005ffile"('/etc/hostname')"#,
            "Unicode-escaped",
        ),
        (
            r#"SELECT "pg_read_file"('/etc/hostname')"#,
            "is not allowed",
        ),
        (
            r#"SELECT "pg_catalog".PG_READ_FILE('/etc/hostname')"#,
            "is not allowed",
        ),
        (r#"SELECT "PG_SLEEP"(1)"#, "does not exist"),
        (
            "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
            "runs SQL",
        ),
        (
            "SELECT query_to_xml('SELECT 1', true, true, '')",
            "runs SQL",
        ),
        ("SELECT pg_advisory_lock(42)", "locks"),
        (
            "SELECT pg_create_logical_replication_slot('datamcp_it', 'test_decoding')",
            "is not allowed",
        ),
        (
            "SELECT pg_terminate_backend(pg_backend_pid())",
            "is not allowed",
        ),
        ("SELECT txid_current()", "is not allowed"),
    ];
    for (statement, words) in refusals {
        refused_with(&sql(&client, statement).await, words);
    }
    let brin = format!("SELECT brin_summarize_new_values('{schema}.pages_brin')");
    refused_with(&sql(&client, &brin).await, "is not allowed");
    let volatile = format!("SELECT {schema}.volatile_double(2)");
    refused_with(&sql(&client, &volatile).await, "volatile");
    refused_with(&sql(&client, &volatile).await, "allow_functions");
    let stable = format!("SELECT {schema}.stable_double(21)");
    assert_eq!(first_value(&sql(&client, &stable).await), json!(42));
    // Honest reads with built-ins the catalog vouches for.
    let honest = format!(
        "SELECT count(*), date_trunc('day', now()) IS NOT NULL, string_agg(body, ',' ORDER BY id) IS NOT NULL, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY id), random() < 1 FROM {schema}.pages"
    );
    let result = sql(&client, &honest).await;
    assert_eq!(first_value(&result), json!(200));
    client.cancel().await.ok();

    let dir = config(
        PG,
        &format!(
            "allow_privileged_account = true\nallow_functions = [\"{schema}.volatile_double\"]"
        ),
    );
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    assert_eq!(first_value(&sql(&client, &volatile).await), json!(4));
    client.cancel().await.ok();
    fixture.drop().await;
}

#[tokio::test]
async fn a_nul_byte_is_invalid_input_answered_at_once() {
    let dir = config(PG, "allow_privileged_account = true");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let started = Instant::now();
    refused_with(&sql(&client, "SELECT 'a\0b'").await, "NUL");
    assert!(started.elapsed() < Duration::from_secs(2));
    client.cancel().await.ok();
}

#[tokio::test]
async fn statements_that_differ_in_a_comment_never_share_a_cached_result() {
    let sandbox = Sandbox::new("[tools.sql_query]\ncache_ttl_ms = 60000\n");
    let client = connect(Some(&sandbox.config())).await;
    let meta = |result: &rmcp::model::CallToolResult| {
        serde_json::to_value(result).expect("json")["_meta"].clone()
    };
    let first = sql(&client, "SELECT 1 AS x -- one").await;
    let again = sql(&client, "SELECT 1 AS x -- one").await;
    let other = sql(&client, "SELECT 1 AS x -- two").await;
    let cached = |result: &rmcp::model::CallToolResult| {
        let meta = meta(result);
        meta.to_string().contains("\"cached\":true")
    };
    assert!(!cached(&first));
    assert!(
        cached(&again),
        "the identical statement is served from the cache"
    );
    assert!(
        !cached(&other),
        "a different comment is a different statement"
    );
    client.cancel().await.ok();
}
