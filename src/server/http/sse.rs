//! The legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp no longer ships.
//!
//! `GET /sse` opens a session: the response is an event stream whose first event, `endpoint`,
//! names the URL to post to (`/message?sessionId=…`). Each `POST /message` delivers one JSON-RPC
//! message and gets `202 Accepted`; answers and notifications arrive on the stream. Every
//! session runs the same rmcp service over a pair of channels, so both HTTP transports share
//! one handler and one code path.
//!
//! A session belongs to the token that opened it: another token's posts get `404`, as if the
//! session did not exist. It ends when the client drops the stream, when it has been idle for
//! the configured time, or when the server shuts down.
//!
//! What waits to go out on a stream is bounded: at most [`OUTBOUND_CAPACITY`] messages and
//! [`OUTBOUND_BYTES`] bytes (one larger message may wait alone), or up to
//! [`OUTBOUND_BYTES_BURST`] while the stream keeps taking bytes. A client that stops reading
//! while answers pile up past that is disconnected and its session ended, instead of the server
//! holding its answers without limit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServiceExt};
use tokio::sync::mpsc;

use super::Shared;
use super::connections::Disconnect;
use super::sessions::SessionTicket;
use crate::server::audit::Caller;
use crate::server::jsonrpc::{self, InFlight};

/// Messages a session holds for a client that is not reading before it is disconnected. Room
/// for the answers of every call the server runs at once and their notifications, so a burst
/// to a client that does read never trips it; the byte limit is the one that bites.
const OUTBOUND_CAPACITY: usize = 1024;
/// Bytes a session holds for a client that is not reading before it is disconnected.
const OUTBOUND_BYTES: usize = 4 * 1024 * 1024;
/// Past [`OUTBOUND_BYTES`], a client whose stream moved within [`STALL`] is reading, just behind
/// a burst of answers; it is let be up to this many bytes.
const OUTBOUND_BYTES_BURST: usize = 16 * 1024 * 1024;
/// How long a stream may take no bytes, with answers waiting, before its client counts as gone.
const STALL: Duration = Duration::from_secs(2);
/// Messages a session buffers from the client before `POST /message` waits.
const INBOUND_CAPACITY: usize = 32;
/// How often an idle stream carries a comment, which keeps proxies from closing it and finds
/// clients that went away.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The open SSE sessions, by id.
#[derive(Default)]
pub struct SseSessions {
    map: Mutex<HashMap<Arc<str>, Session>>,
}

// The channels carry boxes: tokio allocates a channel's slots 32 at a time, and a message is
// hundreds of bytes, which an idle session would otherwise hold twice over.
struct Session {
    inbound: mpsc::Sender<Box<ClientJsonRpcMessage>>,
    owner: Option<Arc<str>>,
    activity: Arc<Activity>,
}

/// When a session last received a message, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(now, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_millis.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }
}

impl SseSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Session>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `GET /sse`: opens a session and streams its messages.
pub async fn open(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "request was not admitted",
        )
            .into_response();
    };
    let turn = match shared.make_session_room().await {
        Ok(turn) => turn,
        Err(refused) => return refused.into_response(),
    };
    let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
    let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let activity = Arc::new(Activity {
        opened: Instant::now(),
        last_millis: AtomicU64::new(0),
    });
    shared.sse.lock().insert(
        Arc::clone(&id),
        Session {
            inbound: inbound_tx,
            owner: caller.token_name.clone(),
            activity: Arc::clone(&activity),
        },
    );
    let ticket = shared.sse_gauge.enter();
    drop(turn);
    tracing::info!(request_id = %caller.request_id, token = caller.token_name.as_deref().unwrap_or("-"), "SSE session opened");

    let server = shared.server.clone();
    let cancel = shared.streams.child_token();
    let queued = Arc::new(Outbox::default());
    let transport = ChannelTransport {
        inbound: inbound_rx,
        outbound: outbound_tx,
        in_flight: InFlight::default(),
        queued: Arc::clone(&queued),
        overflow: Overflow {
            session: cancel.clone(),
            connection: request.extensions().get::<Disconnect>().cloned(),
        },
    };
    let service_cancel = cancel.clone();
    tokio::spawn(async move {
        match server.serve_with_ct(transport, service_cancel).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "SSE session ended before initialization"),
        }
    });

    let stream = EventStream {
        outbound: outbound_rx,
        endpoint: Some(format!("/message?sessionId={id}")),
        keep_alive: {
            // Often enough to notice the idle limit within half of it.
            let period = KEEP_ALIVE
                .min(shared.session_idle_timeout / 2)
                .max(Duration::from_millis(100));
            tokio::time::interval_at(tokio::time::Instant::now() + period, period)
        },
        idle_limit: shared.session_idle_timeout,
        activity,
        queued,
        shutdown: cancel,
        _session: SessionGuard {
            id,
            shared: Arc::clone(&shared),
            _ticket: ticket,
        },
    };
    let body = Body::from_stream(futures::stream::unfold(stream, EventStream::next_frame));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `POST /message?sessionId=…`: delivers one message to a session.
