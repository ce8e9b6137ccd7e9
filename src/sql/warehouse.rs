//! Named warehouses and their read-only sessions.
//!
//! Connections are made lazily, so an unreachable warehouse costs nothing until it is used and
//! fails only the calls that name it. A SQLite warehouse is opened read-only with
//! `PRAGMA query_only = ON`; each query runs with a progress handler that interrupts SQLite as
//! soon as the call is cancelled or its deadline passes, and a connection that saw an error,
//! timeout or cancellation is closed instead of going back to the pool.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Column as _, Executor, Row as _, Sqlite, Statement as _, TypeInfo as _};
use tokio::sync::OnceCell;

use super::guard::{Dialect, GuardedSql};
use super::types::{Column, sqlite_value, storage_class};
use crate::config::{Config, WarehouseConfig, WarehouseLocation};
use crate::tools::{CallContext, ToolError};

/// SQLite virtual-machine steps between cancellation checks: small enough to stop within
/// microseconds, large enough to cost nothing measurable.
const PROGRESS_CHECK_STEPS: i32 = 10_000;

/// Every configured warehouse, in config order (the first is the default).
pub struct Warehouses {
    list: Vec<Warehouse>,
}

impl Warehouses {
    /// Warehouses for `config`; nothing is opened yet.
    pub fn new(config: &Config) -> Self {
        Warehouses {
            list: config
                .warehouses
                .iter()
                .map(|w| Warehouse::new(w.clone(), config.data_dir.clone()))
                .collect(),
        }
    }

    /// The named warehouse, or the default one when `name` is `None`.
    pub fn get(&self, name: Option<&str>) -> Result<&Warehouse, ToolError> {
        match name {
            None => self.list.first().ok_or_else(|| {
                ToolError::InvalidArguments("no warehouse is configured".to_owned())
            }),
            Some(name) => self.list.iter().find(|w| w.name() == name).ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "unknown warehouse '{name}'; configured warehouses: {}",
                    self.names().join(", ")
                ))
            }),
        }
    }

    /// Names in config order.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(Warehouse::name).collect()
    }
}

/// One warehouse: its config and a lazily opened connection pool.
pub struct Warehouse {
    config: WarehouseConfig,
    data_dir: PathBuf,
    pool: OnceCell<SqlitePool>,
}

/// Rows read by a query, in order, with the columns they share.
#[derive(Debug)]
pub struct QueryRows {
    /// Column names and database types.
    pub columns: Vec<Column>,
    /// Values, one array per row, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Whether reading stopped at the row cap with more rows left.
    pub truncated: bool,
}

impl Warehouse {
    fn new(config: WarehouseConfig, data_dir: PathBuf) -> Self {
        Warehouse {
            config,
            data_dir,
            pool: OnceCell::new(),
        }
    }

    /// The warehouse's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The SQL dialect its queries are checked against.
    pub fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// Runs a guarded query, reading at most `max_rows` rows; reading stops there, so a huge
    /// result is never buffered.
    pub async fn query(
        &self,
        sql: &GuardedSql,
        params: &[Value],
        max_rows: usize,
        ctx: &CallContext,
    ) -> Result<QueryRows, ToolError> {
        if sql.dialect() != self.dialect() {
            return Err(ToolError::Internal(format!(
                "SQL checked as {} sent to {} warehouse '{}'",
                sql.dialect().name(),
                self.dialect().name(),
                self.name()
            )));
        }
        let pool = self.pool().await?;
        let mut session = Session::open(pool, ctx, self).await?;
        let result = session.read(sql, params, max_rows).await;
        match result {
            Ok(rows) => {
                session.finish().await;
                ctx.add_records(rows.rows.len() as u64);
                Ok(rows)
            }
            Err(error) => Err(self.explain(error, ctx)),
        }
    }

    async fn pool(&self) -> Result<&SqlitePool, ToolError> {
        self.pool
            .get_or_try_init(|| async {
                let path = match &self.config.location {
                    WarehouseLocation::Sqlite(path) => path.clone(),
                    WarehouseLocation::Demo => super::demo::ensure(&self.data_dir)
                        .await
                        .map_err(|e| ToolError::Upstream {
                            message: format!(
                                "warehouse '{}': the demo database could not be created in {}: {e}. Check that the folder is writable or set DATAMCP_DATA_DIR",
                                self.name(),
                                self.data_dir.display()
                            ),
                            transient: false,
                        })?,
                };
                let options = SqliteConnectOptions::from_str("sqlite:")
                    .map_err(|e| ToolError::Internal(e.to_string()))?
                    .filename(&path)
                    .read_only(true)
                    .create_if_missing(false)
                    .busy_timeout(Duration::from_millis(self.config.busy_timeout_ms))
                    .pragma("query_only", "ON")
                    .statement_cache_capacity(256);
                Ok(SqlitePoolOptions::new()
                    .max_connections(self.config.max_connections)
                    .acquire_timeout(Duration::from_millis(self.config.connect_timeout_ms))
                    .idle_timeout(Duration::from_millis(self.config.idle_timeout_ms))
                    .connect_lazy_with(options))
            })
            .await
    }

