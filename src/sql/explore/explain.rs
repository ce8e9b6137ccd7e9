//! `sql_explain`: a query's plan, without running it.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sql::catalog;
use crate::sql::guard::Dialect;
use crate::sql::warehouse::Warehouses;
use crate::table::ReadLimits;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Arguments of `sql_explain`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// Query to plan (never executed).
    pub sql: String,
    /// Placeholder values, as in sql_query.
    #[serde(default)]
    pub params: Vec<Value>,
    /// Warehouse (default: the first).
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
            description:
                "Show how the database would run a read-only query: EXPLAIN, never ANALYZE."
                    .to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ExplainParams,
    ) -> Result<ExplainOutput, ToolError> {
        let warehouse = self.warehouses.get(params.warehouse.as_deref())?;
        let query = warehouse.guard(&params.sql)?;
        if !query.is_query() {
            return Err(ToolError::InvalidArguments(
                "give the query itself, without EXPLAIN".to_owned(),
            ));
        }
        let statement = catalog::explain(warehouse.dialect(), query.text());
        let rows = warehouse
            .query_own(&statement, &params.params, ReadLimits::rows(10_000), ctx)
            .await?;
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
