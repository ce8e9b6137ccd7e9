//! The `[server]` table: how the remote (HTTP) endpoint listens, whom it lets in and how much it
//! takes on. Everything defaults to the safe choice: loopback, Origin checked, bounded.

use std::net::SocketAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::expand_env;

/// Environment variable holding a bearer token for a quick start without a config file.
pub const AUTH_TOKEN_ENV: &str = "DATAMCP_AUTH_TOKEN";
/// Name the `DATAMCP_AUTH_TOKEN` token has in audit lines.
pub const ENV_TOKEN_NAME: &str = "env";
/// Shortest token accepted: shorter secrets can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The `[server]` table as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Address the HTTP endpoint listens on, e.g. `127.0.0.1:8080` (`serve --http` wins).
    pub http: Option<String>,
    /// Serve Streamable HTTP without sessions, for replicas behind a load balancer (default false).
    pub stateless: Option<bool>,
    /// Listen without bearer tokens even on a non-loopback address (default false; not for
    /// production).
    pub allow_unauthenticated: Option<bool>,
    /// Bearer tokens that may call the endpoint; the name appears in audit lines, the token never.
    #[serde(default)]
    pub tokens: Vec<TokenFile>,
    /// Browser origins allowed to call, e.g. `https://app.example.com` (default: loopback origins
    /// only). Requests without an `Origin` header (non-browser clients) are not affected.
    pub allowed_origins: Option<Vec<String>>,
    /// `Host` header values accepted (DNS-rebinding guard). Default: loopback names when bound to
    /// loopback, any host otherwise (tokens protect a remote endpoint).
    pub allowed_hosts: Option<Vec<String>>,
    /// Largest request body in bytes (default 4 MiB); larger ones get `413`.
    pub max_body_bytes: Option<usize>,
    /// Most open sessions, Streamable HTTP and SSE together (default 1000); more get `503`.
    pub max_sessions: Option<usize>,
    /// Most tool calls running at once (default 256); more get `429`.
    pub max_in_flight_calls: Option<usize>,
    /// Seconds a session may stay idle before it is closed (default 600). At `max_sessions`, the
    /// least recently used idle session (no call running, no stream open) is closed sooner to
    /// make room; its client gets `404` and starts a new session.
    pub session_idle_timeout_secs: Option<u64>,
    /// Most connections open at once (default 1024); more are closed unread. Keep it below the
    /// process's open-file limit (`ulimit -n`).
    pub max_connections: Option<usize>,
    /// Seconds a client gets to send a request's head, and the longest a kept-alive connection
    /// may wait for its next request (default 10).
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a client gets to send a request's body (default 30); slower ones get `408`.
    pub body_read_timeout_secs: Option<u64>,
    /// Seconds an answer may wait for a client that does not read it (default 30); then the
    /// connection is closed. Quiet streams are not affected: only a write that cannot proceed.
    pub write_timeout_secs: Option<u64>,
    /// Seconds running calls get to finish on shutdown (default 30).
    pub shutdown_grace_secs: Option<u64>,
    /// Write one audit line per tool call (default true).
    pub audit: Option<bool>,
}

/// One bearer token as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// Who holds the token, e.g. `analytics-agent`; shown in audit lines.
    pub name: String,
    /// The secret, normally `${SOME_ENV_VAR}`. At least 16 characters.
    pub token: String,
}

/// A bearer token. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Who holds it.
    pub name: String,
    secret: String,
}

impl Token {
    /// A token named `name` with secret `secret`.
    pub fn new(name: impl Into<String>, secret: impl Into<String>) -> Self {
        Token {
            name: name.into(),
            secret: secret.into(),
        }
    }

    /// The secret, for the authenticator only.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, ****)", self.name)
    }
}

