//! The database's half of the function allow-list: what only a warehouse's catalog knows.
//!
//! The guard allows built-ins it knows and hands every other function to the catalog
//! ([`GuardedSql::functions_for_the_catalog`]). PostgreSQL vouches for a function when every
//! overload of that name is immutable or stable (`pg_proc.provolatile`): a volatile function may
//! change data or state. MySQL/MariaDB vouch for a stored function declared `NO SQL` or
//! `READS SQL DATA`; loadable (UDF) functions are not in the catalog and stay refused.
//!
//! Verdicts are kept per warehouse for a minute, so a query calling the same functions again
//! costs no extra round trip; a refusal names the function and how to allow it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::Row as _;
use sqlx::{MySql, Postgres};

use super::guard::{FunctionName, GuardedSql};
use super::session::{EngineError, ServerPool};

/// How long a verdict is trusted before the catalog is asked again.
const VERDICT_TTL: Duration = Duration::from_secs(60);
/// Verdicts kept per warehouse; past this the oldest half is forgotten.
const MAX_VERDICTS: usize = 4_096;

/// A catalog's verdict on one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The catalog vouches for it.
    Allowed,
    /// Why it may not run.
    Refused(String),
}

/// Verdicts a warehouse's catalog gave recently.
#[derive(Default)]
pub struct CatalogVerdicts {
    verdicts: Mutex<HashMap<FunctionName, (Verdict, Instant)>>,
}

impl CatalogVerdicts {
    /// The functions of `sql` the catalog has not judged recently; `Err` with the reason when a
    /// recent verdict already refuses one.
    pub fn unjudged<'a>(&self, sql: &'a GuardedSql) -> Result<Vec<&'a FunctionName>, String> {
        let verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        let mut unjudged = Vec::new();
        for function in sql.functions_for_the_catalog() {
            match verdicts.get(function) {
                Some((verdict, at)) if at.elapsed() < VERDICT_TTL => {
                    if let Verdict::Refused(reason) = verdict {
                        return Err(reason.clone());
                    }
                }
                _ => unjudged.push(function),
            }
        }
        Ok(unjudged)
    }

    /// Keeps `judged` and returns the first refusal among them.
    pub fn record(&self, judged: Vec<(FunctionName, Verdict)>) -> Result<(), String> {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        if verdicts.len() + judged.len() > MAX_VERDICTS {
            let mut ages: Vec<Instant> = verdicts.values().map(|(_, at)| *at).collect();
            ages.sort_unstable();
            if let Some(cut) = ages.get(ages.len() / 2) {
                let cut = *cut;
                verdicts.retain(|_, (_, at)| *at > cut);
            }
        }
        let now = Instant::now();
        let mut refusal = None;
        for (function, verdict) in judged {
            if let (None, Verdict::Refused(reason)) = (&refusal, &verdict) {
                refusal = Some(reason.clone());
            }
            verdicts.insert(function, (verdict, now));
        }
        refusal.map_or(Ok(()), Err)
    }
}

/// How to allow a function the catalog does not vouch for.
fn how_to_allow(function: &FunctionName, warehouse: &str) -> String {
    format!("if it only reads, add \"{function}\" to allow_functions in [warehouses.{warehouse}]")
}

/// PostgreSQL: every overload of each name, with whether all are immutable or stable.
pub async fn judge_postgres(
    pool: &ServerPool<Postgres>,
    functions: &[&FunctionName],
    warehouse: &str,
) -> Result<Vec<(FunctionName, Verdict)>, EngineError> {
    let mut session = pool.acquire().await?;
    let names: Vec<String> = functions.iter().map(|f| f.name.clone()).collect();
    let rows = sqlx::query(
        "SELECT n.nspname, p.proname, bool_and(p.provolatile IN ('i', 's'))
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE p.proname = ANY($1)
          GROUP BY n.nspname, p.proname",
    )
    .bind(names)
    .fetch_all(session.conn())
    .await?;
    // A catalog read in autocommit leaves nothing behind on the connection.
    session.clean = true;
    let mut catalog: Vec<(String, String, bool)> = Vec::with_capacity(rows.len());
    for row in &rows {
        catalog.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    }
    Ok(functions
        .iter()
        .map(|function| {
            // An unqualified name may resolve to any schema's function of that name, depending
            // on the search path and the argument types: all of them must be safe.
            let matching: Vec<bool> = catalog
                .iter()
                .filter(|(schema, name, _)| {
                    *name == function.name && function.schema.as_ref().is_none_or(|s| s == schema)
                })
                .map(|(_, _, safe)| *safe)
                .collect();
            let verdict = if matching.is_empty() {
                Verdict::Refused(format!(
                    "function {function}() does not exist in warehouse '{warehouse}'; check its name and schema with sql_search"
                ))
            } else if matching.iter().all(|safe| *safe) {
                Verdict::Allowed
            } else {
                Verdict::Refused(format!(
                    "function {function}() is not allowed on warehouse '{warehouse}': PostgreSQL marks it (or one of its overloads) volatile, so it may change data or session state; {}",
                    how_to_allow(function, warehouse)
                ))
            };
            ((*function).clone(), verdict)
        })
        .collect())
}

/// MySQL/MariaDB: the stored functions of each name, with their declared SQL access.
pub async fn judge_mysql(
    pool: &ServerPool<MySql>,
    functions: &[&FunctionName],
    warehouse: &str,
) -> Result<Vec<(FunctionName, Verdict)>, EngineError> {
    let mut session = pool.acquire().await?;
    let placeholders = vec!["?"; functions.len()].join(", ");
    let sql = format!(
        "SELECT CAST(ROUTINE_SCHEMA AS CHAR), CAST(ROUTINE_NAME AS CHAR), CAST(SQL_DATA_ACCESS AS CHAR), CAST(DATABASE() AS CHAR)
           FROM information_schema.ROUTINES
          WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_NAME IN ({placeholders})"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for function in functions {
        query = query.bind(function.name.clone());
    }
    let rows = query.fetch_all(session.conn()).await?;
    session.clean = true;
    let mut catalog: Vec<(String, String, String, Option<String>)> = Vec::new();
    for row in &rows {
        catalog.push((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        ));
    }
    Ok(functions
        .iter()
        .map(|function| {
            let found = catalog.iter().find(|(schema, name, _, current)| {
                name.eq_ignore_ascii_case(&function.name)
                    && match &function.schema {
                        Some(wanted) => schema == wanted,
                        None => current.as_deref() == Some(schema.as_str()),
                    }
            });
            let verdict = match found {
                None => Verdict::Refused(format!(
                    "function {function}() is neither a built-in read-only function nor a stored function of warehouse '{warehouse}'; {}",
                    how_to_allow(function, warehouse)
                )),
                Some((_, _, access, _)) if access == "NO SQL" || access == "READS SQL DATA" => {
                    Verdict::Allowed
                }
                Some((_, _, access, _)) => Verdict::Refused(format!(
                    "stored function {function}() is declared {access}; only functions declared NO SQL or READS SQL DATA may run: redeclare it, or {}",
                    how_to_allow(function, warehouse)
                )),
            };
            ((*function).clone(), verdict)
        })
        .collect())
}
