//! The exploration tools an agent needs before it writes SQL: which warehouses exist, which
//! tables they hold, what a table looks like, where a column lives, and how a query would run.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog;
use super::guard::{self, Dialect};
use super::types::ReadLimits;
use super::warehouse::{QueryRows, Warehouse, Warehouses};
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Runs one of datamcp's own catalog statements; it passes the guard like any other SQL.
async fn catalog_query(
    warehouse: &Warehouse,
    sql: &str,
    params: &[Value],
    max_rows: usize,
    ctx: &CallContext,
) -> Result<QueryRows, ToolError> {
    let guarded = guard::check(sql, warehouse.dialect())
        .map_err(|e| ToolError::Internal(format!("a catalog query was refused: {e}")))?;
    warehouse
        .query(&guarded, params, ReadLimits::rows(max_rows), ctx)
        .await
}

fn string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        Value::String(s) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn cell(row: &[Value], index: usize) -> &Value {
    row.get(index).unwrap_or(&Value::Null)
}

/// A LIKE pattern from an optional glob-ish user pattern: `*` and `?` work as in a shell, `%`
/// and `_` as in SQL; absent means everything.
fn like_pattern(pattern: Option<&str>) -> String {
    match pattern {
        None | Some("") => "%".to_owned(),
        Some(p) => p.replace('*', "%").replace('?', "_"),
    }
}

// ---------------------------------------------------------------------------------------------

/// Arguments of `sql_list_warehouses` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListWarehousesParams {}

/// One configured warehouse.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WarehouseInfo {
    /// Name to pass as `warehouse`.
    pub name: String,
    /// SQL dialect: sqlite, postgres or mysql.
    pub dialect: String,
    /// What the data is about, from the config.
    pub description: Option<String>,
    /// Whether tools use it when no `warehouse` is given.
    pub default: bool,
    /// Whether its database account can write (known after the first query; datamcp only reads
    /// either way, but a read-only account is the safer setup).
    pub account_can_write: Option<bool>,
}

/// Result of `sql_list_warehouses`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListWarehousesOutput {
    /// Every configured warehouse, the default first.
    pub warehouses: Vec<WarehouseInfo>,
}

/// `sql_list_warehouses`.
pub struct ListWarehouses {
    warehouses: Arc<Warehouses>,
}

impl ListWarehouses {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>) -> Self {
        ListWarehouses { warehouses }
    }
}

