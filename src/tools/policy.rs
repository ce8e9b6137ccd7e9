//! The policies every call runs under: deadline and cancellation, retries with backoff for
//! transient errors, a bounded result cache for idempotent tools, and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DynTool;
use super::context::{CallContext, Invocation};
use super::metrics::ToolMetrics;
use super::result::{ExecutionMeta, ToolError, ToolOutput, ToolResult};

/// How calls to one tool are run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    /// Deadline for the whole call, retries included; past it the work is cancelled.
    pub timeout_ms: u64,
    /// Attempts for errors the tool marks transient (1 = no retry). Other errors never retry.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each retry, with jitter.
    pub backoff_initial_ms: u64,
    /// Upper bound of one backoff.
    pub backoff_max_ms: u64,
    /// How long an idempotent tool's result may be served from cache (0 = no cache).
    pub cache_ttl_ms: u64,
    /// Memory the tool's cache may hold, approximately, in bytes.
    pub cache_max_bytes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout_ms: 30_000,
            max_attempts: 3,
            backoff_initial_ms: 100,
            backoff_max_ms: 2_000,
            cache_ttl_ms: 60_000,
            cache_max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Per-tool changes to the default [`Policy`]; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    /// See [`Policy::timeout_ms`].
    pub timeout_ms: Option<u64>,
    /// See [`Policy::max_attempts`].
    pub max_attempts: Option<u32>,
    /// See [`Policy::backoff_initial_ms`].
    pub backoff_initial_ms: Option<u64>,
    /// See [`Policy::backoff_max_ms`].
    pub backoff_max_ms: Option<u64>,
    /// See [`Policy::cache_ttl_ms`].
    pub cache_ttl_ms: Option<u64>,
    /// See [`Policy::cache_max_bytes`].
    pub cache_max_bytes: Option<u64>,
}

impl Policy {
    /// This policy with `changes` applied.
    pub fn with(&self, changes: &PolicyOverride) -> Policy {
        Policy {
            timeout_ms: changes.timeout_ms.unwrap_or(self.timeout_ms),
            max_attempts: changes.max_attempts.unwrap_or(self.max_attempts).max(1),
            backoff_initial_ms: changes
                .backoff_initial_ms
                .unwrap_or(self.backoff_initial_ms),
            backoff_max_ms: changes.backoff_max_ms.unwrap_or(self.backoff_max_ms),
            cache_ttl_ms: changes.cache_ttl_ms.unwrap_or(self.cache_ttl_ms),
            cache_max_bytes: changes.cache_max_bytes.unwrap_or(self.cache_max_bytes),
        }
    }

    /// The pause before retry number `retry` (1-based): exponential, capped, with jitter in
    /// [half, full] so that clients retrying together spread out.
    fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .backoff_initial_ms
            .saturating_mul(1u64 << retry.saturating_sub(1).min(20));
        let capped = exponential.min(self.backoff_max_ms) as f64;
        Duration::from_millis((capped * (0.5 + fastrand::f64() * 0.5)) as u64)
    }
}

/// What the cache keeps: the output and what the tool reported alongside it.
struct CachedOutput {
    output: ToolOutput,
    records: u64,
    warnings: Vec<String>,
}

/// Runs calls of one tool under its policy. Built once per tool by the registry.
pub struct PolicyRunner {
    policy: Policy,
    cache: Option<moka::future::Cache<String, Arc<CachedOutput>>>,
    metrics: Arc<ToolMetrics>,
}

