//! `sql_describe_table`: a table's columns, keys and indexes.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{cell, integer, string, truthy};
use crate::sql::catalog;
use crate::sql::warehouse::Warehouses;
use crate::table::ReadLimits;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `sql_describe_table`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeTableParams {
    /// Table or view name.
    pub table: String,
    /// Schema (default: the current one).
    pub schema: Option<String>,
    /// Warehouse (default: the first).
    pub warehouse: Option<String>,
}

/// One column of a table.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Declared type.
    #[serde(rename = "type")]
    pub r#type: String,
    /// Whether it may hold NULL.
    pub nullable: bool,
    /// Default expression, if any.
    pub default: Option<String>,
    /// Position in the primary key (1-based), if part of it.
    pub primary_key_position: Option<i64>,
    /// The column's comment.
    pub comment: Option<String>,
}

/// A foreign key column and what it references.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ForeignKey {
    /// The referencing column.
    pub column: String,
    /// The referenced table.
    pub references_table: String,
    /// The referenced column.
    pub references_column: Option<String>,
}

/// An index.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IndexInfo {
    /// Index name.
    pub name: String,
    /// Whether it enforces uniqueness.
    pub unique: bool,
    /// Indexed columns, in order, comma-separated.
    pub columns: Option<String>,
}

/// Result of `sql_describe_table`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DescribeTableOutput {
    /// The warehouse.
    pub warehouse: String,
    /// The table described.
    pub table: String,
    /// Columns in order.
    pub columns: Vec<ColumnInfo>,
    /// Foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
    /// Indexes.
    pub indexes: Vec<IndexInfo>,
}

/// `sql_describe_table`.
pub struct DescribeTable {
    warehouses: Arc<Warehouses>,
}

impl DescribeTable {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>) -> Self {
        DescribeTable { warehouses }
    }
}

impl Tool for DescribeTable {
    type Params = DescribeTableParams;
    type Output = DescribeTableOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_describe_table".to_owned(),
            title: "Describe a table".to_owned(),
            description: "Describe a table or view: columns (types, nullability, defaults, comments), primary key, foreign keys, indexes. Check it before writing SQL.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &DescribeTableParams,
    ) -> Result<DescribeTableOutput, ToolError> {
        let warehouse = self.warehouses.get(params.warehouse.as_deref())?;
        let dialect = warehouse.dialect();
        let binds = [
            params.schema.clone().map_or(Value::Null, Value::from),
            Value::from(params.table.clone()),
        ];
        let catalog_rows = ReadLimits::rows(10_000);
        let columns = warehouse
            .query_own(catalog::columns(dialect), &binds, catalog_rows, ctx)
            .await?;
        if columns.rows.is_empty() {
            return Err(ToolError::InvalidArguments(format!(
                "no table or view '{}'{} in warehouse '{}'; call sql_list_tables to see what exists",
                params.table,
                params
                    .schema
                    .as_deref()
                    .map(|s| format!(" in schema '{s}'"))
                    .unwrap_or_default(),
                warehouse.name()
            )));
        }
        let keys = warehouse
            .query_own(catalog::foreign_keys(dialect), &binds, catalog_rows, ctx)
            .await?;
        let indexes = warehouse
            .query_own(catalog::indexes(dialect), &binds, catalog_rows, ctx)
            .await?;
        Ok(DescribeTableOutput {
            warehouse: warehouse.name().to_owned(),
            table: match &params.schema {
                Some(schema) => format!("{schema}.{}", params.table),
                None => params.table.clone(),
            },
            columns: columns
                .rows
                .iter()
                .map(|row| ColumnInfo {
                    name: string(cell(row, 0)).unwrap_or_default(),
                    r#type: string(cell(row, 1)).unwrap_or_default(),
                    nullable: truthy(cell(row, 2)),
                    default: string(cell(row, 3)),
                    primary_key_position: integer(cell(row, 4)),
                    comment: string(cell(row, 5)),
                })
                .collect(),
            foreign_keys: keys
                .rows
                .iter()
                .map(|row| ForeignKey {
                    column: string(cell(row, 0)).unwrap_or_default(),
                    references_table: string(cell(row, 1)).unwrap_or_default(),
                    references_column: string(cell(row, 2)),
                })
                .collect(),
            indexes: indexes
                .rows
                .iter()
                .map(|row| IndexInfo {
                    name: string(cell(row, 0)).unwrap_or_default(),
                    unique: truthy(cell(row, 1)),
                    columns: string(cell(row, 2)),
                })
                .collect(),
        })
    }

    fn render_text(&self, _params: &DescribeTableParams, output: &DescribeTableOutput) -> String {
        let mut text = format!(
            "{} ({})\n| column | type | null | default | pk | comment |\n| --- | --- | --- | --- | --- | --- |",
            output.table, output.warehouse
        );
        for c in &output.columns {
            text.push_str(&format!(
                "\n| {} | {} | {} | {} | {} | {} |",
                c.name,
                c.r#type,
                if c.nullable { "yes" } else { "no" },
                c.default.as_deref().unwrap_or(""),
                c.primary_key_position
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                c.comment.as_deref().unwrap_or("")
            ));
        }
        for k in &output.foreign_keys {
            text.push_str(&format!(
                "\nforeign key: {} → {}.{}",
                k.column,
                k.references_table,
                k.references_column.as_deref().unwrap_or("?")
            ));
        }
        for i in &output.indexes {
            text.push_str(&format!(
                "\nindex {}{}: {}",
                i.name,
                if i.unique { " (unique)" } else { "" },
                i.columns.as_deref().unwrap_or("")
            ));
        }
        text
    }
}
