//! MySQL and MariaDB warehouses: read-only sessions, a server-side time limit, and queries that
//! really stop.
//!
//! Each new connection is made read-only for every transaction (`SET SESSION TRANSACTION READ
//! ONLY`), drops `NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES` and the combination modes that include it
//! from its `sql_mode`, so the server lexes strings as the guard does whatever the server's
//! default, and gets the server's statement time limit (`max_statement_time` on MariaDB,
//! `max_execution_time` on MySQL), set again when a call's deadline does not fit it. A plain
//! query (allow-listed functions, no `@` variable) then runs alone as a prepared statement: one
//! round trip. Anything else runs in `START TRANSACTION READ ONLY … ROLLBACK`, and the ROLLBACK
//! travels with `RELEASE_ALL_LOCKS()` and `LAST_INSERT_ID(0)`; a connection left holding user
//! variables (`@v`; on MariaDB seen in `information_schema.USER_VARIABLES`, on MySQL, which has
//! no such view for every account, whenever the SQL mentions `@`), another default database or
//! `sql_mode`, or a writable session is closed rather than reused. When the call is cancelled or
//! its deadline passes, a watcher runs `KILL QUERY` for the connection (its id asked once per
//! connection) from another connection. A connection whose read was cut short (truncation,
//! error, cancellation) is closed rather than drained.
//!
//! Values: the server bounds any value it computes by its `max_allowed_packet` (16 MiB by
//! default); each row's received size is checked against the call's byte budget before it is
//! converted to JSON.
//!
//! Know the holes this layer leaves, which the guard covers (`tests/data/database_side_holes.txt`):
//! `COMMIT`, `SET`, `USE`, named locks and `SELECT … INTO OUTFILE` (which writes files when
//! `secure_file_priv` is unset) are not writes to MariaDB's read-only mode.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{Column as _, MySql, Row as _, TypeInfo as _, ValueRef as _};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::account::AccountCheck;
use super::session::{
    EngineError, PoolFigures, ServerPool, ServerSettings, enforce_account_policy,
    refuse_nul_in_sql, watching,
};

use super::guard::GuardedSql;
use super::rows::QueryRows;
use crate::table::{Column, ReadLimits, RowBudget};

/// A lazily connecting pool of MySQL or MariaDB connections.
pub struct MysqlEngine {
    settings: ServerSettings,
    account: OnceCell<AccountCheck>,
    pool: ServerPool<MySql>,
    place: String,
    mariadb: OnceCell<bool>,
    /// The default database the URL names, which every connection must keep.
    database: Option<String>,
}

/// `sql_mode` flags that change how strings and quotes are lexed: the guard reads backslash
/// escapes in strings and double-quoted strings, as MySQL does by default. The combination modes
/// all include `ANSI_QUOTES` (MariaDB's `ORACLE` also switches the parser).
const LEXING_MODES: &[&str] = &[
    "NO_BACKSLASH_ESCAPES",
    "ANSI_QUOTES",
    "ANSI",
    "DB2",
    "MAXDB",
    "MSSQL",
    "ORACLE",
    "POSTGRESQL",
];

/// `mode` without the flags of [`LEXING_MODES`]; `None` when it has none.
fn lexing_safe_sql_mode(mode: &str) -> Option<String> {
    let flags: Vec<&str> = mode.split(',').filter(|f| !f.is_empty()).collect();
    let kept: Vec<&str> = flags
        .iter()
        .copied()
        .filter(|flag| !LEXING_MODES.contains(&flag.to_ascii_uppercase().as_str()))
        .collect();
    (kept.len() != flags.len()).then(|| kept.join(","))
}

