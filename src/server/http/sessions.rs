//! Streamable HTTP sessions, counted.
//!
//! rmcp's [`LocalSessionManager`] keeps a session's handle in its map until a `DELETE`, even
//! after the session's worker quit on idle expiry. This wrapper ties each session's lifetime to
//! its transport: when the MCP service that owns the transport ends, for whatever reason, the
//! session leaves the map and the open-session gauge. That keeps memory bounded and makes the
//! gauge (and the session limit built on it) true.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::Stream;
use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker,
};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};
use rmcp::transport::{Transport, WorkerTransport};

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

/// rmcp's local session manager, with sessions counted and cleaned up when they end.
pub struct CountedSessions {
    inner: Arc<LocalSessionManager>,
    gauge: Arc<SessionGauge>,
}

impl CountedSessions {
    /// Sessions that close after `idle` without a request.
    pub fn new(idle: Duration, gauge: Arc<SessionGauge>) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(idle);
        CountedSessions {
            inner: Arc::new(inner),
            gauge,
        }
    }
}

/// A session's transport; dropping it (the session's service ended) forgets the session.
pub struct CountedTransport {
    inner: WorkerTransport<LocalSessionWorker>,
    _forget: ForgetOnDrop,
}

struct ForgetOnDrop {
    id: SessionId,
    manager: Arc<LocalSessionManager>,
    _ticket: SessionTicket,
}

impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        let manager = Arc::clone(&self.manager);
        let id = self.id.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                manager.sessions.write().await.remove(&id);
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
        let (id, inner) = self.inner.create_session().await?;
        let transport = CountedTransport {
            inner,
            _forget: ForgetOnDrop {
                id: id.clone(),
                manager: Arc::clone(&self.inner),
                _ticket: self.gauge.enter(),
            },
        };
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }
}
