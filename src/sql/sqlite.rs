//! SQLite warehouses, read-only at every layer the engine offers.
//!
//! Each connection is opened read-only with `query_only = ON`, no ATTACH slots, defensive mode,
//! and an authorizer that lets a statement read and nothing else; `prepare` also refuses a second
//! statement. A query on an open connection starts on the calling thread and moves to tokio's
//! blocking threads if it runs longer than a quarter of a millisecond (most finish well within
//! it, and the hop would cost more than they do); there a progress handler interrupts SQLite as
//! soon as the call is cancelled or its deadline passes. A connection that saw an error or
//! interruption is closed instead of going back to the pool. While a query runs,
//! `SQLITE_LIMIT_LENGTH` is the call's byte budget, so a value larger than the budget
//! (`zeroblob(500000000)`, `printf('%.*c', …)`) fails when SQLite would build it, before the
//! memory is spent.
//!
//! Why rusqlite rather than sqlx here: sqlx's SQLite driver runs each connection on a thread of
//! its own and hops every row across a channel; measured on our 2-core machine that cost about
//! 170 µs of CPU per tiny query and ~4 µs per row, most of the call budget. It also runs every
//! `;`-separated statement it is given, and offers no authorizer without `unsafe`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::guard::GuardedSql;
use super::rows::QueryRows;
use super::session::PoolFigures;
use crate::table::{Column, ReadLimits, RowBudget, TooLarge};
use crate::tools::ToolError;

/// How long a query may run on the async runtime's own thread before it moves to a blocking
/// thread (see [`SqlitePool::query`]).
const INLINE_BUDGET: Duration = Duration::from_micros(250);

/// SQLite virtual-machine steps between cancellation checks: small enough to stop within
/// microseconds, large enough to cost nothing measurable.
const PROGRESS_CHECK_STEPS: i32 = 1_000;

/// How a SQLite warehouse connects.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    /// Database file.
    pub path: PathBuf,
    /// Largest number of open connections.
    pub max_connections: u32,
    /// Longest wait for a free connection.
    pub acquire_timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Duration,
    /// How long SQLite waits on a lock before failing with SQLITE_BUSY.
    pub busy_timeout: Duration,
}

/// A bounded pool of read-only connections to one database file.
pub struct SqlitePool {
    settings: SqliteSettings,
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<IdleConnection>>>,
    waiting: AtomicUsize,
}

struct IdleConnection {
    connection: Connection,
    since: Instant,
}

