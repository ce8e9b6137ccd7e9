//! The guard against a corpus of 250+ statements across the three dialects (tests/data), and the
//! database-side layer measured on its own: every refused case is also run with the guard
//! bypassed, and what each database lets through is compared with the documented list.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use datamcp::sql::config::SqlConfig;
use datamcp::sql::guard::{self, Dialect, GuardedSql};
use datamcp::sql::warehouse::Warehouses;
use datamcp::tools::{CallContext, ToolError};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

struct Case {
    dialect: Dialect,
    allow: bool,
    family: String,
    probe: bool,
    sql: String,
}

fn corpus() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/guard_corpus.tsv");
    let text = std::fs::read_to_string(path).expect("read corpus");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            assert_eq!(fields.len(), 5, "malformed corpus line: {line}");
            Case {
                dialect: match fields[0] {
                    "sqlite" => Dialect::Sqlite,
                    "postgres" => Dialect::Postgres,
                    "mysql" => Dialect::Mysql,
                    other => panic!("unknown dialect {other}"),
                },
                allow: fields[1] == "allow",
                family: fields[2].to_owned(),
                probe: fields[3] == "probe",
                sql: fields[4].to_owned(),
            }
        })
        .collect()
}

#[test]
fn the_guard_decides_every_corpus_case_as_recorded() {
    let cases = corpus();
    assert!(
        cases.len() >= 200,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut wrong = Vec::new();
    for case in &cases {
        let verdict = guard::check(&case.sql, case.dialect);
        if verdict.is_ok() != case.allow {
            wrong.push(format!(
                "{} [{}] {:?}: expected {}, got {:?}",
                case.dialect.name(),
                case.family,
                case.sql,
                if case.allow { "allow" } else { "refuse" },
                verdict.err()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
        let families: BTreeSet<bool> = cases
            .iter()
            .filter(|c| c.dialect == dialect)
            .map(|c| c.allow)
            .collect();
        assert_eq!(
            families.len(),
            2,
            "{} needs allowed and refused cases",
            dialect.name()
        );
    }
}

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const MY: &str = "mysql://root@127.0.0.1:3306";

/// Runs `sql` through a warehouse's engine with the guard bypassed: `Ok` when the database
/// accepted it, its refusal otherwise.
async fn database_accepts(
    warehouses: &Warehouses,
    sql: &str,
    dialect: Dialect,
) -> Result<(), String> {
    let warehouse = warehouses.get(None).expect("warehouse");
    let ctx = CallContext::new(
        "probe".into(),
        Duration::from_secs(10),
        CancellationToken::new(),
        None,
    );
    let unchecked = GuardedSql::bypassing_the_guard_in_tests(sql, dialect);
    let limits = datamcp::table::ReadLimits::rows(10);
    // Only the database's verdict on the statement counts: a connection that could not be had
    // (the server busy with other clients' tests) is tried again, not counted as a refusal.
    let mut last = String::new();
    for _ in 0..20 {
        match warehouse.query(&unchecked, &[], limits, &ctx).await {
            Ok(_) => return Ok(()),
            Err(ToolError::Upstream {
                transient: true,
                message,
            }) => {
                last = message;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    Err(last)
}

fn warehouses(url: &str) -> Warehouses {
    let config = SqlConfig::parse(
        // The probes run as superuser to measure the worst case the README warns about.
        &format!(
            "[warehouses.probe]\nurl = \"{url}\"\nmax_connections = 1\nallow_privileged_account = true\n"
        ),
        "probe.toml",
    )
    .expect("config");
    Warehouses::new(&config, &std::env::temp_dir()).expect("warehouses")
}

async fn reset_postgres(schema: &str) {
    let mut conn = sqlx::PgConnection::connect(PG).await.expect("connect");
    let sql = format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema};
         CREATE TABLE probe (id int PRIMARY KEY, note text); INSERT INTO probe VALUES (1, 'a'), (2, 'b');
         CREATE SEQUENCE probe_seq; CREATE MATERIALIZED VIEW probe_mv AS SELECT * FROM probe;
         CREATE PROCEDURE probe_proc() LANGUAGE sql AS $$ DELETE FROM {schema}.probe $$;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("reset");
}

async fn reset_mysql(database: &str) {
    let mut conn = sqlx::MySqlConnection::connect(MY).await.expect("connect");
    for sql in [
        format!("DROP DATABASE IF EXISTS {database}"),
        // The DCL probe creates this user when MariaDB lets it through; every run starts
        // without it, so the probe's outcome does not depend on an earlier run.
        "DROP USER IF EXISTS 'datamcp_probe_user'@'localhost'".to_owned(),
        format!("CREATE DATABASE {database}"),
        format!("CREATE TABLE {database}.probe (id int PRIMARY KEY, note text)"),
        format!("INSERT INTO {database}.probe VALUES (1, 'a'), (2, 'b')"),
        format!("CREATE SEQUENCE {database}.probe_seq"),
        format!("CREATE PROCEDURE {database}.probe_proc() DELETE FROM {database}.probe"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("reset");
    }
}

fn reset_sqlite(path: &Path) {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).expect("create");
    conn.execute_batch(
        "CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO probe VALUES (1, 'a'), (2, 'b');",
    )
    .expect("fixture");
}

/// Files a probe may make the database write. Each test process uses names of its own, so runs
/// side by side cannot meet each other's files.
const PROBE_FILES: [&str; 6] = [
    "attached.db",
    "vacuum.db",
    "writefile",
    "copy.csv",
    "outfile",
    "dumpfile",
];

fn probe_file(name: &str) -> String {
    format!("/tmp/datamcp_probe_{}_{name}", std::process::id())
}

/// The corpus names files `/tmp/datamcp_probe_<name>`, advisory lock 42 and named lock 'x';
/// this run's own names replace them, so runs side by side (and other clients of the same
/// servers) cannot block or see each other's probes.
fn with_own_files(sql: &str) -> String {
    let pid = std::process::id();
    sql.replace("/tmp/datamcp_probe_", &format!("/tmp/datamcp_probe_{pid}_"))
        .replace("lock(42)", &format!("lock({pid})"))
        .replace("('x'", &format!("('datamcp_probe_{pid}'"))
}

fn remove_probe_files() {
    for name in PROBE_FILES {
        let _ = std::fs::remove_file(probe_file(name));
    }
}

#[tokio::test]
async fn the_database_side_layer_alone_refuses_all_but_the_documented_holes() {
    let schema = format!("it_{}_probe", std::process::id());
    let database = schema.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = dir.path().join("probe.db");
    let pg_url = format!("{PG}?options=-c%20search_path%3D{schema}");
    let my_url = format!("{MY}/{database}");

    let expected_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/database_side_holes.txt");
    let known_holes: BTreeSet<String> = std::fs::read_to_string(&expected_path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut accepted = BTreeSet::new();
    let mut refusals = Vec::new();
    for case in corpus().into_iter().filter(|c| !c.allow && c.probe) {
        let line = format!("{}: {}", case.dialect.name(), case.sql);
        // A known hole refused once may have met another test's lock (the account tests
        // create MariaDB users at the same time): it must be refused three times running.
        let mut attempts = 0;
        let accepted_here = loop {
            attempts += 1;
            remove_probe_files();
            let sql = with_own_files(&case.sql);
            let outcome = match case.dialect {
                Dialect::Sqlite => {
                    reset_sqlite(&sqlite);
                    let warehouses = warehouses(&format!("sqlite://{}", sqlite.display()));
                    let before = std::fs::read(&sqlite).expect("read");
                    let ok = database_accepts(&warehouses, &sql, case.dialect).await;
                    let changed = std::fs::read(&sqlite).expect("read") != before
                        || ["attached.db", "vacuum.db", "writefile"]
                            .iter()
                            .any(|name| Path::new(&probe_file(name)).exists());
                    assert!(
                        !changed,
                        "SQLite's session layer let {:?} change something",
                        case.sql
                    );
                    ok
                }
                // A fresh pool per case, closed afterwards: a statement that slipped through may
                // leave session state (table locks, handlers) that would block the next reset.
                Dialect::Postgres => {
                    reset_postgres(&schema).await;
                    let pg = warehouses(&pg_url);
                    let ok = database_accepts(&pg, &sql, case.dialect).await;
                    pg.close().await;
                    ok
                }
                Dialect::Mysql => {
                    reset_mysql(&database).await;
                    let my = warehouses(&my_url);
                    let ok = database_accepts(&my, &sql, case.dialect).await;
                    my.close().await;
                    ok
                }
            };
            if outcome.is_ok() || !known_holes.contains(&line) || attempts == 3 {
                break outcome;
            }
        };
        match accepted_here {
            Ok(()) => {
                accepted.insert(line);
            }
            Err(reason) => refusals.push(format!("{line} -> {reason}")),
        }
    }
    remove_probe_files();
    let mut conn = sqlx::PgConnection::connect(PG).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut conn)
    .await
    .expect("cleanup");
    let mut conn = sqlx::MySqlConnection::connect(MY).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database}"
    )))
    .execute(&mut conn)
    .await
    .expect("cleanup");

    if std::env::var_os("DATAMCP_RECORD_HOLES").is_some() {
        let text: String = accepted.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&expected_path, text).expect("record");
    }
    let expected: BTreeSet<String> = std::fs::read_to_string(&expected_path)
        .expect("tests/data/database_side_holes.txt")
        .lines()
        .map(str::to_owned)
        .collect();
    let newly_accepted: Vec<_> = accepted.difference(&expected).collect();
    let newly_refused: Vec<_> = expected.difference(&accepted).collect();
    assert!(
        newly_accepted.is_empty() && newly_refused.is_empty(),
        "what the databases accept without the guard changed; now accepted: {newly_accepted:?}; \
         now refused: {newly_refused:?}. Update tests/data/database_side_holes.txt \
         (DATAMCP_RECORD_HOLES=1) and the security section of README.md. The refusals:\n{}",
        refusals.join("\n")
    );
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    for hole in &expected {
        assert!(
            readme.contains(&format!("`{hole}`")),
            "README.md does not list the hole `{hole}`"
        );
    }
}