/// Validated settings of the HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where to listen when `serve --http` names no address.
    pub listen: Option<SocketAddr>,
    /// Streamable HTTP without sessions.
    pub stateless: bool,
    /// Listen unauthenticated on a non-loopback address.
    pub allow_unauthenticated: bool,
    /// Accepted bearer tokens (config tokens, then `DATAMCP_AUTH_TOKEN`).
    pub tokens: Vec<Token>,
    /// Allowed browser origins; `None` means loopback origins only.
    pub allowed_origins: Option<Vec<String>>,
    /// Allowed `Host` values; `None` means the default for the bound address.
    pub allowed_hosts: Option<Vec<String>>,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most open sessions.
    pub max_sessions: usize,
    /// Most tool calls running at once.
    pub max_in_flight_calls: usize,
    /// Idle time after which a session is closed.
    pub session_idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest wait for a request's head.
    pub header_read_timeout: Duration,
    /// Longest wait for a request's body.
    pub body_read_timeout: Duration,
    /// Longest a write may wait for the client to read.
    pub write_timeout: Duration,
    /// Time running calls get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// One audit line per tool call.
    pub audit: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: None,
            stateless: false,
            allow_unauthenticated: false,
            tokens: Vec::new(),
            allowed_origins: None,
            allowed_hosts: None,
            max_body_bytes: 4 * 1024 * 1024,
            max_sessions: 1000,
            max_in_flight_calls: 256,
            session_idle_timeout: Duration::from_secs(600),
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            audit: true,
        }
    }
}

/// A `[server]` value that cannot be used: the dotted key, what is wrong, and what to do.
#[derive(Debug)]
pub struct Invalid {
    /// Dotted key.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: &'static str,
}

fn invalid(key: impl Into<String>, message: impl Into<String>, hint: &'static str) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
        hint,
    }
}

const TOKEN_HINT: &str = "generate one with `openssl rand -hex 32` and pass it as ${ENV_VAR}";

impl HttpSettings {
    /// Validates the raw table; `env_token` is the value of `DATAMCP_AUTH_TOKEN`, if set.
    pub fn from_file(file: ServerFile, env_token: Option<String>) -> Result<Self, Invalid> {
        let defaults = HttpSettings::default();
        let listen = file
            .http
            .as_deref()
            .map(|text| {
                let text = expand_env(text).map_err(|m| {
                    invalid(
                        "server.http",
                        m,
                        "export the variable or use ${NAME:-default}",
                    )
                })?;
                text.parse::<SocketAddr>().map_err(|_| {
                    invalid(
                        "server.http",
                        format!("'{text}' is not an address"),
                        "write IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
                    )
                })
            })
            .transpose()?;
        let mut tokens: Vec<Token> = Vec::new();
        for (index, raw) in file.tokens.into_iter().enumerate() {
            let key = format!("server.tokens[{index}]");
            if raw.name.trim().is_empty() {
                return Err(invalid(
                    format!("{key}.name"),
                    "is empty",
                    "name the token's holder, e.g. name = \"analytics-agent\"",
                ));
            }
            if tokens.iter().any(|t| t.name == raw.name) || raw.name == ENV_TOKEN_NAME {
                return Err(invalid(
                    format!("{key}.name"),
                    format!(
                        "'{}' is used twice (or is the reserved name 'env')",
                        raw.name
                    ),
                    "give every token its own name",
                ));
            }
            // The message must never echo the token, even a bad one.
            let secret = expand_env(&raw.token).map_err(|_| {
                invalid(
                    format!("{key}.token"),
                    "refers to an environment variable that is not set (or is malformed)",
                    "export the variable named in ${...} before starting datamcp",
                )
            })?;
            check_secret(&format!("{key}.token"), &secret)?;
            if tokens.iter().any(|t| t.secret == secret) {
                return Err(invalid(
                    format!("{key}.token"),
                    "has the same secret as another token",
                    "give every holder its own token, so audit lines tell them apart",
                ));
            }
            tokens.push(Token::new(raw.name, secret));
        }
        if let Some(secret) = env_token.filter(|s| !s.is_empty()) {
            check_secret(AUTH_TOKEN_ENV, &secret)?;
            tokens.push(Token::new(ENV_TOKEN_NAME, secret));
        }
        let positive = |key: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(invalid(
                format!("server.{key}"),
                "must be at least 1",
                "leave it out for the default",
            )),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let seconds = |key: &str, value: Option<u64>, default: Duration| match value {
            Some(0) => Err(invalid(
                format!("server.{key}"),
                "must be at least 1",
                "leave it out for the default",
            )),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(default),
        };
        for origin in file.allowed_origins.iter().flatten() {
            if origin != "null" && !origin.contains("://") {
                return Err(invalid(
                    "server.allowed_origins",
                    format!("'{origin}' has no scheme"),
                    "write origins as scheme://host[:port], e.g. https://app.example.com",
                ));
            }
        }
        Ok(HttpSettings {
            listen,
            stateless: file.stateless.unwrap_or(false),
            allow_unauthenticated: file.allow_unauthenticated.unwrap_or(false),
            tokens,
            allowed_origins: file.allowed_origins,
            allowed_hosts: file.allowed_hosts,
            max_body_bytes: positive(
                "max_body_bytes",
                file.max_body_bytes,
                defaults.max_body_bytes,
            )?,
            max_sessions: positive("max_sessions", file.max_sessions, defaults.max_sessions)?,
            max_in_flight_calls: positive(
                "max_in_flight_calls",
                file.max_in_flight_calls,
                defaults.max_in_flight_calls,
            )?,
            session_idle_timeout: file
                .session_idle_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.session_idle_timeout),
            max_connections: positive(
                "max_connections",
                file.max_connections,
                defaults.max_connections,
            )?,
            header_read_timeout: seconds(
                "header_read_timeout_secs",
                file.header_read_timeout_secs,
                defaults.header_read_timeout,
            )?,
            body_read_timeout: seconds(
                "body_read_timeout_secs",
                file.body_read_timeout_secs,
                defaults.body_read_timeout,
            )?,
            write_timeout: seconds(
                "write_timeout_secs",
                file.write_timeout_secs,
                defaults.write_timeout,
            )?,
            shutdown_grace: file
                .shutdown_grace_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.shutdown_grace),
            audit: file.audit.unwrap_or(true),
        })
    }
}