/// Runs on every new connection, after sqlx's own setup: makes every transaction of the
/// session read-only (a plain read runs in autocommit, with no `START TRANSACTION` of its own)
/// and reads `sql_mode` in one round trip; a second one when that mode needs correcting.
async fn prepare_session(conn: &mut sqlx::MySqlConnection) -> Result<(), sqlx::Error> {
    let mode: String =
        sqlx::raw_sql("SET SESSION TRANSACTION READ ONLY; SELECT CAST(@@SESSION.sql_mode AS CHAR)")
            .fetch_all(&mut *conn)
            .await?
            .last()
            .ok_or_else(|| sqlx::Error::Protocol("no sql_mode".into()))?
            .try_get(0)?;
    if let Some(kept) = lexing_safe_sql_mode(&mode) {
        // The flags come from the server and are bound, not spliced.
        sqlx::query("SET SESSION sql_mode = ?")
            .bind(kept)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl MysqlEngine {
    /// Parses the URL and prepares the pool; nothing connects yet.
    pub fn new(settings: &ServerSettings) -> Result<Self, String> {
        let url = settings.url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|e| format!("not a valid MySQL/MariaDB URL: {e}"))?;
        // sqlx logs slow statements with their text; SQL must not reach the logs.
        let options = sqlx::ConnectOptions::disable_statement_logging(options);
        let place = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let database = options.get_database().map(str::to_owned);
        let address = match options.get_socket() {
            Some(_) => None,
            None => Some((options.get_host().to_owned(), options.get_port())),
        };
        let pool = MySqlPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            .test_before_acquire(false)
            .after_connect(|conn, _| Box::pin(prepare_session(conn)))
            .connect_lazy_with(options);
        Ok(MysqlEngine {
            settings: settings.clone(),
            account: OnceCell::new(),
            pool: ServerPool::new(pool, settings, address, connection_id),
            place,
            mariadb: OnceCell::new(),
            database,
        })
    }

    /// What the account may do, once the first query has inspected it.
    pub fn account(&self) -> Option<&AccountCheck> {
        self.account.get()
    }

    /// Inspects the account on first use; refuses when it can write and the config requires a
    /// read-only account, warns once otherwise.
    async fn check_account(&self, conn: &mut sqlx::MySqlConnection) -> Result<(), sqlx::Error> {
        let inspect = async {
            let rows = sqlx::query(super::account::MYSQL)
                .fetch_all(&mut *conn)
                .await?;
            let values: Vec<Vec<Value>> = rows.iter().map(row_values).collect::<Result<_, _>>()?;
            Ok(super::account::mysql(&values))
        };
        enforce_account_policy(&self.settings, &self.account, false, inspect).await
    }

    /// Its connections, for the function catalog's lookups.
    pub(super) fn pool(&self) -> &ServerPool<MySql> {
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
        let mut session = self.pool.acquire().await?;
        self.check_account(session.conn()).await?;

        let mariadb = *self
            .mariadb
            .get_or_try_init(|| async {
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(session.conn())
                    .await?;
                Ok::<_, sqlx::Error>(version.contains("MariaDB"))
            })
            .await?;
        let time_limit = remaining.min(self.settings.statement_timeout);
        let id = session.backend;
        let pool = self.pool.pool.clone();
        let stop = move || Box::pin(async move { kill_query(&pool, id).await }) as _;

        if is_plain_read(sql) {
            // The session is read-only since it was opened; its time limit is set when the one
            // it has does not fit this call. One round trip for the query otherwise.
            if !session
                .time_limit
                .is_some_and(|current| super::postgres::time_limit_fits(current, time_limit))
            {
                let limit =
                    super::postgres::time_limit_to_set(time_limit, self.settings.statement_timeout);
                sqlx::raw_sql(sqlx::AssertSqlSafe(set_time_limit(mariadb, limit)))
                    .execute(session.conn())
                    .await?;
                session.time_limit = Some(limit);
            }
            let (rows, fired) =
                watching(cancel, stop, read(session.conn(), sql, params, limits)).await;
            let rows = rows?;
            if fired {
                return Err(sqlx::Error::Protocol("the query was cancelled".into()).into());
            }
            // A truncated read leaves rows on their way: closing is cheaper than draining.
            session.clean = !rows.truncated;
            return Ok(rows);
        }

        // One round trip for the whole preamble: datamcp's own fixed SQL (the limit is our
        // number), so several statements in one text are safe here, and only here.
        let preamble = format!(
            "{}; START TRANSACTION READ ONLY",
            set_time_limit(mariadb, time_limit)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(preamble))
            .execute(session.conn())
            .await?;
        let conn = session.conn();
        let (rows, fired) = watching(cancel, stop, read(conn, sql, params, limits)).await;
        let rows = rows?;
        if fired {
            return Err(sqlx::Error::Protocol("the query was cancelled".into()).into());
        }
        if rows.truncated {
            // The server is still sending rows; closing the connection is cheaper than draining.
            return Ok(rows);
        }
        // Named locks (GET_LOCK) and LAST_INSERT_ID(x) outlive the transaction; both are reset
        // in the round trip the ROLLBACK costs anyway. User variables cannot be unset, only
        // found, and a changed default database or sql_mode is cheaper to find than to undo:
        // a connection holding any of them is closed.
        // The session must also still be read-only for the plain reads that follow it, which
        // run in no transaction of their own; and as a bypassed `SET` could have changed the
        // time limit, the next call sets it afresh.
        let reset = if mariadb {
            "ROLLBACK; DO RELEASE_ALL_LOCKS(), LAST_INSERT_ID(0); SELECT (SELECT count(*) FROM information_schema.USER_VARIABLES), DATABASE(), @@SESSION.sql_mode, CAST(@@SESSION.tx_read_only AS SIGNED)"
        } else {
            "ROLLBACK; DO RELEASE_ALL_LOCKS(), LAST_INSERT_ID(0); SELECT CAST(0 AS SIGNED), DATABASE(), @@SESSION.sql_mode, CAST(@@SESSION.transaction_read_only AS SIGNED)"
        };
        let state = sqlx::raw_sql(reset)
            .fetch_all(&mut *conn)
            .await?
            .pop()
            .ok_or_else(|| sqlx::Error::Protocol("no reset result".into()))?;
        let variables: i64 = state.try_get(0)?;
        let database: Option<String> = state.try_get(1)?;
        let mode: String = state.try_get(2)?;
        let read_only: i64 = state.try_get(3)?;
        let may_hold_variables = if mariadb {
            variables > 0
        } else {
            sql.text().contains('@')
        };
        session.time_limit = None;
        session.clean = !may_hold_variables
            && database.as_deref() == self.database.as_deref()
            && lexing_safe_sql_mode(&mode).is_none()
            && read_only == 1;
        Ok(rows)
    }
}

/// The statement that sets the session's time limit: `max_statement_time` (seconds) on MariaDB,
/// `max_execution_time` (milliseconds, SELECT only) on MySQL. Our own number, not client input.
fn set_time_limit(mariadb: bool, limit: Duration) -> String {
    let millis = limit.as_millis().max(1);
    if mariadb {
        format!(
            "SET SESSION max_statement_time = {}",
            millis as f64 / 1000.0
        )
    } else {
        format!("SET SESSION max_execution_time = {millis}")
    }
}

/// Whether `sql` can run alone in the session's read-only mode with no reset after it: a plain
/// query whose every function is on the guard's allow-list (named locks and `LAST_INSERT_ID`
/// never are) and that names no variable (`@v`, `@@v`), so it leaves no state on the
/// connection. Anything else takes the explicit transaction and the reset.
fn is_plain_read(sql: &GuardedSql) -> bool {
    sql.is_query() && sql.functions_for_the_catalog().is_empty() && !sql.text().contains('@')
}

/// The connection's id, asked once per connection for the cancel watcher.
fn connection_id(
    conn: &mut sqlx::MySqlConnection,
) -> futures::future::BoxFuture<'_, Result<u64, sqlx::Error>> {
    Box::pin(async move {
        sqlx::raw_sql("SELECT CONNECTION_ID()")
            .fetch_one(conn)
            .await?
            .try_get(0)
    })
}

