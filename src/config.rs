//! The configuration file: raw TOML (serde) in, a validated [`Config`] out.
//!
//! Unknown keys and bad values are refused when the server starts, with the file, the line and a
//! hint; `${NAME}` (or `${NAME:-default}`) in string values is replaced from the environment, so
//! secrets stay out of the file. The file's JSON Schema is generated from [`ConfigFile`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::sql::guard::Settings as GuardSettings;
use crate::tools::policy::{Policy, PolicyOverride};
use crate::tools::registry::ToolFilter;

mod server;

pub use server::{AUTH_TOKEN_ENV, HttpSettings, ServerFile, Token, TokenFile};

/// Name of the warehouse served when the config declares none.
pub const DEMO_WAREHOUSE: &str = "demo";

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
    #[error("config file {path}, line {line}: {key}: {message}\nhint: {hint}")]
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

/// The config file as written. Every table refuses unknown keys.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Hide every tool that can write (default true).
    pub read_only: Option<bool>,
    /// Globs of tool names to serve (default `["*"]`). Every served tool costs model context.
    pub enable_tools: Option<Vec<String>>,
    /// Globs of tool names never to serve; wins over `enable_tools`.
    #[serde(default)]
    pub disable_tools: Vec<String>,
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
    /// Serve the embedded SQLite demo warehouse (default: only when no warehouse is configured).
    pub demo: Option<bool>,
    /// Policy defaults for every tool.
    #[serde(default)]
    pub policy: PolicyOverride,
    /// Per-tool policy changes, by tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, PolicyOverride>,
    /// SQL warehouses, by name. The first (in name order) is the default, unless one is named `default`.
    #[serde(default)]
    pub warehouses: BTreeMap<String, WarehouseFile>,
    /// Custom SQL tools: a fixed statement with typed, bound parameters, served as its own tool.
    #[serde(default)]
    pub sql_tools: Vec<SqlToolFile>,
    /// The remote (HTTP) endpoint: address, tokens, origins and limits.
    #[serde(default)]
    pub server: ServerFile,
}

/// A custom SQL tool as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlToolFile {
    /// Tool name (`[A-Za-z0-9_.-]`, unique).
    pub name: String,
    /// What the tool answers, for the model.
    pub description: String,
    /// Warehouse to run on (default: the default warehouse).
    pub warehouse: Option<String>,
    /// One read-only statement; values are bound through the dialect's placeholders (`$1`,
    /// `?`, `?1`) in the order of `parameters`; `{name}` stands for an identifier parameter.
    pub statement: String,
    /// Bound parameters, in placeholder order.
    #[serde(default)]
    pub parameters: Vec<SqlToolParameter>,
    /// Identifier parameters (column or table names), each restricted to an allow-list and
    /// spliced in quoted, never raw.
    #[serde(default)]
    pub identifiers: Vec<SqlToolIdentifier>,
    /// Rows returned at most (default 200).
    pub max_rows: Option<u32>,
}

/// A bound parameter of a custom SQL tool.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlToolParameter {
    /// Argument name.
    pub name: String,
    /// string, integer, number, boolean or array.
    #[serde(rename = "type")]
    pub kind: SqlParameterType,
    /// What to pass, for the model.
    pub description: String,
    /// Whether the argument must be given (default true unless a default is set).
    pub required: Option<bool>,
    /// Value used when the argument is absent.
    pub default: Option<serde_json::Value>,
    /// The only values allowed.
    pub allowed_values: Option<Vec<serde_json::Value>>,
    /// Smallest allowed number.
    pub minimum: Option<f64>,
    /// Largest allowed number.
    pub maximum: Option<f64>,
    /// Element type when `type = "array"` (default string).
    pub items: Option<SqlParameterType>,
}

/// The JSON type of a custom tool parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqlParameterType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// true or false.
    Boolean,
    /// A list, bound as JSON text.
    Array,
}

