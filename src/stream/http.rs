//! HTTP event streams: a URL that streams newline-delimited JSON or Server-Sent Events.
//!
//! Each read opens its own request and drops it when the read stops, so a read never outlives
//! its call and callers never share a stream. The body is cut into messages as it arrives
//! (`live.rs`), holding at most one message's bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;

use super::config::Place;
use super::live::{self, Frame, Live, Ndjson, Sse};
use super::scan::{Flow, Scan, Stop};
use super::source::{
    DescribeRequest, ReadPlan, Source, SourceInfo, TopicDescription, TopicSummary,
};
use crate::config::ConfigError;
use crate::tools::{CallContext, ToolError};

/// `[streams.NAME]` with `kind = "http"`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The stream's URL (`http://`, or `https://` in a build with the `tls` feature); `${ENV}`
    /// is expanded.
    pub url: String,
    /// Request headers, e.g. `Authorization = "Bearer ${TOKEN}"`; `${ENV}` is expanded.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// What the description says it carries.
    pub description: Option<String>,
    /// How the body is cut into messages: `auto` (default: Server-Sent Events when the response
    /// is `text/event-stream`, else one message per line), `ndjson` or `sse`.
    #[serde(default)]
    pub format: LiveFormat,
    /// Paths under `url` that may be read, e.g. `["orders", "prices/*"]` (`*` matches any run of
    /// characters): the tools' `topic` is then a path appended to the URL. Without paths the
    /// source has one stream, the URL itself, and takes no topic.
    pub paths: Option<Vec<String>>,
    /// How long to wait for the TCP (and TLS) connection, in milliseconds (default 5000).
    pub connect_timeout_ms: Option<u64>,
}

/// How an HTTP stream's body is cut into messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LiveFormat {
    /// Server-Sent Events when the Content-Type is `text/event-stream`, else NDJSON.
    #[default]
    Auto,
    /// One message per non-blank line.
    Ndjson,
    /// Server-Sent Events: one message per event (its data), with its `event` name as a header
    /// and its `id` as the key.
    Sse,
}

/// An HTTP stream source.
pub struct HttpSource {
    live: Live,
    /// The URL with `${ENV}` expanded, to connect to.
    url: String,
    headers: HeaderMap,
    format: LiveFormat,
    connect_timeout: Duration,
    /// Made on first use, so start-up does no TLS set-up.
    client: OnceLock<Result<reqwest::Client, String>>,
}

/// Opens a `kind = "http"` source (no I/O: each read connects).
pub fn open(
    name: &str,
    config: HttpConfig,
    at: &Place<'_>,
) -> Result<Arc<dyn Source>, ConfigError> {
    let url = at.expand("url", &config.url)?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        at.invalid_key(
            "url",
            format!("'{}' is not a URL: {e}", config.url),
            "write a full URL, e.g. url = \"http://127.0.0.1:8080/events\"",
        )
    })?;
    match parsed.scheme() {
        "http" => {}
        "https" if cfg!(feature = "tls") => {}
        "https" => {
            return Err(at.invalid_key(
                "url",
                format!(
                    "'{}' needs TLS, which this build of datamcp does not include",
                    config.url
                ),
                "build datamcp with `cargo build --release --features tls`, or use an http:// URL",
            ));
        }
        other => {
            return Err(at.invalid_key(
                "url",
                format!("'{other}' URLs are not HTTP streams"),
                "use an http:// or https:// URL (ws:// and wss:// are kind = \"websocket\")",
            ));
        }
    }
    check_paths(config.paths.as_deref(), &parsed, at)?;
    let headers = header_map(&config.headers, at)?;
    Ok(Arc::new(HttpSource {
        live: Live {
            name: name.to_owned(),
            kind: "http",
            label: "HTTP",
            description: config.description,
            shown_url: config.url,
            allow: live::allow_list(config.paths.as_deref()),
        },
        url,
        headers,
        format: config.format,
        connect_timeout: Duration::from_millis(config.connect_timeout_ms.unwrap_or(5_000).max(1)),
        client: OnceLock::new(),
    }))
}

