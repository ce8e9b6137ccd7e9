//! Connections: how many may be open at once, and how long a client may take to send a
//! request's head.
//!
//! A client that opens a connection and then sends nothing, or a header a byte at a time, costs
//! the server a socket and a task for as long as it likes unless something ends it. The header
//! read timeout ends it (it also closes keep-alive connections idle for that long, since hyper
//! runs the same timer while waiting for the next request); the connection cap bounds how many
//! such clients can wait at once. Connections over the cap are closed at once, before any byte
//! is read, so they cost nothing and cannot hold up the ones already being served. Bodies have
//! their own deadline, in the admission gate; answers a client does not read, theirs
//! (`stalled.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The limits of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest wait for a request's head (and between requests on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// Longest a write may wait for the client to read.
    pub write_timeout: Duration,
}

/// Closes the connection a request came on, in its extensions. A handler streaming to a client
/// that stopped reading cannot end the stream itself: hyper polls a body only when the socket
/// takes bytes, which it never will again.
#[derive(Clone)]
pub struct Disconnect(CancellationToken);

impl Disconnect {
    /// Closes the connection now, whatever it is doing.
    pub fn now(&self) {
        self.0.cancel();
    }
}

/// Open and refused connections, for `/metrics`.
pub struct ConnectionStats {
    permits: Arc<Semaphore>,
    limit: usize,
    refused: AtomicU64,
}

impl ConnectionStats {
    /// Counters for a listener allowing `limit` connections.
    pub fn new(limit: usize) -> Self {
        // A semaphore counts at most u32::MAX permits at a time in `acquire_many`.
        let limit = limit.clamp(1, u32::MAX as usize);
        ConnectionStats {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            refused: AtomicU64::new(0),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// Most connections open at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections closed unread because the limit was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Accepts connections and serves `router` on them until `stop` is cancelled; then stops
/// accepting, lets each connection finish the request it is serving, and returns once every
/// connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before it was accepted: not a
                // reason to stop serving. A short pause lets descriptors free up.
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&stats.permits).try_acquire_owned() else {
            // Logged at debug only: a flood must not turn into a flood of log lines.
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                limit = stats.limit,
                "connection closed: max_connections are open"
            );
            drop(stream);
            continue;
        };
        // An SSE answer goes out in several small writes; with Nagle's algorithm on, the later
        // ones wait for the client's delayed ACK, 40 ms a call.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let kill = CancellationToken::new();
        let disconnect = Disconnect(kill.clone());
        let service = TowerToHyperService::new(router.clone());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo::<SocketAddr>(peer));
            extensions.insert(disconnect.clone());
            hyper::service::Service::call(&service, request)
        });
        let stream = super::stalled::WriteDeadline::new(stream, limits.write_timeout);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = kill.cancelled() => Ok(()),
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        result = connection.as_mut() => result,
                        () = kill.cancelled() => Ok(()),
                    }
                }
            };
            if let Err(error) = result {
                // Timeouts and clients that vanish mid-request end here.
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    let all = u32::try_from(stats.limit).unwrap_or(u32::MAX);
    let _ = stats.permits.acquire_many(all).await;
    Ok(())
}
