//! The SQL guard in process: throughput on a mix of analytics queries, what the largest
//! statements it accepts cost, and how fast it refuses oversized ones.
//!
//! Run with `cargo bench --bench guard`. Memory figures are the process's peak RSS growth while
//! one statement is checked (`/proc/self/clear_refs` resets the peak first).
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

#[allow(dead_code)] // only the memory reader is used here
mod common;

use std::time::{Duration, Instant};

use datamcp::sql::guard::{self, Dialect, Settings};

const ANALYTICS: &[&str] = &[
    "SELECT 1",
    "SELECT id, name, email FROM customers WHERE country = 'DE' ORDER BY signup_date DESC LIMIT 20",
    "SELECT status, count(*) AS n, sum(total) AS revenue FROM orders GROUP BY status ORDER BY revenue DESC",
    "SELECT c.country, date(o.ordered_at) AS day, sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id \
     WHERE o.ordered_at >= '2024-01-01' AND o.status NOT IN ('cancelled', 'returned') GROUP BY 1, 2 HAVING sum(o.total) > 1000",
    "WITH monthly AS (SELECT strftime('%Y-%m', ordered_at) AS month, sum(total) AS revenue FROM orders GROUP BY 1) \
     SELECT month, revenue, revenue - lag(revenue) OVER (ORDER BY month) AS change FROM monthly ORDER BY month",
    "SELECT p.category, p.name, sum(i.quantity) AS units, rank() OVER (PARTITION BY p.category ORDER BY sum(i.quantity) DESC) AS r \
     FROM order_items i JOIN products p ON p.id = i.product_id GROUP BY p.category, p.name",
    "SELECT customer_id FROM orders WHERE total > (SELECT avg(total) FROM orders) \
     AND customer_id IN (SELECT id FROM customers WHERE segment = 'enterprise') \
     UNION SELECT customer_id FROM events WHERE event_type = 'checkout'",
    "SELECT e.event_type, count(DISTINCT e.customer_id), min(e.occurred_at), max(e.occurred_at) FROM events e \
     LEFT JOIN customers c ON c.id = e.customer_id WHERE c.id IS NULL OR c.marketing_opt_in GROUP BY e.event_type",
    "SELECT CASE WHEN total < 50 THEN 'small' WHEN total < 500 THEN 'medium' ELSE 'large' END AS bucket, count(*), \
     avg(coalesce(discount, 0)) FROM orders GROUP BY bucket",
    "EXPLAIN SELECT * FROM orders WHERE customer_id = 42",
];

fn guard_throughput() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
        let mix: Vec<String> = ANALYTICS
            .iter()
            .map(|sql| {
                if dialect == Dialect::Postgres {
                    sql.replace(
                        "strftime('%Y-%m', ordered_at)",
                        "to_char(ordered_at, 'YYYY-MM')",
                    )
                } else {
                    (*sql).to_owned()
                }
            })
            .collect();
        let started = Instant::now();
        let mut checked = 0u64;
        while started.elapsed() < Duration::from_secs(2) {
            for sql in &mix {
                std::hint::black_box(guard::check(sql, dialect).expect("allowed"));
                checked += 1;
            }
        }
        println!(
            "guard throughput ({}): {:.0} queries/s on one core (mix of {} analytics queries)",
            dialect.name(),
            checked as f64 / started.elapsed().as_secs_f64(),
            ANALYTICS.len()
        );
    }
}

/// Time and peak memory growth of one check of `sql`.
fn cost(sql: &str, dialect: Dialect) -> (Duration, f64, Result<(), guard::GuardError>) {
    let pid = std::process::id();
    // Writing 5 resets the peak RSS (VmHWM) to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = common::memory_kib(pid, "VmRSS");
    let started = Instant::now();
    let verdict = guard::check(sql, dialect).map(|_| ());
    let elapsed = started.elapsed();
    let peak = common::memory_kib(pid, "VmHWM");
    (
        elapsed,
        peak.saturating_sub(before) as f64 / 1024.0,
        verdict,
    )
}

fn report(what: &str, sql: &str, dialect: Dialect) {
    let (elapsed, mib, verdict) = cost(sql, dialect);
    println!(
        "{what} ({} bytes): {} in {:.2} ms, peak memory +{mib:.1} MiB",
        sql.len(),
        match verdict {
            Ok(()) => "accepted".to_owned(),
            Err(error) => format!(
                "refused ({})",
                error.to_string().split(';').next().unwrap_or("")
            ),
        },
        elapsed.as_secs_f64() * 1000.0,
    );
}

fn chain(separator: &str, terms: usize) -> String {
    let mut sql = String::from("SELECT 1");
    for _ in 1..terms {
        sql.push_str(separator);
        sql.push('1');
    }
    sql
}

fn bounds() {
    let limits = Settings::default();
    report(
        "largest expression accepted, 1+1+… at the depth limit",
        &chain("+", limits.max_depth - 1),
        Dialect::Postgres,
    );
    report(
        "longest AND chain accepted",
        &chain(" AND 1 = ", limits.max_depth / 2 - 1),
        Dialect::Postgres,
    );
    let widest = (limits.max_tokens - 1) / 2;
    report(
        &format!("widest SELECT accepted, {widest} columns"),
        &format!("SELECT {}", vec!["1"; widest].join(",")),
        Dialect::Postgres,
    );
    report(
        "refused: 40,000-term 1+1+… chain",
        &chain("+", 40_000),
        Dialect::Postgres,
    );
    report(
        "refused: 3.8 MB SELECT 1,1,…",
        &format!("SELECT {}", vec!["1"; 1_900_000].join(",")),
        Dialect::Postgres,
    );
    report(
        "refused: 250 KB SELECT 1,1,… (under the byte limit, over the token limit)",
        &format!("SELECT {}", vec!["1"; 125_000].join(",")),
        Dialect::Postgres,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    guard_throughput();
    bounds();
}
