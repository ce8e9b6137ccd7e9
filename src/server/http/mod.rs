//! MCP over HTTP: Streamable HTTP at `/mcp` and the legacy HTTP+SSE transport at `/sse` and
//! `/message`, on one listener, with `/healthz`, `/readyz` and `/metrics` beside them.
//!
//! Connections are accepted by [`connections::serve`] (connection cap, header read timeout). A
//! request enters through [`admission::admit`] (request id, Host/Origin, bearer token, body
//! size, session and call limits), then reaches rmcp's Streamable HTTP service or the
//! [`sse`] handlers; both run the one [`DataMcp`] handler. Shutdown stops accepting, lets
//! running calls finish within the grace period, then closes the streams.

mod admission;
mod auth;
mod connections;
mod ops;
mod origin;
mod plain_json;
mod sessions;
mod sse;
mod stalled;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use self::auth::Authenticator;
pub use self::origin::OriginPolicy;
use self::sessions::{CountedSessions, SessionGauge, SessionTable};
use self::stats::HttpStats;
use super::DataMcp;
use super::audit::Transport;
use crate::config::{AUTH_TOKEN_ENV, HttpSettings};

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A non-loopback address without tokens.
    #[error(
        "refusing to listen on {0} without authentication: anyone who can reach it could read your data.\n\
hint: set a token (export {AUTH_TOKEN_ENV}=$(openssl rand -hex 32), or [[server.tokens]] in the config), \
listen on 127.0.0.1, or pass --allow-unauthenticated if a proxy in front does the authentication"
    )]
    Unauthenticated(SocketAddr),
    /// The address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// What every handler of the endpoint shares.
pub struct Shared {
    server: DataMcp,
    auth: Authenticator,
    origins: OriginPolicy,
    stateless: bool,
    audit: bool,
    max_body_bytes: usize,
    max_sessions: usize,
    max_calls: usize,
    calls: Arc<Semaphore>,
    session_idle_timeout: Duration,
    body_read_timeout: Duration,
    connections: Arc<connections::ConnectionStats>,
    streamable_gauge: Arc<SessionGauge>,
    sessions: Arc<SessionTable>,
    sse_gauge: Arc<SessionGauge>,
    sse: sse::SseSessions,
    stats: HttpStats,
    readiness: ops::Readiness,
    request_ids: admission::RequestIds,
    draining: AtomicBool,
    /// Cancelled last on shutdown: ends every session and stream.
    streams: CancellationToken,
    started: Instant,
}

impl Shared {
    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn session_gauges(&self) -> [(Transport, &SessionGauge); 2] {
        [
            (Transport::StreamableHttp, &self.streamable_gauge),
            (Transport::Sse, &self.sse_gauge),
        ]
    }

    fn calls_in_flight(&self) -> usize {
        self.max_calls - self.calls.available_permits()
    }
}

/// A bound endpoint, ready to serve.
pub struct HttpEndpoint {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    router: Router,
    grace: Duration,
    limits: connections::Limits,
}