    /// Turns a driver error into a message that names the warehouse and what to check.
    fn explain(&self, error: sqlx::Error, ctx: &CallContext) -> ToolError {
        if ctx.cancellation().is_cancelled() {
            // The progress handler interrupted SQLite; the policy reports timeout or cancel.
            return ToolError::Cancelled;
        }
        let place = match &self.config.location {
            WarehouseLocation::Sqlite(path) => path.display().to_string(),
            WarehouseLocation::Demo => "the demo database".to_owned(),
        };
        match error {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes: another
                // connection holds a lock, so trying again shortly may succeed.
                let primary = code.parse::<i32>().map(|c| c & 0xff).unwrap_or(0);
                let transient = matches!(primary, 5 | 6);
                let message = db.message();
                ToolError::Upstream {
                    message: if transient {
                        format!(
                            "warehouse '{}' is busy ({message}); try again shortly",
                            self.name()
                        )
                    } else {
                        format!("warehouse '{}' rejected the query: {message}", self.name())
                    },
                    transient,
                }
            }
            sqlx::Error::PoolTimedOut => ToolError::Upstream {
                message: format!(
                    "warehouse '{}': no connection became free in {} ms; the warehouse is overloaded or max_connections is too low",
                    self.name(),
                    self.config.connect_timeout_ms
                ),
                transient: true,
            },
            sqlx::Error::Io(io) => ToolError::Upstream {
                message: format!("warehouse '{}': I/O error on {place}: {io}", self.name()),
                transient: true,
            },
            sqlx::Error::ColumnDecode { index, source } => ToolError::Upstream {
                message: format!(
                    "warehouse '{}': column {index} could not be read: {source}",
                    self.name()
                ),
                transient: false,
            },
            other => ToolError::Upstream {
                message: format!(
                    "warehouse '{}' ({place}) failed: {other}. Check that the file exists and is readable",
                    self.name()
                ),
                transient: false,
            },
        }
    }
}

/// One pooled connection for one query. Unless the query finishes cleanly, the connection is
/// closed when the session is dropped, so no interrupted or failed state is ever reused.
struct Session<'a> {
    conn: PoolConnection<Sqlite>,
    clean: bool,
    warehouse: &'a Warehouse,
}

impl<'a> Session<'a> {
    async fn open(
        pool: &SqlitePool,
        ctx: &CallContext,
        warehouse: &'a Warehouse,
    ) -> Result<Session<'a>, ToolError> {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| warehouse.explain(e, ctx))?;
        let token = ctx.cancellation().clone();
        conn.lock_handle()
            .await
            .map_err(|e| warehouse.explain(e, ctx))?
            .set_progress_handler(PROGRESS_CHECK_STEPS, move || !token.is_cancelled());
        Ok(Session {
            conn,
            clean: false,
            warehouse,
        })
    }

    async fn read(
        &mut self,
        sql: &GuardedSql,
        params: &[Value],
        max_rows: usize,
    ) -> Result<QueryRows, sqlx::Error> {
        // SQLite runs every `;`-separated statement it is given, so it gets the statement the
        // guard rendered from the one syntax tree it checked, never the raw text.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.canonical().to_owned()));
        for param in params {
            query = bind(query, param);
        }
        let mut columns: Option<Vec<Column>> = None;
        let mut rows = Vec::new();
        let mut truncated = false;
        {
            let mut stream = query.fetch(&mut *self.conn);
            while let Some(row) = stream.try_next().await? {
                if rows.len() == max_rows {
                    truncated = true;
                    break;
                }
                let columns = columns.get_or_insert_with(|| {
                    row.columns()
                        .iter()
                        .map(|c| Column::new(c.name(), c.type_info().name()))
                        .collect()
                });
                let values = (0..columns.len())
                    .map(|i| sqlite_value(&row, i, &columns[i].r#type))
                    .collect::<Result<Vec<_>, _>>()?;
                // Expressions have no declared type: name the storage class of their first value.
                for (index, (column, value)) in columns.iter_mut().zip(&values).enumerate() {
                    if column.r#type == "NULL" && !value.is_null() {
                        column.r#type = storage_class(&row, index)?;
                    }
                }
                rows.push(values);
            }
        }
        let columns = match columns {
            Some(columns) => columns,
            // No rows: the prepared statement still knows its columns.
            None => {
                let statement = (&mut *self.conn)
                    .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(
                        sql.canonical().to_owned(),
                    )))
                    .await?;
                statement
                    .columns()
                    .iter()
                    .map(|c| Column::new(c.name(), c.type_info().name()))
                    .collect()
            }
        };
        Ok(QueryRows {
            columns,
            rows,
            truncated,
        })
    }

    /// Marks the session clean and removes the progress handler before the connection goes
    /// back to the pool.
    async fn finish(mut self) {
        match self.conn.lock_handle().await {
            Ok(mut handle) => {
                handle.remove_progress_handler();
                self.clean = true;
            }
            Err(error) => {
                tracing::debug!(warehouse = self.warehouse.name(), %error, "could not reset connection");
            }
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if !self.clean {
            self.conn.close_on_drop();
        }
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds a JSON value with the closest SQLite type; arrays and objects are bound as JSON text.
fn bind<'q>(query: SqliteQuery<'q>, value: &Value) -> SqliteQuery<'q> {
    match value {
        Value::Null => query.bind(None::<i64>),
        Value::Bool(b) => query.bind(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => query.bind(i),
            None => query.bind(n.as_f64()),
        },
        Value::String(s) => query.bind(s.clone()),
        other => query.bind(other.to_string()),
    }
}
