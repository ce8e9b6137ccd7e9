//! The ML kind's part of the config file: `[ml.NAME]` tables, one per MLflow tracking server,
//! each with the scoring endpoints that serve its models and what datamcp may write to it.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{ConfigError, ConfigSource};

/// The ML keys of the config file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct MlFile {
    /// MLflow tracking servers by name. Without any, `ml_evaluate`, `ml_monitor` and `ml_train`
    /// still work on the SQL warehouses; the MLflow tools appear once one is configured.
    pub ml: Option<BTreeMap<String, MlConfig>>,
}

/// One `[ml.NAME]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MlConfig {
    /// The tracking server, e.g. `http://127.0.0.1:5000` (`${ENV}` is expanded).
    pub tracking_uri: String,
    /// A bearer token for the tracking server, e.g. `${MLFLOW_TRACKING_TOKEN}`; never logged.
    pub token: Option<String>,
    /// The `Host` header sent, for servers that check it (MLflow answers 403 to a host it does
    /// not expect). Default: the tracking URI's host and port.
    pub host_header: Option<String>,
    /// Scoring endpoints by name: the `/invocations` URL of `mlflow models serve` or any server
    /// that speaks its protocol (`${ENV}` is expanded).
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    /// Whether `ml_deploy` may move registry aliases on this server (default false: the tool is
    /// not even listed). Also needs the server's `read_only = false`.
    #[serde(default)]
    pub allow_deploy: bool,
    /// Whether `ml_evaluate` and `ml_train` may log runs, metrics and models to this server
    /// (default false). Also needs the server's `read_only = false`.
    #[serde(default)]
    pub allow_log: bool,
    /// What the server holds, shown to the model.
    pub description: Option<String>,
    /// How long one request to the server may take, in milliseconds (default 10000).
    pub request_timeout_ms: Option<u64>,
}

/// A checked `[ml.NAME]`: URLs parsed, `${ENV}` expanded.
#[derive(Clone)]
pub struct Tracking {
    /// The table's name.
    pub name: String,
    /// Base URL of the tracking server, without a trailing slash (`${ENV}` expanded: may hold
    /// secrets, so never shown).
    pub base: reqwest::Url,
    /// The tracking URI as written in the file, for messages.
    pub shown: String,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// The `Host` header to send.
    pub host_header: String,
    /// Scoring endpoints by name: the URL to call (expanded) and the URL as written.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// See [`MlConfig::allow_deploy`].
    pub allow_deploy: bool,
    /// See [`MlConfig::allow_log`].
    pub allow_log: bool,
    /// See [`MlConfig::description`].
    pub description: Option<String>,
    /// See [`MlConfig::request_timeout_ms`].
    pub request_timeout: Duration,
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking")
            .field("name", &self.name)
            .field("tracking_uri", &self.shown)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("endpoints", &self.endpoints.keys().collect::<Vec<_>>())
            .field("allow_deploy", &self.allow_deploy)
            .field("allow_log", &self.allow_log)
            .finish()
    }
}

/// A scoring endpoint.
#[derive(Clone)]
pub struct Endpoint {
    /// The URL to call (`${ENV}` expanded).
    pub url: reqwest::Url,
    /// The URL as written in the file, for messages.
    pub shown: String,
}

/// The checked tracking servers of `file`.
pub fn check(file: &MlFile, source: &ConfigSource) -> Result<Vec<Tracking>, ConfigError> {
    let Some(tables) = &file.ml else {
        return Ok(Vec::new());
    };
    tables
        .iter()
        .map(|(name, config)| check_one(name, config, source))
        .collect()
}

