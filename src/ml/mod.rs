//! ML pipeline tools: MLflow's runs and model registry, model evaluation and feature drift
//! computed from warehouse data, predictions from scoring endpoints or models trained here, and
//! gated alias moves.
//!
//! `config.rs` reads `[ml.NAME]`; `mlflow.rs` is the REST client; `data.rs` the only way to the
//! warehouses (nested `sql_query` calls, so the SQL guard and read-only sessions apply);
//! `stats/` the metrics and drift statistics; `train/` the models trained in Rust and their
//! portable artifact; `log.rs` writing results back to MLflow; `tools/` one file per tool.
//! `ml_evaluate`, `ml_monitor` and `ml_train` need only a warehouse; the MLflow tools appear with
//! an `[ml.*]` table.

pub mod config;
pub mod data;
pub mod log;
pub mod mlflow;
pub mod stats;
pub mod tools;
pub mod train;

use std::collections::BTreeMap;
use std::sync::Arc;

use self::config::{MlConfig, MlFile};
use self::log::LogAccess;
use self::mlflow::Mlflow;
use self::tools::Servers;
use crate::config::ConfigSource;
use crate::tools::kind::{Kind, KindError, KindHost, Reloaded};
use crate::tools::registry::Registration;
use crate::tools::typed;

/// The ML kind.
pub struct Ml {
    servers: Arc<Servers>,
    warehouse_tools: bool,
    config: Option<BTreeMap<String, MlConfig>>,
}

impl Kind for Ml {
    const NAME: &'static str = "ml";
    type File = MlFile;

    fn start(file: MlFile, source: &ConfigSource, host: KindHost) -> Result<Self, KindError> {
        let servers: Servers = config::check(&file, source)?
            .into_iter()
            .map(|tracking| (tracking.name.clone(), Arc::new(Mlflow::new(tracking))))
            .collect();
        let servers = Arc::new(servers);
        let log = if !servers.values().any(|s| s.config().allow_log) {
            LogAccess::NotConfigured
        } else if host.read_only() {
            LogAccess::ReadOnly
        } else {
            LogAccess::Allowed
        };
        let mut registrations = Vec::new();
        // The SQL kind starts first: its tools are there when a warehouse is.
        let warehouse_tools = host.tool("sql_query").is_some();
        if warehouse_tools {
            registrations.push(typed(tools::Evaluate::new(
                host.clone(),
                Arc::clone(&servers),
                log,
            )));
            registrations.push(typed(tools::Monitor::new(host.clone())));
            registrations.push(typed(tools::Train::new(
                host.clone(),
                Arc::clone(&servers),
                log,
            )));
        }
        if !servers.is_empty() {
            registrations.push(typed(tools::ListExperiments::new(Arc::clone(&servers))));
            registrations.push(typed(tools::SearchRuns::new(Arc::clone(&servers))));
            registrations.push(typed(tools::GetRun::new(Arc::clone(&servers))));
            registrations.push(typed(tools::ListModels::new(Arc::clone(&servers))));
            registrations.push(typed(tools::GetModel::new(Arc::clone(&servers))));
            registrations.push(typed(tools::Predict::new(
                host.clone(),
                Arc::clone(&servers),
            )));
            if servers.values().any(|s| s.config().allow_deploy) {
                registrations.push(typed(tools::Deploy::new(Arc::clone(&servers))));
            }
        }
        for tool in registrations {
            host.register(Registration::listed(tool).in_group("ml"))?;
        }
        Ok(Ml {
            servers,
            warehouse_tools,
            config: file.ml,
        })
    }

    fn reload(&self, file: MlFile, _source: &ConfigSource) -> Result<Reloaded, KindError> {
        let mut reloaded = Reloaded::default();
        if file.ml != self.config {
            reloaded.restart_needed.push("ml".to_owned());
        }
        Ok(reloaded)
    }

    fn instructions(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.warehouse_tools {
            parts.push("ML: ml_evaluate scores predictions against outcomes from SQL; ml_monitor compares a reference and a current window for drift; ml_train fits a small model on SQL rows.");
        }
        if !self.servers.is_empty() {
            parts.push("MLflow: ml_list_models / ml_get_model for the registry and aliases, ml_search_runs / ml_get_run for experiments, ml_predict to score rows.");
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}