async fn kill_query(pool: &MySqlPool, id: u64) {
    let connect = pool.connect_options();
    let result = async {
        use sqlx::Connection as _;
        let mut conn = sqlx::MySqlConnection::connect_with(&connect).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("KILL QUERY {id}")))
            .execute(&mut conn)
            .await?;
        conn.close().await
    }
    .await;
    match result {
        Ok(()) => tracing::debug!(id, "killed the query of an abandoned call"),
        Err(error) => tracing::warn!(id, %error, "could not kill an abandoned query"),
    }
}

/// A row's values as JSON, in column order.
fn row_values(row: &MySqlRow) -> Result<Vec<Value>, sqlx::Error> {
    (0..row.len())
        .map(|i| row.try_get_raw(i).map(to_json))
        .collect()
}

/// The bytes of a row's values as they arrived.
fn raw_size(row: &MySqlRow) -> usize {
    (0..row.len())
        .filter_map(|i| row.try_get_raw(i).ok())
        .filter(|value| !value.is_null())
        .filter_map(|value| <&[u8] as sqlx::Decode<MySql>>::decode(value).ok())
        .map(<[u8]>::len)
        .sum()
}

async fn read(
    conn: &mut sqlx::MySqlConnection,
    sql: &GuardedSql,
    params: &[Value],
    limits: ReadLimits,
) -> Result<QueryRows, EngineError> {
    let mut budget = RowBudget::new(limits);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text().to_owned()));
    for param in params {
        query = bind(query, param);
    }
    let mut columns: Option<Vec<Column>> = None;
    let mut rows = Vec::new();
    let mut truncated = false;
    {
        let mut stream = query.fetch(&mut *conn);
        while let Some(row) = stream.try_next().await? {
            columns.get_or_insert_with(|| columns_of(&row));
            match budget.take(raw_size(&row), || {
                row_values(&row).map_err(EngineError::from)
            })? {
                Some(record) => rows.push(record),
                None => {
                    truncated = true;
                    break;
                }
            }
        }
    }
    let columns = match columns {
        Some(columns) => columns,
        None => {
            use sqlx::{Executor as _, Statement as _};
            let statement = (&mut *conn)
                .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(
                    sql.text().to_owned(),
                )))
                .await?;
            statement
                .columns()
                .iter()
                .map(|c| Column::new(c.name(), &display_name(c.type_info())))
                .collect()
        }
    };
    Ok(QueryRows {
        columns,
        rows,
        truncated,
        byte_limited: budget.byte_limited,
    })
}

