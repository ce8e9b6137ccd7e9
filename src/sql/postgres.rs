//! PostgreSQL warehouses: read-only sessions, a server-side timeout, and queries that really stop.
//!
//! Every session is opened with `default_transaction_read_only = on`, the warehouse's
//! `statement_timeout`, and the lexing settings the guard assumes (`standard_conforming_strings
//! = on`, `backslash_quote = safe_encoding`) as startup options, which outrank database and role
//! defaults. A plain query (a query whose every function is on the guard's allow-list) runs alone
//! in that session's implicit read-only transaction, through the extended protocol (which accepts
//! exactly one statement), as a prepared statement cached on the connection: one round trip per
//! call. It is wrapped so that the server sends at most `max_rows + 1` rows and refuses any row
//! larger than the call's byte budget: a huge computed value is never sent. When a call's deadline
//! is nearer than the session's time limit, the limit is lowered first (and kept for the calls it
//! fits). Anything else (EXPLAIN, functions the catalog vouched for) runs inside `BEGIN READ ONLY
//! … ROLLBACK` with a transaction-local `statement_timeout`, its rows through a cursor, and the
//! ROLLBACK travels with `pg_advisory_unlock_all()` and `RESET ALL`, so no session-level lock or
//! setting outlives the call. When the call is cancelled or its deadline passes, a watcher asks
//! the server to cancel the backend's query (its pid asked once per connection), and the
//! connection is closed rather than returned to the pool.

use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt as _;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column as _, Postgres, Row as _, TypeInfo as _, ValueRef as _};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::account::AccountCheck;
use super::session::{
    EngineError, PoolFigures, ServerPool, ServerSettings, Session, enforce_account_policy,
    refuse_nul_in_sql, watching,
};

use super::guard::GuardedSql;
use super::rows::QueryRows;
use crate::table::{Column, ReadLimits, RowBudget, TooLarge};
use crate::tools::ToolError;

/// A lazily connecting pool of read-only sessions.
pub struct PostgresEngine {
    settings: ServerSettings,
    account: OnceCell<AccountCheck>,
    pool: ServerPool<Postgres>,
    place: String,
}

impl PostgresEngine {
    /// Parses the URL and prepares the pool; nothing connects yet.
    pub fn new(settings: &ServerSettings) -> Result<Self, String> {
        let mut options = PgConnectOptions::from_str(&settings.url)
            .map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?
            // The session itself refuses writes, even outside our explicit transaction; and it
            // reads string literals as the guard does, whatever the database's or role's own
            // defaults (`ALTER DATABASE … SET standard_conforming_strings = off` would let
            // `'a\'' , f() --'` be one string to the guard and a call of f() to the server).
            .options([
                ("default_transaction_read_only", "on"),
                ("standard_conforming_strings", "on"),
                ("backslash_quote", "safe_encoding"),
            ])
            // The server-side time limit of every statement on the connection, so a call whose
            // deadline is this far off needs no statement of its own to set it.
            .options([(
                "statement_timeout",
                settings.statement_timeout.as_millis().max(1).to_string(),
            )]);
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
        let address = match options.get_socket() {
            Some(_) => None,
            None => Some((options.get_host().to_owned(), options.get_port())),
        };
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
            pool: ServerPool::new(pool, settings, address, backend_pid),
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
        enforce_account_policy(&self.settings, &self.account, true, inspect).await
    }

    /// Its connections, for the function catalog's lookups.
    pub(super) fn pool(&self) -> &ServerPool<Postgres> {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool's gauges.
    pub fn pool_figures(&self) -> PoolFigures {
        self.pool.figures()
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
    ) -> Result<QueryRows, EngineError> {
        refuse_nul_in_sql(sql.text())?;
        refuse_nul_in_params(params)?;
        let mut session = self.pool.acquire().await?;
        self.check_account(session.conn()).await?;
        let time_limit = remaining.min(self.settings.statement_timeout);
        let pid = i32::try_from(session.backend)
            .map_err(|_| sqlx::Error::Protocol("backend pid out of range".into()))?;
        let pool = self.pool.pool.clone();
        let stop = move || Box::pin(async move { cancel_backend(&pool, pid).await }) as _;
        if is_plain_read(sql) {
            self.set_time_limit(&mut session, time_limit).await?;
            let (rows, fired) = watching(
                cancel,
                stop,
                read_plain(session.conn(), sql, params, limits),
            )
            .await;
            let rows = rows?;
            if fired {
                return Err(sqlx::Error::Protocol("the query was cancelled".into()).into());
            }
            // A read stopped by the byte budget leaves rows on their way: closing is cheaper
            // than draining them. The row cap is the query's LIMIT, so nothing is left then.
            session.clean = !rows.byte_limited;
            return Ok(rows);
        }

        // Everything else (EXPLAIN, a statement calling functions only the catalog vouched
        // for) runs in its own read-only transaction with a transaction-local time limit, and
        // the session is reset after it. One round trip for the whole preamble: it is
        // datamcp's own fixed SQL (the timeout is our number), so the simple protocol's several
        // statements are safe here, and only here.
        let preamble = format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
            time_limit.as_millis().max(1)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(preamble))
            .execute(session.conn())
            .await?;
        let (rows, fired) = watching(cancel, stop, read(session.conn(), sql, params, limits)).await;
        let rows = rows?;
        if fired {
            return Err(sqlx::Error::Protocol("the query was cancelled".into()).into());
        }
        if rows.byte_limited {
            // Rows of the batch are still on their way; closing is cheaper than draining them.
            return Ok(rows);
        }
        // Session-level advisory locks survive ROLLBACK, and RESET ALL returns any setting to
        // the session's defaults, startup options included (checked on PostgreSQL 15); all in
        // the round trip the ROLLBACK costs anyway. DISCARD ALL would also drop sqlx's
        // prepared statements.
        sqlx::raw_sql("ROLLBACK; SELECT pg_advisory_unlock_all(); RESET ALL")
            .execute(session.conn())
            .await?;
        session.time_limit = None;
        session.clean = true;
        Ok(rows)
    }

