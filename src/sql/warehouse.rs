//! Named warehouses: which engine each one is, and where it lives.
//!
//! Connections are made lazily, so an unreachable warehouse costs nothing until it is used and
//! fails only the calls that name it; when it comes back, calls work again. Each engine module
//! keeps its own read-only sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use super::config::{SqlConfig, WarehouseConfig, WarehouseLocation};
use super::function_check::CatalogVerdicts;
use super::guard::{self, Dialect, GuardedSql};
use super::mysql::MysqlEngine;
use super::postgres::PostgresEngine;
use super::rows::QueryRows;
use super::session::ServerSettings;
use super::sqlite::{SqlitePool, SqliteSettings};
use crate::table::ReadLimits;
use crate::tools::{CallContext, ToolError};

/// Every configured warehouse, in config order (the first is the default).
pub struct Warehouses {
    list: Vec<Warehouse>,
}

impl Warehouses {
    /// Warehouses for `config`, the demo database kept in `data_dir`; nothing is opened yet.
    /// Fails on an unusable connection URL.
    pub fn new(config: &SqlConfig, data_dir: &Path) -> Result<Self, String> {
        let list = config
            .warehouses
            .iter()
            .map(|w| Warehouse::new(w.clone(), data_dir.to_owned()))
            .collect::<Result<_, _>>()?;
        Ok(Warehouses { list })
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

    /// Closes every open connection, waiting for the database to see them go (for shutdown).
    pub async fn close(&self) {
        for warehouse in &self.list {
            match &warehouse.engine {
                Engine::Sqlite { pool, .. } => {
                    if let Some(pool) = pool.get() {
                        pool.close();
                    }
                }
                Engine::Postgres(engine) => engine.close().await,
                Engine::Mysql(engine) => engine.close().await,
            }
        }
    }

    /// Every warehouse, the default first.
    pub fn all(&self) -> impl Iterator<Item = &Warehouse> {
        self.list.iter()
    }

    /// Names in config order.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(Warehouse::name).collect()
    }
}

/// One warehouse: its config and its engine.
pub struct Warehouse {
    config: WarehouseConfig,
    engine: Engine,
    verdicts: CatalogVerdicts,
    guarded: GuardedCache,
}

/// Statements that passed this warehouse's guard, by their exact text.
#[derive(Default)]
struct GuardedCache(Mutex<HashMap<Box<str>, Arc<GuardedSql>>>);

impl GuardedCache {
    /// Statements kept at most; when full it starts over, which keeps it bounded without
    /// bookkeeping per hit.
    const ENTRIES: usize = 512;
    /// Longer statements are checked every time: they are rarely repeated, and memory stays
    /// bounded (about 2 MiB of text at most).
    const LONGEST: usize = 4096;

    fn get(&self, sql: &str) -> Option<Arc<GuardedSql>> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(sql).cloned()
    }

    fn keep(&self, sql: &str, passed: &Arc<GuardedSql>) {
        if sql.len() > Self::LONGEST {
            return;
        }
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= Self::ENTRIES {
            cache.clear();
        }
        cache.insert(sql.into(), Arc::clone(passed));
    }
}

enum Engine {
    /// Opened on first use (the demo database is generated then).
    Sqlite {
        data_dir: PathBuf,
        pool: OnceCell<SqlitePool>,
    },
    Postgres(PostgresEngine),
    Mysql(MysqlEngine),
}

fn server_settings(config: &WarehouseConfig, url: &str) -> ServerSettings {
    ServerSettings {
        name: config.name.clone(),
        require_read_only_account: config.require_read_only_account,
        allow_privileged_account: config.allow_privileged_account,
        url: url.to_owned(),
        max_connections: config.max_connections,
        acquire_timeout: Duration::from_millis(config.connect_timeout_ms),
        idle_timeout: Duration::from_millis(config.idle_timeout_ms),
        statement_timeout: Duration::from_millis(config.statement_timeout_ms),
    }
}

impl Warehouse {
    fn new(config: WarehouseConfig, data_dir: PathBuf) -> Result<Self, String> {
        let engine = match &config.location {
            WarehouseLocation::Sqlite(_) | WarehouseLocation::Demo => Engine::Sqlite {
                data_dir,
                pool: OnceCell::new(),
            },
            WarehouseLocation::Postgres(url) => Engine::Postgres(
                PostgresEngine::new(&server_settings(&config, url.expose()))
                    .map_err(|e| format!("warehouse '{}': {e}", config.name))?,
            ),
            WarehouseLocation::Mysql(url) => Engine::Mysql(
                MysqlEngine::new(&server_settings(&config, url.expose()))
                    .map_err(|e| format!("warehouse '{}': {e}", config.name))?,
            ),
        };
        Ok(Warehouse {
            config,
            engine,
            verdicts: CatalogVerdicts::default(),
            guarded: GuardedCache::default(),
        })
    }

