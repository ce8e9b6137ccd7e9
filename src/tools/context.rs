//! The per-call context a tool receives: identity, deadline, cancellation, progress, and the
//! counters that end up in the result's [`ExecutionMeta`](super::ExecutionMeta); and the
//! [`Invocation`] a call starts from, whether a client made it or another call did.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Sends progress to whoever asked for it (an MCP client that sent a progress token).
pub trait ProgressSink: Send + Sync {
    /// Reports `progress` out of `total` (if known), with an optional human-readable message.
    fn report(&self, progress: f64, total: Option<f64>, message: Option<String>);
}

/// Whom a call runs for: an opaque name chosen by the transport (a token's name, an MCP session,
/// the local user of stdio). Tools use it to keep one caller's results from another: the result
/// cache is keyed by it, and output files are served only to the principal that wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(Arc<str>);

impl Principal {
    /// A principal named `name`; names from different transports must not collide, so callers
    /// prefix them (`token:`, `session:`).
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Principal(name.into())
    }

    /// The single local user: stdio, the command line.
    pub fn local() -> Self {
        Principal(Arc::from("local"))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a call inherits from whoever made it: a client's request, or a running call on whose
/// behalf it runs (a workflow step, a resource read).
///
/// A nested call made with [`CallContext::nested`] inherits the parent's cancellation (cancelling
/// the parent cancels every child), its deadline (the shorter of the two wins), its caller and
/// audit identity, and its progress channel.
#[derive(Clone)]
pub struct Invocation {
    /// Cancelled when the caller gives up; the call's own token is a child of it.
    pub cancel: CancellationToken,
    /// Where progress goes, if the caller asked for progress.
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// Whom the call runs for.
    pub principal: Principal,
    /// A deadline the call may not outlive, whatever its own policy allows.
    pub deadline: Option<Instant>,
    /// Who is named in the audit line; `None` when the caller's calls are not audited.
    pub audit: Option<Arc<super::audit::AuditIdentity>>,
    /// The execution id of the call this one runs for, if any.
    pub parent: Option<Arc<str>>,
}

impl Invocation {
    /// A call the local user makes (stdio, the command line), cancelled by `cancel`.
    pub fn local(cancel: CancellationToken) -> Self {
        Invocation {
            cancel,
            progress: None,
            principal: Principal::local(),
            deadline: None,
            audit: None,
            parent: None,
        }
    }

    /// This invocation for `principal`.
    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// This invocation reporting progress to `progress`.
    pub fn with_progress(mut self, progress: Option<Arc<dyn ProgressSink>>) -> Self {
        self.progress = progress;
        self
    }

    /// This invocation, audited under `identity`.
    pub fn with_audit(mut self, identity: Option<Arc<super::audit::AuditIdentity>>) -> Self {
        self.audit = identity;
        self
    }
}

/// Everything a running tool may consult about its call.
///
/// Cancellation covers both the client cancelling and the deadline passing: the policy cancels
/// [`CallContext::cancellation`] in either case, so a tool that watches it stops its work rather
/// than leaving it running after the caller gave up.
pub struct CallContext {
    execution_id: String,
    principal: Principal,
    deadline: Instant,
    cancel: CancellationToken,
    progress: Option<Arc<dyn ProgressSink>>,
    audit: Option<Arc<super::audit::AuditIdentity>>,
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
            principal: Principal::local(),
            deadline: Instant::now() + timeout,
            cancel,
            progress,
            audit: None,
            records: AtomicU64::new(0),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// This context, running for `principal` instead of the local user.
    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// This context, audited under `identity` (passed on to nested calls).
    pub fn with_audit(mut self, identity: Option<Arc<super::audit::AuditIdentity>>) -> Self {
        self.audit = identity;
        self
    }

    /// The invocation of a call made on behalf of this one: cancelled with it, bounded by its
    /// deadline, for the same caller, reporting to the same progress channel.
    pub fn nested(&self) -> Invocation {
        Invocation {
            cancel: self.cancel.clone(),
            progress: self.progress.clone(),
            principal: self.principal.clone(),
            deadline: Some(self.deadline),
            audit: self.audit.clone(),
            parent: Some(Arc::from(self.execution_id.as_str())),
        }
    }

    /// Whom the call runs for.
    pub fn principal(&self) -> &Principal {
        &self.principal
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

    /// Where progress goes, for work that reports from another thread; `None` when the caller
    /// did not ask for progress.
    pub fn progress_sink(&self) -> Option<Arc<dyn ProgressSink>> {
        self.progress.clone()
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
