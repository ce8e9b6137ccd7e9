//! SQL warehouses: the read-only guard, read-only sessions, faithful value mapping, and the
//! `sql_*` tools built on them.
//!
//! Invariant: every SQL string passes [`guard::check`] before any connection sees it; a
//! [`warehouse::Warehouse`] accepts only a [`guard::GuardedSql`].

pub mod account;
pub mod catalog;
pub mod config;
pub mod custom;
pub mod demo;
pub mod explore;
pub mod function_check;
pub mod gauges;
pub mod guard;
pub mod health;
pub mod mysql;
pub mod pg_values;
pub mod postgres;
pub mod profile;
pub mod query;
pub mod resources;
pub mod rows;
pub mod session;
pub mod sqlite;
pub mod warehouse;

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::config::ConfigSource;
use crate::tools::kind::{Kind, KindError, KindHost, Reloaded};
use crate::tools::registry::Registration;
use crate::tools::{DynTool, typed};

use self::config::{SqlConfig, SqlFile};
use self::warehouse::Warehouses;

/// The SQL tool kind: one warehouse set shared by the `sql_*` tools and the custom SQL tools.
pub struct Sql {
    host: KindHost,
    warehouses: Arc<Warehouses>,
    /// The built-in tools, kept so that a reload re-registers the same versions.
    builtin: Vec<Arc<dyn DynTool>>,
    /// The warehouses the running tools were built for, to tell which edits need a restart.
    config: Mutex<SqlConfig>,
}

impl Kind for Sql {
    const NAME: &'static str = "sql";
    type File = SqlFile;

    fn start(file: SqlFile, source: &ConfigSource, host: KindHost) -> Result<Self, KindError> {
        let config = SqlConfig::from_file(file, source)?;
        let warehouses = Warehouses::new(&config, host.data_dir())
            .map_err(|message| source.invalid(0, "warehouses", message, "check the URL"))?;
        let warehouses = Arc::new(warehouses);
        let output_dir = host.workspace().output_dir.clone();
        let builtin = vec![
            typed(query::SqlQuery::new(
                Arc::clone(&warehouses),
                output_dir.clone(),
            )),
            typed(explore::ListWarehouses::new(Arc::clone(&warehouses))),
            typed(explore::ListTables::new(Arc::clone(&warehouses))),
            typed(explore::DescribeTable::new(Arc::clone(&warehouses))),
            typed(explore::Search::new(Arc::clone(&warehouses))),
            typed(explore::Explain::new(Arc::clone(&warehouses))),
            typed(profile::Profile::new(Arc::clone(&warehouses))),
        ];
        let kind = Sql {
            host,
            warehouses,
            builtin,
            config: Mutex::new(config.clone()),
        };
        kind.install(&config, source)?;
        let names = kind
            .warehouses
            .names()
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        kind.host
            .add_resources(Arc::new(resources::TableSchemas::new(names)));
        kind.host
            .add_health_check(Arc::new(health::WarehouseHealth(Arc::clone(
                &kind.warehouses,
            ))));
        kind.host
            .add_gauges(Arc::new(gauges::WarehousePools(Arc::clone(
                &kind.warehouses,
            ))));
        Ok(kind)
    }

    /// Custom SQL tools are re-checked and swapped in; warehouses keep their connections until
    /// a restart, so an edit to them is reported, not applied.
    fn reload(&self, file: SqlFile, source: &ConfigSource) -> Result<Reloaded, KindError> {
        let config = SqlConfig::from_file(file, source)?;
        let mut reloaded = Reloaded::default();
        {
            let running = self.config.lock().unwrap_or_else(|p| p.into_inner());
            if running.warehouses != config.warehouses {
                reloaded.restart_needed.push("warehouses".to_owned());
            }
        }
        self.install(&config, source)?;
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sql_tools = config.sql_tools;
        Ok(reloaded)
    }

    fn instructions(&self) -> Option<String> {
        Some(
            "Explore before querying: list tables and check columns, then run one aggregate \
             query with sql_query. Results carry `truncated` when rows were cut: aggregate in \
             SQL instead of reading everything."
                .to_owned(),
        )
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            self.warehouses.close().await;
            tracing::info!("closed the warehouses' connections");
        })
    }
}

impl Sql {
    /// Registers the built-in tools and the custom tools of `config` as this kind's whole tool
    /// set, atomically; every custom tool that does not check out is reported.
    fn install(&self, config: &SqlConfig, source: &ConfigSource) -> Result<(), KindError> {
        let mut registrations: Vec<Registration> = self
            .builtin
            .iter()
            .map(|tool| Registration::listed(Arc::clone(tool)))
            .collect();
        let mut problems = Vec::new();
        for file in &config.sql_tools {
            match custom::build(file, &self.warehouses) {
                Ok(tool) if file.internal => {
                    registrations.push(Registration::internal(tool).in_group("custom"))
                }
                Ok(tool) => registrations.push(Registration::listed(tool).in_group("custom")),
                Err(message) => problems.push(KindError::Config(source.invalid(
                    source.line_of_entry("name", &file.name),
                    format!("sql_tools.{}", file.name),
                    message,
                    "fix the tool's definition in the config",
                ))),
            }
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            _ => Err(KindError::Many(problems)),
        }?;
        self.host.replace_tools(registrations)?;
        Ok(())
    }
}