impl HttpEndpoint {
    /// Checks the settings and binds `address`.
    pub async fn bind(
        server: DataMcp,
        address: SocketAddr,
        settings: &HttpSettings,
    ) -> Result<Self, HttpError> {
        if !address.ip().is_loopback()
            && settings.tokens.is_empty()
            && !settings.allow_unauthenticated
        {
            return Err(HttpError::Unauthenticated(address));
        }
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| HttpError::Bind { address, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| HttpError::Bind { address, source })?;
        let streamable_gauge = Arc::new(SessionGauge::default());
        let sse_gauge = Arc::new(SessionGauge::default());
        let shared = Arc::new(Shared {
            server,
            auth: Authenticator::new(&settings.tokens),
            origins: OriginPolicy::new(
                bound,
                settings.allowed_hosts.as_deref(),
                settings.allowed_origins.as_deref(),
            ),
            stateless: settings.stateless,
            audit: settings.audit,
            max_body_bytes: settings.max_body_bytes,
            max_sessions: settings.max_sessions,
            max_calls: settings.max_in_flight_calls,
            calls: Arc::new(Semaphore::new(settings.max_in_flight_calls)),
            session_idle_timeout: settings.session_idle_timeout,
            body_read_timeout: settings.body_read_timeout,
            connections: Arc::new(connections::ConnectionStats::new(settings.max_connections)),
            streamable_gauge: Arc::clone(&streamable_gauge),
            sessions: SessionTable::new(
                settings.session_idle_timeout,
                streamable_gauge,
                Arc::clone(&sse_gauge),
                settings.max_sessions,
            ),
            sse_gauge,
            sse: sse::SseSessions::default(),
            stats: HttpStats::default(),
            readiness: ops::Readiness::default(),
            request_ids: admission::RequestIds::new(),
            draining: AtomicBool::new(false),
            streams: CancellationToken::new(),
            started: Instant::now(),
        });
        let router = router(&shared, settings);
        Ok(HttpEndpoint {
            listener,
            shared,
            router,
            grace: settings.shutdown_grace,
            limits: connections::Limits {
                header_read_timeout: settings.header_read_timeout,
                write_timeout: settings.write_timeout,
            },
        })
    }

    /// The address actually bound (the port is chosen by the system when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: stop accepting, let running
    /// calls finish (up to the grace period), close the streams.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HttpError> {
        let HttpEndpoint {
            listener,
            shared,
            router,
            grace,
            limits,
        } = self;
        let stop_accepting = CancellationToken::new();
        let server = connections::serve(
            listener,
            router,
            limits,
            Arc::clone(&shared.connections),
            stop_accepting.clone(),
        );
        let mut server = tokio::spawn(server);

        tokio::select! {
            finished = &mut server => {
                return finished
                    .map_err(|e| HttpError::Serve(std::io::Error::other(e)))?
                    .map_err(HttpError::Serve);
            }
            () = shutdown => {}
        }
        let running = shared.calls_in_flight();
        tracing::info!(
            running_calls = running,
            grace_secs = grace.as_secs(),
            "shutting down: no new connections; letting running calls finish"
        );
        shared.draining.store(true, Ordering::Relaxed);
        stop_accepting.cancel();
        let deadline = Instant::now() + grace;
        while shared.calls_in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let abandoned = shared.calls_in_flight();
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "grace period over; cancelling the calls still running"
            );
        }
        shared.streams.cancel();
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(result)) => result.map_err(HttpError::Serve)?,
            Ok(Err(join)) => return Err(HttpError::Serve(std::io::Error::other(join))),
            Err(_) => tracing::warn!("some connections did not close in time; exiting anyway"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

fn router(shared: &Arc<Shared>, settings: &HttpSettings) -> Router {
    let server = shared.server.clone();
    // Host, Origin and size checks happen in the admission gate, the same for both transports;
    // rmcp's own checks are switched off so a request meets one policy, not two.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_legacy_session_mode(!settings.stateless)
        .with_json_response(settings.stateless)
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(shared.streams.clone());
    let sessions = Arc::new(CountedSessions::new(Arc::clone(&shared.sessions)));
    let streamable = StreamableHttpService::new(move || Ok(server.clone()), sessions, config);
    let mcp = Router::new()
        .route_service("/mcp", streamable)
        .route("/sse", get(sse::open))
        .route("/message", post(sse::deliver))
        // Inside the gate: only admitted requests get here, and the call permit outlives the
        // answer however it is sent.
        .route_layer(axum::middleware::from_fn(plain_json::answer_plainly))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(shared),
            admission::admit,
        ));
    let operations = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(shared),
            admission::admit_ops,
        ));
    Router::new()
        .merge(mcp)
        .merge(operations)
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: MCP is served at /mcp (Streamable HTTP) and /sse (HTTP+SSE); operations at /healthz, /readyz and /metrics",
            )
        })
        .with_state(Arc::clone(shared))
}