    /// Gives the session a time limit that stops no query before `wanted` and none much later;
    /// most calls find the one already set and spend no round trip on it.
    async fn set_time_limit(
        &self,
        session: &mut Session<Postgres>,
        wanted: Duration,
    ) -> Result<(), sqlx::Error> {
        let current = session
            .time_limit
            .unwrap_or(self.settings.statement_timeout);
        if time_limit_fits(current, wanted) {
            return Ok(());
        }
        let limit = time_limit_to_set(wanted, self.settings.statement_timeout);
        // Our own number, not client input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET statement_timeout = {}",
            limit.as_millis().max(1)
        )))
        .execute(session.conn())
        .await?;
        session.time_limit = Some(limit);
        Ok(())
    }
}

/// Whether a session's time limit `current` may serve a call that has `wanted` left: it must not
/// stop the query before the call's deadline, and should not outlast it by much (the watcher
/// stops the query at the deadline; the server's limit is the backstop for when it cannot).
pub(super) fn time_limit_fits(current: Duration, wanted: Duration) -> bool {
    let slack = (wanted / 4).max(Duration::from_secs(1));
    current >= wanted && current <= wanted + slack
}

/// The time limit to give a session for a call with `wanted` left: somewhat more, within the
/// warehouse's own limit, so that the next calls, whose time left differs by the microseconds
/// they took to get here, find it fitting instead of setting it again each time.
pub(super) fn time_limit_to_set(wanted: Duration, configured: Duration) -> Duration {
    let slack = (wanted / 4).max(Duration::from_secs(1));
    (wanted + slack / 2).min(configured.max(wanted))
}

/// The connection's backend pid, asked once per connection for the cancel watcher.
fn backend_pid(
    conn: &mut sqlx::PgConnection,
) -> futures::future::BoxFuture<'_, Result<u64, sqlx::Error>> {
    Box::pin(async move {
        // The simple protocol: one round trip, and no prepared statement kept for it.
        let pid: i32 = sqlx::raw_sql("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await?
            .try_get(0)?;
        u64::try_from(pid).map_err(|_| sqlx::Error::Protocol("negative backend pid".into()))
    })
}

/// Whether `sql` can run as one statement in the session's own read-only transaction, with no
/// reset after it: a plain query whose every function is on the guard's allow-list, none of
/// which can change session state (`set_config`, advisory locks and the like are never
/// allowed). A function the catalog vouched for is only known not to be volatile, and a
/// non-query (EXPLAIN, or SQL that bypassed the guard in tests) cannot be wrapped: those take
/// the explicit transaction and the reset.
fn is_plain_read(sql: &GuardedSql) -> bool {
    sql.is_query() && sql.functions_for_the_catalog().is_empty()
}

