//! Readiness probes: each kind says whether the systems behind its tools answer.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

/// How long one probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The answer of one backing system (a warehouse, a broker).
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The system's configured name.
    pub name: String,
    /// What kind of system it is, e.g. `sqlite` or `postgres`.
    pub kind: String,
    /// Whether it answered.
    pub ready: bool,
    /// Time to answer (or to give up), in milliseconds.
    pub elapsed_ms: f64,
    /// Why it is not ready; never holds a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A kind's readiness check over the systems it serves.
pub trait HealthCheck: Send + Sync {
    /// Asks every system once; each answer within [`PROBE_TIMEOUT`].
    fn probe(&self) -> BoxFuture<'_, Vec<Probe>>;
}

/// Runs every check concurrently.
pub async fn probe_all(checks: &[Arc<dyn HealthCheck>]) -> Vec<Probe> {
    futures::future::join_all(checks.iter().map(|check| check.probe()))
        .await
        .into_iter()
        .flatten()
        .collect()
}