impl PolicyRunner {
    /// A runner for a tool; the cache exists only for idempotent tools with a TTL.
    pub fn new(policy: Policy, idempotent: bool) -> Self {
        let cache = (idempotent && policy.cache_ttl_ms > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(policy.cache_max_bytes)
                .weigher(|key: &String, cached: &Arc<CachedOutput>| {
                    u32::try_from(key.len() + cached.output.weight()).unwrap_or(u32::MAX)
                })
                .time_to_live(Duration::from_millis(policy.cache_ttl_ms))
                .build()
        });
        PolicyRunner {
            policy,
            cache,
            metrics: Arc::new(ToolMetrics::default()),
        }
    }

    /// This runner recording into `metrics`, so a tool's figures outlive its versions.
    pub fn with_metrics(mut self, metrics: Arc<ToolMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// This tool's metrics.
    pub fn metrics(&self) -> &Arc<ToolMetrics> {
        &self.metrics
    }

    /// Runs one call: cache, then attempts until success, a permanent error, the deadline or
    /// cancellation. The deadline is the policy's timeout, or the invocation's deadline when
    /// that comes first (a nested call never outlives its parent).
    pub async fn run(&self, tool: &dyn DynTool, args: Value, invocation: Invocation) -> ToolResult {
        let Invocation {
            cancel,
            progress,
            principal,
            deadline: outer_deadline,
            audit,
            parent: _,
        } = invocation;
        let started = Instant::now();
        let execution_id = super::result::new_execution_id();
        // Keyed by principal too: one caller's result is never served to another.
        let cache_key = self
            .cache
            .as_ref()
            .map(|_| format!("{}\n{}", principal, tool.cache_key(&args)));

        if let (Some(cache), Some(key)) = (&self.cache, &cache_key)
            && let Some(cached) = cache.get(key).await
        {
            let meta = ExecutionMeta {
                execution_id,
                elapsed_ms: millis(started.elapsed()),
                records: cached.records,
                cached: true,
                attempts: 0,
                warnings: cached.warnings.clone(),
            };
            self.metrics
                .record_call(started.elapsed(), false, false, true);
            return ToolResult {
                outcome: Ok(cached.output.clone()),
                meta,
            };
        }

        let own = Duration::from_millis(self.policy.timeout_ms);
        let timeout = match outer_deadline {
            Some(outer) => own.min(outer.saturating_duration_since(Instant::now())),
            None => own,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let work_cancel = cancel.child_token();
        let ctx = CallContext::new(execution_id, timeout, work_cancel.clone(), progress)
            .with_principal(principal)
            .with_audit(audit);
        let mut retry_warnings = Vec::new();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let attempt = tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(ToolError::Cancelled),
                _ = tokio::time::sleep_until(deadline) => Err(ToolError::Timeout(timeout)),
                result = tool.call(&ctx, args.clone()) => result,
            };
            match attempt {
                Err(error) if error.is_transient() && attempts < self.policy.max_attempts => {
                    let pause = self.policy.backoff(attempts);
                    if tokio::time::Instant::now() + pause >= deadline {
                        break Err(error);
                    }
                    tracing::warn!(tool = %tool.spec().name, execution_id = %ctx.execution_id(),
                        attempt = attempts, ?pause, error = %error, "transient failure, retrying");
                    self.metrics.record_retry();
                    retry_warnings.push(format!(
                        "attempt {attempts} failed with a transient error and was retried: {error}"
                    ));
                    ctx.reset_counters();
                    tokio::select! {
                        _ = cancel.cancelled() => break Err(ToolError::Cancelled),
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                other => break other,
            }
        };
        // Stop whatever the tool left running: a timed-out query must not keep the database busy.
        work_cancel.cancel();

        let tool_warnings = ctx.take_warnings();
        if let (Ok(output), Some(cache), Some(key)) = (&outcome, &self.cache, cache_key)
            && output.cacheable
        {
            let cached = CachedOutput {
                output: output.clone(),
                records: ctx.records(),
                warnings: tool_warnings.clone(),
            };
            cache.insert(key, Arc::new(cached)).await;
        }
        let elapsed = started.elapsed();
        let timed_out = matches!(outcome, Err(ToolError::Timeout(_)));
        self.metrics
            .record_call(elapsed, outcome.is_err(), timed_out, false);
        match &outcome {
            Ok(_) => tracing::debug!(tool = %tool.spec().name, execution_id = %ctx.execution_id(),
                attempts, elapsed_ms = millis(elapsed), "call succeeded"),
            Err(error) => {
                tracing::info!(tool = %tool.spec().name, execution_id = %ctx.execution_id(),
                attempts, elapsed_ms = millis(elapsed), kind = error.kind(), "call failed")
            }
        }
        retry_warnings.extend(tool_warnings);
        ToolResult {
            meta: ExecutionMeta {
                execution_id: ctx.execution_id().to_owned(),
                elapsed_ms: millis(elapsed),
                records: ctx.records(),
                cached: false,
                attempts,
                warnings: retry_warnings,
            },
            outcome,
        }
    }
}

/// `duration` in milliseconds, to the microsecond, as execution facts report times.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// JSON with object keys sorted at every level, so equal arguments give equal cache keys.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}
