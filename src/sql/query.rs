//! `sql_query`: one read-only SQL statement against a warehouse, rows streamed up to a cap.

use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rows::QueryRows;
use super::warehouse::Warehouses;
use crate::table::{Column, Format, OutputFile, ReadLimits, output, render};
use crate::tools::resources::ResourceInfo;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Rows returned when the caller does not say.
pub const DEFAULT_MAX_ROWS: u32 = 200;
/// The most rows one call may ask for.
pub const MAX_ROWS_LIMIT: u32 = 100_000;
/// Result size when the caller does not say: about 1 MiB of JSON.
pub const DEFAULT_MAX_BYTES: u32 = 1 << 20;
/// The largest result one call may ask for: 64 MiB of JSON.
pub const MAX_BYTES_LIMIT: u32 = 64 << 20;

/// Arguments of `sql_query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    /// One read-only SQL statement.
    pub sql: String,
    /// Placeholder values (`?`, `?1`, `$1`), in order.
    #[serde(default)]
    pub params: Vec<Value>,
    /// Rows at most (default 200).
    #[schemars(range(min = 1, max = 100_000))]
    pub max_rows: Option<u32>,
    /// Bytes of JSON at most (default 1 MiB).
    #[schemars(range(min = 1024, max = 67_108_864))]
    pub max_bytes: Option<u32>,
    /// Text form (default json); parquet writes a file.
    #[serde(default)]
    pub format: Format,
    /// Warehouse (default: the first).
    pub warehouse: Option<String>,
}

/// Result of `sql_query`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryOutput {
    /// The warehouse that ran the query.
    pub warehouse: String,
    /// Result columns in order, with the database's type for each.
    pub columns: Vec<Column>,
    /// One array per row, values in column order.
    pub rows: Vec<Vec<Value>>,
    /// Number of rows returned.
    pub row_count: usize,
    /// True when reading stopped at `max_rows` and more rows exist: the result is incomplete.
    pub truncated: bool,
    /// With `format: parquet`, the file the rows were written to (then `rows` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<OutputFile>,
}

/// The answer `sql_query` and the custom SQL tools give for the rows a query read, warning when a
/// cap cut them short. One function for both, so a custom tool says what stopped the read
/// (rows or bytes) exactly as `sql_query` does.
pub(super) fn shape(
    warehouse: &str,
    result: QueryRows,
    limits: ReadLimits,
    ctx: &CallContext,
) -> QueryOutput {
    if result.byte_limited {
        ctx.warn(format!(
            "only the first {} rows were returned: the result reached the {}-byte cap and more rows exist; select fewer columns, aggregate, or raise max_bytes",
            result.rows.len(),
            limits.bytes
        ));
    } else if result.truncated {
        ctx.warn(format!(
            "only the first {} rows were returned and more exist; aggregate or filter in SQL, or raise max_rows",
            limits.rows
        ));
    }
    QueryOutput {
        warehouse: warehouse.to_owned(),
        row_count: result.rows.len(),
        columns: result.columns,
        rows: result.rows,
        truncated: result.truncated,
        file: None,
    }
}

/// The `sql_query` tool.
pub struct SqlQuery {
    warehouses: Arc<Warehouses>,
    output_dir: PathBuf,
}

impl SqlQuery {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>, output_dir: PathBuf) -> Self {
        SqlQuery {
            warehouses,
            output_dir,
        }
    }
}

