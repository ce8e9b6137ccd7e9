//! A client of MLflow's REST API (`/api/2.0/mlflow/...`) and of its proxied artifact store
//! (`/api/2.0/mlflow-artifacts/artifacts/...`): one per `[ml.NAME]` table.
//!
//! Every request carries the configured `Host` header (MLflow's DNS-rebinding check answers 403
//! to any other), is bounded in time by the call's deadline and in size by [`MAX_BODY`], and turns
//! MLflow's `{error_code, message}` answers into errors the model can act on.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::config::{Endpoint, Tracking};
use crate::tools::{CallContext, ToolError};

/// The most bytes one answer may hold: a page of runs or a model file, not a dataset.
pub const MAX_BODY: usize = 16 << 20;

/// One tracking server.
pub struct Mlflow {
    config: Tracking,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Mlflow {
    /// A client of the server `config` describes (no I/O until the first request).
    pub fn new(config: Tracking) -> Self {
        Mlflow {
            config,
            client: OnceLock::new(),
        }
    }

    /// The server's settings.
    pub fn config(&self) -> &Tracking {
        &self.config
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    fn client(&self) -> Result<&reqwest::Client, ToolError> {
        let client = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("datamcp/", env!("CARGO_PKG_VERSION")))
                // A redirect would carry the token to another host.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        });
        client
            .as_ref()
            .map_err(|e| ToolError::Internal(format!("cannot set up the HTTP client: {e}")))
    }

    /// `GET /api/2.0/mlflow/{path}` with `query`.
    pub async fn get(
        &self,
        ctx: &CallContext,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ToolError> {
        let url = self.api_url(&format!("api/2.0/mlflow/{path}"))?;
        let bytes = self
            .send(ctx, Method::GET, url, Some(query), Body::None)
            .await?;
        parse(&bytes, path)
    }

    /// `POST /api/2.0/mlflow/{path}` with a JSON body.
    pub async fn post(
        &self,
        ctx: &CallContext,
        path: &str,
        body: &Value,
    ) -> Result<Value, ToolError> {
        let url = self.api_url(&format!("api/2.0/mlflow/{path}"))?;
        let bytes = self
            .send(ctx, Method::POST, url, None, Body::Json(body))
            .await?;
        parse(&bytes, path)
    }

    /// The bytes of the artifact at `uri` (`mlflow-artifacts:/…`, or a run's `runs:/ID/path`
    /// resolved by the caller), through the server's artifact proxy.
    pub async fn download(&self, ctx: &CallContext, path: &str) -> Result<Vec<u8>, ToolError> {
        let url = self.api_url(&format!("api/2.0/mlflow-artifacts/artifacts/{path}"))?;
        self.send(ctx, Method::GET, url, None, Body::None).await
    }

    /// Stores `bytes` as the artifact at `path` through the server's artifact proxy.
    pub async fn upload(
        &self,
        ctx: &CallContext,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), ToolError> {
        let url = self.api_url(&format!("api/2.0/mlflow-artifacts/artifacts/{path}"))?;
        self.send(ctx, Method::PUT, url, None, Body::Bytes(bytes))
            .await
            .map(drop)
    }

    /// Posts `body` to a scoring endpoint (`/invocations`) and returns its JSON answer; the
    /// endpoint's own error message is passed on.
    pub async fn score(
        &self,
        ctx: &CallContext,
        endpoint: &str,
        target: &Endpoint,
        body: &Value,
    ) -> Result<Value, ToolError> {
        let url = &target.shown;
        let request = self
            .client()?
            .post(target.url.clone())
            .timeout(ctx.remaining())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let unreachable = |e: reqwest::Error| ToolError::Upstream {
            message: format!(
                "the scoring endpoint '{endpoint}' at {url} is not reachable ({}); check that the model server is running",
                chain(&e.without_url())
            ),
            transient: true,
        };
        let response = tokio::select! {
            response = request.send() => response.map_err(unreachable)?,
            () = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
        };
        let status = response.status();
        let bytes = read_bounded(response, ctx).await.map_err(unreachable)?;
        if status.is_success() {
            return parse(&bytes, "/invocations");
        }
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .map(|m| m.chars().take(2_000).collect::<String>())
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(2_000)])
                    .trim()
                    .to_owned()
            });
        let code = parsed
            .as_ref()
            .and_then(|v| v.get("error_code"))
            .and_then(Value::as_str)
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let text = format!("the scoring endpoint '{endpoint}' answered {status}{code}: {message}");
        Err(if status.is_client_error() {
            ToolError::InvalidArguments(format!(
                "{text}; check that the columns sent match the model's signature (ml_get_model shows it)"
            ))
        } else {
            ToolError::Upstream {
                message: text,
                transient: status == StatusCode::SERVICE_UNAVAILABLE,
            }
        })
    }

    fn api_url(&self, path: &str) -> Result<reqwest::Url, ToolError> {
        let mut base = self.config.base.clone();
        let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
        base.set_path(&joined);
        Ok(base)
    }

    async fn send(
        &self,
        ctx: &CallContext,
        method: Method,
        url: reqwest::Url,
        query: Option<&[(&str, String)]>,
        body: Body<'_>,
    ) -> Result<Vec<u8>, ToolError> {
        let mut url = url;
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let what = format!("{method} {}", url.path());
        let mut request = self
            .client()?
            .request(method, url)
            .timeout(self.config.request_timeout.min(ctx.remaining()));
        if let Ok(host) = HeaderValue::from_str(&self.config.host_header) {
            request = request.header(HOST, host);
        }
        if let Some(token) = &self.config.token
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request
                .header(CONTENT_TYPE, "application/json")
                .body(value.to_string()),
            Body::Bytes(bytes) => request
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes),
        };
        let response = tokio::select! {
            response = request.send() => response.map_err(|e| self.unreachable(e))?,
            () = ctx.cancellation().cancelled() => return Err(ToolError::Cancelled),
        };
        let status = response.status();
        let bytes = read_bounded(response, ctx)
            .await
            .map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(self.refused(status, &bytes, &what))
    }

    fn unreachable(&self, error: reqwest::Error) -> ToolError {
        // The expanded URL may hold secrets (`${ENV}` in it): name the server as configured.
        let error = error.without_url();
        let cause = chain(&error);
        let (what, hint) = if error.is_timeout() {
            (
                "did not answer in time",
                "it may be overloaded; try again, or raise request_timeout_ms",
            )
        } else {
            (
                "is not reachable",
                "check that it is running and that tracking_uri is right",
            )
        };
        ToolError::Upstream {
            message: format!(
                "the MLflow server '{}' at {} {what} ({cause}); {hint}",
                self.config.name, self.config.shown
            ),
            transient: true,
        }
    }

    fn refused(&self, status: StatusCode, body: &[u8], what: &str) -> ToolError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let code = parsed
            .as_ref()
            .and_then(|v| v.get("error_code"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&body[..body.len().min(500)])
                    .trim()
                    .to_owned()
            });
        let name = &self.config.name;
        match (status, code) {
            (_, "RESOURCE_DOES_NOT_EXIST") | (StatusCode::NOT_FOUND, _) => {
                ToolError::InvalidArguments(format!("MLflow '{name}': {message}"))
            }
            (_, "INVALID_PARAMETER_VALUE" | "RESOURCE_ALREADY_EXISTS" | "BAD_REQUEST")
            | (StatusCode::BAD_REQUEST, _) => {
                ToolError::InvalidArguments(format!("MLflow '{name}' refused {what}: {message}"))
            }
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => ToolError::Upstream {
                message: format!(
                    "MLflow '{name}' answered {status} to {what}: {message}; check the token, and host_header if the server checks the Host header"
                ),
                transient: false,
            },
            _ => ToolError::Upstream {
                message: format!("MLflow '{name}' answered {status} to {what}: {message}"),
                transient: status.is_server_error(),
            },
        }
    }
}