impl Tool for ListWarehouses {
    type Params = ListWarehousesParams;
    type Output = ListWarehousesOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_list_warehouses".to_owned(),
            title: "List SQL warehouses".to_owned(),
            description: "List the configured SQL warehouses with their dialect and description. Start here when you do not know which database holds the data.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        _ctx: &CallContext,
        _params: &ListWarehousesParams,
    ) -> Result<ListWarehousesOutput, ToolError> {
        Ok(ListWarehousesOutput {
            warehouses: self
                .warehouses
                .all()
                .enumerate()
                .map(|(index, w)| WarehouseInfo {
                    name: w.name().to_owned(),
                    dialect: w.dialect().name().to_owned(),
                    description: w.description().map(str::to_owned),
                    default: index == 0,
                    account_can_write: w.account_can_write(),
                })
                .collect(),
        })
    }

    fn render_text(&self, _params: &ListWarehousesParams, output: &ListWarehousesOutput) -> String {
        output
            .warehouses
            .iter()
            .map(|w| {
                format!(
                    "{} ({}){}{}",
                    w.name,
                    w.dialect,
                    if w.default { ", default" } else { "" },
                    w.description
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ---------------------------------------------------------------------------------------------

/// Arguments of `sql_list_tables`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTablesParams {
    /// Warehouse (default: the first configured one).
    pub warehouse: Option<String>,
    /// Only schemas matching this pattern (`*` wildcard, or SQL LIKE `%`).
    pub schema: Option<String>,
    /// Only tables and views whose name matches this pattern (`*` wildcard, or SQL LIKE `%`).
    pub name: Option<String>,
    /// At most this many tables (default 200).
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
            description: "List the tables and views of a warehouse with their kind, estimated row count and comment; filter by schema or name pattern. Use sql_describe_table next for columns and keys.".to_owned(),
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
        let rows = catalog_query(
            warehouse,
            catalog::list_tables(warehouse.dialect()),
            &binds,
            limit + 1,
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

// ---------------------------------------------------------------------------------------------

/// Arguments of `sql_describe_table`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeTableParams {
    /// Table or view name, as listed by sql_list_tables.
    pub table: String,
    /// Its schema (default: the connection's current schema or database).
    pub schema: Option<String>,
    /// Warehouse (default: the first configured one).
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
            description: "Describe a table or view: columns with types, nullability, defaults and comments, the primary key, foreign keys and indexes. Check this before writing SQL; never guess column names.".to_owned(),
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
        let columns =
            catalog_query(warehouse, catalog::columns(dialect), &binds, 10_000, ctx).await?;
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
        let keys = catalog_query(
            warehouse,
            catalog::foreign_keys(dialect),
            &binds,
            10_000,
            ctx,
        )
        .await?;
        let indexes =
            catalog_query(warehouse, catalog::indexes(dialect), &binds, 10_000, ctx).await?;
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

// ---------------------------------------------------------------------------------------------

/// Arguments of `sql_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// What to look for in table and column names: `*` wildcard or SQL LIKE `%`; a plain word
    /// matches anywhere in the name.
    pub pattern: String,
    /// Warehouse (default: the first configured one).
    pub warehouse: Option<String>,
    /// At most this many matches (default 100).
    #[schemars(range(min = 1, max = 10_000))]
    pub limit: Option<u32>,
    /// How much to say about each match: `names` (schema, table, column), `summary` (plus the
    /// type; the default) or `full` (plus nullability and default). Start lean on big catalogs.
    #[serde(default)]
    pub detail: Detail,
}

/// How much `sql_search` says about each match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    /// Names only.
    Names,
    /// Names and types.
    #[default]
    Summary,
    /// Names, types, nullability and defaults.
    Full,
}

/// A column whose name, or whose table's name, matches.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchMatch {
    /// Schema.
    pub schema: String,
    /// Table or view.
    pub table: String,
    /// Column.
    pub column: String,
    /// Declared type (detail summary or full).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Whether it may hold NULL (detail full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nullable: Option<bool>,
    /// Default expression (detail full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// Result of `sql_search`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// The warehouse searched.
    pub warehouse: String,
    /// Matches, by schema, table and column order.
    pub matches: Vec<SearchMatch>,
    /// True when more match than `limit`.
    pub truncated: bool,
}

/// `sql_search`.
pub struct Search {
    warehouses: Arc<Warehouses>,
}

impl Search {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>) -> Self {
        Search { warehouses }
    }
}

impl Tool for Search {
    type Params = SearchParams;
    type Output = SearchOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_search".to_owned(),
            title: "Search tables and columns".to_owned(),
            description: "Find columns (and the tables holding them) by name pattern, e.g. 'email' or '*_at', without reading the whole catalog; `detail` names, summary or full. Use it to locate data in a large warehouse.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &SearchParams,
    ) -> Result<SearchOutput, ToolError> {
        let warehouse = self.warehouses.get(params.warehouse.as_deref())?;
        let limit = params.limit.unwrap_or(100) as usize;
        let mut pattern = like_pattern(Some(&params.pattern));
        if !pattern.contains(['%', '_']) {
            pattern = format!("%{pattern}%");
        }
        let mut binds = vec![Value::from(pattern.clone())];
        if warehouse.dialect() == Dialect::Mysql {
            binds.push(Value::from(pattern));
        }
        binds.push(Value::from(limit as i64 + 1));
        let rows = catalog_query(
            warehouse,
            catalog::search_columns(warehouse.dialect()),
            &binds,
            limit + 1,
            ctx,
        )
        .await?;
        let truncated = rows.rows.len() > limit;
        Ok(SearchOutput {
            warehouse: warehouse.name().to_owned(),
            matches: rows
                .rows
                .iter()
                .take(limit)
                .map(|row| SearchMatch {
                    schema: string(cell(row, 0)).unwrap_or_default(),
                    table: string(cell(row, 1)).unwrap_or_default(),
                    column: string(cell(row, 2)).unwrap_or_default(),
                    r#type: (params.detail != Detail::Names)
                        .then(|| string(cell(row, 3)).unwrap_or_default()),
                    nullable: (params.detail == Detail::Full).then(|| truthy(cell(row, 4))),
                    default: if params.detail == Detail::Full {
                        string(cell(row, 5))
                    } else {
                        None
                    },
                })
                .collect(),
            truncated,
        })
    }

    fn render_text(&self, _params: &SearchParams, output: &SearchOutput) -> String {
        let mut text = output
            .matches
            .iter()
            .map(|m| {
                let mut line = format!("{}.{}.{}", m.schema, m.table, m.column);
                if let Some(t) = &m.r#type {
                    line.push_str(&format!(" {t}"));
                }
                if m.nullable == Some(false) {
                    line.push_str(" NOT NULL");
                }
                if let Some(d) = &m.default {
                    line.push_str(&format!(" DEFAULT {d}"));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n");
        if output.matches.is_empty() {
            text = "no matching columns".to_owned();
        }
        if output.truncated {
            text.push_str("\n(more match: narrow the pattern or raise limit)");
        }
        text
    }
}

// ---------------------------------------------------------------------------------------------

/// Arguments of `sql_explain`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// The read-only query to plan; it is never executed.
    pub sql: String,
    /// Values for its placeholders, as for sql_query.
    #[serde(default)]
    pub params: Vec<Value>,
    /// Warehouse (default: the first configured one).
    pub warehouse: Option<String>,
}

/// Result of `sql_explain`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExplainOutput {
    /// The warehouse.
    pub warehouse: String,
    /// The plan as the database reports it (JSON on PostgreSQL and MySQL, rows on SQLite).
    pub plan: Value,
}

