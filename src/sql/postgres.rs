//! PostgreSQL warehouses: read-only sessions, a server-side timeout, and queries that really stop.
//!
//! Every session is opened with `default_transaction_read_only = on`; every query runs inside
//! `BEGIN READ ONLY … ROLLBACK` with a transaction-local `statement_timeout`, through the extended
//! protocol (which accepts exactly one statement). Rows are read through a cursor, so a capped
//! read fetches `max_rows + 1` rows instead of streaming the whole result. When the call is
//! cancelled or its deadline passes, a watcher asks the server to cancel the backend's query, and
//! the connection is closed rather than returned to the pool.

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column as _, Postgres, Row as _, TypeInfo as _};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::account::AccountCheck;
use super::session::{ServerSettings, Session, enforce_account_policy, watching};

use super::guard::GuardedSql;
use super::types::{Column, ReadLimits, RowBudget};
use super::warehouse::QueryRows;
use crate::tools::ToolError;

/// A lazily connecting pool of read-only sessions.
pub struct PostgresEngine {
    settings: ServerSettings,
    account: OnceCell<AccountCheck>,
    pool: PgPool,
    place: String,
}

impl PostgresEngine {
    /// Parses the URL and prepares the pool; nothing connects yet.
    pub fn new(settings: &ServerSettings) -> Result<Self, String> {
        let mut options = PgConnectOptions::from_str(&settings.url)
            .map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?
            // The session itself refuses writes, even outside our explicit transaction.
            .options([("default_transaction_read_only", "on")]);
        // sqlx logs slow statements with their text; SQL must not reach the logs.
        options = sqlx::ConnectOptions::disable_statement_logging(options);
        if options.get_application_name().is_none() {
            // Lets DBAs find our sessions in pg_stat_activity; a URL may name its own.
            options = options.application_name("datamcp");
        }
        let place = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            // A dead connection fails its query with a transient error and is closed; the
            // retry policy then gets a fresh one. A ping on every acquire would cost a round trip.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        Ok(PostgresEngine {
            settings: settings.clone(),
            account: OnceCell::new(),
            pool,
            place,
        })
    }

    /// What the account may do, once the first query has inspected it.
    pub fn account(&self) -> Option<&AccountCheck> {
        self.account.get()
    }

    /// Inspects the account on first use; refuses when it can write and the config requires a
    /// read-only account, warns once otherwise.
    async fn check_account(&self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        let inspect = async {
            let rows = sqlx::query(super::account::POSTGRES)
                .fetch_all(&mut *conn)
                .await?;
            let values: Vec<Vec<Value>> = rows.iter().map(row_values).collect::<Result<_, _>>()?;
            Ok(super::account::postgres(
                values.first().map(Vec::as_slice).unwrap_or(&[]),
            ))
        };
        enforce_account_policy(&self.settings, &self.account, inspect).await
    }

    /// Asks the catalog about functions the guard left to it.
    pub async fn judge_functions(
        &self,
        functions: &[&super::guard::FunctionName],
        warehouse: &str,
    ) -> Result<Vec<(super::guard::FunctionName, super::function_check::Verdict)>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        super::function_check::judge_postgres(&mut conn, functions, warehouse).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `host:port/database`, for messages.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Runs a guarded query, reading no more than `limits` allow.
    pub async fn query(
        &self,
        sql: &GuardedSql,
        params: &[Value],
        limits: ReadLimits,
        remaining: Duration,
        cancel: &CancellationToken,
    ) -> Result<QueryRows, sqlx::Error> {
        let conn = self.pool.acquire().await?;
        let mut session = Session::new(conn);
        let conn = &mut *session.conn;
        self.check_account(conn).await?;

        // One round trip for the whole preamble: it is datamcp's own fixed SQL (the timeout is
        // our number), so the simple protocol's several statements are safe here, and only here.
        let timeout = remaining
            .min(self.settings.statement_timeout)
            .as_millis()
            .max(1);
        let preamble = format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout}; SELECT pg_backend_pid()"
        );
        let pid: i32 = sqlx::raw_sql(sqlx::AssertSqlSafe(preamble))
            .fetch_all(&mut *conn)
            .await?
            .last()
            .ok_or_else(|| sqlx::Error::Protocol("no backend pid".into()))?
            .try_get(0)?;

        let pool = self.pool.clone();
        let stop = move || Box::pin(async move { cancel_backend(&pool, pid).await }) as _;
        let (rows, fired) = watching(cancel, stop, read(conn, sql, params, limits)).await;
        let rows = rows?;
        if fired {
            return Err(sqlx::Error::Protocol("the query was cancelled".into()));
        }
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        session.clean = true;
        Ok(rows)
    }
}

