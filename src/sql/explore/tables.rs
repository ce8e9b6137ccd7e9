//! `sql_list_tables`: the tables and views of a warehouse.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{cell, integer, like_pattern, string};
use crate::sql::catalog;
use crate::sql::warehouse::Warehouses;
use crate::table::ReadLimits;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `sql_list_tables`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTablesParams {
    /// Warehouse (default: the first).
    pub warehouse: Option<String>,
    /// Schema pattern (`*` or `%` wildcards).
    pub schema: Option<String>,
    /// Name pattern (`*` or `%` wildcards).
    pub name: Option<String>,
    /// Tables at most (default 200).
    #[schemars(range(min = 1, max = 10_000))]
    pub limit: Option<u32>,
}

/// One table or view.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TableInfo {
    /// Schema (database on MySQL, `main` on SQLite).
    pub schema: String,
    /// Table or view name.
    pub name: String,
    /// table, view, materialized view or foreign table.
    pub kind: String,
    /// The database's estimate of its row count, when it keeps one.
    pub row_estimate: Option<i64>,
    /// The table's comment.
    pub comment: Option<String>,
}

/// Result of `sql_list_tables`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListTablesOutput {
    /// The warehouse listed.
    pub warehouse: String,
    /// Matching tables and views, by schema and name.
    pub tables: Vec<TableInfo>,
    /// True when more tables match than `limit`.
    pub truncated: bool,
}

/// `sql_list_tables`.
pub struct ListTables {
    warehouses: Arc<Warehouses>,
}

impl ListTables {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>) -> Self {
        ListTables { warehouses }
    }
}

impl Tool for ListTables {
    type Params = ListTablesParams;
    type Output = ListTablesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_list_tables".to_owned(),
            title: "List tables and views".to_owned(),
            description: "List tables and views with kind, estimated rows and comment; filter by schema or name. Then sql_describe_table.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ListTablesParams,
    ) -> Result<ListTablesOutput, ToolError> {
        let warehouse = self.warehouses.get(params.warehouse.as_deref())?;
        let limit = params.limit.unwrap_or(200) as usize;
        let binds = [
            Value::from(like_pattern(params.schema.as_deref())),
            Value::from(like_pattern(params.name.as_deref())),
            Value::from(limit as i64 + 1),
        ];
        let rows = warehouse
            .query_own(
                catalog::list_tables(warehouse.dialect()),
                &binds,
                ReadLimits::rows(limit + 1),
                ctx,
            )
            .await?;
        let truncated = rows.rows.len() > limit;
        let tables = rows
            .rows
            .iter()
            .take(limit)
            .map(|row| TableInfo {
                schema: string(cell(row, 0)).unwrap_or_default(),
                name: string(cell(row, 1)).unwrap_or_default(),
                kind: string(cell(row, 2)).unwrap_or_default(),
                row_estimate: integer(cell(row, 3)),
                comment: string(cell(row, 4)),
            })
            .collect();
        Ok(ListTablesOutput {
            warehouse: warehouse.name().to_owned(),
            tables,
            truncated,
        })
    }

    fn render_text(&self, _params: &ListTablesParams, output: &ListTablesOutput) -> String {
        let mut text = String::from(
            "| schema | name | kind | rows (est.) | comment |\n| --- | --- | --- | --- | --- |",
        );
        for t in &output.tables {
            text.push_str(&format!(
                "\n| {} | {} | {} | {} | {} |",
                t.schema,
                t.name,
                t.kind,
                t.row_estimate.map(|n| n.to_string()).unwrap_or_default(),
                t.comment.as_deref().unwrap_or("")
            ));
        }
        if output.truncated {
            text.push_str("\n(more tables match: narrow the pattern or raise limit)");
        }
        text
    }
}
