//! Counters of the HTTP layer, per transport and per refusal reason, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::server::audit::Transport;

/// Why the gate refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Missing or wrong bearer token (401).
    Unauthorized,
    /// `Host` not allowed (403).
    ForbiddenHost,
    /// `Origin` not allowed (403).
    ForbiddenOrigin,
    /// Body over the limit (413).
    TooLarge,
    /// In-flight call limit reached (429).
    TooManyCalls,
    /// Session limit reached (503).
    TooManySessions,
    /// The server is shutting down (503).
    Draining,
    /// The body could not be read (400), or did not arrive in time (408).
    BadRequest,
    /// A session that is unknown, ended, evicted or another token's (404).
    ForeignSession,
}

impl Rejection {
    const ALL: [Rejection; 9] = [
        Rejection::Unauthorized,
        Rejection::ForbiddenHost,
        Rejection::ForbiddenOrigin,
        Rejection::TooLarge,
        Rejection::TooManyCalls,
        Rejection::TooManySessions,
        Rejection::Draining,
        Rejection::BadRequest,
        Rejection::ForeignSession,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Unauthorized => "unauthorized",
            Rejection::ForbiddenHost => "forbidden_host",
            Rejection::ForbiddenOrigin => "forbidden_origin",
            Rejection::TooLarge => "body_too_large",
            Rejection::TooManyCalls => "too_many_calls",
            Rejection::TooManySessions => "too_many_sessions",
            Rejection::Draining => "shutting_down",
            Rejection::BadRequest => "bad_request",
            Rejection::ForeignSession => "foreign_session",
        }
    }
}

const TRANSPORTS: [Transport; 2] = [Transport::StreamableHttp, Transport::Sse];

/// The counters.
#[derive(Default)]
pub struct HttpStats {
    requests: [AtomicU64; 2],
    tool_calls: [AtomicU64; 2],
    rejections: [AtomicU64; Rejection::ALL.len()],
}

fn slot(transport: Transport) -> usize {
    match transport {
        Transport::StreamableHttp => 0,
        Transport::Sse => 1,
    }
}

impl HttpStats {
    /// Counts an MCP request.
    pub fn request(&self, transport: Transport) {
        self.requests[slot(transport)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an admitted tool call.
    pub fn tool_call(&self, transport: Transport) {
        self.tool_calls[slot(transport)].fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back an admitted tool call whose message turned out not to parse.
    pub fn tool_call_refused(&self, transport: Transport) {
        self.tool_calls[slot(transport)].fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a refusal.
    pub fn reject(&self, reason: Rejection) {
        self.rejections[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `(transport, requests, tool calls)` for each transport.
    pub fn by_transport(&self) -> impl Iterator<Item = (Transport, u64, u64)> + '_ {
        TRANSPORTS.into_iter().map(|t| {
            (
                t,
                self.requests[slot(t)].load(Ordering::Relaxed),
                self.tool_calls[slot(t)].load(Ordering::Relaxed),
            )
        })
    }

    /// `(reason, count)` for each refusal reason.
    pub fn rejections(&self) -> impl Iterator<Item = (Rejection, u64)> + '_ {
        Rejection::ALL
            .into_iter()
            .map(|r| (r, self.rejections[r as usize].load(Ordering::Relaxed)))
    }
}
