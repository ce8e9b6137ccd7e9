//! The policies around every call — timeout, retry, cache — each shown to be applied.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;

use crate::support::*;

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

#[tokio::test]
async fn a_timeout_stops_the_query_on_the_database_not_just_the_wait() {
    let sandbox = Sandbox::new("\n[tools.sql_query]\ntimeout_ms = 300\ncache_ttl_ms = 0\n");
    let (client, pid) = connect_with(
        Some(&sandbox.config()),
        rmcp::model::ProtocolVersion::V_2025_11_25,
    )
    .await;
    let started = Instant::now();
    let result = call(
        &client,
        "sql_query",
        json!({"sql": ENDLESS, "warehouse": "shop"}),
    )
    .await;
    assert!(is_error(&result));
    assert!(
        text(&result).starts_with("timed out after 300 ms"),
        "{}",
        text(&result)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the deadline was honoured"
    );

    // Had the query kept running, the server would burn a whole core; it must be idle instead.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 30,
        "server used {used} ticks of CPU in 1 s after the timeout"
    );

    // The interrupted connection is not reused in a broken state.
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 1", "warehouse": "shop"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    client.cancel().await.expect("close");
}

/// Holds an exclusive lock on the database until dropped or released.
fn lock(db: &std::path::Path) -> Connection {
    let connection = Connection::open(db).expect("open db for locking");
    connection.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    connection
}

/// Changes the database behind the server's back.
fn change(db: &std::path::Path, sql: &str) {
    Connection::open(db)
        .expect("open db")
        .execute_batch(sql)
        .expect("change");
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff_until_they_clear() {
    let sandbox = Sandbox::new(
        "busy_timeout_ms = 0\n\n[tools.sql_query]\nmax_attempts = 20\nbackoff_initial_ms = 20\nbackoff_max_ms = 100\ncache_ttl_ms = 0\n",
    );
    let client = connect(Some(&sandbox.config())).await;
    let locker = lock(&sandbox.db());
    let release = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        locker.execute_batch("ROLLBACK").expect("unlock");
    };
    let query = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT count(*) FROM orders", "warehouse": "shop"}),
    );
    let (result, ()) = tokio::join!(query, release);
    assert!(!is_error(&result), "{}", text(&result));
    let execution = &execution(&result);
    assert!(
        execution["attempts"].as_u64().expect("attempts") > 1,
        "{execution}"
    );
    assert!(
        execution["warnings"][0]
            .as_str()
            .expect("warning")
            .contains("transient"),
        "{execution}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn without_retries_the_same_lock_fails_the_call_as_transient() {
    let sandbox = Sandbox::new(
        "busy_timeout_ms = 0\n\n[tools.sql_query]\nmax_attempts = 1\ncache_ttl_ms = 0\n",
    );
    let client = connect(Some(&sandbox.config())).await;
    let _locker = lock(&sandbox.db());
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT count(*) FROM orders", "warehouse": "shop"}),
    )
    .await;
    assert!(is_error(&result));
    assert!(text(&result).contains("busy"), "{}", text(&result));
    let meta = result.meta.clone().expect("_meta");
    assert_eq!(
        meta.get("datamcp").expect("datamcp")["errorKind"],
        "upstream_transient"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn idempotent_results_are_served_from_cache_until_the_arguments_change() {
    let sandbox = Sandbox::new("");
    let client = connect(Some(&sandbox.config())).await;
    let ask = json!({"sql": "SELECT email FROM customers WHERE id = 1", "warehouse": "shop"});
    let first = call(&client, "sql_query", ask.clone()).await;
    let original = structured(&first)["rows"][0][0].clone();
    assert_eq!(execution(&first)["cached"], false);

    change(
        &sandbox.db(),
        "UPDATE customers SET email = 'changed@example.com' WHERE id = 1",
    );

    let second = call(&client, "sql_query", ask).await;
    assert_eq!(execution(&second)["cached"], true);
    assert_eq!(structured(&second)["cached"], true, "the model sees it too");
    assert_eq!(
        structured(&second)["rows"][0][0],
        original,
        "served from cache"
    );

    let other = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT email FROM customers WHERE id = 1", "warehouse": "shop", "max_rows": 5}),
    )
    .await;
    assert_eq!(execution(&other)["cached"], false);
    assert_eq!(structured(&other)["rows"][0][0], "changed@example.com");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_zero_ttl_turns_the_cache_off() {
    let sandbox = Sandbox::new("\n[tools.sql_query]\ncache_ttl_ms = 0\n");
    let client = connect(Some(&sandbox.config())).await;
    let ask = json!({"sql": "SELECT email FROM customers WHERE id = 2", "warehouse": "shop"});
    let _ = call(&client, "sql_query", ask.clone()).await;
    change(
        &sandbox.db(),
        "UPDATE customers SET email = 'fresh@example.com' WHERE id = 2",
    );
    let again = call(&client, "sql_query", ask).await;
    assert_eq!(execution(&again)["cached"], false);
    assert_eq!(structured(&again)["rows"][0][0], "fresh@example.com");
    client.cancel().await.expect("close");
}
