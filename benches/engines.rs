//! The tiny call on each server engine, measured in-process against a bare sqlx pool.
//!
//! Run with `cargo bench --bench engines` (PostgreSQL on 127.0.0.1:5432, user `postgres`,
//! database `test`; MariaDB/MySQL on 127.0.0.1:3306, user `root`, database `test`; override with
//! `BENCH_PG_URL` / `BENCH_MY_URL`). For each engine it runs `SELECT 1` sequentially, first
//! through a bare sqlx pool (`sqlx::query("SELECT 1").fetch_all(&pool)`: a cached prepared
//! statement, no safety layer; with sqlx's default ping before each acquire, then without, then
//! without but with the server-side time limit datamcp sets, as MariaDB's `max_statement_time`),
//! then through datamcp's warehouse (the guard,
//! the read-only session, the time limit, the bounded read, the cancel watcher), and reports
//! p50/p90 latency and the CPU time of this process per call. Both run on a current-thread
//! runtime, as `datamcp serve` over stdio does, so the CPU figure is the one thread's.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::time::{Duration, Instant};

use datamcp::sql::config::SqlConfig;
use datamcp::sql::warehouse::Warehouses;
use datamcp::table::ReadLimits;
use datamcp::tools::CallContext;
use tokio_util::sync::CancellationToken;

const CALLS: usize = 2_000;
const WARMUP: usize = 200;

/// CPU time this thread has spent on a CPU, in nanoseconds (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Figures {
    p50: Duration,
    p90: Duration,
    cpu_per_call: Duration,
}

async fn measure<F, Fut>(mut call: F) -> Figures
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..WARMUP {
        call().await;
    }
    let mut latencies = Vec::with_capacity(CALLS);
    let cpu = thread_cpu_ns();
    for _ in 0..CALLS {
        let started = Instant::now();
        call().await;
        latencies.push(started.elapsed());
    }
    let cpu = thread_cpu_ns().saturating_sub(cpu);
    latencies.sort();
    Figures {
        p50: latencies[CALLS / 2],
        p90: latencies[CALLS * 9 / 10],
        cpu_per_call: Duration::from_nanos(cpu / CALLS as u64),
    }
}

fn report(name: &str, label: &str, bare: &Figures, datamcp: &Figures) {
    for (label, f) in [(label, bare), ("datamcp warehouse", datamcp)] {
        println!(
            "{name:<8} {label:<18} p50 {:>7.1} µs  p90 {:>7.1} µs  CPU/call {:>6.1} µs",
            f.p50.as_secs_f64() * 1e6,
            f.p90.as_secs_f64() * 1e6,
            f.cpu_per_call.as_secs_f64() * 1e6
        );
    }
    println!(
        "{name:<8} factor ({label} / datamcp): p50 {:.2}, CPU {:.2}",
        bare.p50.as_secs_f64() / datamcp.p50.as_secs_f64(),
        bare.cpu_per_call.as_secs_f64() / datamcp.cpu_per_call.as_secs_f64()
    );
}

async fn through_datamcp(url: &str) -> Figures {
    let text = format!(
        "[warehouses.w]\nurl = \"{url}\"\nallow_privileged_account = true\nmax_connections = 4\n"
    );
    let config = SqlConfig::parse(&text, "bench.toml").expect("config");
    let warehouses = Warehouses::new(&config, &std::env::temp_dir()).expect("warehouses");
    let warehouse = warehouses.get(None).expect("warehouse");
    let limits = ReadLimits {
        rows: 200,
        bytes: 1 << 20,
    };
    let figures = measure(|| async {
        let ctx = CallContext::new(
            "bench".into(),
            Duration::from_secs(30),
            CancellationToken::new(),
            None,
        );
        let sql = warehouse.guard("SELECT 1").expect("guard");
        let rows = warehouse
            .query(&sql, &[], limits, &ctx)
            .await
            .expect("query");
        assert_eq!(rows.rows.len(), 1);
    })
    .await;
    warehouses.close().await;
    figures
}

/// A bare sqlx pool: as sqlx sets it up (`test_before_acquire` on: a ping per call), or without
/// the ping, as datamcp runs.
/// `setup`, when given, runs on each new connection (the server-side time limit datamcp sets).
async fn bare<DB: sqlx::Database>(url: &str, ping: bool, setup: Option<&'static str>) -> Figures
where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let mut options = sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(4)
        .test_before_acquire(ping);
    if let Some(setup) = setup {
        options = options.after_connect(move |conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(setup).execute(conn).await?;
                Ok(())
            })
        });
    }
    let pool = options.connect(url).await.expect("connect");
    let figures = measure(|| async {
        let rows = sqlx::query("SELECT 1")
            .fetch_all(&pool)
            .await
            .expect("query");
        assert_eq!(rows.len(), 1);
    })
    .await;
    pool.close().await;
    figures
}

async fn engine<DB: sqlx::Database>(name: &str, url: &str, time_limit: &'static str)
where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let pinged = bare::<DB>(url, true, None).await;
    let unpinged = bare::<DB>(url, false, None).await;
    let limited = bare::<DB>(url, false, Some(time_limit)).await;
    let datamcp = through_datamcp(url).await;
    report(name, "bare sqlx pool", &pinged, &datamcp);
    report(name, "bare, no ping", &unpinged, &datamcp);
    report(name, "bare, time limit", &limited, &datamcp);
}

fn main() {
    let pg = std::env::var("BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let my =
        std::env::var("BENCH_MY_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        engine::<sqlx::Postgres>("postgres", &pg, "SET statement_timeout = 30000").await;
        engine::<sqlx::MySql>("mysql", &my, "SET SESSION max_statement_time = 30").await;
    });
}
