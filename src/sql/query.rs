//! `sql_query`: one read-only SQL statement against a warehouse, rows streamed up to a cap.

use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::format::{Format, render};
use super::types::{Column, ReadLimits};
use super::warehouse::Warehouses;
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
    /// Exactly one read-only SQL statement in the warehouse's dialect: SELECT, WITH … SELECT,
    /// VALUES or EXPLAIN. Writes, multiple statements and side-effect functions are refused.
    pub sql: String,
    /// Values for the statement's placeholders (`?`, `?1`, `$1`, … as the dialect writes them),
    /// in order. Arrays and objects are bound as JSON text.
    #[serde(default)]
    pub params: Vec<Value>,
    /// Stop reading after this many rows (default 200); `truncated` tells whether more existed.
    #[schemars(range(min = 1, max = 100_000))]
    pub max_rows: Option<u32>,
    /// Stop reading once the rows reach about this many bytes of JSON (default 1 MiB);
    /// `truncated` tells whether more existed.
    #[schemars(range(min = 1024, max = 67_108_864))]
    pub max_bytes: Option<u32>,
    /// How rows are rendered in the text content (default json). The structured result always
    /// carries the rows as JSON.
    #[serde(default)]
    pub format: Format,
    /// Warehouse to query (default: the first configured one).
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

/// A result written to a file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OutputFile {
    /// Resource URI to read it with `resources/read`.
    pub uri: String,
    /// File name in the output folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// MIME type.
    pub mime_type: String,
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
                "Run one read-only SQL query (SELECT, WITH … SELECT, VALUES, EXPLAIN) on a warehouse and get the rows. \
                 Writes, multiple statements and side-effect functions are refused. Use placeholders with `params` \
                 instead of pasting values into the SQL. Returns at most max_rows rows (default {DEFAULT_MAX_ROWS}); \
                 `truncated` says when more existed, so aggregate in SQL rather than reading everything. \
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
        if result.byte_limited {
            ctx.warn(format!(
                "only the first {} rows were returned: the result reached the {max_bytes}-byte cap and more rows exist; select fewer columns, aggregate, or raise max_bytes",
                result.rows.len()
            ));
        } else if result.truncated {
            ctx.warn(format!(
                "only the first {max_rows} rows were returned and more exist; aggregate or filter in SQL, or raise max_rows"
            ));
        }
        let row_count = result.rows.len();
        if params.format == Format::Parquet {
            let name = format!("datamcp-{}.parquet", ctx.execution_id());
            let (dir, file_name, owner, columns, rows) = (
                self.output_dir.clone(),
                name.clone(),
                ctx.principal().clone(),
                result.columns.clone(),
                result.rows,
            );
            let bytes = tokio::task::spawn_blocking(move || {
                super::parquet::write(&dir, &file_name, &owner, &columns, &rows)
            })
            .await
            .map_err(|e| ToolError::Internal(e.to_string()))?
            .map_err(|e| ToolError::Upstream {
                message: format!("the Parquet file could not be written: {e}; check output_dir"),
                transient: false,
            })?;
            return Ok(QueryOutput {
                warehouse: warehouse.name().to_owned(),
                row_count,
                columns: result.columns,
                rows: Vec::new(),
                truncated: result.truncated,
                file: Some(OutputFile {
                    uri: format!("{}{name}", super::parquet::URI_PREFIX),
                    name,
                    bytes,
                    mime_type: super::parquet::MIME.to_owned(),
                }),
            });
        }
        Ok(QueryOutput {
            warehouse: warehouse.name().to_owned(),
            row_count,
            columns: result.columns,
            rows: result.rows,
            truncated: result.truncated,
            file: None,
        })
    }

    fn links(&self, output: &QueryOutput) -> Vec<ResourceInfo> {
        output
            .file
            .iter()
            .map(|file| ResourceInfo {
                uri: file.uri.clone(),
                name: file.name.clone(),
                description: format!("{} rows of the query result as Parquet", output.row_count),
                mime_type: file.mime_type.clone(),
            })
            .collect()
    }

    /// Warehouse, the statement exactly as submitted, parameters and limits. The text is not
    /// normalised: two statements that differ only in a comment can differ in what MySQL runs
    /// (`/*! … */`), so only identical text may share a result.
    fn cache_key(&self, args: &Value) -> String {
        let key = || -> Option<String> {
            let params: QueryParams = serde_json::from_value(args.clone()).ok()?;
            let warehouse = self.warehouses.get(params.warehouse.as_deref()).ok()?;
            Some(format!(
                "{}\n{}\n{}\n{:?}\n{:?}\n{:?}",
                warehouse.name(),
                params.sql,
                crate::tools::policy::canonical_json(&Value::Array(params.params)),
                params.max_rows,
                params.max_bytes,
                params.format
            ))
        };
        key().unwrap_or_else(|| crate::tools::policy::canonical_json(args))
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
