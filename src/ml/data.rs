//! The ML tools' only way to the warehouses: nested calls of `sql_query` (and
//! `sql_list_warehouses` for the dialect), so every statement they send passes the SQL guard,
//! runs in a read-only session under the caps and is audited as a child of the ML call. The ML
//! kind never imports the SQL kind.
//!
//! The tools push what a statistic allows down to the warehouse as aggregate SQL around the
//! caller's query (`SELECT … FROM (<query>) AS datamcp_input`), so a large table costs the
//! warehouse, not datamcp's memory.

use serde_json::{Map, Value, json};

use crate::tools::kind::KindHost;
use crate::tools::{CallContext, ToolError};

/// The most bytes one pulled result may take as JSON.
const PULL_MAX_BYTES: u32 = 32 << 20;

/// A warehouse as the ML tools see it: its name and SQL dialect.
pub struct Warehouse<'a> {
    host: &'a KindHost,
    ctx: &'a CallContext,
    name: String,
    dialect: Dialect,
}

/// A caller's query as a derived table, with its placeholder values.
pub struct Input {
    /// `(<sql>) AS datamcp_input`.
    pub table: String,
    /// The values of its placeholders, sent with every statement that wraps it.
    pub params: Vec<Value>,
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.table)
    }
}

/// The SQL dialects the warehouses speak, for quoting and casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// Rows a query returned.
#[derive(Debug, Default)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The database type of each column, as the warehouse names it.
    pub types: Vec<String>,
    /// Values in column order.
    pub rows: Vec<Vec<Value>>,
    /// Whether more rows existed than were read.
    pub truncated: bool,
}