    /// The warehouse's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether its account can write, once the first query has inspected it (`None` before, and
    /// for SQLite, where the file is opened read-only).
    pub fn account_can_write(&self) -> Option<bool> {
        match &self.engine {
            Engine::Sqlite { .. } => None,
            Engine::Postgres(engine) => engine.account().map(|a| a.can_write()),
            Engine::Mysql(engine) => engine.account().map(|a| a.can_write()),
        }
    }

    /// What the data is about, from the config.
    pub fn description(&self) -> Option<&str> {
        self.config.description.as_deref()
    }

    /// Checks client SQL with this warehouse's guard settings. The verdict is a function of the
    /// text, the dialect and the settings alone, so a statement the guard passed before is not
    /// parsed again: agents repeat their statements, and parsing is most of a small call's work.
    /// Functions left to the catalog are still judged per call, by [`Warehouse::query`].
    pub fn guard(&self, sql: &str) -> Result<Arc<GuardedSql>, ToolError> {
        if let Some(passed) = self.guarded.get(sql) {
            return Ok(passed);
        }
        let passed = Arc::new(
            guard::check_with(sql, self.dialect(), self.guard_settings())
                .map_err(|e| ToolError::Refused(e.to_string()))?,
        );
        self.guarded.keep(sql, &passed);
        Ok(passed)
    }

    /// The guard's bounds and extra allowed functions for this warehouse.
    pub fn guard_settings(&self) -> &guard::Settings {
        &self.config.guard
    }

    /// Its connection pool's state now; `None` for a SQLite warehouse not opened yet.
    pub fn pool_figures(&self) -> Option<super::session::PoolFigures> {
        match &self.engine {
            Engine::Sqlite { pool, .. } => pool.get().map(SqlitePool::figures),
            Engine::Postgres(engine) => Some(engine.pool_figures()),
            Engine::Mysql(engine) => Some(engine.pool_figures()),
        }
    }

    /// The SQL dialect its queries are checked against.
    pub fn dialect(&self) -> Dialect {
        match self.engine {
            Engine::Sqlite { .. } => Dialect::Sqlite,
            Engine::Postgres(_) => Dialect::Postgres,
            Engine::Mysql(_) => Dialect::Mysql,
        }
    }

    /// Runs a guarded query, reading no more than `limits` allow; reading stops there, so a huge
    /// result is never buffered.
    pub async fn query(
        &self,
        sql: &GuardedSql,
        params: &[Value],
        limits: ReadLimits,
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
        if !sql.functions_for_the_catalog().is_empty() {
            Box::pin(self.vouch_for_functions(sql)).await?;
        }
        let cancel = ctx.cancellation();
        // The server engines' futures are boxed: sqlx's are several kilobytes, and the state of
        // every call through here (a SQLite one too) would otherwise be as large as the largest,
        // copied whenever the call's future moves.
        let rows = match &self.engine {
            Engine::Sqlite { .. } => self
                .sqlite()
                .await?
                .query(sql, params, limits, cancel)
                .await
                .map_err(|e| super::sqlite::explain(e, self.name(), &self.place()))?,
            Engine::Postgres(engine) => {
                Box::pin(engine.query(sql, params, limits, ctx.remaining(), cancel))
                    .await
                    .map_err(|e| {
                        super::postgres::explain(
                            e,
                            self.name(),
                            engine.place(),
                            cancel.is_cancelled(),
                        )
                    })?
            }
            Engine::Mysql(engine) => {
                Box::pin(engine.query(sql, params, limits, ctx.remaining(), cancel))
                    .await
                    .map_err(|e| {
                        super::mysql::explain(e, self.name(), engine.place(), cancel.is_cancelled())
                    })?
            }
        };
        ctx.add_records(rows.rows.len() as u64);
        Ok(rows)
    }

