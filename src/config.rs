//! The server's own settings: raw TOML (serde) in, a validated [`Config`] out.
//!
//! The file is shared: the core reads the keys defined here (`[server]`, tool filters,
//! policies, folders) and each tool kind decodes its own top-level tables from the same
//! [`ConfigSource`]. Unknown keys and bad values are refused when the server starts, with the
//! file, the line and a hint; `${NAME}` (or `${NAME:-default}`) in string values is replaced
//! from the environment, so secrets stay out of the file. The file's JSON Schema is generated
//! from [`ConfigFile`] and each kind's part ([`config_schema`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::tools::kind::Workspace;
use crate::tools::policy::{Policy, PolicyOverride};
use crate::tools::registry::ToolFilter;

mod server;
mod source;
pub mod watch;

pub use server::{AUTH_TOKEN_ENV, HttpSettings, ServerFile, Token, TokenFile};
pub use source::ConfigSource;

/// A config file that cannot be used, and where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error(
        "config file {path}: {message}\nhint: see the config reference in README.md or schemas/config.schema.json"
    )]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is well-typed but unusable.
    #[error("config file {path}{}: {key}: {message}\nhint: {hint}", at_line(*.line))]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line of the value (0 when unknown).
        line: usize,
        /// Dotted key of the value.
        key: String,
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
}

/// `, line N`, or nothing when the line is not known.
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(", line {line}")
    }
}

/// The server's own keys of the config file. Tables refuse unknown keys; a top-level key that
/// neither this nor any tool kind reads is refused too.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ConfigFile {
    /// Hide every tool that can write, and refuse it to workflows too (default true).
    pub read_only: Option<bool>,
    /// Globs of tool names to list to clients (default `["*"]`). Every listed tool costs model
    /// context; a tool that is not listed stays callable by workflows.
    pub enable_tools: Option<Vec<String>>,
    /// Globs of tool names never to list; wins over `enable_tools`.
    #[serde(default)]
    pub disable_tools: Vec<String>,
    /// Groups of tools to list: `sql`, `workflow`, `custom` (custom SQL tools), … (default:
    /// every group).
    pub groups: Option<Vec<String>>,
    /// List only `find_tools` and `call_tool`, through which a model finds and calls the other
    /// tools: the catalogue costs a few hundred tokens until it is needed (default false).
    pub discovery: Option<bool>,
    /// The text beside a structured result: `full` (a complete rendering; default, for clients
    /// that read only text) or `summary` (its shape and first rows, for clients that read
    /// `structuredContent`).
    pub result_text: Option<crate::tools::result::ResultText>,
    /// Folder for datamcp's own files (the demo database); default: the per-user data folder.
    pub data_dir: Option<String>,
    /// Folder of extra prompt files (`*.md` with TOML front matter) served next to the built-in ones.
    pub prompts_dir: Option<String>,
    /// Folder for result files (`sql_query` with `format = "parquet"`); default: `output` in the
    /// data folder.
    pub output_dir: Option<String>,
    /// Most bytes the result files this process wrote may take together (default 1 GiB); past
    /// it the oldest are deleted, and a file larger than the whole quota is refused.
    pub output_max_bytes: Option<u64>,
    /// Policy defaults for every tool.
    #[serde(default)]
    pub policy: PolicyOverride,
    /// Per-tool policy changes, by tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, PolicyOverride>,
    /// The remote (HTTP) endpoint: address, tokens, origins and limits.
    #[serde(default)]
    pub server: ServerFile,
}

/// The server's validated settings, and the file the tool kinds read theirs from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which tools are listed to clients.
    pub filter: ToolFilter,
    /// Policy for tools without their own.
    pub default_policy: Policy,
    /// Per-tool policy changes.
    pub tool_policies: BTreeMap<String, PolicyOverride>,
    /// The text beside a structured result.
    pub result_text: crate::tools::result::ResultText,
    /// Where datamcp keeps its files.
    pub workspace: Workspace,
    /// Folder of extra prompts.
    pub prompts_dir: Option<PathBuf>,
    /// The remote (HTTP) endpoint.
    pub http: HttpSettings,
    /// The file, which each tool kind decodes its own part of.
    pub source: ConfigSource,
}

impl Config {
    /// The configuration used when there is no file: every kind's defaults (for SQL, the
    /// embedded demo warehouse), every tool read-only.
    pub fn builtin() -> Result<Self, ConfigError> {
        Config::from_source(ConfigSource::none())
    }