pub async fn deliver(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(caller) = parts.extensions.get::<Caller>().cloned() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "request was not admitted",
        )
            .into_response();
    };
    let Some(id) = parts.uri.query().and_then(session_id) else {
        return (
            StatusCode::BAD_REQUEST,
            "missing sessionId: post to the URL the 'endpoint' event of GET /sse gave",
        )
            .into_response();
    };
    let session = shared
        .sse
        .lock()
        .get(id.as_ref())
        .filter(|s| s.owner == caller.token_name)
        .map(|s| (s.inbound.clone(), Arc::clone(&s.activity)));
    let Some((inbound, activity)) = session else {
        return (
            StatusCode::NOT_FOUND,
            "unknown or ended session: open a new one with GET /sse",
        )
            .into_response();
    };
    // The admission gate has already read the body, within the size limit.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("unreadable body: {error}")).into_response();
        }
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
        Ok(message) => message,
        Err(error) => {
            let (error, id) = jsonrpc::rejection(&bytes, &error);
            let reply = TxJsonRpcMessage::<RoleServer>::error(error, id);
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_string(&reply).unwrap_or_default(),
            )
                .into_response();
        }
    };
    activity.touch();
    // The handler finds the caller (for the audit line) and the call permit in the request's
    // HTTP parts, exactly as rmcp's Streamable HTTP service provides them.
    match &mut message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    if inbound.send(Box::new(message)).await.is_err() {
        return (
            StatusCode::NOT_FOUND,
            "the session has ended: open a new one with GET /sse",
        )
            .into_response();
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}

/// The session id of a `POST /message` query string.
pub fn session_id(query: &str) -> Option<Cow<'_, str>> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "sessionId" || *key == "session_id")
        .map(|(_, value)| Cow::Borrowed(value))
        .filter(|value| !value.is_empty())
}

/// Removes the session when its stream goes away, which ends the session's service.
struct SessionGuard {
    id: Arc<str>,
    shared: Arc<Shared>,
    _ticket: SessionTicket,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.shared.sse.lock().remove(&self.id);
        tracing::debug!(session = %self.id, "SSE session closed");
    }
}

struct EventStream {
    outbound: mpsc::Receiver<Bytes>,
    queued: Arc<Outbox>,
    endpoint: Option<String>,
    keep_alive: tokio::time::Interval,
    idle_limit: Duration,
    activity: Arc<Activity>,
    shutdown: tokio_util::sync::CancellationToken,
    _session: SessionGuard,
}

impl EventStream {
    async fn next_frame(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if let Some(endpoint) = self.endpoint.take() {
            let frame = format!("event: endpoint\ndata: {endpoint}\n\n");
            return Some((Ok(Bytes::from(frame)), self));
        }
        tokio::select! {
            frame = self.outbound.recv() => {
                let frame = frame?;
                self.queued.drained(frame.len());
                Some((Ok(frame), self))
            }
            _ = self.keep_alive.tick() => {
                if self.activity.idle() > self.idle_limit {
                    tracing::info!("SSE session closed after {} s idle", self.idle_limit.as_secs());
                    return None;
                }
                Some((Ok(Bytes::from_static(b": keep-alive\n\n")), self))
            }
            _ = self.shutdown.cancelled() => None,
        }
    }
}

