//! The server engines' sessions measured on their own, with the guard bypassed: they lex SQL as
//! the guard does whatever the server's defaults, no session state outlives a call, faults say
//! what happened, and memory is bounded before it is spent.

use std::time::{Duration, Instant};

use datamcp::sql::config::SqlConfig;
use datamcp::sql::guard::GuardedSql;
use datamcp::sql::rows::QueryRows;
use datamcp::sql::warehouse::Warehouses;
use datamcp::table::ReadLimits;
use datamcp::tools::{CallContext, ToolError};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const PG: &str = "postgres://postgres@127.0.0.1:5432";
const MY: &str = "mysql://root@127.0.0.1:3306";

/// One warehouse named `w` at `url`, followed by `extra` TOML in its table. The test servers'
/// accounts are superusers.
fn warehouses(url: &str, extra: &str) -> Warehouses {
    let text =
        format!("[warehouses.w]\nurl = \"{url}\"\nallow_privileged_account = true\n{extra}\n");
    Warehouses::new(
        &SqlConfig::parse(&text, "test.toml").expect("config"),
        &std::env::temp_dir(),
    )
    .expect("warehouses")
}

/// Runs `sql` on `w` without the guard.
async fn run(
    warehouses: &Warehouses,
    sql: &str,
    params: &[Value],
    bytes: usize,
) -> Result<QueryRows, ToolError> {
    let warehouse = warehouses.get(None).expect("warehouse");
    let ctx = CallContext::new(
        "test".into(),
        Duration::from_secs(20),
        CancellationToken::new(),
        None,
    );
    let sql = GuardedSql::bypassing_the_guard_in_tests(sql, warehouse.dialect());
    let limits = ReadLimits { rows: 100, bytes };
    warehouse.query(&sql, params, limits, &ctx).await
}

async fn rows(warehouses: &Warehouses, sql: &str) -> Value {
    let result = run(warehouses, sql, &[], 1 << 20).await;
    json!(result.unwrap_or_else(|e| panic!("{sql}: {e}")).rows)
}

async fn pg_admin(sql: &str) {
    let mut conn = sqlx::PgConnection::connect(&format!("{PG}/test"))
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("admin statement");
}

/// With standard strings, as the guard reads it: the literal `a\` and a second column, then a
/// comment. With backslash escapes: one literal, `a' , 2 AS two --`; put a function call where
/// the 2 is and the guard would see it but the server would not, or the other way round.
const PG_BACKSLASH_TRICK: &str = r"SELECT 'a\' , 2 AS two --'";