fn columns_of(row: &MySqlRow) -> Vec<Column> {
    row.columns()
        .iter()
        .map(|c| Column::new(c.name(), &display_name(c.type_info())))
        .collect()
}

/// MySQL values to JSON without loss: integers as numbers, DECIMAL as an exact decimal string,
/// DATE/DATETIME/TIMESTAMP as ISO 8601, TIME as `[-]HH:MM:SS[.ffffff]`, JSON as its value,
/// binary strings and GEOMETRY as base64, BIT as a number, text, ENUM and SET as strings.
fn to_json(value: sqlx::mysql::MySqlValueRef<'_>) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    let info = value.type_info().into_owned();
    let name = display_name(&info);
    let Ok(bytes) = <&[u8] as sqlx::Decode<MySql>>::decode(value) else {
        return Value::Null;
    };
    let text = || Value::String(String::from_utf8_lossy(bytes).into_owned());
    let le = |n: usize| -> Option<u64> {
        let part = bytes.get(..n)?;
        Some(
            part.iter()
                .rev()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        )
    };
    match name.as_str() {
        "BOOLEAN" => Value::Bool(bytes.first().is_some_and(|b| *b != 0)),
        "TINYINT" => Value::from(i64::from(*bytes.first().unwrap_or(&0) as i8)),
        "SMALLINT" | "YEAR" => Value::from(le(2).map_or(0, |v| i64::from(v as u16 as i16))),
        "INT" | "MEDIUMINT" => Value::from(le(4).map_or(0, |v| i64::from(v as u32 as i32))),
        "BIGINT" => Value::from(le(8).map_or(0, |v| v as i64)),
        "TINYINT UNSIGNED" => Value::from(le(1).unwrap_or(0)),
        "SMALLINT UNSIGNED" => Value::from(le(2).unwrap_or(0)),
        "INT UNSIGNED" | "MEDIUMINT UNSIGNED" => Value::from(le(4).unwrap_or(0)),
        "BIGINT UNSIGNED" => Value::from(le(8).unwrap_or(0)),
        "FLOAT" => le(4).map_or(Value::Null, |v| float(f64::from(f32::from_bits(v as u32)))),
        "DOUBLE" => le(8).map_or(Value::Null, |v| float(f64::from_bits(v))),
        "DECIMAL" => text(),
        "DATE" | "DATETIME" | "TIMESTAMP" => {
            Value::String(datetime(without_length(bytes), name == "DATE"))
        }
        "TIME" => Value::String(time(without_length(bytes))),
        "JSON" => serde_json::from_slice(bytes).unwrap_or_else(|_| text()),
        "BIT" => Value::from(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))),
        "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "GEOMETRY" => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        _ => text(),
    }
}

/// The type's name as a user would write it. sqlx calls every binary-*collation* string (such as
/// `utf8mb4_bin` text, or MariaDB's JSON) BLOB or VARBINARY; only the binary *charset*
/// (collation 63) really holds bytes. sqlx keeps the collation private, so it is read from the
/// type's debug form, the one place it shows.
fn display_name(info: &sqlx::mysql::MySqlTypeInfo) -> String {
    let name = info.name();
    let binary_name = matches!(
        name,
        "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB"
    );
    if binary_name && !format!("{info:?}").contains("collation: Collation(63)") {
        return match name {
            "BINARY" => "CHAR",
            "VARBINARY" => "VARCHAR",
            _ => "TEXT",
        }
        .to_owned();
    }
    name.to_owned()
}

