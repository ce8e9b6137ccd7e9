//! Each warehouse's connection pool as gauges: its size, connections open, in use and idle, and
//! calls waiting for one. A pool whose calls wait while every connection is in use is too small
//! for its load (or its queries too slow).

use std::sync::Arc;

use super::warehouse::Warehouses;
use crate::tools::gauges::{Gauge, GaugeSource};

/// The pools of every warehouse; a SQLite warehouse appears once it has been opened.
pub struct WarehousePools(pub Arc<Warehouses>);

impl GaugeSource for WarehousePools {
    fn gauges(&self) -> Vec<Gauge> {
        let mut gauges = Vec::new();
        for warehouse in self.0.all() {
            let Some(figures) = warehouse.pool_figures() else {
                continue;
            };
            let labels = vec![
                ("warehouse", warehouse.name().to_owned()),
                ("engine", warehouse.dialect().name().to_owned()),
            ];
            for (name, help, value) in [
                (
                    "datamcp_pool_connections_max",
                    "Most connections a warehouse's pool may open (max_connections).",
                    figures.max,
                ),
                (
                    "datamcp_pool_connections_open",
                    "Connections a warehouse's pool has open or is opening.",
                    figures.open,
                ),
                (
                    "datamcp_pool_connections_in_use",
                    "Connections held by running calls.",
                    figures.in_use,
                ),
                (
                    "datamcp_pool_connections_idle",
                    "Open connections waiting for a call.",
                    figures.idle,
                ),
                (
                    "datamcp_pool_calls_waiting",
                    "Calls waiting for a connection of a warehouse's pool.",
                    figures.waiting,
                ),
            ] {
                gauges.push(Gauge {
                    name,
                    help,
                    labels: labels.clone(),
                    value: value as f64,
                });
            }
        }
        gauges
    }
}