impl Tool for SqlQuery {
    type Params = QueryParams;
    type Output = QueryOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_query".to_owned(),
            title: "Run a read-only SQL query".to_owned(),
            description: format!(
                "Run one read-only SQL query and get the rows; writes are refused. \
                 Bind values with `params`. `truncated` says more rows exist: aggregate in SQL. \
                 Warehouses: {}.",
                self.warehouses.names().join(", ")
            ),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &QueryParams,
    ) -> Result<QueryOutput, ToolError> {
        let warehouse = self.warehouses.get(params.warehouse.as_deref())?;
        let sql = warehouse.guard(&params.sql)?;
        let max_rows = params
            .max_rows
            .unwrap_or(DEFAULT_MAX_ROWS)
            .clamp(1, MAX_ROWS_LIMIT) as usize;
        // A file is the way out for large results, so it may hold the most a call may read.
        let default_bytes = if params.format == Format::Parquet {
            MAX_BYTES_LIMIT
        } else {
            DEFAULT_MAX_BYTES
        };
        let max_bytes = params
            .max_bytes
            .unwrap_or(default_bytes)
            .clamp(1024, MAX_BYTES_LIMIT) as usize;
        let limits = ReadLimits {
            rows: max_rows,
            bytes: max_bytes,
        };
        let result = warehouse.query(&sql, &params.params, limits, ctx).await?;
        let mut output = shape(warehouse.name(), result, limits, ctx);
        if params.format == Format::Parquet {
            let rows = std::mem::take(&mut output.rows);
            let file = output::write_parquet(&self.output_dir, ctx, &output.columns, rows).await?;
            output.file = Some(file);
        }
        Ok(output)
    }

    fn links(&self, output: &QueryOutput) -> Vec<ResourceInfo> {
        output
            .file
            .iter()
            .map(|file| {
                file.link(format!(
                    "{} rows of the query result as Parquet",
                    output.row_count
                ))
            })
            .collect()
    }

    /// Warehouse, the statement exactly as submitted, parameters and limits. The text is not
    /// normalised: two statements that differ only in a comment can differ in what MySQL runs
    /// (`/*! … */`), so only identical text may share a result. The arguments already passed
    /// the input schema and are read where they lie: deserializing them would copy the whole
    /// call, SQL and parameters, only to build a key.
    fn cache_key(&self, args: &Value) -> String {
        let field = |name: &str| args.get(name).filter(|value| !value.is_null());
        let warehouse = self
            .warehouses
            .get(field("warehouse").and_then(Value::as_str))
            .ok();
        let (Some(warehouse), Some(sql)) = (warehouse, field("sql").and_then(Value::as_str)) else {
            return crate::tools::policy::canonical_json(args);
        };
        let number = |name: &str| field(name).map(Value::to_string).unwrap_or_default();
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            warehouse.name(),
            sql,
            field("params").map_or_else(|| "[]".to_owned(), crate::tools::policy::canonical_json),
            number("max_rows"),
            number("max_bytes"),
            field("format").and_then(Value::as_str).unwrap_or("json")
        )
    }

    fn render_text(&self, params: &QueryParams, output: &QueryOutput) -> String {
        match &output.file {
            Some(file) => format!(
                "wrote {} rows x {} columns to {} ({} bytes, Parquet); read it with resources/read",
                output.row_count,
                output.columns.len(),
                file.uri,
                file.bytes
            ),
            None => render(params.format, &output.columns, &output.rows),
        }
    }

    fn structured_content(&self, output: QueryOutput) -> Result<Value, serde_json::Error> {
        // The rows are JSON already: move them rather than copy 100,000 rows.
        let rows = output.rows.into_iter().map(Value::Array).collect();
        let mut map = serde_json::Map::new();
        map.insert("warehouse".into(), Value::String(output.warehouse));
        map.insert("columns".into(), serde_json::to_value(output.columns)?);
        map.insert("rows".into(), Value::Array(rows));
        map.insert("row_count".into(), Value::from(output.row_count));
        map.insert("truncated".into(), Value::Bool(output.truncated));
        if let Some(file) = output.file {
            map.insert("file".into(), serde_json::to_value(file)?);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;

    fn warnings_for(truncated: bool, byte_limited: bool) -> (QueryOutput, Vec<String>) {
        let ctx = CallContext::new(
            "test".to_owned(),
            Duration::from_secs(1),
            CancellationToken::new(),
            None,
        );
        let rows = QueryRows {
            columns: vec![Column::new("id", "INTEGER")],
            rows: vec![vec![json!(1)], vec![json!(2)]],
            truncated,
            byte_limited,
        };
        let limits = ReadLimits {
            rows: 10,
            bytes: 4096,
        };
        let output = shape("demo", rows, limits, &ctx);
        (output, ctx.take_warnings())
    }

    #[test]
    fn the_warning_names_the_cap_that_stopped_the_read() {
        let (output, warnings) = warnings_for(true, true);
        assert!(output.truncated);
        assert_eq!(output.row_count, 2);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with(
                "only the first 2 rows were returned: the result reached the 4096-byte cap"
            ),
            "{warnings:?}"
        );

        let (output, warnings) = warnings_for(true, false);
        assert!(output.truncated);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("only the first 10 rows were returned and more exist"),
            "{warnings:?}"
        );

        let (output, warnings) = warnings_for(false, false);
        assert!(!output.truncated);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn equal_calls_share_a_cache_key_and_different_ones_do_not() {
        let config = crate::sql::config::SqlConfig::parse(
            "[warehouses.a]\nurl = \"sqlite:///nonexistent/a.db\"\n[warehouses.b]\nurl = \"sqlite:///nonexistent/b.db\"\n",
            "t.toml",
        )
        .expect("config");
        let warehouses = Warehouses::new(&config, &std::env::temp_dir()).expect("warehouses");
        let tool = SqlQuery::new(Arc::new(warehouses), std::env::temp_dir());
        let key = |args: Value| tool.cache_key(&args);
        let base = key(json!({"sql": "SELECT ?", "params": [1, {"y": 2, "x": 1}]}));
        assert_eq!(
            base,
            key(
                json!({"params": [1, {"x": 1, "y": 2}], "format": "json", "warehouse": "a", "sql": "SELECT ?"})
            ),
            "defaults and key order do not matter"
        );
        assert_eq!(
            base,
            key(json!({"sql": "SELECT ?", "params": [1, {"x": 1, "y": 2}], "max_rows": null}))
        );
        for other in [
            json!({"sql": "SELECT ? ", "params": [1, {"x": 1, "y": 2}]}),
            json!({"sql": "SELECT ?", "params": [{"x": 1, "y": 2}, 1]}),
            json!({"sql": "SELECT ?", "params": [1, {"x": 1, "y": 2}], "warehouse": "b"}),
            json!({"sql": "SELECT ?", "params": [1, {"x": 1, "y": 2}], "max_rows": 5}),
            json!({"sql": "SELECT ?", "params": [1, {"x": 1, "y": 2}], "max_bytes": 5000}),
            json!({"sql": "SELECT ?", "params": [1, {"x": 1, "y": 2}], "format": "csv"}),
        ] {
            assert_ne!(base, key(other.clone()), "{other}");
        }
        assert_ne!(
            key(json!({"sql": "SELECT 1", "max_rows": 5})),
            key(json!({"sql": "SELECT 1", "max_bytes": 5}))
        );
    }
}
