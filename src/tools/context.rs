//! The per-call context a tool receives: identity, deadline, cancellation, progress, and the
//! counters that end up in the result's [`ExecutionMeta`](super::ExecutionMeta).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Sends progress to whoever asked for it (an MCP client that sent a progress token).
pub trait ProgressSink: Send + Sync {
    /// Reports `progress` out of `total` (if known), with an optional human-readable message.
    fn report(&self, progress: f64, total: Option<f64>, message: Option<String>);
}

/// Everything a running tool may consult about its call.
///
/// Cancellation covers both the client cancelling and the deadline passing: the policy cancels
/// [`CallContext::cancellation`] in either case, so a tool that watches it stops its work rather
/// than leaving it running after the caller gave up.
pub struct CallContext {
    execution_id: String,
    deadline: Instant,
    cancel: CancellationToken,
    progress: Option<Arc<dyn ProgressSink>>,
    records: AtomicU64,
    warnings: Mutex<Vec<String>>,
}

impl CallContext {
    /// A context for one call. `cancel` is the caller's token; the policy derives a child of it.
    pub fn new(
        execution_id: String,
        timeout: Duration,
        cancel: CancellationToken,
        progress: Option<Arc<dyn ProgressSink>>,
    ) -> Self {
        CallContext {
            execution_id,
            deadline: Instant::now() + timeout,
            cancel,
            progress,
            records: AtomicU64::new(0),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The unique id of this call.
    pub fn execution_id(&self) -> &str {
        &self.execution_id
    }

    /// When the call must be done.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Cancelled when the client cancels or the deadline passes; watch it in long work.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Reports progress to the client, if it asked for progress.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        if let Some(sink) = &self.progress {
            sink.report(progress, total, Some(message.into()));
        }
    }

    /// Counts records processed, for the result metadata and metrics.
    pub fn add_records(&self, n: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }

    /// Records processed so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Adds a warning the caller will see with the result.
    pub fn warn(&self, warning: impl Into<String>) {
        if let Ok(mut warnings) = self.warnings.lock() {
            warnings.push(warning.into());
        }
    }

    /// Takes the warnings gathered so far.
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// Forgets what a failed attempt counted, so a retry starts clean.
    pub(crate) fn reset_counters(&self) {
        self.records.store(0, Ordering::Relaxed);
        let _ = self.take_warnings();
    }
}