/// Temporal values arrive with their length byte in front.
fn without_length(bytes: &[u8]) -> &[u8] {
    match bytes.split_first() {
        Some((length, rest)) if usize::from(*length) == rest.len() => rest,
        _ => bytes,
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The binary DATE/DATETIME/TIMESTAMP: year (2 bytes LE), month, day, then optionally hour,
/// minute, second and microseconds (4 bytes LE). Zero length is MySQL's zero date.
fn datetime(b: &[u8], date_only: bool) -> String {
    if b.len() < 4 {
        return if date_only {
            "0000-00-00".to_owned()
        } else {
            "0000-00-00T00:00:00".to_owned()
        };
    }
    let year = u16::from_le_bytes([b[0], b[1]]);
    let date = format!("{year:04}-{:02}-{:02}", b[2], b[3]);
    if date_only {
        return date;
    }
    let (h, m, s) = (
        *b.get(4).unwrap_or(&0),
        *b.get(5).unwrap_or(&0),
        *b.get(6).unwrap_or(&0),
    );
    let micros = b
        .get(7..11)
        .map_or(0, |x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]));
    let mut out = format!("{date}T{h:02}:{m:02}:{s:02}");
    if micros != 0 {
        out.push_str(format!(".{micros:06}").trim_end_matches('0'));
    }
    out
}

/// The binary TIME: sign, days (4 bytes LE), hours, minutes, seconds, optional microseconds.
fn time(b: &[u8]) -> String {
    if b.len() < 8 {
        return "00:00:00".to_owned();
    }
    let negative = b[0] == 1;
    let days = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let hours = days * 24 + u32::from(b[5]);
    let micros = b
        .get(8..12)
        .map_or(0, |x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]));
    let mut out = format!(
        "{}{hours:02}:{:02}:{:02}",
        if negative { "-" } else { "" },
        b[6],
        b[7]
    );
    if micros != 0 {
        out.push_str(format!(".{micros:06}").trim_end_matches('0'));
    }
    out
}

type MySqlQuery<'q> = sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>;

/// Binds a JSON value with the closest MySQL type; arrays and objects are bound as JSON text.
fn bind<'q>(query: MySqlQuery<'q>, value: &Value) -> MySqlQuery<'q> {
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
pub fn explain(
    error: EngineError,
    name: &str,
    place: &str,
    cancelled: bool,
) -> crate::tools::ToolError {
    use crate::tools::ToolError;
    if cancelled {
        return ToolError::Cancelled;
    }
    match error {
        EngineError::Sql(sqlx::Error::Database(db)) => {
            let code = db.code().unwrap_or_default().into_owned();
            let message = db.message().to_owned();
            match code.as_str() {
                // read-only transaction, access denied
                "25006" | "42000"
                    if message.contains("READ ONLY") || message.contains("denied") =>
                {
                    ToolError::Refused(format!(
                        "warehouse '{name}' refused it ({message}); only reading is allowed"
                    ))
                }
                // 1969 (MariaDB max_statement_time), 3024 (MySQL max_execution_time): 70100 / HY000
                "70100" => ToolError::Upstream {
                    message: format!(
                        "warehouse '{name}' stopped the query at its time limit ({message}); narrow the query"
                    ),
                    transient: false,
                },
                // deadlock, lock wait timeout
                "40001" => ToolError::Upstream {
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
    use super::lexing_safe_sql_mode;

    #[test]
    fn only_the_modes_that_change_lexing_are_dropped() {
        assert_eq!(
            lexing_safe_sql_mode("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES,PIPES_AS_CONCAT")
                .as_deref(),
            Some("STRICT_TRANS_TABLES,PIPES_AS_CONCAT")
        );
        assert_eq!(
            lexing_safe_sql_mode("REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI")
                .as_deref(),
            Some("REAL_AS_FLOAT,PIPES_AS_CONCAT,IGNORE_SPACE")
        );
        assert_eq!(lexing_safe_sql_mode("STRICT_TRANS_TABLES"), None);
        assert_eq!(lexing_safe_sql_mode(""), None);
    }
}
