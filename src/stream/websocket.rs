//! WebSocket streams: a `ws://`/`wss://` URL, an optional subscribe message sent on connect,
//! one message per text or binary frame.
//!
//! Each read opens its own connection and closes it when the read stops. tungstenite caps a
//! message at [`MAX_MESSAGE`](super::live::MAX_MESSAGE) bytes; unlike a line of a byte stream, a
//! WebSocket message over the cap cannot be skipped (the protocol offers no way past it), so it
//! ends the read with what arrived before it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{SinkExt as _, StreamExt as _};
use reqwest::header::HeaderMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig as Protocol;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::config::Place;
use super::live::{self, Frame, Live, MAX_MESSAGE};
use super::scan::{Flow, Scan, Stop};
use super::source::{
    DescribeRequest, ReadPlan, Source, SourceInfo, TopicDescription, TopicSummary,
};
use crate::config::ConfigError;
use crate::tools::{CallContext, ToolError};

/// `[streams.NAME]` with `kind = "websocket"`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    /// The stream's URL (`ws://`, or `wss://` in a build with the `tls` feature); `${ENV}` is
    /// expanded.
    pub url: String,
    /// Request headers, e.g. `Authorization = "Bearer ${TOKEN}"`; `${ENV}` is expanded.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// What the description says it carries.
    pub description: Option<String>,
    /// A message sent as a text frame right after connecting, e.g. `subscribe = { op =
    /// "subscribe", channel = "trades" }` (sent as JSON) or a string sent as it is. `${ENV}` is
    /// expanded in its strings.
    pub subscribe: Option<Value>,
    /// Paths under `url` that may be read (`*` matches any run of characters): the tools'
    /// `topic` is then a path appended to the URL. Without paths the source has one stream, the
    /// URL itself, and takes no topic.
    pub paths: Option<Vec<String>>,
    /// How long to wait for the connection and the WebSocket handshake, in milliseconds
    /// (default 5000).
    pub connect_timeout_ms: Option<u64>,
}

/// A WebSocket source.
pub struct WebSocketSource {
    live: Live,
    /// The URL with `${ENV}` expanded, to connect to.
    url: String,
    headers: HeaderMap,
    /// The subscribe message's text.
    subscribe: Option<String>,
    connect_timeout: Duration,
}

/// Opens a `kind = "websocket"` source (no I/O: each read connects).
pub fn open(
    name: &str,
    config: WebSocketConfig,
    at: &Place<'_>,
) -> Result<Arc<dyn Source>, ConfigError> {
    let url = at.expand("url", &config.url)?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        at.invalid_key(
            "url",
            format!("'{}' is not a URL: {e}", config.url),
            "write a full URL, e.g. url = \"ws://127.0.0.1:8080/feed\"",
        )
    })?;
    match parsed.scheme() {
        "ws" => {}
        "wss" if cfg!(feature = "tls") => {}
        "wss" => {
            return Err(at.invalid_key(
                "url",
                format!(
                    "'{}' needs TLS, which this build of datamcp does not include",
                    config.url
                ),
                "build datamcp with `cargo build --release --features tls`, or use a ws:// URL",
            ));
        }
        other => {
            return Err(at.invalid_key(
                "url",
                format!("'{other}' URLs are not WebSockets"),
                "use a ws:// or wss:// URL (http:// streams are kind = \"http\")",
            ));
        }
    }
    super::http::check_paths(config.paths.as_deref(), &parsed, at)?;
    let headers = super::http::header_map(&config.headers, at)?;
    let subscribe = match &config.subscribe {
        None => None,
        Some(Value::String(text)) => Some(at.expand("subscribe", text)?),
        Some(value) => Some(expand_strings(value, at)?.to_string()),
    };
    Ok(Arc::new(WebSocketSource {
        live: Live {
            name: name.to_owned(),
            kind: "websocket",
            label: "WebSocket",
            description: config.description,
            shown_url: config.url,
            allow: live::allow_list(config.paths.as_deref()),
        },
        url,
        headers,
        subscribe,
        connect_timeout: Duration::from_millis(config.connect_timeout_ms.unwrap_or(5_000).max(1)),
    }))
}

/// `value` with `${ENV}` expanded in every string in it (API keys in subscribe messages).
fn expand_strings(value: &Value, at: &Place<'_>) -> Result<Value, ConfigError> {
    Ok(match value {
        Value::String(text) => Value::String(at.expand("subscribe", text)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| expand_strings(item, at))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_strings(v, at)?)))
                .collect::<Result<_, ConfigError>>()?,
        ),
        other => other.clone(),
    })
}