#[tokio::test]
async fn postgres_sessions_read_strings_as_the_guard_does_whatever_the_database_default() {
    let database = format!("it_{}_scs", std::process::id());
    pg_admin(&format!("DROP DATABASE IF EXISTS {database}")).await;
    pg_admin(&format!("CREATE DATABASE {database}")).await;
    pg_admin(&format!(
        "ALTER DATABASE {database} SET standard_conforming_strings = off"
    ))
    .await;
    let url = format!("{PG}/{database}");

    // The default really is flipped: a plain session reads a second column.
    let mut plain = sqlx::PgConnection::connect(&url).await.expect("connect");
    let columns = sqlx::raw_sql(PG_BACKSLASH_TRICK)
        .fetch_one(&mut plain)
        .await
        .map(|row| sqlx::Row::len(&row))
        .expect("the trick runs in a plain session");
    assert_eq!(columns, 1, "the database default did not take effect");
    plain.close().await.expect("close");

    let w = warehouses(&url, "max_connections = 1");
    assert_eq!(rows(&w, PG_BACKSLASH_TRICK).await, json!([[r"a\", 2]]));
    // A session-level change made by a caller is undone by the reset, not just the ROLLBACK.
    assert_eq!(
        rows(
            &w,
            "SELECT set_config('standard_conforming_strings', 'off', false)"
        )
        .await,
        json!([["off"]])
    );
    assert_eq!(
        rows(&w, "SELECT current_setting('standard_conforming_strings')").await,
        json!([["on"]])
    );
    assert_eq!(rows(&w, PG_BACKSLASH_TRICK).await, json!([[r"a\", 2]]));
    w.close().await;
    pg_admin(&format!("DROP DATABASE {database} WITH (FORCE)")).await;
}

#[tokio::test]
async fn mysql_sessions_read_strings_as_the_guard_does_whatever_the_server_default() {
    // `sql_mode` has no per-database or per-user default, so the server's global one is flipped
    // for as long as it takes to open two connections, and restored before any assertion.
    let mut admin = sqlx::MySqlConnection::connect(&format!("{MY}/test"))
        .await
        .expect("connect");
    let original: String = sqlx::query_scalar("SELECT @@GLOBAL.sql_mode")
        .fetch_one(&mut admin)
        .await
        .expect("sql_mode");
    let w = warehouses(&format!("{MY}/test"), "max_connections = 1");
    sqlx::query(
        "SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES,ANSI_QUOTES')",
    )
    .execute(&mut admin)
    .await
    .expect("flip the default");
    let plain = sqlx::MySqlConnection::connect(&format!("{MY}/test")).await;
    let first = run(&w, "SELECT 1", &[], 1 << 20).await;
    sqlx::query("SET GLOBAL sql_mode = ?")
        .bind(&original)
        .execute(&mut admin)
        .await
        .expect("restore the default");
    first.expect("first query");
    let mut plain = plain.expect("connect");

    // The trick: backslash-escaped quote and a double-quoted string, as MySQL reads them by
    // default (and the guard with it).
    let trick = r#"SELECT 'a\'b' AS s, "q" AS d"#;
    let mode: String = sqlx::query_scalar("SELECT @@SESSION.sql_mode")
        .fetch_one(&mut plain)
        .await
        .expect("plain session's mode");
    assert!(
        mode.contains("NO_BACKSLASH_ESCAPES"),
        "the default was not flipped: {mode}"
    );
    assert!(
        sqlx::raw_sql(trick).fetch_one(&mut plain).await.is_err(),
        "a plain session reads the trick differently"
    );
    plain.close().await.expect("close");
    assert_eq!(rows(&w, trick).await, json!([["a'b", "q"]]));
    w.close().await;
}

#[tokio::test]
async fn postgres_session_state_does_not_reach_the_next_caller() {
    let w = warehouses(&format!("{PG}/test"), "max_connections = 1");
    // What sqlx and datamcp set at startup, which RESET ALL must keep.
    let startup = "SELECT current_setting('TimeZone'), current_setting('DateStyle'), \
                   current_setting('extra_float_digits'), current_setting('application_name'), \
                   current_setting('standard_conforming_strings'), \
                   current_setting('default_transaction_read_only')";
    let before = rows(&w, startup).await;
    assert_eq!(before[0][3], "datamcp");
    let lock = 4_000_000_000_i64 + i64::from(std::process::id());
    let taken = rows(
        &w,
        &format!("SELECT pg_try_advisory_lock({lock}), pg_backend_pid()"),
    )
    .await;
    assert_eq!(taken[0][0], true, "caller A got the lock");
    let seen = rows(
        &w,
        "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), pg_backend_pid()",
    )
    .await;
    assert_eq!(
        seen[0][1], taken[0][1],
        "the second call ran on the same connection"
    );
    assert_eq!(seen[0][0], 0, "caller B holds caller A's advisory lock");

    // A read cut at max_rows leaves a usable connection behind: the rest is drained, not lost.
    let cut = run(
        &w,
        "SELECT g FROM generate_series(1, 1000) AS g",
        &[],
        1 << 20,
    )
    .await
    .expect("capped read");
    assert!(cut.truncated && cut.rows.len() == 100);
    let after = rows(&w, "SELECT pg_backend_pid()").await;
    assert_eq!(after[0][0], taken[0][1], "the connection was kept");
    assert_eq!(
        rows(&w, startup).await,
        before,
        "the reset changed a startup setting"
    );
    w.close().await;
}

#[tokio::test]
async fn mysql_session_state_does_not_reach_the_next_caller() {
    let w = warehouses(&format!("{MY}/test"), "max_connections = 1");
    let lock = format!("it_{}_lock", std::process::id());
    let a = rows(
        &w,
        &format!("SELECT GET_LOCK('{lock}', 0), LAST_INSERT_ID(77), CONNECTION_ID()"),
    )
    .await;
    assert_eq!(a[0][0], 1, "caller A got the lock");
    let b = rows(
        &w,
        &format!("SELECT IS_USED_LOCK('{lock}'), LAST_INSERT_ID(), CONNECTION_ID()"),
    )
    .await;
    assert_eq!(
        b[0][2], a[0][2],
        "the second call ran on the same connection"
    );
    assert_eq!(b[0][0], Value::Null, "caller B sees caller A's named lock");
    assert_eq!(b[0][1], 0, "caller B sees caller A's LAST_INSERT_ID(77)");

    let a = rows(&w, "SELECT @datamcp_v := 42, CONNECTION_ID()").await;
    assert_eq!(a[0][0], 42);
    let b = rows(&w, "SELECT @datamcp_v, CONNECTION_ID()").await;
    assert_eq!(b[0][0], Value::Null, "caller B reads caller A's @variable");
    assert_ne!(b[0][1], a[0][1], "the connection holding @v was closed");

    // Plain reads run in the session's own read-only mode: a session made writable is not
    // handed to the next caller.
    let a = rows(&w, "SELECT CONNECTION_ID()").await;
    run(&w, "SET SESSION TRANSACTION READ WRITE", &[], 1 << 20)
        .await
        .expect("the database accepts it without the guard");
    let b = rows(&w, "SELECT @@SESSION.tx_read_only, CONNECTION_ID()").await;
    assert_eq!(b[0][0], 1, "caller B got a writable session");
    assert_ne!(b[0][1], a[0][0], "the writable connection was closed");
    w.close().await;
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn a_refused_port_fails_fast_without_retries() {
    for url in [
        format!("postgres://postgres@127.0.0.1:{}/test", closed_port()),
        format!("mysql://root@127.0.0.1:{}/test", closed_port()),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            format!("[warehouses.down]\nurl = \"{url}\"\nallow_privileged_account = true\n[tools.sql_query]\ncache_ttl_ms = 0\n"),
        )
        .expect("config");
        let client = connect(Some(&config)).await;
        let started = Instant::now();
        let result = call(&client, "sql_query", json!({"sql": "SELECT 1"})).await;
        let elapsed = started.elapsed();
        assert!(is_error(&result));
        let message = text(&result);
        let address = url
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        assert!(
            message.contains(&format!("nothing listens on {address}")),
            "{message}"
        );
        let meta = result.meta.clone().expect("_meta");
        assert_eq!(
            meta.get("datamcp").expect("datamcp")["execution"]["attempts"],
            1,
            "a refused port is not retried"
        );
        assert!(
            elapsed < Duration::from_secs(2),
            "took {elapsed:?} (the connect timeout is 5 s)"
        );
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn a_full_pool_says_so_instead_of_blaming_the_server() {
    let w = std::sync::Arc::new(warehouses(
        &format!("{PG}/test"),
        "max_connections = 4\nconnect_timeout_ms = 1000",
    ));
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let w = std::sync::Arc::clone(&w);
            tokio::spawn(async move { run(&w, "SELECT pg_sleep(3)", &[], 1 << 20).await })
        })
        .collect();
    let mut finished = 0;
    let mut busy = Vec::new();
    for call in calls {
        match call.await.expect("task") {
            Ok(_) => finished += 1,
            Err(error) => busy.push(error),
        }
    }
    assert_eq!(finished, 4, "{busy:?}");
    assert_eq!(busy.len(), 12);
    for error in &busy {
        let message = error.to_string();
        assert!(
            message.starts_with("all 4 connections of warehouse 'w' are busy; waited "),
            "{message}"
        );
        assert!(message.contains("raise max_connections"), "{message}");
        assert!(!error.is_transient(), "{message}");
    }
    w.close().await;
}

#[tokio::test]
async fn a_nul_byte_is_invalid_input_not_a_connection_failure() {
    let w = warehouses(&format!("{PG}/test"), "");
    let error = run(&w, "SELECT $1::text", &[json!("a\u{0}b")], 1 << 20)
        .await
        .expect_err("NUL in a parameter");
    assert!(
        matches!(&error, ToolError::InvalidArguments(m) if m.contains("parameter 1 contains a NUL byte")),
        "{error:?}"
    );
    let error = run(&w, "SELECT 1\u{0}", &[], 1 << 20)
        .await
        .expect_err("NUL in the SQL");
    assert!(matches!(error, ToolError::InvalidArguments(_)), "{error:?}");
    // The connection is fine for the next caller.
    assert_eq!(rows(&w, "SELECT 1").await, json!([[1]]));
    w.close().await;
}

/// Resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        / 1024
}

#[tokio::test]
async fn a_value_over_the_byte_budget_fails_before_its_memory_is_spent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "demo = true\n[warehouses.pg]\nurl = \"{PG}/test\"\nallow_privileged_account = true\n[warehouses.my]\nurl = \"{MY}/test\"\nallow_privileged_account = true\n[tools.sql_query]\ncache_ttl_ms = 0\n"
        ),
    )
    .expect("config");
    let (client, pid) =
        connect_with(Some(&config), rmcp::model::ProtocolVersion::V_2025_11_25).await;
    for (warehouse, sql) in [
        ("pg", "SELECT repeat('x', 500000000) AS big"),
        (
            "pg",
            "SELECT g, repeat('x', 2000000) FROM generate_series(1, 3) AS g",
        ),
        ("demo", "SELECT zeroblob(500000000)"),
        ("demo", "SELECT randomblob(500000000)"),
        ("demo", "SELECT printf('%.*c', 500000000, 'x')"),
        ("my", "SELECT repeat('x', 2000000) AS big"),
    ] {
        let started = Instant::now();
        let result = call(
            &client,
            "sql_query",
            json!({"sql": sql, "warehouse": warehouse}),
        )
        .await;
        let message = text(&result);
        assert!(is_error(&result), "{sql}: {message}");
        assert!(
            message.contains("larger than the byte budget of 1048576 bytes"),
            "{sql}: {message}"
        );
        // PostgreSQL itself takes about 3 s to build the 500 MB value it then refuses to send.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{sql} took {:?}",
            started.elapsed()
        );
        let rss = rss_mib(pid);
        assert!(rss < 150, "{sql}: the server holds {rss} MiB");
    }
    // The budget is the call's: a larger one lets a larger value through.
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT length(repeat('x', 3000000)) AS n, repeat('y', 3000000) AS big", "warehouse": "pg", "max_bytes": 8_000_000}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["rows"][0][0], 3_000_000);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn sql_profile_keeps_to_the_byte_budget_and_says_so() {
    let client = connect(None).await;
    // 40 distinct values of 100 kB each: their top values alone are 4 MB.
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
               SELECT i, printf('%.*c', 100000, 'x') || i AS big FROM n";
    let result = call(&client, "sql_profile", json!({"sql": sql, "top": 50})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    assert_eq!(body["truncated"], true, "{}", text(&result));
    let answer = serde_json::to_vec(&body).expect("json").len();
    assert!(answer < 1_200_000, "the profile is {answer} bytes");
    let warnings = body["warnings"].to_string();
    assert!(warnings.contains("byte budget"), "{warnings}");

    let result = call(
        &client,
        "sql_profile",
        json!({"sql": sql, "top": 50, "max_bytes": 8_000_000}),
    )
    .await;
    let body = structured(&result);
    assert_eq!(body["truncated"], false);
    assert_eq!(
        body["columns"][1]["top_values"].as_array().map(Vec::len),
        Some(40)
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn pool_figures_are_served_at_metrics() {
    let sandbox = Sandbox::new(&format!(
        "[warehouses.pg]\nurl = \"{PG}/test\"\nallow_privileged_account = true\nmax_connections = 1\nconnect_timeout_ms = 10000\n\n[tools.sql_query]\ntimeout_ms = 4000\nmax_attempts = 1\ncache_ttl_ms = 0\n"
    ));
    let server = HttpServer::start(Some(&sandbox.config()), &[], &[]);
    let series = |name: &str| format!("{name}{{warehouse=\"pg\",engine=\"postgres\"}}");
    let client = connect_http(&server.url("/mcp"), None).await;
    let result = call(
        &client,
        "sql_query",
        json!({"sql": "SELECT 1", "warehouse": "pg"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(
        server
            .metric(&series("datamcp_pool_connections_max"), None)
            .await,
        1.0
    );
    // A connection goes back to the pool just after its call answers.
    let idle = eventually(5, || async {
        server
            .metric(&series("datamcp_pool_connections_idle"), None)
            .await
            == 1.0
    })
    .await;
    assert!(idle, "the connection never became idle");
    assert_eq!(
        server
            .metric(&series("datamcp_pool_connections_in_use"), None)
            .await,
        0.0
    );

    // Three slow calls on one connection: one runs, two wait.
    let slow = "SELECT count(*) FROM generate_series(1, 100000000000)";
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url("/mcp");
            tokio::spawn(async move {
                let client = connect_http(&url, None).await;
                call(
                    &client,
                    "sql_query",
                    json!({"sql": slow, "warehouse": "pg"}),
                )
                .await
            })
        })
        .collect();
    let busy = eventually(5, || async {
        server
            .metric(&series("datamcp_pool_connections_in_use"), None)
            .await
            == 1.0
            && server
                .metric(&series("datamcp_pool_calls_waiting"), None)
                .await
                == 2.0
    })
    .await;
    assert!(
        busy,
        "one connection in use and two calls waiting were never seen"
    );
    for call in calls {
        call.await.expect("call task");
    }
    let settled = eventually(5, || async {
        server
            .metric(&series("datamcp_pool_calls_waiting"), None)
            .await
            == 0.0
            && server
                .metric(&series("datamcp_pool_connections_in_use"), None)
                .await
                == 0.0
    })
    .await;
    assert!(settled, "the gauges did not return to rest");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn postgres_queries_keep_their_order_names_and_trailing_comments_under_the_row_check() {
    // PostgreSQL queries run as a subquery whose rows are measured; the wrapping must not show.
    let w = warehouses(&format!("{PG}/test"), "");
    let warehouse = w.get(None).expect("warehouse");
    for (sql, columns, expected) in [
        (
            "SELECT g AS a, g * 2 AS a FROM generate_series(1, 3) AS g ORDER BY 1 DESC; -- done",
            vec!["a", "a"],
            json!([[3, 6], [2, 4], [1, 2]]),
        ),
        (
            "VALUES (1, 'x'), (2, 'y');\n",
            vec!["column1", "column2"],
            json!([[1, "x"], [2, "y"]]),
        ),
        ("SELECT 1 AS one -- no semicolon", vec!["one"], json!([[1]])),
    ] {
        let guarded = datamcp::sql::guard::check(sql, warehouse.dialect())
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let ctx = CallContext::new(
            "test".into(),
            Duration::from_secs(20),
            CancellationToken::new(),
            None,
        );
        let result = warehouse
            .query(
                &guarded,
                &[],
                ReadLimits {
                    rows: 100,
                    bytes: 1 << 20,
                },
                &ctx,
            )
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, columns, "{sql}");
        assert_eq!(json!(result.rows), expected, "{sql}");
    }
    w.close().await;
}

#[tokio::test]
async fn a_full_sqlite_pool_says_so_too() {
    let url = format!("sqlite://{}", demo_db().display());
    let w = std::sync::Arc::new(warehouses(
        &url,
        "max_connections = 1\nconnect_timeout_ms = 300",
    ));
    let stop = CancellationToken::new();
    let endless = {
        let (w, stop) = (std::sync::Arc::clone(&w), stop.clone());
        tokio::spawn(async move {
            let warehouse = w.get(None).expect("warehouse");
            let ctx = CallContext::new("endless".into(), Duration::from_secs(20), stop, None);
            let sql = GuardedSql::bypassing_the_guard_in_tests(ENDLESS, warehouse.dialect());
            warehouse
                .query(&sql, &[], ReadLimits::rows(1), &ctx)
                .await
                .map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let error = run(&w, "SELECT 1", &[], 1 << 20)
        .await
        .expect_err("the only connection is busy");
    stop.cancel();
    let message = error.to_string();
    assert!(
        message.starts_with("all 1 connections of warehouse 'w' are busy; waited 300 ms"),
        "{message}"
    );
    assert!(!error.is_transient(), "{message}");
    assert!(
        endless.await.expect("task").is_err(),
        "the endless query was cancelled"
    );
    assert_eq!(rows(&w, "SELECT 1").await, json!([[1]]));
}

/// Runs `sql` on `w` through the guard, as a client's call does, with `rows` at most and a
/// call deadline of `deadline`.
async fn guarded(
    warehouses: &Warehouses,
    sql: &str,
    params: &[Value],
    rows: usize,
    deadline: Duration,
) -> Result<QueryRows, ToolError> {
    let warehouse = warehouses.get(None).expect("warehouse");
    let guarded = datamcp::sql::guard::check(sql, warehouse.dialect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let ctx = CallContext::new("test".into(), deadline, CancellationToken::new(), None);
    let limits = ReadLimits {
        rows,
        bytes: 1 << 20,
    };
    warehouse.query(&guarded, params, limits, &ctx).await
}

#[tokio::test]
async fn postgres_plain_reads_on_one_connection_follow_table_changes_and_parameter_types() {
    // A plain read runs as a prepared statement cached on the connection: a table that gained a
    // column, or the same text bound with other JSON types, must not meet a stale one.
    let w = warehouses(&format!("{PG}/test"), "max_connections = 1");
    let table = format!("it_{}_shape", std::process::id());
    pg_admin(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (a int); INSERT INTO {table} VALUES (1)"
    ))
    .await;
    let select = format!("SELECT * FROM {table}");
    let long = Duration::from_secs(20);
    let before = guarded(&w, &select, &[], 10, long).await.expect("before");
    assert_eq!(json!(before.rows), json!([[1]]));
    pg_admin(&format!(
        "ALTER TABLE {table} ADD COLUMN b text DEFAULT 'x'"
    ))
    .await;
    let after = guarded(&w, &select, &[], 10, long).await.expect("after");
    assert_eq!(json!(after.rows), json!([[1, "x"]]));
    assert_eq!(after.columns.len(), 2);

    for (param, expected) in [
        (json!(7), json!([[7]])),
        (json!("seven"), json!([["seven"]])),
        (json!(true), json!([[true]])),
        (json!(7.5), json!([[7.5]])),
        (json!(8), json!([[8]])),
    ] {
        let result = guarded(&w, "SELECT $1 AS v", std::slice::from_ref(&param), 10, long)
            .await
            .unwrap_or_else(|e| panic!("{param}: {e}"));
        assert_eq!(json!(result.rows), expected, "{param}");
    }

    // No rows still names the columns; the row cap still says more exist.
    let empty = guarded(&w, &format!("{select} WHERE a < 0"), &[], 10, long)
        .await
        .expect("empty");
    assert!(empty.rows.is_empty());
    assert_eq!(empty.columns.len(), 2);
    let capped = guarded(
        &w,
        "SELECT g FROM generate_series(1, 50) AS g",
        &[],
        10,
        long,
    )
    .await
    .expect("capped");
    assert!(capped.truncated && capped.rows.len() == 10);
    pg_admin(&format!("DROP TABLE {table}")).await;
    w.close().await;
}

#[tokio::test]
async fn server_time_limits_follow_each_calls_deadline_on_one_connection() {
    // The session's time limit is set once and kept while it fits: a call with a short
    // deadline lowers it, and the next call with a long one must not inherit the short one.
    for url in [format!("{PG}/test"), format!("{MY}/test")] {
        let w = warehouses(&url, "max_connections = 1\nstatement_timeout_ms = 20000");
        // Two seconds or so of work from allow-listed functions (sleeping ones are never allowed),
        // well past the short call's limit of 0.2 s plus the half second of slack datamcp gives it.
        let sleep = if url.starts_with("postgres") {
            "SELECT count(*) FROM generate_series(1, 30000000)"
        } else {
            "SELECT count(*) FROM seq_1_to_8000 a, seq_1_to_8000 b WHERE (a.seq * b.seq) % 7 = 3"
        };
        let short = guarded(&w, sleep, &[], 10, Duration::from_millis(200)).await;
        assert!(
            short.is_err(),
            "{url}: the short deadline did not stop the query"
        );
        let long = guarded(&w, sleep, &[], 10, Duration::from_secs(20)).await;
        assert!(
            long.is_ok(),
            "{url}: the long call inherited a short limit: {long:?}"
        );
        w.close().await;
    }
}