    /// Loads `path`, or the built-in configuration when there is none.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Config::builtin(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_source(ConfigSource::new(
                    text,
                    &path.display().to_string(),
                    path.parent(),
                ))
            }
        }
    }

    /// Parses and validates config text; `origin` names it in errors. Relative paths stay
    /// relative to the working directory.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Config::from_source(ConfigSource::new(text, origin, None))
    }

    /// Validates the server's own keys of `source` and refuses top-level keys nobody reads.
    /// The kinds check their own parts when they start.
    pub fn from_source(source: ConfigSource) -> Result<Self, ConfigError> {
        check_top_level_keys(&source)?;
        let file: ConfigFile = source.decode()?;
        let policy_check = |key: String, p: &PolicyOverride| -> Result<(), ConfigError> {
            if p.max_attempts == Some(0) {
                return Err(source.invalid(
                    0,
                    format!("{key}.max_attempts"),
                    "must be at least 1",
                    "1 means no retry",
                ));
            }
            if p.timeout_ms == Some(0) {
                return Err(source.invalid(
                    0,
                    format!("{key}.timeout_ms"),
                    "must be at least 1",
                    "give the deadline in milliseconds",
                ));
            }
            Ok(())
        };
        policy_check("policy".into(), &file.policy)?;
        for (tool, p) in &file.tools {
            policy_check(format!("tools.{tool}"), p)?;
        }

        let http = HttpSettings::from_file(file.server, env_token())
            .map_err(|bad| source.invalid(0, bad.key, bad.message, bad.hint))?;
        let path = |key: &str, value: &Option<String>| -> Result<Option<PathBuf>, ConfigError> {
            value.as_deref().map(|v| source.path(v, key)).transpose()
        };
        let data_dir = path("data_dir", &file.data_dir)?.unwrap_or_else(default_data_dir);
        let output_dir =
            path("output_dir", &file.output_dir)?.unwrap_or_else(|| data_dir.join("output"));
        Ok(Config {
            http,
            filter: ToolFilter {
                enable: file.enable_tools.unwrap_or_else(|| vec!["*".to_owned()]),
                disable: file.disable_tools,
                read_only: file.read_only.unwrap_or(true),
                groups: file.groups,
                discovery: file.discovery.unwrap_or(false),
            },
            result_text: file.result_text.unwrap_or_default(),
            default_policy: Policy::default().with(&file.policy),
            tool_policies: file.tools,
            workspace: Workspace {
                data_dir,
                output_dir,
                output_max_bytes: file
                    .output_max_bytes
                    .unwrap_or(crate::table::output::DEFAULT_QUOTA_BYTES),
            },
            prompts_dir: path("prompts_dir", &file.prompts_dir)?,
            source,
        })
    }

    /// The settings of `newer` that differ from these and apply only after a restart: the
    /// endpoint, its tokens and limits, the tool filter, the policies and the folders.
    pub fn restart_needed_for(&self, newer: &Config) -> Vec<&'static str> {
        /// The `[server]` table as written: its tokens are masked in `HttpSettings`' `Debug`.
        #[derive(Deserialize, PartialEq)]
        struct Server {
            server: Option<toml::Value>,
        }
        let mut changed = Vec::new();
        if self.source.decode::<Server>().ok() != newer.source.decode::<Server>().ok() {
            changed.push("[server]");
        }
        if self.filter != newer.filter {
            changed.push("read_only / enable_tools / disable_tools / groups / discovery");
        }
        if self.result_text != newer.result_text {
            changed.push("result_text");
        }
        if self.default_policy != newer.default_policy || self.tool_policies != newer.tool_policies
        {
            changed.push("[policy] / [tools]");
        }
        if self.workspace != newer.workspace || self.prompts_dir != newer.prompts_dir {
            changed.push("data_dir / output_dir / output_max_bytes / prompts_dir");
        }
        changed
    }
}

/// The JSON Schema of the whole config file: the server's keys plus each kind's.
pub fn config_schema() -> Value {
    let mut schema = crate::tools::schema::schema_of::<ConfigFile>();
    for kind in crate::kinds::KINDS {
        let part = kind.config_schema();
        for section in ["properties", "$defs"] {
            if let (Some(into), Some(from)) = (
                schema.as_object_mut().and_then(|s| {
                    s.entry(section)
                        .or_insert_with(|| Value::Object(Default::default()))
                        .as_object_mut()
                }),
                part.get(section).and_then(Value::as_object),
            ) {
                into.extend(from.clone());
            }
        }
    }
    if let Some(object) = schema.as_object_mut() {
        object.insert("additionalProperties".to_owned(), Value::Bool(false));
        object.insert(
            "description".to_owned(),
            Value::from("The datamcp config file: the server's own keys and each tool kind's."),
        );
    }
    schema
}

/// Refuses a top-level key that neither the server nor any kind reads (a typo would otherwise
/// be ignored silently), naming its line.
fn check_top_level_keys(source: &ConfigSource) -> Result<(), ConfigError> {
    let keys: BTreeMap<toml::Spanned<String>, serde::de::IgnoredAny> = source.decode()?;
    let known = known_top_level_keys();
    match keys.keys().find(|key| !known.contains(key.get_ref())) {
        None => Ok(()),
        Some(unknown) => Err(source.invalid(
            source.line_of(unknown.span().start),
            unknown.get_ref().clone(),
            "unknown key",
            format!("known top-level keys: {}", known.join(", ")),
        )),
    }
}

fn known_top_level_keys() -> Vec<String> {
    let core = crate::tools::schema::schema_of::<ConfigFile>();
    let mut keys: Vec<String> = core
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for kind in crate::kinds::KINDS {
        keys.extend(kind.config_keys());
    }
    keys
}

