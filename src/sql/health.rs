//! Readiness of the warehouses: one `SELECT 1` each, through the same guard and read-only
//! session as every query, so "ready" means a tool call would get through.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::warehouse::{Warehouse, Warehouses};
use crate::table::ReadLimits;
use crate::tools::CallContext;
use crate::tools::health::{HealthCheck, PROBE_TIMEOUT, Probe};

/// Probes every configured warehouse.
pub struct WarehouseHealth(pub Arc<Warehouses>);

impl HealthCheck for WarehouseHealth {
    fn probe(&self) -> BoxFuture<'_, Vec<Probe>> {
        Box::pin(futures::future::join_all(self.0.all().map(probe)))
    }
}

async fn probe(warehouse: &Warehouse) -> Probe {
    let started = Instant::now();
    let ctx = CallContext::new(
        "readiness".into(),
        PROBE_TIMEOUT,
        CancellationToken::new(),
        None,
    );
    let query = warehouse.query_own("SELECT 1", &[], ReadLimits::rows(1), &ctx);
    let outcome = match tokio::time::timeout(PROBE_TIMEOUT, query).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    };
    Probe {
        name: warehouse.name().to_owned(),
        kind: warehouse.dialect().name().to_owned(),
        ready: outcome.is_ok(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: outcome.err(),
    }
}
