//! `sql_search`: columns and their tables by name pattern, at a chosen level of detail.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{cell, like_pattern, string, truthy};
use crate::sql::catalog;
use crate::sql::guard::Dialect;
use crate::sql::warehouse::Warehouses;
use crate::table::ReadLimits;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `sql_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Name pattern: `*` or `%` wildcards; a plain word matches anywhere.
    pub pattern: String,
    /// Warehouse (default: the first).
    pub warehouse: Option<String>,
    /// Matches at most (default 100).
    #[schemars(range(min = 1, max = 10_000))]
    pub limit: Option<u32>,
    /// `names`, `summary` (plus types; default) or `full` (plus nullability, defaults).
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
            description: "Find columns and their tables by name pattern (e.g. 'email', '*_at') without reading the whole catalog.".to_owned(),
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
        let rows = warehouse
            .query_own(
                catalog::search_columns(warehouse.dialect()),
                &binds,
                ReadLimits::rows(limit + 1),
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