async fn cancel_backend(pool: &PgPool, pid: i32) {
    // A fresh connection, not one from the pool, which may be exhausted.
    let connect = pool.connect_options();
    let result = async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect_with(&connect).await?;
        sqlx::query("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .execute(&mut conn)
            .await?;
        conn.close().await
    }
    .await;
    match result {
        Ok(()) => tracing::debug!(pid, "cancelled the query of an abandoned call"),
        Err(error) => tracing::warn!(pid, %error, "could not cancel an abandoned query"),
    }
}

/// A row's values as JSON, in column order.
fn row_values(row: &PgRow) -> Result<Vec<Value>, sqlx::Error> {
    (0..row.len())
        .map(|i| row.try_get_raw(i).map(super::pg_values::to_json))
        .collect()
}

async fn read(
    conn: &mut sqlx::PgConnection,
    sql: &GuardedSql,
    params: &[Value],
    limits: ReadLimits,
) -> Result<QueryRows, sqlx::Error> {
    let max_rows = limits.rows;
    // Preparing the query itself (cached per connection, keyed by its text) yields its columns
    // even for an empty result, and teaches the connection every type it returns before the
    // uncached FETCH below needs them.
    let columns = describe(conn, sql).await?;
    let is_query = sql.is_query();
    // A cursor bounds what the server sends; EXPLAIN cannot be declared as one, and is small.
    let statement = if is_query {
        format!("DECLARE datamcp_rows NO SCROLL CURSOR FOR {}", sql.text())
    } else {
        sql.text().to_owned()
    };
    // Not cached as prepared statements: every cursor's FETCH has the same text but its own
    // columns, and a cached description would decode one query's rows with another's types.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).persistent(false);
    for param in params {
        query = bind(query, param);
    }
    let rows: Vec<PgRow> = if is_query {
        query.execute(&mut *conn).await?;
        let fetch = format!("FETCH FORWARD {} FROM datamcp_rows", max_rows + 1);
        sqlx::query(sqlx::AssertSqlSafe(fetch))
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?
    } else {
        query.fetch_all(&mut *conn).await?
    };
    let columns = match rows.first() {
        Some(row) => row
            .columns()
            .iter()
            .map(|c| Column::new(c.name(), c.type_info().name()))
            .collect(),
        None => columns,
    };
    let mut budget = RowBudget::new(limits);
    let mut values = Vec::with_capacity(rows.len().min(max_rows));
    let mut truncated = false;
    for row in &rows {
        if !budget.has_room() {
            truncated = true;
            break;
        }
        let record = row_values(row)?;
        if !budget.admit(&record) {
            truncated = true;
            break;
        }
        values.push(record);
    }
    Ok(QueryRows {
        columns,
        rows: values,
        truncated,
        byte_limited: budget.byte_limited,
    })
}

/// The columns of an empty result: the query's own description, as the server prepares it.
async fn describe(
    conn: &mut sqlx::PgConnection,
    sql: &GuardedSql,
) -> Result<Vec<Column>, sqlx::Error> {
    use sqlx::{Executor as _, Statement as _};
    let statement = conn
        .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(
            sql.text().to_owned(),
        )))
        .await?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| Column::new(c.name(), c.type_info().name()))
        .collect())
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds a JSON value with the closest PostgreSQL type; arrays and objects are bound as JSON.
fn bind<'q>(query: PgQuery<'q>, value: &Value) -> PgQuery<'q> {
    match value {
        Value::Null => query.bind(None::<String>),
        Value::Bool(b) => query.bind(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => query.bind(i),
            None => query.bind(n.as_f64()),
        },
        Value::String(s) => query.bind(s.clone()),
        other => query.bind(other.to_string()),
    }
}

/// Sorts a driver error into a tool error for warehouse `name` at `place`.
pub fn explain(error: sqlx::Error, name: &str, place: &str, cancelled: bool) -> ToolError {
    if cancelled {
        return ToolError::Cancelled;
    }
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default().into_owned();
            let message = db.message().to_owned();
            match code.as_str() {
                // read_only_sql_transaction, insufficient_privilege
                "25006" | "42501" => ToolError::Refused(format!(
                    "warehouse '{name}' refused it ({message}); only reading is allowed"
                )),
                // query_canceled (statement_timeout)
                "57014" => ToolError::Upstream {
                    message: format!(
                        "warehouse '{name}' stopped the query at its statement timeout ({message}); narrow the query"
                    ),
                    transient: false,
                },
                // serialization_failure, deadlock_detected, admin/crash shutdown, cannot_connect_now
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" => ToolError::Upstream {
                    message: format!(
                        "warehouse '{name}' could not run the query now ({message}); try again"
                    ),
                    transient: true,
                },
                _ if code.starts_with("08") => ToolError::Upstream {
                    message: format!(
                        "warehouse '{name}' ({place}): connection failure ({message})"
                    ),
                    transient: true,
                },
                _ => ToolError::Upstream {
                    message: format!("warehouse '{name}' rejected the query: {message}"),
                    transient: false,
                },
            }
        }
        other => super::session::explain_connection_error(other, name, place),
    }
}