/// What went wrong, before the warehouse adds its name and advice.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// Every connection stayed busy for the whole wait.
    #[error("all {max} connections stayed busy for {waited:?}")]
    PoolTimeout {
        /// The pool's size.
        max: u32,
        /// How long the call waited.
        waited: Duration,
    },
    /// The engine failed or refused.
    #[error(transparent)]
    Engine(#[from] rusqlite::Error),
    /// The blocking task died.
    #[error("the query thread failed: {0}")]
    Thread(String),
    /// A value or row over the call's byte budget.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

impl SqlitePool {
    /// A pool; nothing is opened until the first query.
    pub fn new(settings: SqliteSettings) -> Self {
        SqlitePool {
            permits: Arc::new(Semaphore::new(settings.max_connections.max(1) as usize)),
            idle: Arc::new(Mutex::new(Vec::new())),
            waiting: AtomicUsize::new(0),
            settings,
        }
    }

    /// The pool's gauges.
    pub fn figures(&self) -> PoolFigures {
        let max = self.settings.max_connections.max(1) as usize;
        let in_use = max.saturating_sub(self.permits.available_permits());
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).len();
        PoolFigures {
            max,
            open: in_use + idle,
            in_use,
            idle,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// Runs `sql` with `params` and reads no more than `limits` allow. The work stops, and the
    /// connection is discarded, as soon as `cancel` fires.
    pub async fn query(
        &self,
        sql: &GuardedSql,
        params: &[Value],
        limits: ReadLimits,
        cancel: &CancellationToken,
    ) -> Result<QueryRows, SqliteError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::time::timeout(
            self.settings.acquire_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = permit
            .map_err(|_| SqliteError::PoolTimeout {
                max: self.settings.max_connections.max(1),
                waited: self.settings.acquire_timeout,
            })?
            .map_err(|e| SqliteError::Thread(e.to_string()))?;
        let mut idle = self.take_idle();
        if let Some(mut connection) = idle.take() {
            // Most reads finish in microseconds, less than a hop to a blocking thread and back
            // costs: try on this thread first. The attempt gives up once it has run for
            // INLINE_BUDGET, too short to hold up other tasks, and the query starts again on a
            // blocking thread, where it may run as long as its call allows. A read-only
            // statement is safe to start again, and the abandoned attempt's rows are dropped.
            let started = Instant::now();
            let stop = {
                let cancel = cancel.clone();
                move || cancel.is_cancelled() || started.elapsed() > INLINE_BUDGET
            };
            let result = attempt(&mut connection, sql.text(), params, limits, stop);
            let gave_up = matches!(&result, Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == rusqlite::ErrorCode::OperationInterrupted)
                && !cancel.is_cancelled();
            if !gave_up {
                return finish(connection, &self.idle, result, limits);
            }
            // Interrupted by our own budget, not by a fault: the connection is as good as before.
            idle = Some(connection);
        }
        let settings = self.settings.clone();
        let pool = Arc::clone(&self.idle);
        let sql = sql.text().to_owned();
        let params = params.to_vec();
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || {
            run(
                permit, idle, &settings, &pool, &sql, &params, limits, cancel,
            )
        })
        .await
        .map_err(|e| SqliteError::Thread(e.to_string()))?
    }

    /// Closes the idle connections; busy ones close when their query ends.
    pub fn close(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let timeout = self.settings.idle_timeout;
        idle.retain(|c| c.since.elapsed() < timeout);
        idle.pop().map(|c| c.connection)
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    _permit: OwnedSemaphorePermit,
    idle: Option<Connection>,
    settings: &SqliteSettings,
    pool: &Mutex<Vec<IdleConnection>>,
    sql: &str,
    params: &[Value],
    limits: ReadLimits,
    cancel: CancellationToken,
) -> Result<QueryRows, SqliteError> {
    let mut connection = match idle {
        Some(connection) => connection,
        None => open(settings)?,
    };
    let result = attempt(&mut connection, sql, params, limits, move || {
        cancel.is_cancelled()
    });
    finish(connection, pool, result, limits)
}

/// Reads `sql` on `connection`, interrupted as soon as `stop` says so (checked every
/// [`PROGRESS_CHECK_STEPS`] steps of SQLite's virtual machine).
fn attempt<F>(
    connection: &mut Connection,
    sql: &str,
    params: &[Value],
    limits: ReadLimits,
    stop: F,
) -> Result<QueryRows, rusqlite::Error>
where
    F: FnMut() -> bool + Send + std::panic::RefUnwindSafe + 'static,
{
    connection.progress_handler(PROGRESS_CHECK_STEPS, Some(stop))?;
    let result = read(connection, sql, params, limits);
    connection.progress_handler(0, None::<fn() -> bool>)?;
    result
}

/// Returns a connection that finished cleanly to the idle list (any other is closed) and
/// sorts the error.
fn finish(
    connection: Connection,
    pool: &Mutex<Vec<IdleConnection>>,
    result: Result<QueryRows, rusqlite::Error>,
    limits: ReadLimits,
) -> Result<QueryRows, SqliteError> {
    if result.is_ok() {
        let mut idle = pool.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(IdleConnection {
            connection,
            since: Instant::now(),
        });
    }
    result.map_err(|error| match error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::TooBig =>
        {
            SqliteError::TooLarge(TooLarge {
                bytes: None,
                budget: limits.bytes,
            })
        }
        other => SqliteError::Engine(other),
    })
}

/// SQLite's own ceiling on a string, blob or row, which `SQLITE_LIMIT_LENGTH` may only lower.
const SQLITE_MAX_LENGTH: usize = 1_000_000_000;

/// Lowers `SQLITE_LIMIT_LENGTH` to a call's byte budget for as long as it lives, then puts the
/// connection's previous limit back, so the next call starts from its own budget.
struct LengthLimit<'c> {
    connection: &'c Connection,
    previous: i32,
}