/// An identifier parameter of a custom SQL tool.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlToolIdentifier {
    /// Argument name, used as `{name}` in the statement.
    pub name: String,
    /// What to pass, for the model.
    pub description: String,
    /// The identifiers allowed.
    pub allowed: Vec<String>,
    /// Used when the argument is absent (default: the first allowed one).
    pub default: Option<String>,
}

/// One warehouse as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseFile {
    /// Connection URL, e.g. `sqlite:///var/data/shop.db` or `postgres://reader:${PGPASSWORD}@db:5432/shop`.
    /// `${ENV}` is expanded.
    #[schemars(with = "String")]
    pub url: toml::Spanned<String>,
    /// What the data is about, shown to the model.
    pub description: Option<String>,
    /// Largest number of open connections (default 4).
    pub max_connections: Option<u32>,
    /// How long to wait for a connection, in milliseconds (default 5000).
    pub connect_timeout_ms: Option<u64>,
    /// Close connections idle this long, in milliseconds (default 300000).
    pub idle_timeout_ms: Option<u64>,
    /// SQLite: how long to wait on a locked database before failing with a transient error,
    /// in milliseconds (default 1000).
    pub busy_timeout_ms: Option<u64>,
    /// Server-side cap on one statement, in milliseconds (default 30000); the tool's deadline
    /// lowers it further.
    pub statement_timeout_ms: Option<u64>,
    /// PostgreSQL/MySQL: refuse every query when the account can write (default false: warn in
    /// the log and in sql_list_warehouses).
    pub require_read_only_account: Option<bool>,
    /// Longest SQL text the guard accepts, in bytes (default 262144).
    pub max_sql_bytes: Option<usize>,
    /// Most tokens in one statement (default 20000).
    pub max_sql_tokens: Option<usize>,
    /// Deepest nesting: parentheses plus chained operators such as `+`, `AND`, `||`, `UNION`
    /// (default 1000).
    pub max_sql_depth: Option<usize>,
    /// PostgreSQL/MySQL: functions allowed beyond the built-in allow-list, as `name` or
    /// `schema.name`, e.g. a stored function the catalog does not mark read-only. The functions
    /// that are never allowed (sleeps, file access, SQL run from a string, locks) stay refused.
    #[serde(default)]
    pub allow_functions: Vec<String>,
    /// PostgreSQL/MySQL: use the account even when it holds administrative powers (default
    /// false: refuse every query). PostgreSQL: superuser, REPLICATION, CREATEROLE, membership in
    /// pg_read_server_files, pg_write_server_files or pg_execute_server_program. MySQL/MariaDB:
    /// FILE, SUPER, SHUTDOWN, PROCESS, RELOAD, CREATE USER, GRANT OPTION, SET USER, REPLICATION
    /// SLAVE, BINLOG REPLAY or any `… ADMIN` privilege. These powers reach past read-only
    /// sessions; connect with a role that may only SELECT instead.
    pub allow_privileged_account: Option<bool>,
}

/// The deepest statement a warehouse may be configured to accept: the guard gives such a
/// statement a stack of its own, a few kilobytes per level.
const MAX_SQL_DEPTH: usize = 10_000;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which tools are served.
    pub filter: ToolFilter,
    /// Policy for tools without their own.
    pub default_policy: Policy,
    /// Per-tool policy changes.
    pub tool_policies: BTreeMap<String, PolicyOverride>,
    /// Warehouses in the order they are offered; the first is the default.
    pub warehouses: Vec<WarehouseConfig>,
    /// Folder for datamcp's own files.
    pub data_dir: PathBuf,
    /// Folder of extra prompts.
    pub prompts_dir: Option<PathBuf>,
    /// Folder for result files.
    pub output_dir: PathBuf,
    /// Most bytes the result files may take together.
    pub output_max_bytes: u64,
    /// Custom SQL tools, checked by the SQL tool kind when it builds them.
    pub sql_tools: Vec<SqlToolFile>,
    /// The remote (HTTP) endpoint.
    pub http: HttpSettings,
}

