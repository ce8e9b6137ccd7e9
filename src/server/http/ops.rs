//! Operations endpoints: `/healthz` (the process answers), `/readyz` (every warehouse answers)
//! and `/metrics` (Prometheus text format).
//!
//! All three pass the `Host`/`Origin` checks of the MCP routes; `/readyz` and `/metrics` also
//! need a token when the endpoint has tokens (`admission::admit_ops`). `/healthz` stays open so
//! liveness probes need no secret. Readiness is probed at most once a second whatever the
//! request rate, so `/readyz` cannot be used to load the databases.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Shared;
use crate::tools::health::Probe;
use crate::tools::metrics::MetricsSnapshot;

/// A counter family: name, help, and how to read it off a tool's snapshot.
type Counter = (&'static str, &'static str, fn(&MetricsSnapshot) -> u64);

/// `GET /healthz`.
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// How long a readiness answer is reused.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// The last readiness answer. The lock is held across the probe, so concurrent requests wait
/// for one probe instead of starting their own.
#[derive(Default)]
pub struct Readiness(tokio::sync::Mutex<Option<(Instant, Arc<Vec<Probe>>)>>);

impl Readiness {
    async fn probes(&self, shared: &Shared) -> Arc<Vec<Probe>> {
        let mut last = self.0.lock().await;
        if let Some((at, probes)) = last.as_ref()
            && at.elapsed() < READINESS_TTL
        {
            return Arc::clone(probes);
        }
        let probes = Arc::new(shared.server.registry().probe().await);
        *last = Some((Instant::now(), Arc::clone(&probes)));
        probes
    }
}

/// `GET /readyz`: 200 when every warehouse answers `SELECT 1`, 503 otherwise.
pub async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let probes = shared.readiness.probes(&shared).await;
    let ready = !shared.is_draining() && probes.iter().all(|p| p.ready);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({ "status": if ready { "ready" } else { "not_ready" } });
    if shared.is_draining() {
        body["reason"] = "shutting down".into();
    }
    body["checks"] = serde_json::to_value(&*probes).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut response = render(&shared).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The Prometheus text exposition of every counter the server keeps.
fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let tools = shared.server.registry().list();

    let counters: [Counter; 5] = [
        (
            "datamcp_tool_calls_total",
            "Finished tool calls, cached or not.",
            |m| m.calls,
        ),
        (
            "datamcp_tool_errors_total",
            "Tool calls that ended in an error result.",
            |m| m.errors,
        ),
        (
            "datamcp_tool_timeouts_total",
            "Tool calls that hit their deadline.",
            |m| m.timeouts,
        ),
        (
            "datamcp_tool_cache_hits_total",
            "Tool calls answered from the result cache.",
            |m| m.cache_hits,
        ),
        (
            "datamcp_tool_retries_total",
            "Retries after transient errors.",
            |m| m.retries,
        ),
    ];
    let snapshots: Vec<_> = tools
        .iter()
        .map(|t| (t.tool().spec().name.clone(), t.metrics().snapshot()))
        .collect();
    for (name, help, value) in counters {
        header(&mut out, name, "counter", help);
        for (tool, snapshot) in &snapshots {
            let _ = writeln!(
                out,
                "{name}{{tool=\"{}\"}} {}",
                escape(tool),
                value(snapshot)
            );
        }
    }

    let name = "datamcp_tool_duration_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Tool call latency, validation to result.",
    );
    for entry in &tools {
        let tool = escape(&entry.tool().spec().name);
        let histogram = entry.metrics().latency();
        for (le, count) in histogram.cumulative_by_doubling() {
            let _ = writeln!(out, "{name}_bucket{{tool=\"{tool}\",le=\"{le}\"}} {count}");
        }
        let count = histogram.count();
        let _ = writeln!(out, "{name}_bucket{{tool=\"{tool}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{tool=\"{tool}\"}} {}",
            histogram.sum_seconds()
        );
        let _ = writeln!(out, "{name}_count{{tool=\"{tool}\"}} {count}");
    }

    let in_flight = shared.max_calls - shared.calls.available_permits();
    header(
        &mut out,
        "datamcp_calls_in_flight",
        "gauge",
        "Tool calls running now on the HTTP endpoint.",
    );
    let _ = writeln!(out, "datamcp_calls_in_flight {in_flight}");
    header(
        &mut out,
        "datamcp_calls_in_flight_limit",
        "gauge",
        "Most tool calls that may run at once.",
    );
    let _ = writeln!(out, "datamcp_calls_in_flight_limit {}", shared.max_calls);

    header(
        &mut out,
        "datamcp_sessions_open",
        "gauge",
        "Open MCP sessions, by transport.",
    );
    for (transport, gauge) in shared.session_gauges() {
        let _ = writeln!(
            out,
            "datamcp_sessions_open{{transport=\"{}\"}} {}",
            transport.label(),
            gauge.open()
        );
    }
    header(
        &mut out,
        "datamcp_sessions_opened_total",
        "counter",
        "MCP sessions opened, by transport.",
    );
    for (transport, gauge) in shared.session_gauges() {
        let _ = writeln!(
            out,
            "datamcp_sessions_opened_total{{transport=\"{}\"}} {}",
            transport.label(),
            gauge.opened()
        );
    }
    header(
        &mut out,
        "datamcp_sessions_limit",
        "gauge",
        "Most open sessions, all transports together.",
    );
    let _ = writeln!(out, "datamcp_sessions_limit {}", shared.max_sessions);

    header(
        &mut out,
        "datamcp_http_connections_open",
        "gauge",
        "HTTP connections open now.",
    );
    let _ = writeln!(
        out,
        "datamcp_http_connections_open {}",
        shared.connections.open()
    );
    header(
        &mut out,
        "datamcp_http_connections_limit",
        "gauge",
        "Most HTTP connections open at once.",
    );
    let _ = writeln!(
        out,
        "datamcp_http_connections_limit {}",
        shared.connections.limit()
    );
    header(
        &mut out,
        "datamcp_http_connections_refused_total",
        "counter",
        "Connections closed unread because the connection limit was reached.",
    );
    let _ = writeln!(
        out,
        "datamcp_http_connections_refused_total {}",
        shared.connections.refused()
    );
    header(
        &mut out,
        "datamcp_http_requests_total",
        "counter",
        "MCP requests received, by transport.",
    );
    for (transport, requests, _) in shared.stats.by_transport() {
        let _ = writeln!(
            out,
            "datamcp_http_requests_total{{transport=\"{}\"}} {requests}",
            transport.label()
        );
    }
    header(
        &mut out,
        "datamcp_http_tool_calls_total",
        "counter",
        "Tool calls admitted, by transport.",
    );
    for (transport, _, calls) in shared.stats.by_transport() {
        let _ = writeln!(
            out,
            "datamcp_http_tool_calls_total{{transport=\"{}\"}} {calls}",
            transport.label()
        );
    }
    header(
        &mut out,
        "datamcp_http_rejections_total",
        "counter",
        "MCP requests refused, by reason.",
    );
    for (reason, count) in shared.stats.rejections() {
        let _ = writeln!(
            out,
            "datamcp_http_rejections_total{{reason=\"{}\"}} {count}",
            reason.label()
        );
    }

    out.push_str(&crate::tools::gauges::exposition(
        &shared.server.registry().gauge_sources(),
    ));
    header(
        &mut out,
        "datamcp_build_info",
        "gauge",
        "The running version.",
    );
    let _ = writeln!(
        out,
        "datamcp_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    header(
        &mut out,
        "datamcp_uptime_seconds",
        "gauge",
        "Seconds since the endpoint started.",
    );
    let _ = writeln!(
        out,
        "datamcp_uptime_seconds {}",
        shared.started.elapsed().as_secs_f64()
    );
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
fn escape(value: &str) -> Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        Cow::Owned(
            value
                .replace('\\', r"\\")
                .replace('"', "\\\"")
                .replace('\n', r"\n"),
        )
    } else {
        Cow::Borrowed(value)
    }
}