/// Paths are appended to the URL: they need a URL that ends in a path.
pub(crate) fn check_paths(
    paths: Option<&[String]>,
    url: &reqwest::Url,
    at: &Place<'_>,
) -> Result<(), ConfigError> {
    let Some(paths) = paths else {
        return Ok(());
    };
    if paths.is_empty() || paths.iter().any(|p| p.trim().is_empty()) {
        return Err(at.invalid_key(
            "paths",
            "an empty path",
            "list paths under the URL, e.g. paths = [\"orders\", \"prices/*\"], or leave paths out to read the URL itself",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(at.invalid_key(
            "paths",
            "paths are appended to the URL, which has a query or fragment",
            "move the query into each path's stream, or leave paths out",
        ));
    }
    Ok(())
}

/// The configured headers, expanded and checked now so that a typo is a config error.
pub(crate) fn header_map(
    headers: &BTreeMap<String, String>,
    at: &Place<'_>,
) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::new();
    for (key, value) in headers {
        let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
            at.invalid_key(
                &format!("headers.\"{key}\""),
                format!("'{key}' is not a header name"),
                "use letters, digits and '-'",
            )
        })?;
        let expanded = at.expand(&format!("headers.{key}"), value)?;
        let mut value = HeaderValue::from_str(&expanded).map_err(|_| {
            at.invalid_key(
                &format!("headers.\"{key}\""),
                "the value holds characters a header cannot carry (a newline?)",
                "check the value and the environment variables it uses",
            )
        })?;
        // Keeps credentials out of debug output.
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

impl HttpSource {
    fn client(&self) -> Result<&reqwest::Client, ToolError> {
        let client = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .user_agent(concat!("datamcp/", env!("CARGO_PKG_VERSION")))
                // A redirect would carry the configured headers (API keys) to another host.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| live::chain(&e))
        });
        client
            .as_ref()
            .map_err(|e| ToolError::Internal(format!("cannot set up the HTTP client: {e}")))
    }

    fn request(&self, url: &str) -> Result<reqwest::RequestBuilder, ToolError> {
        let mut headers = self.headers.clone();
        if !headers.contains_key(ACCEPT) {
            let accept = match self.format {
                LiveFormat::Auto => {
                    "text/event-stream, application/x-ndjson, application/jsonl, application/json;q=0.9, */*;q=0.8"
                }
                LiveFormat::Ndjson => {
                    "application/x-ndjson, application/jsonl, application/json;q=0.9, */*;q=0.8"
                }
                LiveFormat::Sse => "text/event-stream",
            };
            headers.insert(ACCEPT, HeaderValue::from_static(accept));
        }
        if !headers.contains_key(CACHE_CONTROL) {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        Ok(self.client()?.get(url).headers(headers))
    }

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
        let sleep_until = || tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
        let cancel = ctx.cancellation();
        let url = live::url_for(&self.url, &plan.topic);
        let shown = live::url_for(&self.live.shown_url, &plan.topic);
        let request = self.request(&url)?;

        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ToolError::Cancelled),
            () = sleep_until() => return Err(ToolError::Upstream {
                message: format!(
                    "{shown} did not answer within {} ms; check that the server is up, or raise max_wait_ms",
                    started.elapsed().as_millis()
                ),
                transient: true,
            }),
            response = request.send() => response.map_err(|e| request_error(&shown, &e))?,
        };
        let status = response.status();
        if !status.is_success() {
            let body = error_body(response, deadline).await;
            return Err(ToolError::Upstream {
                message: format!(
                    "{shown} answered HTTP {status}{}; {}",
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(": {body}")
                    },
                    match status.as_u16() {
                        401 | 403 => "check the credentials in the source's headers",
                        404 | 410 => "check the URL and the path",
                        429 | 500..=599 => "the server failed or is overloaded: retry later",
                        _ => "check the URL, the path and the headers",
                    }
                ),
                transient: status.as_u16() == 429 || status.is_server_error(),
            });
        }
        let sse = match self.format {
            LiveFormat::Sse => true,
            LiveFormat::Ndjson => false,
            LiveFormat::Auto => response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.trim_start()
                        .to_ascii_lowercase()
                        .starts_with("text/event-stream")
                }),
        };
        let mut framer = if sse {
            Framer::Sse(Sse::default())
        } else {
            Framer::Ndjson(Ndjson::default())
        };
        let format = if sse { "Server-Sent Events" } else { "NDJSON" };

        let mut body = response.bytes_stream();
        let mut skipped = 0_u64;
        // The error the body broke with, if it did.
        let mut broke: Option<String> = None;
        let mut closed = false;
        loop {
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ToolError::Cancelled),
                () = sleep_until() => {
                    scan.stop(Stop::MaxWait);
                    break;
                }
                next = body.next() => next,
            };
            match next {
                Some(Ok(chunk)) => {
                    let flow = framer.feed(&chunk, &mut |frame| {
                        live::offer(&mut scan, frame, &mut skipped)
                    });
                    if flow == Flow::Stop || scan.is_stopped() {
                        break;
                    }
                }
                Some(Err(error)) => {
                    broke = Some(without_url(&error));
                    break;
                }
                None => {
                    let discarded = framer.finish(true, &mut |frame| {
                        live::offer(&mut scan, frame, &mut skipped)
                    });
                    if discarded > 0 {
                        scan.note(format!(
                            "the stream ended in the middle of an event; its {discarded} byte(s) were discarded"
                        ));
                    }
                    scan.stop(Stop::StreamClosed);
                    closed = true;
                    break;
                }
            }
        }
        if let Some(error) = broke {
            let discarded = framer.finish(false, &mut |_| Flow::Continue);
            if scan.scanned() == 0 && skipped == 0 {
                return Err(ToolError::Upstream {
                    message: format!(
                        "the connection to {shown} broke before a complete message arrived: {error}"
                    ),
                    transient: true,
                });
            }
            scan.note(if discarded > 0 {
                format!(
                    "the connection broke in the middle of a message ({error}); the partial message ({discarded} bytes) was discarded"
                )
            } else {
                format!("the connection broke: {error}")
            });
            scan.stop(Stop::StreamClosed);
        }
        if scan.scanned() == 0 && skipped == 0 {
            return Err(nothing_arrived(&shown, format, closed, started));
        }
        Ok(scan)
    }
}