/// PostgreSQL text cannot hold NUL; the server would refuse the value with an encoding error.
fn refuse_nul_in_params(params: &[Value]) -> Result<(), EngineError> {
    for (index, param) in params.iter().enumerate() {
        if let Value::String(text) = param
            && text.contains('\0')
        {
            return Err(EngineError::InvalidInput(format!(
                "parameter {} contains a NUL byte (\\u0000), which PostgreSQL text cannot hold; remove it or bind the data as hex",
                index + 1
            )));
        }
    }
    Ok(())
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

/// The start of the error the cursor's query raises for a row over the byte budget.
const TOO_LARGE_MARK: &str = "datamcp: a row over the byte budget";

/// The cursor's query: the guarded statement as a subquery whose rows are measured, on the
/// server, before any is sent; a row over `budget` bytes fails the statement with a
/// recognisable message. `OFFSET 0` keeps the planner from pulling the subquery up, which
/// would compute each value once more per reference. The error's text depends on the session
/// (a stable function) because a constant there would be folded at plan time and fail every
/// query. The newline before the closing parenthesis ends a trailing `--` comment.
///
/// `pg_column_size` counts a stored value as it is stored, compressed or not; values a query
/// computes, the way to make a huge one from nothing, are counted at full size.
fn within_budget(sql: &GuardedSql, budget: usize) -> String {
    let body = sql.statement();
    format!(
        "SELECT datamcp_q.* FROM (SELECT * FROM (\n{body}\n) AS datamcp_i OFFSET 0) AS datamcp_q \
         WHERE CASE WHEN pg_column_size(datamcp_q.*) <= {budget} THEN true \
         ELSE ('{TOO_LARGE_MARK} of {budget} bytes in session ' || pg_backend_pid())::int IS NULL END"
    )
}

/// The server's refusal of a row over the budget, as [`TooLarge`]; other errors unchanged.
fn too_large(error: sqlx::Error, budget: usize) -> EngineError {
    if let sqlx::Error::Database(db) = &error
        && db.message().contains(TOO_LARGE_MARK)
    {
        return TooLarge {
            bytes: None,
            budget,
        }
        .into();
    }
    error.into()
}

/// The statement a plain read runs: the guarded query as a subquery whose rows are measured
/// against the byte budget (see [`within_budget`]) and whose count stops at one past the row
/// cap, so the server never sends more than the call may keep. Runs as a prepared statement
/// cached on the connection, keyed by its text, so a repeated call is one round trip
/// (Bind/Execute/Sync). The parameters' types are fixed when it is first prepared; the comment
/// in front names them, so a call binding other JSON types gets a statement of its own.
fn plain_statement(sql: &GuardedSql, params: &[Value], limits: ReadLimits) -> String {
    let limit = limits.rows.saturating_add(1);
    let mut text = String::with_capacity(sql.statement().len() + 320);
    if !params.is_empty() {
        text.push_str("/* datamcp ");
        text.extend(params.iter().map(parameter_type));
        text.push_str(" */ ");
    }
    if limits.bytes == usize::MAX {
        text.push_str(&format!(
            "SELECT * FROM (\n{}\n) AS datamcp_q LIMIT {limit}",
            sql.statement()
        ));
    } else {
        text.push_str(&within_budget(sql, limits.bytes));
        text.push_str(&format!(" LIMIT {limit}"));
    }
    text
}

/// The letter of the PostgreSQL type [`bind`] gives a JSON value.
fn parameter_type(value: &Value) -> char {
    match value {
        Value::Bool(_) => 'b',
        Value::Number(n) if n.as_i64().is_some() => 'i',
        Value::Number(_) => 'f',
        _ => 't',
    }
}

/// Reads a plain query's rows in one round trip once its statement is cached.
async fn read_plain(
    conn: &mut sqlx::PgConnection,
    sql: &GuardedSql,
    params: &[Value],
    limits: ReadLimits,
) -> Result<QueryRows, EngineError> {
    use sqlx::Connection as _;
    let statement = plain_statement(sql, params, limits);
    match read_prepared(conn, &statement, params, limits).await {
        // A table changed its columns since the statement was cached on this connection: the
        // server refuses the old plan rather than return rows of another shape. Nothing ran;
        // prepare it afresh, once.
        Err(EngineError::Sql(sqlx::Error::Database(db)))
            if db.code().as_deref() == Some("0A000")
                && db
                    .message()
                    .contains("cached plan must not change result type") =>
        {
            conn.clear_cached_statements().await?;
            read_prepared(conn, &statement, params, limits).await
        }
        other => other,
    }
}

async fn read_prepared(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    params: &[Value],
    limits: ReadLimits,
) -> Result<QueryRows, EngineError> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()));
    for param in params {
        query = bind(query, param);
    }
    let (read, columns) = read_rows(query.fetch(&mut *conn), limits).await?;
    let columns = match columns {
        Some(columns) => columns,
        // No rows: the cached statement's description names the columns, no round trip.
        None => describe(conn, statement).await?,
    };
    Ok(QueryRows { columns, ..read })
}