    /// Runs a statement datamcp wrote itself (a catalog lookup, a profile scan, a probe). It
    /// passes the guard like a client's, so a mistake in datamcp's own SQL cannot write either;
    /// a refusal is datamcp's fault, not the caller's.
    pub async fn query_own(
        &self,
        sql: &str,
        params: &[Value],
        limits: ReadLimits,
        ctx: &CallContext,
    ) -> Result<QueryRows, ToolError> {
        // The warehouse's own settings: `sql_explain` wraps a client's query, which may call a
        // function only this warehouse's `allow_functions` admits.
        let guarded = guard::check_with(sql, self.dialect(), self.guard_settings())
            .map_err(|e| ToolError::Internal(format!("datamcp's own query was refused: {e}")))?;
        self.query(&guarded, params, limits, ctx).await
    }

    /// Asks the catalog about the functions the guard left to it, unless it answered recently.
    async fn vouch_for_functions(&self, sql: &GuardedSql) -> Result<(), ToolError> {
        if sql.functions_for_the_catalog().is_empty() {
            return Ok(());
        }
        let unjudged = self.verdicts.unjudged(sql).map_err(ToolError::Refused)?;
        if unjudged.is_empty() {
            return Ok(());
        }
        let judged = match &self.engine {
            // SQLite has no catalog of functions: its guard decides alone.
            Engine::Sqlite { .. } => return Ok(()),
            Engine::Postgres(engine) => {
                super::function_check::judge_postgres(engine.pool(), &unjudged, self.name())
                    .await
                    .map_err(|e| super::postgres::explain(e, self.name(), engine.place(), false))?
            }
            Engine::Mysql(engine) => {
                super::function_check::judge_mysql(engine.pool(), &unjudged, self.name())
                    .await
                    .map_err(|e| super::mysql::explain(e, self.name(), engine.place(), false))?
            }
        };
        self.verdicts.record(judged).map_err(ToolError::Refused)
    }

    fn place(&self) -> String {
        match (&self.config.location, &self.engine) {
            (_, Engine::Postgres(engine)) => engine.place().to_owned(),
            (_, Engine::Mysql(engine)) => engine.place().to_owned(),
            (WarehouseLocation::Sqlite(path), _) => path.display().to_string(),
            _ => "the demo database".to_owned(),
        }
    }

    async fn sqlite(&self) -> Result<&SqlitePool, ToolError> {
        let Engine::Sqlite { data_dir, pool } = &self.engine else {
            return Err(ToolError::Internal("not a SQLite warehouse".to_owned()));
        };
        pool.get_or_try_init(|| async {
            let path = match &self.config.location {
                WarehouseLocation::Sqlite(path) => path.clone(),
                _ => {
                    let dir = data_dir.clone();
                    tokio::task::spawn_blocking(move || super::demo::ensure(&dir))
                        .await
                        .map_err(|e| ToolError::Internal(e.to_string()))?
                        .map_err(|e| ToolError::Upstream {
                            message: format!(
                                "warehouse '{}': the demo database could not be created in {}: {e}. Check that the folder is writable or set DATAMCP_DATA_DIR",
                                self.name(),
                                data_dir.display()
                            ),
                            transient: false,
                        })?
                }
            };
            Ok(SqlitePool::new(SqliteSettings {
                path,
                max_connections: self.config.max_connections,
                acquire_timeout: Duration::from_millis(self.config.connect_timeout_ms),
                idle_timeout: Duration::from_millis(self.config.idle_timeout_ms),
                busy_timeout: Duration::from_millis(self.config.busy_timeout_ms),
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_the_guard_passed_is_not_parsed_again_and_a_refused_one_stays_refused() {
        let config = SqlConfig::parse(
            "[warehouses.a]\nurl = \"sqlite:///nonexistent/a.db\"\n",
            "t.toml",
        )
        .expect("config");
        let warehouses = Warehouses::new(&config, &std::env::temp_dir()).expect("warehouses");
        let warehouse = warehouses.get(None).expect("warehouse");
        let first = warehouse.guard("SELECT 1").expect("passes");
        let again = warehouse.guard("SELECT 1").expect("passes");
        assert!(Arc::ptr_eq(&first, &again), "parsed twice");
        assert!(!Arc::ptr_eq(
            &first,
            &warehouse.guard("SELECT 1 ").expect("passes")
        ));
        for _ in 0..2 {
            assert!(matches!(
                warehouse.guard("DELETE FROM t"),
                Err(ToolError::Refused(_))
            ));
        }
        let long = format!("SELECT 1 -- {}", "x".repeat(GuardedCache::LONGEST));
        let first = warehouse.guard(&long).expect("passes");
        assert!(!Arc::ptr_eq(
            &first,
            &warehouse.guard(&long).expect("passes")
        ));
    }
}
