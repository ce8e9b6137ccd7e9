//! The gate every MCP request passes on either transport, in this order: request id, draining,
//! `Host`/`Origin`, bearer token, body size and deadline, a message that parses, the session's
//! owner and the request's id (Streamable HTTP), and the session and in-flight-call limits.
//! What passes carries a [`Caller`] (and, for a tool call, a [`CallPermit`]) in its extensions;
//! rmcp hands those to the handler, so the audit line knows who called and the permit is held
//! exactly as long as the call runs. [`admit_ops`] is the smaller gate of the operations
//! endpoints.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rmcp::model::{ClientJsonRpcMessage, ErrorCode, ErrorData, RequestId};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::Shared;
use super::sessions::Refusal as SessionRefusal;
use super::stats::Rejection;
use crate::server::audit::{Caller, Transport};

/// Header carrying the request id in both directions.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Holds one of the in-flight call slots until the call's request is dropped.
#[derive(Clone)]
pub struct CallPermit(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Request ids: a per-process random prefix and a counter, unique and cheap.
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    /// A fresh id source.
    pub fn new() -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        RequestIds {
            prefix: random[..8].to_owned(),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> Arc<str> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{}-{n}", self.prefix))
    }
}

/// The id the client sent, if it is a reasonable token; otherwise a new one.
fn request_id(shared: &Shared, request: &Request) -> Arc<str> {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(Arc::from)
        .unwrap_or_else(|| shared.request_ids.next())
}

/// Just enough of a JSON-RPC message to tell a request from the rest.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    id: Option<RequestId>,
}