/// An error with its causes, which is where reqwest says what actually failed.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(Vec<u8>),
}

/// The body, at most [`MAX_BODY`] bytes; an answer larger than that is cut (and then fails to
/// parse with a clear message) rather than filling memory.
async fn read_bounded(
    mut response: reqwest::Response,
    ctx: &CallContext,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut bytes = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk?,
            () = ctx.cancellation().cancelled() => break,
        };
        let Some(chunk) = chunk else { break };
        let room = MAX_BODY.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_BODY {
            break;
        }
    }
    Ok(bytes)
}

fn parse(bytes: &[u8], path: &str) -> Result<Value, ToolError> {
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes).map_err(|e| ToolError::Upstream {
        message: format!(
            "MLflow's answer to {path} is not the JSON expected ({e}; {} bytes, at most {MAX_BODY} are read)",
            bytes.len()
        ),
        transient: false,
    })
}

/// The path under the artifact proxy of an `mlflow-artifacts:` URI (`mlflow-artifacts:/0/abc/
/// artifacts` or `mlflow-artifacts://host/0/abc/artifacts`), or why it has none.
pub fn proxied_path(uri: &str) -> Result<String, ToolError> {
    let rest = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
        ToolError::InvalidArguments(format!(
            "the artifacts at '{uri}' are not served by the tracking server; datamcp reads and writes artifacts only through MLflow's artifact proxy (mlflow server --serve-artifacts, the default)"
        ))
    })?;
    let rest = match rest.strip_prefix("//") {
        // A URI with an authority: drop the host.
        Some(with_host) => with_host.split_once('/').map_or("", |(_, path)| path),
        None => rest.trim_start_matches('/'),
    };
    let path = rest.trim_end_matches('/');
    // The URI is MLflow data (anyone who may create an experiment sets its artifact location):
    // a dot segment would move the request, token and all, off the artifact proxy.
    let lowered = path.to_ascii_lowercase();
    if path
        .split('/')
        .any(|segment| segment == "." || segment == ".." || segment.is_empty())
        || lowered.contains("%2e")
        || lowered.contains("%2f")
        || path.contains(['?', '#', '\\'])
    {
        return Err(ToolError::Upstream {
            message: format!("MLflow gave an artifact location datamcp will not follow: '{uri}'"),
            transient: false,
        });
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_artifact_uris_become_paths_under_the_proxy() {
        assert_eq!(
            proxied_path("mlflow-artifacts:/1/abc/artifacts").expect("proxied"),
            "1/abc/artifacts"
        );
        assert_eq!(
            proxied_path("mlflow-artifacts://127.0.0.1:5000/1/abc/artifacts/").expect("proxied"),
            "1/abc/artifacts"
        );
        assert!(proxied_path("/tmp/mlruns/1/abc/artifacts").is_err());
        for escape in [
            "mlflow-artifacts:/../../mlflow/secret",
            "mlflow-artifacts:/1/./x",
            "mlflow-artifacts:/1/%2e%2e/x",
            "mlflow-artifacts:/1//x",
            "mlflow-artifacts:/1/x?y",
        ] {
            assert!(proxied_path(escape).is_err(), "{escape}");
        }
    }
}