/// A read that got no message at all. A live stream that sends nothing is an error the agent
/// must see, not an empty result it may take for "nothing happened".
pub(crate) fn nothing_arrived(
    shown: &str,
    format: &str,
    closed: bool,
    started: Instant,
) -> ToolError {
    let waited = started.elapsed().as_millis();
    let message = if closed {
        format!(
            "{shown} closed the stream after {waited} ms without sending a message ({format}); check that the stream has data and that the URL or path is the stream's"
        )
    } else {
        format!(
            "{shown} connected but sent no message ({format}) within {waited} ms; the stream may be idle: check that it is producing, or raise max_wait_ms"
        )
    };
    ToolError::Upstream {
        message,
        transient: false,
    }
}

enum Framer {
    Ndjson(Ndjson),
    Sse(Sse),
}

impl Framer {
    fn feed(&mut self, chunk: &[u8], each: &mut dyn FnMut(Frame<'_>) -> Flow) -> Flow {
        match self {
            Framer::Ndjson(f) => f.feed(chunk, each),
            Framer::Sse(f) => f.feed(chunk, each),
        }
    }

    fn finish(&mut self, clean: bool, each: &mut dyn FnMut(Frame<'_>) -> Flow) -> usize {
        match self {
            Framer::Ndjson(f) => f.finish(clean, each),
            Framer::Sse(f) => f.finish(),
        }
    }
}

/// An error's text without the URL reqwest puts in it: that URL has `${ENV}` values expanded
/// (credentials, API keys), and messages show the URL as configured instead.
fn without_url(error: &reqwest::Error) -> String {
    let text = live::chain(error);
    match error.url() {
        Some(url) => text
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "(the stream's URL)"),
        None => text,
    }
}

/// A failed request as a tool error saying what to check.
fn request_error(shown: &str, error: &reqwest::Error) -> ToolError {
    let detail = without_url(error);
    let hint = if error.is_connect() {
        "check that the server is up and that the host and port are right (and, for https, that its certificate is valid)"
    } else if error.is_timeout() {
        "the server did not answer in time; check that it is up, or raise connect_timeout_ms"
    } else if error.is_redirect() {
        "the server redirects too often; configure the final URL"
    } else {
        "check the URL and that the server speaks HTTP/1.1"
    };
    ToolError::Upstream {
        message: format!("cannot open {shown}: {detail}; {hint}"),
        transient: error.is_connect() || error.is_timeout(),
    }
}

/// The first bytes of an error response's body, waiting at most a second (and never past the
/// read's deadline) for them.
async fn error_body(response: reqwest::Response, deadline: Instant) -> String {
    let limit = deadline.min(Instant::now() + Duration::from_secs(1));
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    let read = async {
        while body.len() < 256 {
            match stream.next().await {
                Some(Ok(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(256)]),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout_at(tokio::time::Instant::from_std(limit), read).await;
    live::excerpt(&body)
}

impl Source for HttpSource {
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
            description.config.insert(
                "format".to_owned(),
                match self.format {
                    LiveFormat::Auto => "auto",
                    LiveFormat::Ndjson => "ndjson",
                    LiveFormat::Sse => "sse",
                }
                .to_owned(),
            );
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
