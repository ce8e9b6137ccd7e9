//! The gate every MCP request passes on either transport, in this order: request id, draining,
//! `Host`/`Origin`, bearer token, body size, and the session and in-flight-call limits. What
//! passes carries a [`Caller`] (and, for a tool call, a [`CallPermit`]) in its extensions; rmcp
//! hands those to the handler, so the audit line knows who called and the permit is held exactly
//! as long as the call runs.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::Shared;
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
    id: Option<IgnoredAny>,
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
        Ok((request, caller)) => {
            let span = tracing::debug_span!("http", request_id = %caller.request_id);
            next.run(request).instrument(span).await
        }
        Err(rejection) => {
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
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
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

async fn check(
    shared: &Shared,
    transport: Transport,
    request_id: Arc<str>,
    request: Request,
) -> Result<(Request, Caller), Refused> {
    if shared.is_draining() {
        return Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Draining,
            "the server is shutting down; retry against another instance",
        ));
    }
    shared.origins.check(request.headers()).map_err(|refusal| {
        let reason = match refusal {
            super::origin::Refusal::Host(_) => Rejection::ForbiddenHost,
            super::origin::Refusal::Origin(_) => Rejection::ForbiddenOrigin,
        };
        Refused::new(StatusCode::FORBIDDEN, reason, refusal.to_string())
    })?;
    let token_name = shared.auth.check(request.headers()).map_err(|denied| {
        Refused::with_response(Rejection::Unauthorized, denied.into_response())
    })?;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let caller = Caller {
        token_name,
        request_id,
        transport,
        audit: shared.audit,
        peer,
    };
    let (mut parts, body) = request.into_parts();
    if parts.method == Method::POST {
        let bytes = read_body(body, shared.max_body_bytes, &parts.headers).await?;
        let peek = serde_json::from_slice::<Peek<'_>>(&bytes)
            .map_err(|error| not_json_rpc(&bytes, &error))?;
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
                    })?;
                    shared.stats.tool_call(transport);
                    parts.extensions.insert(CallPermit(Arc::new(permit)));
                }
                Some("initialize")
                    if transport == Transport::StreamableHttp
                        && !shared.stateless
                        && !parts.headers.contains_key("mcp-session-id") =>
                {
                    shared.check_session_room()?;
                }
                _ => {}
            }
        }
        parts.extensions.insert(caller.clone());
        return Ok((Request::from_parts(parts, Body::from(bytes)), caller));
    }
    parts.extensions.insert(caller.clone());
    Ok((Request::from_parts(parts, body), caller))
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

/// The whole body, refused with `413` past `limit` bytes, whatever `Content-Length` claims.
async fn read_body(
    body: Body,
    limit: usize,
    headers: &axum::http::HeaderMap,
) -> Result<Bytes, Refused> {
    let too_large = || {
        Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::TooLarge,
            format!(
                "the request body is larger than the server's limit of {limit} bytes; send smaller requests (ask for fewer rows or split the work)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            Rejection::BadRequest,
            format!("the request body could not be read: {error}"),
        )),
    }
}

impl Shared {
    /// Refuses a new session when the limit is reached.
    pub fn check_session_room(&self) -> Result<(), Refused> {
        if self.open_sessions() >= self.max_sessions {
            return Err(Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Rejection::TooManySessions,
                format!(
                    "the server has {} open sessions, its limit; close unused sessions or retry later",
                    self.max_sessions
                ),
            ));
        }
        Ok(())
    }
}
