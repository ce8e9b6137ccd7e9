//! Who called on the remote endpoint: the caller identity the HTTP layer attaches to each
//! message. The registry writes the audit line (`tools::audit`) from the identity this gives.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::tools::Principal;
use crate::tools::audit::AuditIdentity;

/// How a message reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP (`/mcp`).
    StreamableHttp,
    /// The legacy HTTP+SSE transport (`/sse` + `/message`).
    Sse,
}

impl Transport {
    /// The label used in logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Transport::StreamableHttp => "streamable_http",
            Transport::Sse => "sse",
        }
    }
}

/// The authenticated caller of one HTTP request, carried in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Name of the token presented; `None` when the endpoint runs without auth.
    pub token_name: Option<Arc<str>>,
    /// The request id (from `X-Request-Id` or generated), echoed in the response.
    pub request_id: Arc<str>,
    /// The transport the request came through.
    pub transport: Transport,
    /// Whether tool calls of this request are audited.
    pub audit: bool,
    /// The client's address (a proxy's, behind one).
    pub peer: Option<SocketAddr>,
    /// The MCP session the request names, if any (unchecked here: the transports refuse
    /// unknown sessions).
    pub session: Option<Arc<str>>,
}

impl Caller {
    /// Whom the request's calls run for: the token when the endpoint has tokens (a session
    /// belongs to its token anyway), else the session, else everyone unauthenticated alike.
    pub fn principal(&self) -> Principal {
        match (&self.token_name, &self.session) {
            (Some(token), _) => Principal::new(format!("token:{token}")),
            (None, Some(session)) => Principal::new(format!("session:{session}")),
            (None, None) => Principal::new("anonymous"),
        }
    }

    /// Who the audit line names for this request's calls, when they are audited.
    pub fn audit_identity(&self) -> Option<Arc<AuditIdentity>> {
        self.audit.then(|| {
            Arc::new(AuditIdentity {
                transport: self.transport.label(),
                token: self.token_name.clone(),
                request_id: Some(Arc::clone(&self.request_id)),
                peer: self.peer.map(|p| p.to_string()),
            })
        })
    }
}