impl WebSocketSource {
    async fn read_stream(
        &self,
        ctx: &CallContext,
        plan: ReadPlan,
        mut scan: Scan,
    ) -> Result<Scan, ToolError> {
        self.live.check_topic(&plan.topic)?;
        live::check_plan(&plan, &mut scan)?;
        let started = Instant::now();
        let deadline = scan.deadline().min(started + plan.max_wait);
        let cancel = ctx.cancellation();
        let url = live::url_for(&self.url, &plan.topic);
        let shown = live::url_for(&self.live.shown_url, &plan.topic);

        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ToolError::Upstream {
                message: format!("cannot make a WebSocket request for {shown}: {e}"),
                transient: false,
            })?;
        request
            .headers_mut()
            .extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let protocol = Protocol::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connect_by = deadline.min(started + self.connect_timeout);
        let connecting =
            tokio_tungstenite::connect_async_with_config(request, Some(protocol), true);
        let mut socket = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ToolError::Cancelled),
            () = tokio::time::sleep_until(connect_by.into()) => return Err(ToolError::Upstream {
                message: format!(
                    "{shown} did not complete the WebSocket handshake within {} ms; check that the server is up, or raise connect_timeout_ms (or max_wait_ms, when that was shorter)",
                    started.elapsed().as_millis()
                ),
                transient: true,
            }),
            connected = connecting => connected.map_err(|e| connect_error(&shown, e))?.0,
        };
        if let Some(subscribe) = &self.subscribe {
            let sent = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ToolError::Cancelled),
                () = tokio::time::sleep_until(deadline.into()) => Err(WsError::ConnectionClosed),
                sent = socket.send(Message::text(subscribe.clone())) => sent,
            };
            sent.map_err(|e| ToolError::Upstream {
                message: format!(
                    "{shown} accepted the connection but the subscribe message could not be sent: {}",
                    live::chain(&e)
                ),
                transient: true,
            })?;
        }

        let mut skipped = 0_u64;
        let mut closed = false;
        loop {
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ToolError::Cancelled),
                () = tokio::time::sleep_until(deadline.into()) => {
                    scan.stop(Stop::MaxWait);
                    break;
                }
                next = socket.next() => next,
            };
            let flow = match next {
                Some(Ok(Message::Text(text))) => deliver(&mut scan, text.as_bytes(), &mut skipped),
                Some(Ok(Message::Binary(data))) => deliver(&mut scan, &data, &mut skipped),
                // tungstenite answers pings itself, on the next read.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    if let Some(frame) = frame
                        && !frame.reason.is_empty()
                    {
                        scan.note(format!(
                            "the server closed the WebSocket ({}): {}",
                            u16::from(frame.code),
                            frame.reason
                        ));
                    }
                    closed = true;
                    break;
                }
                None => {
                    closed = true;
                    break;
                }
                Some(Err(WsError::Capacity(error))) => {
                    if scan.scanned() == 0 {
                        return Err(ToolError::Upstream {
                            message: format!(
                                "{shown} sent a message over the {MAX_MESSAGE}-byte limit ({error}) before any other"
                            ),
                            transient: false,
                        });
                    }
                    scan.note(format!(
                        "a message over {MAX_MESSAGE} bytes arrived ({error}); a WebSocket message cannot be skipped, so the read ended there"
                    ));
                    closed = true;
                    break;
                }
                Some(Err(error)) => {
                    let error = live::chain(&error);
                    if scan.scanned() == 0 {
                        return Err(ToolError::Upstream {
                            message: format!(
                                "the WebSocket connection to {shown} broke before a message arrived: {error}"
                            ),
                            transient: true,
                        });
                    }
                    scan.note(format!(
                        "the WebSocket connection broke ({error}); any message in flight was lost"
                    ));
                    closed = true;
                    break;
                }
            };
            if flow == Flow::Stop {
                break;
            }
        }
        if closed {
            scan.stop(Stop::StreamClosed);
        } else {
            // Say goodbye when we are the ones leaving, within a short grace: the server is
            // owed a close frame, but the answer must not wait for it.
            let _ = tokio::time::timeout(Duration::from_millis(100), socket.close(None)).await;
        }
        if scan.scanned() == 0 {
            return Err(super::http::nothing_arrived(
                &shown,
                "WebSocket",
                closed,
                started,
            ));
        }
        Ok(scan)
    }
}

/// Offers one frame's payload as a message.
fn deliver(scan: &mut Scan, data: &[u8], skipped: &mut u64) -> Flow {
    let frame = Frame::Message {
        id: None,
        event: None,
        data,
    };
    live::offer(scan, frame, skipped)
}

/// A failed connection as a tool error saying what to check.
fn connect_error(shown: &str, error: WsError) -> ToolError {
    match error {
        WsError::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(live::excerpt)
                .unwrap_or_default();
            ToolError::Upstream {
                message: format!(
                    "{shown} refused the WebSocket handshake with HTTP {status}{}; {}",
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(": {body}")
                    },
                    match status.as_u16() {
                        401 | 403 => "check the credentials in the source's headers",
                        404 => "check the URL and the path",
                        _ => "check the URL, the path and the headers",
                    }
                ),
                transient: status.is_server_error(),
            }
        }
        other => {
            let transient = matches!(other, WsError::Io(_));
            ToolError::Upstream {
                message: format!(
                    "cannot connect to {shown}: {}; check that the server is up, that the host and port are right and that it speaks WebSocket (and, for wss, that its certificate is valid)",
                    live::chain(&other)
                ),
                transient,
            }
        }
    }
}

impl Source for WebSocketSource {
    fn name(&self) -> &str {
        &self.live.name
    }

    fn info(&self) -> SourceInfo {
        self.live.info()
    }

    fn allows(&self, topic: &str) -> bool {
        self.live.allows(topic)
    }

    fn list_topics<'a>(
        &'a self,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<TopicSummary>, ToolError>> {
        Box::pin(async move { Ok(live::topics(&self.live.allow)) })
    }

    fn describe_topic<'a>(
        &'a self,
        _ctx: &'a CallContext,
        request: &'a DescribeRequest,
    ) -> BoxFuture<'a, Result<TopicDescription, ToolError>> {
        Box::pin(async move {
            self.live.check_topic(&request.topic)?;
            let mut description = self.live.describe(request);
            if self.subscribe.is_some() {
                description
                    .config
                    .insert("subscribe".to_owned(), "sent on connect".to_owned());
            }
            Ok(description)
        })
    }

    fn read<'a>(
        &'a self,
        ctx: &'a CallContext,
        plan: ReadPlan,
        scan: Scan,
    ) -> BoxFuture<'a, Result<Scan, ToolError>> {
        Box::pin(self.read_stream(ctx, plan, scan))
    }
}