impl<'a> Warehouse<'a> {
    /// The warehouse named `name` (default: the default one), found through
    /// `sql_list_warehouses`.
    pub async fn open(
        host: &'a KindHost,
        ctx: &'a CallContext,
        name: Option<&str>,
    ) -> Result<Warehouse<'a>, ToolError> {
        let listed = call(host, ctx, "sql_list_warehouses", Map::new()).await?;
        let warehouses = listed
            .get("warehouses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let names = || {
            warehouses
                .iter()
                .filter_map(|w| w.get("name").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let found = warehouses.iter().find(|w| match name {
            Some(name) => w.get("name").and_then(Value::as_str) == Some(name),
            None => w.get("default").and_then(Value::as_bool) == Some(true),
        });
        let Some(found) = found else {
            return Err(ToolError::InvalidArguments(match name {
                Some(name) => format!("no warehouse '{name}'; the warehouses are: {}", names()),
                None => "no default warehouse is configured; name one".to_owned(),
            }));
        };
        let dialect = match found.get("dialect").and_then(Value::as_str) {
            Some("postgres") => Dialect::Postgres,
            Some("mysql") => Dialect::Mysql,
            _ => Dialect::Sqlite,
        };
        Ok(Warehouse {
            host,
            ctx,
            name: found
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            dialect,
        })
    }

    /// The warehouse's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The warehouse's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs `sql`, which wraps `input` once, through `sql_query`, reading at most `max_rows`
    /// rows.
    pub async fn rows(&self, sql: &str, input: &Input, max_rows: u32) -> Result<Rows, ToolError> {
        let mut args = Map::new();
        args.insert("sql".into(), json!(sql));
        if !input.params.is_empty() {
            args.insert("params".into(), Value::Array(input.params.clone()));
        }
        args.insert("warehouse".into(), json!(self.name));
        args.insert("max_rows".into(), json!(max_rows.clamp(1, 100_000)));
        args.insert("max_bytes".into(), json!(PULL_MAX_BYTES));
        let mut output = call(self.host, self.ctx, "sql_query", args).await?;
        let mut rows = Rows {
            truncated: output.get("truncated").and_then(Value::as_bool) == Some(true),
            ..Rows::default()
        };
        if let Some(Value::Array(columns)) = output.get("columns") {
            for column in columns {
                let text = |key: &str| {
                    column
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                rows.columns.push(text("name"));
                rows.types.push(text("type"));
            }
        }
        if let Some(Value::Array(values)) = output.get_mut("rows") {
            rows.rows = std::mem::take(values)
                .into_iter()
                .map(|row| match row {
                    Value::Array(values) => values,
                    other => vec![other],
                })
                .collect();
        }
        Ok(rows)
    }

    /// One row of aggregates: the first row of `sql`, which must return exactly one.
    pub async fn one_row(&self, sql: &str, input: &Input) -> Result<Vec<Value>, ToolError> {
        let rows = self.rows(sql, input, 1).await?;
        rows.rows.into_iter().next().ok_or_else(|| {
            ToolError::Internal(format!("an aggregate query returned no row: {sql}"))
        })
    }

    /// The columns `input` returns (read from its first row at most).
    pub async fn columns(&self, input: &Input) -> Result<Vec<String>, ToolError> {
        Ok(self
            .rows(&format!("SELECT * FROM {input}"), input, 1)
            .await?
            .columns)
    }

    /// `name` as a quoted identifier, after checking that `columns` has it: SQLite would read a
    /// double-quoted name it does not know as a string, silently.
    pub fn column(&self, name: &str, columns: &[String], role: &str) -> Result<String, ToolError> {
        if columns.iter().any(|c| c == name) {
            return Ok(self.quote(name));
        }
        Err(ToolError::InvalidArguments(format!(
            "the query returns no column '{name}' for the {role}; it returns: {} (name it with `{role}`, or alias it in the SQL)",
            columns.join(", ")
        )))
    }

    /// `name` as a quoted identifier.
    pub fn quote(&self, name: &str) -> String {
        match self.dialect {
            Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// `expr` as a double-precision float, so sums and divisions are neither integer nor
    /// fixed-point arithmetic (MySQL's decimal division keeps 4 digits).
    pub fn float(&self, expr: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("CAST({expr} AS REAL)"),
            Dialect::Postgres => format!("CAST({expr} AS DOUBLE PRECISION)"),
            Dialect::Mysql => format!("CAST({expr} AS DOUBLE)"),
        }
    }
}

/// `sql` as a derived table to aggregate over: `(<sql>) AS datamcp_input`. One statement only;
/// the guard judges the whole composed statement, this only keeps the wrapping well-formed.
pub fn derived(sql: &str, params: &[Value]) -> Result<Input, ToolError> {
    Ok(Input {
        table: wrap(sql)?,
        params: params.to_vec(),
    })
}

fn wrap(sql: &str) -> Result<String, ToolError> {
    let trimmed = sql.trim().trim_end_matches(';').trim_end();
    if trimmed.is_empty() {
        return Err(ToolError::InvalidArguments(
            "the SQL query is empty; write one SELECT that returns the rows".into(),
        ));
    }
    // A trailing line comment would swallow the closing parenthesis.
    Ok(format!("({trimmed}\n) AS datamcp_input"))
}

/// A SQL literal for `value`, written so that every dialect reads a double (never an integer,
/// whose division truncates) and reads it back exactly.
pub fn literal(value: f64) -> String {
    if value.is_finite() {
        format!("{value:?}")
    } else {
        "NULL".into()
    }
}

/// A number from a warehouse value: JSON numbers, and the decimal text some drivers give
/// `NUMERIC` sums in; booleans count as 0 and 1.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Whether a warehouse's type name is a number type: the SQL names and PostgreSQL's internal
/// ones, whatever the size or precision (`DECIMAL(10,2)`, `BIGINT UNSIGNED`). Booleans, enums,
/// intervals, ranges and arrays are not numbers.
pub fn numeric_type(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let base = upper.split(['(', ' ']).next().unwrap_or_default();
    matches!(
        base,
        "INT"
            | "INTEGER"
            | "TINYINT"
            | "SMALLINT"
            | "MEDIUMINT"
            | "BIGINT"
            | "INT2"
            | "INT4"
            | "INT8"
            | "REAL"
            | "FLOAT"
            | "FLOAT4"
            | "FLOAT8"
            | "DOUBLE"
            | "NUMERIC"
            | "DECIMAL"
            | "NUMBER"
    )
}

/// A count from a warehouse value.
pub fn count(value: &Value) -> u64 {
    number(value).map_or(0, |n| if n > 0.0 { n as u64 } else { 0 })
}

/// A label as text, the way classes are named in results: integral numbers without `.0`.
pub fn label(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        other => Some(other.to_string()),
    }
}

async fn call(
    host: &KindHost,
    ctx: &CallContext,
    tool: &str,
    args: Map<String, Value>,
) -> Result<Map<String, Value>, ToolError> {
    if host.tool(tool).is_none() {
        return Err(ToolError::InvalidArguments(format!(
            "this needs {tool}, and no SQL warehouse is configured; add a [warehouses.NAME] table"
        )));
    }
    let result = host.call(ctx, tool, args).await?;
    match result.outcome {
        Ok(output) => match output.structured {
            Value::Object(map) => Ok(map),
            _ => Err(ToolError::Internal(format!("{tool} returned no object"))),
        },
        // Keep the kind of failure (refused SQL stays a refusal), and say where it came from.
        Err(error) => Err(match error {
            ToolError::Refused(m) => ToolError::Refused(format!("the SQL was refused: {m}")),
            ToolError::InvalidArguments(m) => {
                ToolError::InvalidArguments(format!("the SQL query failed: {m}"))
            }
            ToolError::Upstream { message, transient } => ToolError::Upstream {
                message: format!("the SQL query failed: {message}"),
                transient,
            },
            other => other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_always_read_as_doubles_and_round_trip() {
        assert_eq!(literal(1.0), "1.0");
        assert_eq!(literal(0.1), "0.1");
        assert_eq!(literal(1e-7), "1e-7");
        let third = 1.0 / 3.0;
        assert_eq!(literal(third).parse::<f64>().expect("number"), third);
        assert_eq!(literal(f64::NAN), "NULL");
    }

    #[test]
    fn the_query_is_wrapped_whole_even_with_a_trailing_comment_or_semicolon() {
        assert_eq!(
            wrap("SELECT 1 -- note\n;").expect("wrapped"),
            "(SELECT 1 -- note\n) AS datamcp_input"
        );
        assert!(wrap(" ; ").is_err());
    }

    #[test]
    fn number_types_are_told_from_lookalikes() {
        for number in [
            "INTEGER",
            "int4",
            "DECIMAL(10,2)",
            "DOUBLE PRECISION",
            "BIGINT UNSIGNED",
            "NUMERIC",
        ] {
            assert!(numeric_type(number), "{number}");
        }
        for other in [
            "ENUM('a','b')",
            "INTERVAL",
            "INT4RANGE",
            "INT4[]",
            "TEXT",
            "BOOLEAN",
            "POINT",
            "",
        ] {
            assert!(!numeric_type(other), "{other}");
        }
    }

    #[test]
    fn warehouse_values_become_numbers_and_labels() {
        assert_eq!(number(&json!("12.50")), Some(12.5));
        assert_eq!(number(&json!(true)), Some(1.0));
        assert_eq!(number(&Value::Null), None);
        assert_eq!(label(&json!(1.0)).as_deref(), Some("1"));
        assert_eq!(label(&json!("yes")).as_deref(), Some("yes"));
        assert_eq!(count(&json!("-3")), 0);
    }
}