/// Where a warehouse lives.
#[derive(Debug, Clone, PartialEq)]
pub enum WarehouseLocation {
    /// A SQLite database file, opened read-only.
    Sqlite(PathBuf),
    /// The embedded demo database, generated into the data folder on first use.
    Demo,
    /// A PostgreSQL server.
    Postgres(ConnectionUrl),
    /// A MySQL or MariaDB server.
    Mysql(ConnectionUrl),
}

/// A database URL. It may hold a password, so `Debug` shows it with the password masked.
#[derive(Clone, PartialEq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// The full URL, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // scheme://user:secret@host → scheme://user:***@host
        let masked = match (self.0.find("://"), self.0.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                let credentials = &self.0[start + 3..at];
                match credentials.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &self.0[..start + 3],
                        &credentials[..colon],
                        &self.0[at..]
                    ),
                    None => self.0.clone(),
                }
            }
            _ => self.0.clone(),
        };
        f.write_str(&masked)
    }
}

/// One validated warehouse.
#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    /// Name used in tool arguments.
    pub name: String,
    /// What the data is about.
    pub description: Option<String>,
    /// Where it lives.
    pub location: WarehouseLocation,
    /// Largest number of open connections.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub connect_timeout_ms: u64,
    /// Close connections idle this long.
    pub idle_timeout_ms: u64,
    /// SQLite lock wait before a transient failure.
    pub busy_timeout_ms: u64,
    /// Server-side cap on one statement.
    pub statement_timeout_ms: u64,
    /// Refuse queries when the account can write.
    pub require_read_only_account: bool,
    /// The guard's bounds and extra allowed functions.
    pub guard: GuardSettings,
    /// Use the account even when it holds administrative powers.
    pub allow_privileged_account: bool,
}

impl WarehouseConfig {
    fn demo() -> Self {
        WarehouseConfig {
            name: DEMO_WAREHOUSE.to_owned(),
            description: Some(
                "Embedded demo shop: customers, products, orders, order_items, events".to_owned(),
            ),
            location: WarehouseLocation::Demo,
            max_connections: 4,
            connect_timeout_ms: 5_000,
            idle_timeout_ms: 300_000,
            busy_timeout_ms: 1_000,
            statement_timeout_ms: 30_000,
            require_read_only_account: false,
            guard: GuardSettings::default(),
            allow_privileged_account: false,
        }
    }
}

impl Config {
    /// The configuration used when there is no file: the demo warehouse, every tool read-only.
    pub fn builtin() -> Self {
        Config {
            filter: ToolFilter::default(),
            default_policy: Policy::default(),
            tool_policies: BTreeMap::new(),
            warehouses: vec![WarehouseConfig::demo()],
            data_dir: default_data_dir(),
            output_dir: default_data_dir().join("output"),
            output_max_bytes: crate::sql::parquet::DEFAULT_QUOTA_BYTES,
            prompts_dir: None,
            sql_tools: Vec::new(),
            http: HttpSettings::default(),
        }
    }

