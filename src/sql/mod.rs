//! SQL warehouses: the read-only guard, read-only sessions, faithful value mapping, and the
//! `sql_*` tools built on them.
//!
//! Invariant: every SQL string passes [`guard::check`] before any connection sees it; a
//! [`warehouse::Warehouse`] accepts only a [`guard::GuardedSql`].

pub mod account;
pub mod catalog;
pub mod custom;
pub mod demo;
pub mod explore;
pub mod format;
pub mod function_check;
pub mod guard;
pub mod health;
pub mod mysql;
pub mod parquet;
pub mod pg_values;
pub mod postgres;
pub mod profile;
pub mod query;
pub mod resources;
pub mod session;
pub mod sqlite;
pub mod types;
pub mod warehouse;

use std::sync::Arc;

use crate::config::Config;
use crate::tools::{BuiltTools, KindOffer, typed};

/// The SQL tool kind: one warehouse set shared by all `sql_*` tools.
pub fn tools(config: &Config) -> BuiltTools {
    let warehouses = Arc::new(warehouse::Warehouses::new(config)?);
    let mut tools = vec![
        typed(query::SqlQuery::new(
            Arc::clone(&warehouses),
            config.output_dir.clone(),
        )),
        typed(explore::ListWarehouses::new(Arc::clone(&warehouses))),
        typed(explore::ListTables::new(Arc::clone(&warehouses))),
        typed(explore::DescribeTable::new(Arc::clone(&warehouses))),
        typed(explore::Search::new(Arc::clone(&warehouses))),
        typed(explore::Explain::new(Arc::clone(&warehouses))),
        typed(profile::Profile::new(Arc::clone(&warehouses))),
    ];
    for file in &config.sql_tools {
        tools.push(custom::build(file, &warehouses)?);
    }
    let schemas =
        resources::TableSchemas::new(warehouses.names().iter().map(|n| (*n).to_owned()).collect());
    Ok(KindOffer {
        tools,
        resources: vec![
            Arc::new(schemas),
            Arc::new(parquet::OutputFiles::new(
                config.output_dir.clone(),
                config.output_max_bytes,
            )),
        ],
        health: vec![Arc::new(health::WarehouseHealth(warehouses))],
    })
}