/// Reads `stream` into the budget of `limits`, row by row, so the rows held never exceed it
/// by more than one. Returns the rows (with no columns yet) and the first row's columns.
async fn read_rows(
    mut stream: futures::stream::BoxStream<'_, Result<PgRow, sqlx::Error>>,
    limits: ReadLimits,
) -> Result<(QueryRows, Option<Vec<Column>>), EngineError> {
    let mut budget = RowBudget::new(limits);
    let mut values = Vec::new();
    let mut truncated = false;
    let mut columns = None;
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| too_large(e, limits.bytes))?
    {
        columns.get_or_insert_with(|| columns_of(&row));
        match budget.take(raw_size(&row), || {
            row_values(&row).map_err(EngineError::from)
        })? {
            Some(record) => values.push(record),
            None => {
                truncated = true;
                break;
            }
        }
    }
    let read = QueryRows {
        columns: Vec::new(),
        rows: values,
        truncated,
        byte_limited: budget.byte_limited,
    };
    Ok((read, columns))
}

fn columns_of(row: &PgRow) -> Vec<Column> {
    row.columns()
        .iter()
        .map(|c| Column::new(c.name(), c.type_info().name()))
        .collect()
}

async fn read(
    conn: &mut sqlx::PgConnection,
    sql: &GuardedSql,
    params: &[Value],
    limits: ReadLimits,
) -> Result<QueryRows, EngineError> {
    let max_rows = limits.rows;
    // Preparing the query itself (cached per connection, keyed by its text) yields its columns
    // even for an empty result, and teaches the connection every type it returns before the
    // uncached FETCH below needs them.
    let columns = describe(conn, sql.text()).await?;
    let is_query = sql.is_query();
    let checked = limits.bytes != usize::MAX;
    // A cursor bounds what the server sends; EXPLAIN cannot be declared as one, and is small.
    let statement = match (is_query, checked) {
        (true, true) => format!(
            "DECLARE datamcp_rows NO SCROLL CURSOR FOR {}",
            within_budget(sql, limits.bytes)
        ),
        (true, false) => format!("DECLARE datamcp_rows NO SCROLL CURSOR FOR {}", sql.text()),
        (false, _) => sql.text().to_owned(),
    };
    // Not cached as prepared statements: every cursor's FETCH has the same text but its own
    // columns, and a cached description would decode one query's rows with another's types.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).persistent(false);
    for param in params {
        query = bind(query, param);
    }
    let stream = if is_query {
        query.execute(&mut *conn).await?;
        let fetch = format!("FETCH FORWARD {} FROM datamcp_rows", max_rows + 1);
        sqlx::query(sqlx::AssertSqlSafe(fetch))
            .persistent(false)
            .fetch(&mut *conn)
    } else {
        query.fetch(&mut *conn)
    };
    let (read, first_columns) = read_rows(stream, limits).await?;
    Ok(QueryRows {
        columns: first_columns.unwrap_or(columns),
        ..read
    })
}

/// The bytes of a row's values as they arrived.
fn raw_size(row: &PgRow) -> usize {
    (0..row.len())
        .filter_map(|i| row.try_get_raw(i).ok())
        .filter(|value| !value.is_null())
        .map(|value| value.as_bytes().map_or(0, <[u8]>::len))
        .sum()
}

/// The columns of an empty result: the query's own description, as the server prepares it.
async fn describe(conn: &mut sqlx::PgConnection, sql: &str) -> Result<Vec<Column>, sqlx::Error> {
    use sqlx::{Executor as _, Statement as _};
    let statement = conn
        .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(
            sql.to_owned(),
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
pub fn explain(error: EngineError, name: &str, place: &str, cancelled: bool) -> ToolError {
    if cancelled {
        return ToolError::Cancelled;
    }
    match error {
        EngineError::Sql(sqlx::Error::Database(db)) => {
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
                "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03" => ToolError::Upstream {
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
        other => super::session::explain_engine_error(other, name, place),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_time_limit_serves_calls_it_neither_cuts_short_nor_outlasts_by_much() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert!(time_limit_fits(s(30), ms(29_990)), "the usual call");
        assert!(time_limit_fits(s(30), s(30)));
        assert!(
            !time_limit_fits(ms(200), s(30)),
            "would stop a long call early"
        );
        assert!(
            !time_limit_fits(s(30), s(5)),
            "would outlast a short call by 25 s"
        );
        assert!(time_limit_fits(s(5), ms(4_500)));
        assert!(
            time_limit_fits(ms(1_100), ms(200)),
            "a second of slack at least"
        );
    }

    #[test]
    fn a_lowered_time_limit_fits_the_next_calls_with_a_little_more_or_less_time_left() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let set = time_limit_to_set(ms(4_990), s(30));
        assert_eq!(set, ms(5_613) + Duration::from_micros(750));
        for next in [ms(4_900), ms(4_990), ms(5_000), ms(5_500)] {
            assert!(time_limit_fits(set, next), "{next:?}");
        }
        assert_eq!(
            time_limit_to_set(s(30), s(30)),
            s(30),
            "never above the warehouse's own"
        );
        assert_eq!(time_limit_to_set(s(29), s(30)), s(30));
    }
}