/// `sql_explain`.
pub struct Explain {
    warehouses: Arc<Warehouses>,
}

impl Explain {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>) -> Self {
        Explain { warehouses }
    }
}

impl Tool for Explain {
    type Params = ExplainParams;
    type Output = ExplainOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_explain".to_owned(),
            title: "Show a query's plan".to_owned(),
            description: "Show how the database would run a read-only query (EXPLAIN, never EXPLAIN ANALYZE): scans, joins, indexes used, estimated rows. The query is planned, not executed.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ExplainParams,
    ) -> Result<ExplainOutput, ToolError> {
        let warehouse = self.warehouses.get(params.warehouse.as_deref())?;
        let query = guard::check(&params.sql, warehouse.dialect())
            .map_err(|e| ToolError::Refused(e.to_string()))?;
        if !query.is_query() {
            return Err(ToolError::InvalidArguments(
                "give the query itself, without EXPLAIN".to_owned(),
            ));
        }
        let statement = catalog::explain(warehouse.dialect(), query.text());
        let rows = catalog_query(warehouse, &statement, &params.params, 10_000, ctx).await?;
        let plan = match warehouse.dialect() {
            Dialect::Sqlite => Value::Array(
                rows.rows
                    .into_iter()
                    .map(|row| {
                        let mut step = serde_json::Map::new();
                        for (column, value) in rows.columns.iter().zip(row) {
                            step.insert(column.name.clone(), value);
                        }
                        Value::Object(step)
                    })
                    .collect(),
            ),
            _ => {
                let first = rows
                    .rows
                    .into_iter()
                    .next()
                    .and_then(|r| r.into_iter().next());
                match first {
                    Some(Value::String(text)) => {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    }
                    Some(other) => other,
                    None => Value::Null,
                }
            }
        };
        Ok(ExplainOutput {
            warehouse: warehouse.name().to_owned(),
            plan,
        })
    }
}