impl<'c> LengthLimit<'c> {
    fn lower_to(connection: &'c Connection, bytes: usize) -> rusqlite::Result<Self> {
        // SQLite applies the limit to a stored row's whole record too, even when only a small
        // column of it is selected; below 1 MiB a small budget would fail such reads instead of
        // truncating them, while 1 MiB more or less is no memory risk.
        let bytes = bytes.clamp(super::query::DEFAULT_MAX_BYTES as usize, SQLITE_MAX_LENGTH);
        let limit = i32::try_from(bytes).unwrap_or(i32::MAX);
        let previous = connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, limit)?;
        Ok(LengthLimit {
            connection,
            previous,
        })
    }
}

impl Drop for LengthLimit<'_> {
    fn drop(&mut self) {
        let _ = self
            .connection
            .set_limit(Limit::SQLITE_LIMIT_LENGTH, self.previous);
    }
}

fn open(settings: &SqliteSettings) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_with_flags(&settings.path, flags)?;
    connection.busy_timeout(settings.busy_timeout)?;
    connection.pragma_update(None, "query_only", true)?;
    connection.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    connection.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
        false,
    )?;
    connection.authorizer(Some(authorize))?;
    Ok(connection)
}

/// The engine-side read-only rule: reading is allowed, everything else is denied, so even a
/// statement the guard wrongly allowed cannot write, attach, or change a setting.
fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Function { function_name } => {
            if super::guard::is_allowed_sqlite_function(function_name) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            if super::guard::is_reporting_sqlite_pragma(pragma_name, pragma_value.is_some()) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        _ => Authorization::Deny,
    }
}

fn read(
    connection: &Connection,
    sql: &str,
    params: &[Value],
    limits: ReadLimits,
) -> Result<QueryRows, rusqlite::Error> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut columns: Vec<Column> = statement
        .columns()
        .map(|c| Column::new(c.name(), c.decl_type().unwrap_or("")))
        .collect();
    let kinds: Vec<DeclaredKind> = columns
        .iter()
        .map(|c| DeclaredKind::of(&c.r#type))
        .collect();
    let bound: Vec<ToSqlOutput<'_>> = params.iter().map(to_sqlite).collect();
    if statement.parameter_count() != bound.len() {
        return Err(rusqlite::Error::InvalidParameterCount(
            bound.len(),
            statement.parameter_count(),
        ));
    }
    // The statement is prepared and its parameters bound before the limit drops: it bounds the
    // values the query builds and reads, not the SQL text or the caller's parameters.
    for (index, value) in bound.iter().enumerate() {
        statement.raw_bind_parameter(index + 1, value)?;
    }
    let _limit = LengthLimit::lower_to(connection, limits.bytes)?;
    let mut rows = statement.raw_query();
    let mut values = Vec::new();
    let mut budget = RowBudget::new(limits);
    let mut truncated = false;
    while let Some(row) = rows.next()? {
        if !budget.has_room() {
            truncated = true;
            break;
        }
        let mut record = Vec::with_capacity(columns.len());
        for (index, kind) in kinds.iter().enumerate() {
            let value = row.get_ref(index)?;
            if columns[index].r#type.is_empty() && value != ValueRef::Null {
                // An expression has no declared type: name the storage class of its first value.
                columns[index].r#type = storage_class(value).to_owned();
            }
            record.push(to_json(value, *kind));
        }
        if !budget.admit(&record) {
            truncated = true;
            break;
        }
        values.push(record);
    }
    for column in &mut columns {
        if column.r#type.is_empty() {
            column.r#type = "NULL".to_owned();
        }
    }
    Ok(QueryRows {
        columns,
        rows: values,
        truncated,
        byte_limited: budget.byte_limited,
    })
}

/// What a column's declared type asks of its values beyond their storage class.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeclaredKind {
    Plain,
    Boolean,
    Json,
}