fn env_token() -> Option<String> {
    std::env::var(AUTH_TOKEN_ENV).ok()
}

/// `$DATAMCP_DATA_DIR`, else the per-user data folder (e.g. `~/.local/share/datamcp`).
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DATAMCP_DATA_DIR") {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("datamcp")
}

/// Replaces `${NAME}` and `${NAME:-default}` with environment values; `$${` stays a literal `${`.
pub fn expand_env(input: &str) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed '${{' in '{input}'"))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!("'${{{expr}}}' is not a valid variable reference"));
            }
            match (std::env::var(name), default) {
                (Ok(value), _) => out.push_str(&value),
                (Err(_), Some(default)) => out.push_str(default),
                (Err(_), None) => {
                    return Err(format!("environment variable {name} is not set"));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_read_only() {
        let config = Config::builtin().expect("the built-in config is valid");
        assert!(config.filter.read_only);
    }

    #[test]
    fn unknown_keys_are_refused_with_the_line() {
        let error = Config::parse("read_only = true\nreadonly = false\n", "x.toml")
            .expect_err("unknown key");
        let message = error.to_string();
        assert!(message.contains("x.toml"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("readonly"), "{message}");
        assert!(
            message.contains("warehouses"),
            "the hint lists the kinds' keys: {message}"
        );
    }

    #[test]
    fn unknown_keys_inside_a_table_are_refused_with_the_line() {
        let error = Config::parse("[server]\nhttp = \"127.0.0.1:1\"\nlisten = 3\n", "x.toml")
            .expect_err("unknown key");
        assert!(error.to_string().contains("line 3"), "{error}");
    }

    #[test]
    fn wrong_types_are_refused() {
        let error = Config::parse("[policy]\ntimeout_ms = \"soon\"\n", "c.toml").expect_err("type");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn environment_variables_are_expanded() {
        // SAFETY of the test: a variable name no other test uses.
        let name = "DATAMCP_TEST_EXPAND_ENV_PATH";
        assert_eq!(
            expand_env(&format!("${{{name}:-/tmp/x.db}}")).as_deref(),
            Ok("/tmp/x.db")
        );
        assert!(
            expand_env(&format!("${{{name}}}"))
                .expect_err("unset variable")
                .contains(name)
        );
        assert_eq!(
            expand_env("cost $5 and $${literal}").as_deref(),
            Ok("cost $5 and ${literal}")
        );
        assert_eq!(expand_env("${HOME}").ok(), std::env::var("HOME").ok());
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let dir = std::env::temp_dir().join(format!("datamcp-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("c.toml");
        std::fs::write(&file, "prompts_dir = \"prompts\"\noutput_dir = \"out\"\n").expect("write");
        let config = Config::load(Some(&file)).expect("valid");
        assert_eq!(config.prompts_dir, Some(dir.join("prompts")));
        assert_eq!(config.workspace.output_dir, dir.join("out"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = Config::parse(
            include_str!("../examples/datamcp.toml"),
            "examples/datamcp.toml",
        )
        .expect("the example config parses");
        assert_eq!(
            config
                .default_policy
                .with(&config.tool_policies["sql_query"])
                .timeout_ms,
            10_000
        );
    }

    #[test]
    fn policies_merge_over_the_defaults() {
        let text = "[policy]\ntimeout_ms = 1000\n[tools.sql_query]\nmax_attempts = 1\n";
        let config = Config::parse(text, "c.toml").expect("valid");
        assert_eq!(config.default_policy.timeout_ms, 1000);
        assert_eq!(
            config
                .default_policy
                .with(&config.tool_policies["sql_query"])
                .max_attempts,
            1
        );
    }

    #[test]
    fn a_reload_names_the_settings_that_need_a_restart() {
        let before = Config::parse(
            "read_only = true\n[server]\nhttp = \"127.0.0.1:8080\"\n[[server.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef0123456789abcdef\"\n",
            "c.toml",
        )
        .expect("valid");
        let token_changed = Config::parse(
            "read_only = true\n[server]\nhttp = \"127.0.0.1:8080\"\n[[server.tokens]]\nname = \"ci\"\ntoken = \"fedcba9876543210fedcba9876543210\"\n",
            "c.toml",
        )
        .expect("valid");
        assert_eq!(before.restart_needed_for(&token_changed), ["[server]"]);
        let filter_changed = Config::parse(
            "read_only = false\n[server]\nhttp = \"127.0.0.1:8080\"\n[[server.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef0123456789abcdef\"\n",
            "c.toml",
        )
        .expect("valid");
        assert_eq!(
            before.restart_needed_for(&filter_changed),
            ["read_only / enable_tools / disable_tools / groups / discovery"]
        );
        assert!(before.restart_needed_for(&before).is_empty());
    }

    #[test]
    fn the_schema_holds_the_server_keys_and_every_kinds_keys() {
        let schema = config_schema();
        let properties = schema["properties"].as_object().expect("properties");
        for key in ["server", "policy", "warehouses", "sql_tools"] {
            assert!(properties.contains_key(key), "{key} missing");
        }
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
    }
}
