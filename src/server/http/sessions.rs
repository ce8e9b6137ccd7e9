//! Streamable HTTP sessions: counted, owned, and evicted when room is needed.
//!
//! rmcp's [`LocalSessionManager`] keeps a session's handle in its map until a `DELETE`, even
//! after the session's worker quit on idle expiry. This wrapper ties each session's lifetime to
//! its transport: when the MCP service that owns the transport ends, for whatever reason, the
//! session leaves the map and the open-session gauge. That keeps memory bounded and makes the
//! gauge (and the session limit built on it) true.
//!
//! Beside rmcp's map it keeps a [`SessionTable`] of what the gate needs to know: which token
//! opened each session (another token is told the session does not exist, as on the SSE
//! transport), when it was last used, whether a request or stream of it is open, and which
//! request ids are in flight (a reused id is refused rather than answered twice or not at all).
//! Clients that never send `DELETE` would otherwise hold their slot until the idle timeout; at
//! the session limit, [`SessionTable::evict_idle`] closes the least recently used idle session
//! instead, and its client gets `404` and opens a new one, as the protocol prescribes.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use rmcp::RoleServer;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, GetExtensions, RequestId, ServerJsonRpcMessage,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker,
};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};
use rmcp::transport::{Transport, WorkerTransport};

use crate::server::audit::Caller;

/// Open-session gauge and opened-session counter of one transport.
#[derive(Default)]
pub struct SessionGauge {
    open: AtomicUsize,
    opened: AtomicU64,
}

impl SessionGauge {
    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Sessions opened since start.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Counts a session in; it is counted out when the returned guard drops.
    pub fn enter(self: &Arc<Self>) -> SessionTicket {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.opened.fetch_add(1, Ordering::Relaxed);
        SessionTicket(Arc::clone(self))
    }
}

/// One open session in a [`SessionGauge`].
pub struct SessionTicket(Arc<SessionGauge>);

impl Drop for SessionTicket {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the gate knows of one session.
struct Entry {
    /// The token that initialized it; `None` until `initialize` went through, when nobody may
    /// use it yet.
    owner: Option<Option<Arc<str>>>,
    /// Milliseconds since the table's epoch.
    last_used: u64,
    /// Requests and streams of the session open now.
    busy: Arc<AtomicUsize>,
    /// Ids of the client's requests not answered yet.
    in_flight: HashSet<RequestId>,
    _ticket: SessionTicket,
}

/// Why the gate refuses a request naming a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The session is unknown, ended, or another token's.
    NotFound,
    /// The request reuses the id of a request of the session still in flight.
    DuplicateId,
}

/// The Streamable HTTP sessions as the gate sees them.
pub struct SessionTable {
    gauge: Arc<SessionGauge>,
    /// The SSE sessions, which share the limit.
    others: Arc<SessionGauge>,
    max: usize,
    /// Taken while a session is counted in, so that sessions opened together cannot all see
    /// the same free slot.
    turn: tokio::sync::Mutex<()>,
    entries: Mutex<HashMap<SessionId, Entry>>,
    epoch: Instant,
    manager: Arc<LocalSessionManager>,
}

impl SessionTable {
    /// A table of sessions counted in `gauge`, which close after `idle` without a request, and
    /// which with the sessions counted in `others` may be `max`.
    pub fn new(
        idle: Duration,
        gauge: Arc<SessionGauge>,
        others: Arc<SessionGauge>,
        max: usize,
    ) -> Arc<Self> {
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(idle);
        // A request's stream is dropped with its answer, but one ended by a cancellation is kept
        // for 60 s with the messages it carried, for a client that reconnects to read them;
        // clients here do not, so nothing is kept after a request ends.
        manager.session_config.completed_cache_ttl = Duration::ZERO;
        Arc::new(SessionTable {
            gauge,
            others,
            max,
            turn: tokio::sync::Mutex::new(()),
            entries: Mutex::default(),
            epoch: Instant::now(),
            manager: Arc::new(manager),
        })
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self, id: &SessionId) {
        let now = self.now();
        if let Some(entry) = self.entries().get_mut(id) {
            entry.last_used = now;
        }
    }

    /// Checks that `token` may use session `id` and, for a request, claims its `request` id.
    pub fn admit(
        &self,
        id: &str,
        token: Option<&Arc<str>>,
        request: Option<&RequestId>,
    ) -> Result<(), Refusal> {
        let now = self.now();
        let mut entries = self.entries();
        // Every live session has an entry from its creation on; one without is unknown, ended
        // or evicted (its worker may still be winding down).
        let Some(entry) = entries.get_mut(&SessionId::from(id)) else {
            return Err(Refusal::NotFound);
        };
        if entry
            .owner
            .as_ref()
            .is_none_or(|owner| owner.as_ref() != token)
        {
            return Err(Refusal::NotFound);
        }
        entry.last_used = now;
        if let Some(request) = request
            && !entry.in_flight.insert(request.clone())
        {
            return Err(Refusal::DuplicateId);
        }
        Ok(())
    }

    /// Gives back a request id claimed by [`SessionTable::admit`] whose request never reached
    /// the session.
    pub fn release(&self, id: &str, request: &RequestId) {
        if let Some(entry) = self.entries().get_mut(&SessionId::from(id)) {
            entry.in_flight.remove(request);
        }
    }

    fn answered(&self, id: &SessionId, request: &RequestId) {
        if let Some(entry) = self.entries().get_mut(id) {
            entry.in_flight.remove(request);
        }
    }

    /// Makes room for one new session: at the limit, closes the least recently used idle
    /// session. Returns whether there is room, and the turn to hold until the new session is
    /// counted.
    pub async fn make_room(&self) -> (bool, tokio::sync::MutexGuard<'_, ()>) {
        let turn = self.turn.lock().await;
        let room = self.gauge.open() + self.others.open() < self.max || self.evict_idle();
        (room, turn)
    }