impl DeclaredKind {
    fn of(declared: &str) -> Self {
        let is = |name: &str| declared.eq_ignore_ascii_case(name);
        if is("BOOLEAN") || is("BOOL") {
            DeclaredKind::Boolean
        } else if is("JSON") || is("JSONB") {
            DeclaredKind::Json
        } else {
            DeclaredKind::Plain
        }
    }
}

fn storage_class(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

/// SQLite values to JSON without loss: integers stay integers, REAL becomes a JSON number
/// (non-finite values become null), TEXT a string, BLOB base64. A BOOLEAN column holding 0 or 1
/// becomes `false`/`true`; a JSON column holding valid JSON text becomes that JSON value.
fn to_json(value: ValueRef<'_>, kind: DeclaredKind) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) if kind == DeclaredKind::Boolean && (n == 0 || n == 1) => {
            Value::Bool(n == 1)
        }
        ValueRef::Integer(n) => Value::from(n),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(bytes) => {
            if kind == DeclaredKind::Json
                && let Ok(json) = serde_json::from_slice::<Value>(bytes)
            {
                return json;
            }
            // SQLite does not enforce UTF-8; invalid bytes become U+FFFD rather than an error.
            match std::str::from_utf8(bytes) {
                Ok(text) => Value::String(text.to_owned()),
                Err(_) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
            }
        }
        ValueRef::Blob(bytes) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

/// Binds a JSON value with the closest SQLite type; arrays and objects become JSON text.
/// Strings are bound where they lie, not copied.
fn to_sqlite(value: &Value) -> ToSqlOutput<'_> {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
            None => ToSqlOutput::Borrowed(ValueRef::Real(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        other => ToSqlOutput::Owned(Sql::Text(other.to_string())),
    }
}

/// Sorts an engine error into a tool error for warehouse `name` at `place`.
pub fn explain(error: SqliteError, name: &str, place: &str) -> ToolError {
    use rusqlite::ErrorCode;
    match error {
        // The call has already waited the whole connect timeout; a retry would wait again.
        SqliteError::PoolTimeout { max, waited } => ToolError::Upstream {
            message: format!(
                "all {max} connections of warehouse '{name}' are busy; waited {} ms; raise max_connections or retry later",
                waited.as_millis()
            ),
            transient: false,
        },
        SqliteError::Thread(message) => ToolError::Internal(message),
        SqliteError::TooLarge(too_large) => ToolError::InvalidArguments(too_large.to_string()),
        SqliteError::Engine(rusqlite::Error::InvalidParameterCount(given, expected)) => {
            ToolError::InvalidArguments(format!(
                "the statement has {expected} placeholder(s) but params has {given} value(s)"
            ))
        }
        SqliteError::Engine(rusqlite::Error::MultipleStatement) => ToolError::Refused(
            "the database saw more than one statement; send exactly one read-only query".to_owned(),
        ),
        SqliteError::Engine(rusqlite::Error::SqliteFailure(failure, message)) => {
            let detail = message.unwrap_or_else(|| failure.to_string());
            match failure.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => ToolError::Upstream {
                    message: format!("warehouse '{name}' is busy ({detail}); try again shortly"),
                    transient: true,
                },
                ErrorCode::OperationInterrupted => ToolError::Cancelled,
                ErrorCode::AuthorizationForStatementDenied | ErrorCode::ReadOnly => {
                    ToolError::Refused(format!(
                        "the database refused it ({detail}); only reading is allowed"
                    ))
                }
                ErrorCode::CannotOpen | ErrorCode::NotADatabase | ErrorCode::PermissionDenied => {
                    ToolError::Upstream {
                        message: format!(
                            "warehouse '{name}': cannot open {place} ({detail}); check that the file exists and is a readable SQLite database"
                        ),
                        transient: false,
                    }
                }
                ErrorCode::SystemIoFailure => ToolError::Upstream {
                    message: format!("warehouse '{name}': I/O error on {place} ({detail})"),
                    transient: true,
                },
                _ => ToolError::Upstream {
                    message: format!("warehouse '{name}' rejected the query: {detail}"),
                    transient: false,
                },
            }
        }
        SqliteError::Engine(other) => ToolError::Upstream {
            message: format!("warehouse '{name}' failed: {other}"),
            transient: false,
        },
    }
}