fn check_secret(key: &str, secret: &str) -> Result<(), Invalid> {
    if secret.chars().count() < MIN_TOKEN_CHARS {
        return Err(invalid(
            key,
            format!("is shorter than {MIN_TOKEN_CHARS} characters"),
            TOKEN_HINT,
        ));
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            key,
            "contains whitespace or control characters",
            TOKEN_HINT,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str, env: Option<&str>) -> Result<HttpSettings, Invalid> {
        #[derive(Deserialize)]
        struct Wrapper {
            server: ServerFile,
        }
        let file: Wrapper = toml::from_str(text).expect("toml");
        HttpSettings::from_file(file.server, env.map(str::to_owned))
    }

    #[test]
    fn defaults_are_the_safe_ones() {
        let s = settings("[server]", None).expect("valid");
        assert!(s.tokens.is_empty());
        assert!(!s.allow_unauthenticated);
        assert!(s.allowed_origins.is_none());
        assert!(s.audit);
    }

    #[test]
    fn short_tokens_are_refused_without_echoing_them() {
        let error = settings(
            "[server]\n[[server.tokens]]\nname = \"a\"\ntoken = \"hunter2\"",
            None,
        )
        .expect_err("refused");
        assert_eq!(error.key, "server.tokens[0].token");
        assert!(!error.message.contains("hunter2"));
        let error = settings("[server]", Some("short")).expect_err("refused");
        assert_eq!(error.key, AUTH_TOKEN_ENV);
    }

    #[test]
    fn the_environment_token_joins_the_configured_ones() {
        let s = settings(
            "[server]\n[[server.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef0\"",
            Some("fedcba98765432100"),
        )
        .expect("valid");
        let names: Vec<&str> = s.tokens.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ci", "env"]);
        assert!(!format!("{s:?}").contains("0123456789abcdef0"));
    }

    #[test]
    fn duplicate_names_and_bad_addresses_are_refused() {
        let twice = "[server]\n[[server.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\n[[server.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef1\"";
        assert_eq!(
            settings(twice, None).expect_err("refused").key,
            "server.tokens[1].name"
        );
        assert_eq!(
            settings("[server]\nhttp = \"localhost\"", None)
                .expect_err("refused")
                .key,
            "server.http"
        );
        assert_eq!(
            settings("[server]\nallowed_origins = [\"example.com\"]", None)
                .expect_err("refused")
                .key,
            "server.allowed_origins"
        );
    }
}