/// The middleware of every MCP route.
pub async fn admit(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let transport = if request.uri().path() == "/mcp" {
        Transport::StreamableHttp
    } else {
        Transport::Sse
    };
    let request_id = request_id(&shared, &request);
    shared.stats.request(transport);
    let mut response = match check(&shared, transport, Arc::clone(&request_id), request).await {
        Ok(Admitted {
            request,
            caller,
            claimed,
            unparsed,
            tool_call,
        }) => {
            let span = tracing::debug_span!("http", request_id = %caller.request_id);
            let response = next.run(request).instrument(span).await;
            // A request rmcp refused never reached its session, so nothing will answer its id.
            if let (Some(id), Some(session)) = (claimed, caller.session.as_deref())
                && !response.status().is_success()
            {
                shared.sessions.release(session, &id);
            }
            // rmcp refuses a message it cannot parse with a bare 415; the client gets the
            // JSON-RPC error instead, as when the gate parsed every message itself.
            match unparsed.filter(|_| !response.status().is_success()) {
                Some(bytes) => match unparseable(&bytes) {
                    Some(rejection) => {
                        if tool_call {
                            shared.stats.tool_call_refused(transport);
                        }
                        refuse(&shared, transport, &request_id, rejection)
                    }
                    None => response,
                },
                None => response,
            }
        }
        Err(rejection) => refuse(&shared, transport, &request_id, rejection),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// Counts and logs a refusal, and gives its answer.
fn refuse(shared: &Shared, transport: Transport, request_id: &str, rejection: Refused) -> Response {
    shared.stats.reject(rejection.reason);
    tracing::info!(
        request_id = %request_id,
        transport = transport.label(),
        reason = rejection.reason.label(),
        status = rejection.response.status().as_u16(),
        "request refused"
    );
    rejection.into_response()
}

/// The JSON-RPC error for a message rmcp cannot parse (-32602 for params that do not fit the
/// method), or `None` when it parses.
fn unparseable(bytes: &[u8]) -> Option<Refused> {
    serde_json::from_slice::<ClientJsonRpcMessage>(bytes)
        .err()
        .map(|error| not_json_rpc(bytes, &error))
}

/// The gate of the operations endpoints: `Host` and `Origin` as for MCP requests, and the
/// bearer token for `/readyz` and `/metrics`, which tell what runs behind the server and can
/// make it work. `/healthz` stays open to probes that hold no secret.
pub async fn admit_ops(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let checked = check_origin(&shared, &request).and_then(|()| {
        if request.uri().path() == "/healthz" {
            return Ok(());
        }
        shared
            .auth
            .check(request.headers())
            .map(|_| ())
            .map_err(|denied| {
                Refused::with_response(Rejection::Unauthorized, denied.into_response())
            })
    });
    match checked {
        Ok(()) => next.run(request).await,
        Err(rejection) => {
            shared.stats.reject(rejection.reason);
            tracing::info!(
                path = request.uri().path(),
                reason = rejection.reason.label(),
                status = rejection.response.status().as_u16(),
                "operations request refused"
            );
            rejection.into_response()
        }
    }
}

fn check_origin(shared: &Shared, request: &Request) -> Result<(), Refused> {
    shared
        .origins
        .check(request.uri(), request.headers())
        .map_err(|refusal| {
            let reason = match refusal {
                super::origin::Refusal::Host(_) => Rejection::ForbiddenHost,
                super::origin::Refusal::Origin(_) => Rejection::ForbiddenOrigin,
            };
            Refused::new(StatusCode::FORBIDDEN, reason, refusal.to_string())
        })
}

/// A refused request: the answer (a status and a message saying what to do), and the metric
/// label.
pub struct Refused {
    reason: Rejection,
    response: Box<Response>,
}

impl Refused {
    fn new(status: StatusCode, reason: Rejection, message: impl Into<String>) -> Self {
        let mut response = (status, message.into()).into_response();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Refused::with_response(reason, response)
    }

    fn with_response(reason: Rejection, response: Response) -> Self {
        Refused {
            reason,
            response: Box::new(response),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.response
    }
}

/// What passed the gate: the request, its caller, the request id it claimed in its session,
/// the body of a Streamable HTTP message not yet parsed in full (see [`check`]), and whether it
/// was counted as a tool call.
struct Admitted {
    request: Request,
    caller: Caller,
    claimed: Option<RequestId>,
    unparsed: Option<Bytes>,
    tool_call: bool,
}

async fn check(
    shared: &Shared,
    transport: Transport,
    request_id: Arc<str>,
    request: Request,
) -> Result<Admitted, Refused> {
    if shared.is_draining() {
        return Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Draining,
            "the server is shutting down; retry against another instance",
        ));
    }
    check_origin(shared, &request)?;
    let token_name = shared.auth.check(request.headers()).map_err(|denied| {
        Refused::with_response(Rejection::Unauthorized, denied.into_response())
    })?;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let session = match transport {
        Transport::StreamableHttp => request
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(Arc::from),
        Transport::Sse => request
            .uri()
            .query()
            .and_then(super::sse::session_id)
            .map(|id| Arc::from(id.as_ref())),
    };
    let caller = Caller {
        token_name,
        request_id,
        transport,
        audit: shared.audit,
        peer,
        session,
    };
    let (mut parts, body) = request.into_parts();
    if parts.method == Method::POST {
        let bytes = read_body(
            body,
            shared.max_body_bytes,
            shared.body_read_timeout,
            &parts.headers,
        )
        .await?;
        let peek = serde_json::from_slice::<Peek<'_>>(&bytes)
            .map_err(|error| not_json_rpc(&bytes, &error))?;
        // rmcp answers a message it cannot parse with a bare 415; the client gets the JSON-RPC
        // error instead (-32602 for params that do not fit the method), before any other
        // refusal. rmcp parses every message again, so the full parse here is left for when the
        // message is refused, by the gate below or by rmcp (see `admit`): what rmcp accepts
        // parses. An `initialize` is parsed at once, as it may close an idle session to make
        // room. The SSE handler parses its messages itself.
        let mut unparsed = None;
        if transport == Transport::StreamableHttp {
            if peek.method.as_deref() == Some("initialize") {
                if let Some(rejection) = unparseable(&bytes) {
                    return Err(rejection);
                }
            } else {
                unparsed = Some(bytes.clone());
            }
        }
        // A refusal below gives way to the message's own error when it does not parse.
        let refused = |refusal: Refused| match unparsed.as_deref().and_then(unparseable) {
            Some(rejection) => rejection,
            None => refusal,
        };
        // A request (an id and a method) claims its id in its session; a client's answer to a
        // server request carries an id but no method.
        let claim = peek.id.as_ref().filter(|_| peek.method.is_some());
        let mut tool_call = false;
        let claimed = match caller.session.as_deref() {
            Some(session) if transport == Transport::StreamableHttp => {
                shared
                    .sessions
                    .admit(session, caller.token_name.as_ref(), claim)
                    .map_err(|refusal| refused(session_refused(refusal, claim)))?;
                claim.cloned()
            }
            _ => None,
        };
        if peek.id.is_some() {
            match peek.method.as_deref() {
                Some("tools/call") => {
                    let permit = Arc::clone(&shared.calls).try_acquire_owned().map_err(|_| {
                        Refused::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            Rejection::TooManyCalls,
                            format!(
                                "{} tool calls are already running, the server's limit; retry shortly",
                                shared.max_calls
                            ),
                        )
                    });
                    let permit = match permit {
                        Ok(permit) => permit,
                        Err(refusal) => {
                            if let (Some(id), Some(session)) = (&claimed, caller.session.as_deref())
                            {
                                shared.sessions.release(session, id);
                            }
                            return Err(refused(refusal));
                        }
                    };
                    shared.stats.tool_call(transport);
                    tool_call = true;
                    parts.extensions.insert(CallPermit(Arc::new(permit)));
                }
                Some("initialize")
                    if transport == Transport::StreamableHttp
                        && !shared.stateless
                        && !parts.headers.contains_key("mcp-session-id") =>
                {
                    // rmcp's session manager takes the turn again when it creates the session.
                    drop(shared.make_session_room().await?);
                }
                _ => {}
            }
        }
        parts.extensions.insert(caller.clone());
        return Ok(Admitted {
            request: Request::from_parts(parts, Body::from(bytes)),
            caller,
            claimed,
            unparsed,
            tool_call,
        });
    }
    if let Some(session) = caller.session.as_deref()
        && transport == Transport::StreamableHttp
    {
        shared
            .sessions
            .admit(session, caller.token_name.as_ref(), None)
            .map_err(|refusal| session_refused(refusal, None))?;
    }
    parts.extensions.insert(caller.clone());
    Ok(Admitted {
        request: Request::from_parts(parts, body),
        caller,
        claimed: None,
        unparsed: None,
        tool_call: false,
    })
}