    /// Closes the least recently used session with nothing open. Returns whether one was closed.
    fn evict_idle(&self) -> bool {
        let victim = {
            let mut entries = self.entries();
            let oldest = entries
                .iter()
                .filter(|(_, entry)| entry.busy.load(Ordering::Relaxed) == 0)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(id, _)| id.clone());
            // Out of the table at once, so the gauge and the next check see the room.
            oldest.and_then(|id| entries.remove(&id).map(|entry| (id, entry)))
        };
        let Some((id, entry)) = victim else {
            return false;
        };
        let idle_ms = self.now().saturating_sub(entry.last_used);
        drop(entry);
        // Closed in the background: a worker slow to take the message must not hold up the
        // session being opened (the gate already answers 404 for the evicted one).
        let manager = Arc::clone(&self.manager);
        tokio::spawn(async move {
            if let Err(error) = manager.close_session(&id).await {
                tracing::debug!(%error, "closing an evicted session");
            }
        });
        tracing::info!(
            idle_ms,
            "closed the least recently used idle session to make room for a new one"
        );
        true
    }
}

/// rmcp's local session manager, with sessions counted, owned and cleaned up when they end.
pub struct CountedSessions {
    table: Arc<SessionTable>,
}

impl CountedSessions {
    /// The session manager over `table`.
    pub fn new(table: Arc<SessionTable>) -> Self {
        CountedSessions { table }
    }

    fn inner(&self) -> &LocalSessionManager {
        &self.table.manager
    }

    /// Counts `stream` as open in session `id` while it lives.
    fn counted<S>(
        &self,
        id: &SessionId,
        stream: S,
    ) -> impl Stream<Item = S::Item> + Send + Sync + use<S>
    where
        S: Stream + Send + Sync + 'static,
    {
        let busy = self
            .table
            .entries()
            .get(id)
            .map(|entry| Arc::clone(&entry.busy));
        let guard = busy.map(|busy| {
            busy.fetch_add(1, Ordering::Relaxed);
            BusyGuard {
                busy,
                table: Arc::clone(&self.table),
                id: id.clone(),
            }
        });
        stream.map(move |item| {
            let _ = &guard;
            item
        })
    }
}

/// One open request or stream of a session; its end counts as the session's last use.
struct BusyGuard {
    busy: Arc<AtomicUsize>,
    table: Arc<SessionTable>,
    id: SessionId,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.busy.fetch_sub(1, Ordering::Relaxed);
        self.table.touch(&self.id);
    }
}

/// A session's transport; dropping it (the session's service ended) forgets the session.
pub struct CountedTransport {
    inner: WorkerTransport<LocalSessionWorker>,
    id: SessionId,
    table: Arc<SessionTable>,
    _forget: ForgetOnDrop,
}

struct ForgetOnDrop {
    id: SessionId,
    table: Arc<SessionTable>,
}

impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        self.table.entries().remove(&self.id);
        let table = Arc::clone(&self.table);
        let id = self.id.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                table.manager.sessions.write().await.remove(&id);
            });
        }
    }
}

impl Transport<RoleServer> for CountedTransport {
    type Error = <WorkerTransport<LocalSessionWorker> as Transport<RoleServer>>::Error;

    fn name() -> Cow<'static, str> {
        "streamable-http".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let answered = match &item {
            ServerJsonRpcMessage::Response(response) => Some(&response.id),
            ServerJsonRpcMessage::Error(error) => error.id.as_ref(),
            _ => None,
        };
        if let Some(request) = answered {
            self.table.answered(&self.id, request);
        }
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        self.inner.receive()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

impl SessionManager for CountedSessions {
    type Error = LocalSessionManagerError;
    type Transport = CountedTransport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        // The gate made room already; this holds the limit against sessions opened together.
        // With every session busy it lets the new one in anyway: failing here would be a 500.
        let (_, _turn) = self.table.make_room().await;
        let (id, inner) = self.inner().create_session().await?;
        self.table.entries().insert(
            id.clone(),
            Entry {
                owner: None,
                last_used: self.table.now(),
                busy: Arc::default(),
                in_flight: HashSet::new(),
                _ticket: self.table.gauge.enter(),
            },
        );
        let transport = CountedTransport {
            inner,
            id: id.clone(),
            table: Arc::clone(&self.table),
            _forget: ForgetOnDrop {
                id: id.clone(),
                table: Arc::clone(&self.table),
            },
        };
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        // The gate put the caller in the request's HTTP parts, which rmcp passes along.
        let owner = match &message {
            ClientJsonRpcMessage::Request(request) => request
                .request
                .extensions()
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Caller>())
                .map(|caller| caller.token_name.clone()),
            _ => None,
        };
        let response = self.inner().initialize_session(id, message).await?;
        let now = self.table.now();
        if let (Some(owner), Some(entry)) = (owner, self.table.entries().get_mut(id)) {
            entry.owner = Some(owner);
            entry.last_used = now;
        }
        Ok(response)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner().has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.table.entries().remove(id);
        self.inner().close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner().create_stream(id, message).await?;
        Ok(self.counted(id, stream))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        // rmcp drops the answer of a cancelled request, so its id is free again now.
        if let ClientJsonRpcMessage::Notification(notification) = &message
            && let ClientNotification::CancelledNotification(cancelled) = &notification.notification
            && let Some(request) = &cancelled.params.request_id
        {
            self.table.answered(id, request);
        }
        self.inner().accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner().create_standalone_stream(id).await?;
        Ok(self.counted(id, stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner().resume(id, last_event_id).await?;
        Ok(self.counted(id, stream))
    }
}