    /// Loads `path`, or the built-in configuration when there is none.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => {
                let mut config = Config::builtin();
                config.http =
                    HttpSettings::from_file(ServerFile::default(), env_token()).map_err(|bad| {
                        ConfigError::Invalid {
                            path: "(no config file)".into(),
                            line: 0,
                            key: bad.key,
                            message: bad.message,
                            hint: bad.hint.to_owned(),
                        }
                    })?;
                Ok(config)
            }
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let mut config = Config::parse(&text, &path.display().to_string())?;
                // Relative paths in a config file mean relative to that file, not to wherever
                // the agent host happened to launch the server.
                if let Some(base) = path.parent() {
                    config.resolve_relative_to(base);
                }
                Ok(config)
            }
        }
    }

    fn resolve_relative_to(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        for warehouse in &mut self.warehouses {
            if let WarehouseLocation::Sqlite(path) = &mut warehouse.location {
                resolve(path);
            }
        }
        if let Some(dir) = &mut self.prompts_dir {
            resolve(dir);
        }
        resolve(&mut self.output_dir);
        if self.data_dir.is_relative() {
            self.data_dir = base.join(&self.data_dir);
        }
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        let invalid =
            |line: usize, key: String, message: String, hint: &str| ConfigError::Invalid {
                path: origin.to_owned(),
                line,
                key,
                message,
                hint: hint.to_owned(),
            };
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;

        let mut warehouses = Vec::new();
        for (name, raw) in &file.warehouses {
            let key = format!("warehouses.{name}.url");
            let line = line_of(raw.url.span().start);
            let url = expand_env(raw.url.get_ref()).map_err(|m| {
                invalid(
                    line,
                    key.clone(),
                    m,
                    "export the variable or use ${NAME:-default}",
                )
            })?;
            let location = parse_location(&url).map_err(|m| {
                invalid(
                    line,
                    key.clone(),
                    m,
                    "use sqlite:///absolute/path.db, sqlite:relative/path.db, postgres://user@host:5432/database or mysql://user@host:3306/database",
                )
            })?;
            if raw.max_sql_depth.is_some_and(|depth| depth > MAX_SQL_DEPTH) {
                return Err(invalid(
                    0,
                    format!("warehouses.{name}.max_sql_depth"),
                    format!("must be at most {MAX_SQL_DEPTH}"),
                    "no honest query nests that deep; keep the default of 1000",
                ));
            }
            if raw.max_connections == Some(0) {
                return Err(invalid(
                    0,
                    format!("warehouses.{name}.max_connections"),
                    "must be at least 1".into(),
                    "set max_connections = 1 or more",
                ));
            }
            warehouses.push(WarehouseConfig {
                name: name.clone(),
                description: raw.description.clone(),
                location,
                max_connections: raw.max_connections.unwrap_or(4),
                connect_timeout_ms: raw.connect_timeout_ms.unwrap_or(5_000),
                idle_timeout_ms: raw.idle_timeout_ms.unwrap_or(300_000),
                busy_timeout_ms: raw.busy_timeout_ms.unwrap_or(1_000),
                statement_timeout_ms: raw.statement_timeout_ms.unwrap_or(30_000),
                require_read_only_account: raw.require_read_only_account.unwrap_or(false),
                guard: {
                    let defaults = GuardSettings::default();
                    GuardSettings {
                        max_bytes: raw.max_sql_bytes.unwrap_or(defaults.max_bytes),
                        max_tokens: raw.max_sql_tokens.unwrap_or(defaults.max_tokens),
                        max_depth: raw.max_sql_depth.unwrap_or(defaults.max_depth),
                        allowed_functions: raw.allow_functions.clone(),
                    }
                },
                allow_privileged_account: raw.allow_privileged_account.unwrap_or(false),
            });
        }
        // The default warehouse comes first.
        if let Some(index) = warehouses.iter().position(|w| w.name == "default") {
            let default = warehouses.remove(index);
            warehouses.insert(0, default);
        }
        if file.demo.unwrap_or(warehouses.is_empty()) {
            if warehouses.iter().any(|w| w.name == DEMO_WAREHOUSE) {
                return Err(invalid(
                    0,
                    format!("warehouses.{DEMO_WAREHOUSE}"),
                    "the name 'demo' is taken by the embedded demo warehouse".into(),
                    "rename the warehouse or set demo = false",
                ));
            }
            warehouses.push(WarehouseConfig::demo());
        }

        let expand_path =
            |key: &str, value: &Option<String>| -> Result<Option<PathBuf>, ConfigError> {
                value
                    .as_deref()
                    .map(|v| expand_env(v).map(PathBuf::from))
                    .transpose()
                    .map_err(|m| {
                        invalid(
                            0,
                            key.to_owned(),
                            m,
                            "export the variable or use ${NAME:-default}",
                        )
                    })
            };
        let policy_check = |key: String, p: &PolicyOverride| -> Result<(), ConfigError> {
            if p.max_attempts == Some(0) {
                return Err(invalid(
                    0,
                    format!("{key}.max_attempts"),
                    "must be at least 1".into(),
                    "1 means no retry",
                ));
            }
            if p.timeout_ms == Some(0) {
                return Err(invalid(
                    0,
                    format!("{key}.timeout_ms"),
                    "must be at least 1".into(),
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
            .map_err(|bad| invalid(0, bad.key, bad.message, bad.hint))?;

        Ok(Config {
            http,
            filter: ToolFilter {
                enable: file.enable_tools.unwrap_or_else(|| vec!["*".to_owned()]),
                disable: file.disable_tools,
                read_only: file.read_only.unwrap_or(true),
            },
            default_policy: Policy::default().with(&file.policy),
            tool_policies: file.tools,
            warehouses,
            output_dir: match expand_path("output_dir", &file.output_dir)? {
                Some(dir) => dir,
                None => expand_path("data_dir", &file.data_dir)?
                    .unwrap_or_else(default_data_dir)
                    .join("output"),
            },
            output_max_bytes: file
                .output_max_bytes
                .unwrap_or(crate::sql::parquet::DEFAULT_QUOTA_BYTES),
            data_dir: expand_path("data_dir", &file.data_dir)?.unwrap_or_else(default_data_dir),
            prompts_dir: expand_path("prompts_dir", &file.prompts_dir)?,
            sql_tools: file.sql_tools,
        })
    }
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

fn parse_location(url: &str) -> Result<WarehouseLocation, String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return Err("a SQLite warehouse needs a database file".into());
        }
        return Ok(WarehouseLocation::Sqlite(PathBuf::from(path)));
    }
    let scheme = url.split(':').next().unwrap_or(url);
    match scheme {
        "postgres" | "postgresql" => Ok(WarehouseLocation::Postgres(ConnectionUrl(url.to_owned()))),
        "mysql" | "mariadb" => Ok(WarehouseLocation::Mysql(ConnectionUrl(url.to_owned()))),
        _ => Err(format!("unknown URL scheme '{scheme}'")),
    }
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
    fn no_file_means_the_demo_warehouse_read_only() {
        let config = Config::builtin();
        assert!(config.filter.read_only);
        assert_eq!(config.warehouses.len(), 1);
        assert_eq!(config.warehouses[0].location, WarehouseLocation::Demo);
    }

    #[test]
    fn unknown_keys_are_refused_with_the_line() {
        let error = Config::parse("read_only = true\nreadonly = false\n", "x.toml")
            .expect_err("unknown key");
        let message = error.to_string();
        assert!(message.contains("x.toml"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("readonly"), "{message}");
    }

    #[test]
    fn bad_values_are_refused_with_the_line_and_a_hint() {
        let text = "[warehouses.shop]\nurl = \"oracle://db/shop\"\n";
        let message = Config::parse(text, "c.toml")
            .expect_err("bad scheme")
            .to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("warehouses.shop.url"), "{message}");
        assert!(message.contains("hint:"), "{message}");
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
    fn declared_warehouses_replace_the_demo_and_default_comes_first() {
        let text = "[warehouses.a]\nurl = \"sqlite:///tmp/a.db\"\n[warehouses.default]\nurl = \"sqlite:b.db\"\n";
        let config = Config::parse(text, "c.toml").expect("valid");
        let names: Vec<_> = config.warehouses.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["default", "a"]);
        assert_eq!(
            config.warehouses[1].location,
            WarehouseLocation::Sqlite("/tmp/a.db".into())
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let dir = std::env::temp_dir().join(format!("datamcp-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "prompts_dir = \"prompts\"\n[warehouses.a]\nurl = \"sqlite:data/a.db\"\n",
        )
        .expect("write");
        let config = Config::load(Some(&file)).expect("valid");
        assert_eq!(
            config.warehouses[0].location,
            WarehouseLocation::Sqlite(dir.join("data/a.db"))
        );
        assert_eq!(config.prompts_dir, Some(dir.join("prompts")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let config = Config::parse(
            "[warehouses.pg]\nurl = \"postgres://reader:s3cret@db:5432/shop\"\n",
            "c.toml",
        )
        .expect("valid");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("reader:***@db"), "{shown}");
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = Config::parse(
            include_str!("../examples/datamcp.toml"),
            "examples/datamcp.toml",
        )
        .expect("the example config parses");
        assert_eq!(config.warehouses.len(), 1);
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
}