/// The answer to a request its session refuses: `404` for another token's session, exactly
/// what an unknown session gets; the JSON-RPC error for a request id already in flight.
fn session_refused(refusal: SessionRefusal, id: Option<&RequestId>) -> Refused {
    match refusal {
        SessionRefusal::NotFound => Refused::new(
            StatusCode::NOT_FOUND,
            Rejection::ForeignSession,
            "Not Found: Session not found; start a new session with initialize",
        ),
        SessionRefusal::DuplicateId => {
            let error = ErrorData::new(
                ErrorCode::INVALID_REQUEST,
                "id already in use: a request with this id is still running in this session; use a new id",
                None,
            );
            let reply =
                rmcp::service::TxJsonRpcMessage::<rmcp::RoleServer>::error(error, id.cloned());
            Refused::with_response(
                Rejection::BadRequest,
                (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "application/json")],
                    serde_json::to_string(&reply).unwrap_or_default(),
                )
                    .into_response(),
            )
        }
    }
}

/// `400` with the JSON-RPC error a transport would send for these bytes.
fn not_json_rpc(bytes: &[u8], error: &serde_json::Error) -> Refused {
    let (error, id) = crate::server::jsonrpc::rejection(bytes, error);
    let reply = rmcp::service::TxJsonRpcMessage::<rmcp::RoleServer>::error(error, id);
    let body = serde_json::to_string(&reply).unwrap_or_default();
    Refused::with_response(
        Rejection::BadRequest,
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    )
}

/// Most bytes of an oversized body read and thrown away so the client reads the `413`: a
/// server that closes a connection with unread bytes in its receive buffer makes the kernel
/// reset it, and the client then sees a reset instead of the answer.
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// The whole body, refused with `413` past `limit` bytes, whatever `Content-Length` claims, and
/// with `408` when it does not arrive within `timeout`.
async fn read_body(
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
    headers: &axum::http::HeaderMap,
) -> Result<Bytes, Refused> {
    let too_large = |drained: bool| {
        let mut refused = Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::TooLarge,
            format!(
                "the request body is larger than the server's limit of {limit} bytes; send smaller requests (ask for fewer rows or split the work)"
            ),
        );
        if !drained {
            refused
                .response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        refused
    };
    let timed_out = || {
        let mut refused = Refused::new(
            StatusCode::REQUEST_TIMEOUT,
            Rejection::BadRequest,
            format!(
                "the request body did not arrive within {} s; send it whole, without pauses",
                timeout.as_secs()
            ),
        );
        refused
            .response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        refused
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A client that waits for `100 Continue` has sent nothing yet: it reads the answer as is.
    let waits_to_send = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let deadline = tokio::time::Instant::now() + timeout;
    if declared.is_some_and(|length| length > limit as u64) {
        let drained = !waits_to_send
            && declared.is_some_and(|length| length <= DRAIN_BYTES)
            && drain(std::pin::pin!(body), DRAIN_BYTES, deadline).await;
        return Err(too_large(drained || waits_to_send));
    }
    let mut body = std::pin::pin!(body);
    let mut collected = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.as_mut().frame()).await {
            Err(_) => return Err(timed_out()),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(error))) => {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    Rejection::BadRequest,
                    format!("the request body could not be read: {error}"),
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > limit {
                let drained = drain(body, DRAIN_BYTES, deadline).await;
                return Err(too_large(drained));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

/// Reads and discards the rest of `body`, up to `most` bytes and until `deadline`; true when
/// it ended within both.
async fn drain(
    mut body: std::pin::Pin<&mut Body>,
    most: u64,
    deadline: tokio::time::Instant,
) -> bool {
    let mut seen = 0u64;
    loop {
        match tokio::time::timeout_at(deadline, body.as_mut().frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    seen += data.len() as u64;
                    if seen > most {
                        return false;
                    }
                }
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

impl Shared {
    /// Makes room for a new session: at the limit, the least recently used idle Streamable HTTP
    /// session is closed; when every session is busy, the new one is refused. The returned turn
    /// is held until the new session is counted.
    pub async fn make_session_room(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, Refused> {
        let (room, turn) = self.sessions.make_room().await;
        if !room {
            return Err(Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Rejection::TooManySessions,
                format!(
                    "the server has {} open sessions, its limit; close unused sessions or retry later",
                    self.max_sessions
                ),
            ));
        }
        Ok(turn)
    }
}