fn check_one(
    name: &str,
    config: &MlConfig,
    source: &ConfigSource,
) -> Result<Tracking, ConfigError> {
    let line = source.line_of_table("ml", name);
    let key = |k: &str| format!("ml.{name}.{k}");
    let invalid =
        |k: &str, message: String, hint: &str| source.invalid(line, key(k), message, hint);
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(source.invalid(
            line,
            format!("ml.{name}"),
            format!("'{name}' is not a usable name"),
            "use letters, digits, '_' and '-'",
        ));
    }
    let url = |k: &str, value: &str| -> Result<reqwest::Url, ConfigError> {
        let expanded = source.expand(value, line, &key(k))?;
        let parsed = reqwest::Url::parse(&expanded).map_err(|e| {
            invalid(
                k,
                format!("'{value}' is not a URL: {e}"),
                "write a full URL, e.g. \"http://127.0.0.1:5000\"",
            )
        })?;
        match parsed.scheme() {
            "http" => Ok(parsed),
            "https" if cfg!(feature = "tls") => Ok(parsed),
            "https" => Err(invalid(
                k,
                format!("'{value}' needs TLS, which this build of datamcp does not include"),
                "build datamcp with `--features tls`, or use an http:// URL",
            )),
            other => Err(invalid(
                k,
                format!("'{other}' URLs are not HTTP"),
                "use an http:// URL",
            )),
        }
    };
    let mut base = url("tracking_uri", &config.tracking_uri)?;
    let trimmed = base.path().trim_end_matches('/').to_owned();
    base.set_path(&trimmed);
    let host_header = match &config.host_header {
        Some(host) => source.expand(host, line, &key("host_header"))?,
        None => match (base.host_str(), base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => {
                return Err(invalid(
                    "tracking_uri",
                    format!("'{}' names no host", config.tracking_uri),
                    "write a full URL, e.g. \"http://127.0.0.1:5000\"",
                ));
            }
        },
    };
    let token = match &config.token {
        Some(token) => Some(source.expand(token, line, &key("token"))?),
        None => None,
    };
    let mut endpoints = BTreeMap::new();
    for (endpoint, value) in &config.endpoints {
        endpoints.insert(
            endpoint.clone(),
            Endpoint {
                url: url(&format!("endpoints.{endpoint}"), value)?,
                shown: value.clone(),
            },
        );
    }
    Ok(Tracking {
        name: name.to_owned(),
        base,
        shown: config.tracking_uri.clone(),
        token,
        host_header,
        endpoints,
        allow_deploy: config.allow_deploy,
        allow_log: config.allow_log,
        description: config.description.clone(),
        request_timeout: Duration::from_millis(config.request_timeout_ms.unwrap_or(10_000).max(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Tracking>, ConfigError> {
        let source = ConfigSource::new(text, "datamcp.toml", None);
        check(&source.decode::<MlFile>()?, &source)
    }

    #[test]
    fn a_tracking_server_takes_its_host_header_from_its_url_and_defaults_to_no_writes() {
        let servers = load(
            "[ml.local]\ntracking_uri = \"http://127.0.0.1:5000/\"\n[ml.local.endpoints]\nchurn = \"http://127.0.0.1:5001/invocations\"\n",
        )
        .expect("valid");
        let local = &servers[0];
        assert_eq!(local.base.as_str(), "http://127.0.0.1:5000/");
        assert_eq!(local.host_header, "127.0.0.1:5000");
        assert!(!local.allow_deploy && !local.allow_log);
        assert_eq!(local.endpoints["churn"].url.path(), "/invocations");
    }

    #[test]
    fn bad_tables_are_refused_with_the_key_and_a_hint() {
        let error = load("[ml.x]\ntracking_uri = \"not a url\"\n")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("ml.x.tracking_uri"), "{error}");
        let error =
            load("[ml.x]\ntracking_uri = \"http://127.0.0.1:5000\"\nallow_deploys = true\n")
                .expect_err("refused")
                .to_string();
        assert!(error.contains("allow_deploys"), "{error}");
        let error = load("[ml.x]\ntracking_uri = \"ftp://127.0.0.1\"\n")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("not HTTP"), "{error}");
    }

    #[test]
    fn the_token_is_expanded_and_never_shown() {
        let servers = load(
            "[ml.x]\ntracking_uri = \"http://127.0.0.1:5000\"\ntoken = \"${DATAMCP_ML_TEST_TOKEN:-s3cret}\"\n",
        )
        .expect("valid");
        assert_eq!(servers[0].token.as_deref(), Some("s3cret"));
        assert!(!format!("{:?}", servers[0]).contains("s3cret"));
    }
}