/// The bytes waiting for a stream, and when the stream last took some.
struct Outbox {
    bytes: AtomicUsize,
    opened: Instant,
    drained_millis: AtomicU64,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            bytes: AtomicUsize::new(0),
            opened: Instant::now(),
            drained_millis: AtomicU64::new(0),
        }
    }
}

impl Outbox {
    fn drained(&self, length: usize) {
        self.bytes.fetch_sub(length, Ordering::Relaxed);
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.drained_millis.store(now, Ordering::Relaxed);
    }

    fn stalled(&self) -> bool {
        let last = Duration::from_millis(self.drained_millis.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last) > STALL
    }
}

/// One session's message channels, as an rmcp transport. Messages go out already framed, so
/// what waits is counted in the bytes that will be written.
struct ChannelTransport {
    inbound: mpsc::Receiver<Box<ClientJsonRpcMessage>>,
    outbound: mpsc::Sender<Bytes>,
    in_flight: InFlight,
    queued: Arc<Outbox>,
    overflow: Overflow,
}

/// What ends a session whose client stopped reading: its service and stream, and the
/// connection, which hyper would otherwise keep waiting to write.
#[derive(Clone)]
struct Overflow {
    session: tokio_util::sync::CancellationToken,
    connection: Option<Disconnect>,
}

impl Overflow {
    fn disconnect(&self) {
        tracing::warn!(
            limit_bytes = OUTBOUND_BYTES,
            limit_messages = OUTBOUND_CAPACITY,
            "SSE client stopped reading; disconnected it and ended its session"
        );
        self.session.cancel();
        if let Some(connection) = &self.connection {
            connection.now();
        }
    }
}

fn frame(message: &ServerJsonRpcMessage) -> Result<Bytes, serde_json::Error> {
    let mut frame = Vec::with_capacity(256);
    frame.extend_from_slice(b"event: message\ndata: ");
    serde_json::to_writer(&mut frame, message)?;
    frame.extend_from_slice(b"\n\n");
    Ok(Bytes::from(frame))
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = std::io::Error;

    fn name() -> Cow<'static, str> {
        "sse".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.in_flight.answered(&item);
        let sent = self.queue(&item);
        std::future::ready(sent)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let message = *self.inbound.recv().await?;
            match self.in_flight.claim(&message) {
                Ok(()) => return Some(message),
                // The refusal goes out on the stream like any answer.
                Err((error, id)) => {
                    let _ = self.queue(&TxJsonRpcMessage::<RoleServer>::error(error, id));
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inbound.close();
        Ok(())
    }
}

impl ChannelTransport {
    /// Queues a message for the stream. rmcp sends each message from its own task, so waiting
    /// here for room would only move the pile-up into those tasks; a full queue ends the
    /// session instead.
    fn queue(&self, item: &ServerJsonRpcMessage) -> std::io::Result<()> {
        let frame = frame(item).map_err(std::io::Error::other)?;
        let closed =
            || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the SSE stream is closed");
        let length = frame.len();
        let before = self.queued.bytes.fetch_add(length, Ordering::Relaxed);
        let over = before > 0 && before + length > OUTBOUND_BYTES;
        if over && (self.queued.stalled() || before + length > OUTBOUND_BYTES_BURST) {
            self.queued.bytes.fetch_sub(length, Ordering::Relaxed);
            self.overflow.disconnect();
            return Err(closed());
        }
        self.outbound.try_send(frame).map_err(|error| {
            self.queued.bytes.fetch_sub(length, Ordering::Relaxed);
            if matches!(error, mpsc::error::TrySendError::Full(_)) {
                self.overflow.disconnect();
            }
            closed()
        })
    }
}
