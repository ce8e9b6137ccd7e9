//! The SQL kind's part of the config file: `[warehouses.NAME]` tables, `[[sql_tools]]` and
//! `demo`, decoded into the kind's own types and validated with the file, line and a hint.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::guard::Settings as GuardSettings;
use crate::config::{ConfigError, ConfigSource};

/// Name of the warehouse served when the config declares none.
pub const DEMO_WAREHOUSE: &str = "demo";

/// The SQL keys of the config file, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SqlFile {
    /// Serve the embedded SQLite demo warehouse (default: only when no warehouse is configured).
    pub demo: Option<bool>,
    /// SQL warehouses, by name. The first (in name order) is the default, unless one is named `default`.
    #[serde(default)]
    pub warehouses: BTreeMap<String, WarehouseFile>,
    /// Custom SQL tools: a fixed statement with typed, bound parameters, served as its own tool.
    #[serde(default)]
    pub sql_tools: Vec<SqlToolFile>,
}

/// The SQL kind's validated settings.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    /// Warehouses in the order they are offered; the first is the default.
    pub warehouses: Vec<WarehouseConfig>,
    /// Custom SQL tools, checked against the warehouses when the kind builds them.
    pub sql_tools: Vec<SqlToolFile>,
}

impl SqlConfig {
    /// Validates the SQL part of `source`.
    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        SqlConfig::from_file(source.decode()?, source)
    }

    /// Validates config text holding SQL keys; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        SqlConfig::from_source(&ConfigSource::new(text, origin, None))
    }

    /// Validates `file`, read from `source`.
    pub fn from_file(file: SqlFile, source: &ConfigSource) -> Result<Self, ConfigError> {
        let mut warehouses = Vec::new();
        for (name, raw) in &file.warehouses {
            let key = format!("warehouses.{name}.url");
            let line = source.line_of(raw.url.span().start);
            let url = source.expand(raw.url.get_ref(), line, &key)?;
            let mut location = parse_location(&url).map_err(|m| {
                source.invalid(
                    line,
                    key.clone(),
                    m,
                    "use sqlite:///absolute/path.db, sqlite:relative/path.db, postgres://user@host:5432/database or mysql://user@host:3306/database",
                )
            })?;
            if let WarehouseLocation::Sqlite(path) = &mut location {
                *path = source.resolve(std::mem::take(path));
            }
            if raw.max_sql_depth.is_some_and(|depth| depth > MAX_SQL_DEPTH) {
                return Err(source.invalid(
                    0,
                    format!("warehouses.{name}.max_sql_depth"),
                    format!("must be at most {MAX_SQL_DEPTH}"),
                    "no honest query nests that deep; keep the default of 1000",
                ));
            }
            if raw.max_connections == Some(0) {
                return Err(source.invalid(
                    0,
                    format!("warehouses.{name}.max_connections"),
                    "must be at least 1",
                    "set max_connections = 1 or more",
                ));
            }
            let defaults = GuardSettings::default();
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
                guard: GuardSettings {
                    max_bytes: raw.max_sql_bytes.unwrap_or(defaults.max_bytes),
                    max_tokens: raw.max_sql_tokens.unwrap_or(defaults.max_tokens),
                    max_depth: raw.max_sql_depth.unwrap_or(defaults.max_depth),
                    allowed_functions: raw.allow_functions.clone(),
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
                return Err(source.invalid(
                    0,
                    format!("warehouses.{DEMO_WAREHOUSE}"),
                    "the name 'demo' is taken by the embedded demo warehouse",
                    "rename the warehouse or set demo = false",
                ));
            }
            warehouses.push(WarehouseConfig::demo());
        }
        Ok(SqlConfig {
            warehouses,
            sql_tools: file.sql_tools,
        })
    }
}

/// A custom SQL tool as written.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
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
    /// Serve the tool only to other tools (workflow steps), never list it to clients
    /// (default false).
    #[serde(default)]
    pub internal: bool,
}

/// A bound parameter of a custom SQL tool.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_the_demo_warehouse() {
        let config = SqlConfig::from_source(&ConfigSource::none()).expect("valid");
        assert_eq!(config.warehouses.len(), 1);
        assert_eq!(config.warehouses[0].location, WarehouseLocation::Demo);
    }

    #[test]
    fn bad_values_are_refused_with_the_line_and_a_hint() {
        let text = "[warehouses.shop]\nurl = \"oracle://db/shop\"\n";
        let message = SqlConfig::parse(text, "c.toml")
            .expect_err("bad scheme")
            .to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("warehouses.shop.url"), "{message}");
        assert!(message.contains("hint:"), "{message}");
    }

    #[test]
    fn unknown_keys_in_a_warehouse_are_refused_with_the_line() {
        let text = "[warehouses.shop]\nurl = \"sqlite:a.db\"\nmax_conections = 2\n";
        let message = SqlConfig::parse(text, "c.toml")
            .expect_err("typo")
            .to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("max_conections"), "{message}");
    }

    #[test]
    fn declared_warehouses_replace_the_demo_and_default_comes_first() {
        let text = "[warehouses.a]\nurl = \"sqlite:///tmp/a.db\"\n[warehouses.default]\nurl = \"sqlite:b.db\"\n";
        let config = SqlConfig::parse(text, "c.toml").expect("valid");
        let names: Vec<_> = config.warehouses.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["default", "a"]);
        assert_eq!(
            config.warehouses[1].location,
            WarehouseLocation::Sqlite("/tmp/a.db".into())
        );
    }

    #[test]
    fn relative_sqlite_paths_are_relative_to_the_config_file() {
        let source = ConfigSource::new(
            "[warehouses.a]\nurl = \"sqlite:data/a.db\"\n",
            "c.toml",
            Some(std::path::Path::new("/etc/datamcp")),
        );
        let config = SqlConfig::from_source(&source).expect("valid");
        assert_eq!(
            config.warehouses[0].location,
            WarehouseLocation::Sqlite("/etc/datamcp/data/a.db".into())
        );
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let config = SqlConfig::parse(
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
        let config = SqlConfig::parse(
            include_str!("../../examples/datamcp.toml"),
            "examples/datamcp.toml",
        )
        .expect("the example config parses");
        assert_eq!(config.warehouses.len(), 1);
    }
}
