//! `sql_profile`: a data-quality profile of a table or a query, so an agent can check data
//! before trusting it: per column the share of NULLs, distinct values, range and most common
//! values.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog;
use super::guard::Dialect;
use super::query::{DEFAULT_MAX_BYTES, MAX_BYTES_LIMIT};
use super::warehouse::{Warehouse, Warehouses};
use crate::table::ReadLimits;
use crate::tools::{Annotations, CallContext, Tool, ToolError, ToolSpec};

/// Columns profiled at most in one call.
const MAX_COLUMNS: usize = 50;

/// Arguments of `sql_profile`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileParams {
    /// Table or view to profile.
    pub table: Option<String>,
    /// Schema (default: the current one).
    pub schema: Option<String>,
    /// Query to profile instead of a table.
    pub sql: Option<String>,
    /// Only these columns (default: all, up to 50).
    pub columns: Option<Vec<String>>,
    /// Most common values per column (default 5).
    #[schemars(range(max = 50))]
    pub top: Option<u32>,
    /// Bytes of JSON at most (default 1 MiB).
    #[schemars(range(min = 1024, max = 67_108_864))]
    pub max_bytes: Option<u32>,
    /// Warehouse (default: the first).
    pub warehouse: Option<String>,
}

/// The profile of one column.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ColumnProfile {
    /// Column name.
    pub name: String,
    /// Database type.
    #[serde(rename = "type")]
    pub r#type: String,
    /// Rows whose value is NULL.
    pub nulls: i64,
    /// Share of NULLs, 0 to 1.
    pub null_fraction: f64,
    /// Distinct non-NULL values (absent for types without equality, such as PostgreSQL json).
    pub distinct: Option<i64>,
    /// Smallest value (absent for unordered types).
    pub min: Option<Value>,
    /// Largest value (absent for unordered types).
    pub max: Option<Value>,
    /// The most common values with their counts, most common first.
    pub top_values: Vec<TopValue>,
}

/// A value and how often it occurs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TopValue {
    /// The value.
    pub value: Value,
    /// Rows holding it.
    pub count: i64,
}

/// Result of `sql_profile`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProfileOutput {
    /// The warehouse.
    pub warehouse: String,
    /// Rows in the table or query result.
    pub row_count: i64,
    /// One profile per column.
    pub columns: Vec<ColumnProfile>,
    /// True when the byte budget left columns or top values out: the profile is incomplete.
    pub truncated: bool,
}

/// `sql_profile`.
pub struct Profile {
    warehouses: Arc<Warehouses>,
}

impl Profile {
    /// The tool over `warehouses`.
    pub fn new(warehouses: Arc<Warehouses>) -> Self {
        Profile { warehouses }
    }
}

use super::guard::quote_identifier as quote;

/// Whether values of this database type can be compared for min/max and counted distinct.
fn comparable(dialect: Dialect, type_name: &str) -> bool {
    let t = type_name.to_ascii_lowercase();
    let unordered = [
        "json", "bytea", "blob", "binary", "xml", "geometry", "point", "[]", "array", "tsvector",
    ];
    !(unordered.iter().any(|u| t.contains(u)) || (dialect == Dialect::Postgres && t == "jsonb"))
}

async fn run(
    warehouse: &Warehouse,
    sql: &str,
    bytes: usize,
    ctx: &CallContext,
) -> Result<Vec<Vec<Value>>, ToolError> {
    let limits = ReadLimits { rows: 100, bytes };
    Ok(warehouse.query_own(sql, &[], limits, ctx).await?.rows)
}

/// About how many bytes `value` adds to the answer as JSON.
fn json_bytes<T: Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

impl Tool for Profile {
    type Params = ProfileParams;
    type Output = ProfileOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "sql_profile".to_owned(),
            title: "Profile a table's data quality".to_owned(),
            description: "Profile a table or query result before trusting it: row count, and per column NULL share, distinct count, min/max, top values.".to_owned(),
            annotations: Annotations::READ_ONLY,
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &ProfileParams,
    ) -> Result<ProfileOutput, ToolError> {
        let warehouse = self.warehouses.get(params.warehouse.as_deref())?;
        let dialect = warehouse.dialect();
        let budget = params
            .max_bytes
            .unwrap_or(DEFAULT_MAX_BYTES)
            .clamp(1024, MAX_BYTES_LIMIT) as usize;
        let mut truncated = false;
        // The source and its columns: a table's columns come from the catalog, a query's from
        // running it for one row, so only names the database reported are ever quoted in.
        let (source, columns): (String, Vec<(String, String)>) = match (&params.table, &params.sql)
        {
            (Some(table), None) => {
                let binds = [
                    params.schema.clone().map_or(Value::Null, Value::from),
                    Value::from(table.clone()),
                ];
                let rows = warehouse
                    .query_own(
                        catalog::columns(dialect),
                        &binds,
                        ReadLimits::rows(10_000),
                        ctx,
                    )
                    .await?
                    .rows;
                if rows.is_empty() {
                    return Err(ToolError::InvalidArguments(format!(
                        "no table or view '{table}' in warehouse '{}'; call sql_list_tables",
                        warehouse.name()
                    )));
                }
                let source = match &params.schema {
                    Some(schema) => format!("{}.{}", quote(dialect, schema), quote(dialect, table)),
                    None => quote(dialect, table),
                };
                let columns = rows
                    .iter()
                    .map(|r| {
                        let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
                        (text(&r[0]), text(&r[1]))
                    })
                    .collect();
                (source, columns)
            }
            (None, Some(sql)) => {
                let query = warehouse.guard(sql)?;
                if !query.is_query() {
                    return Err(ToolError::InvalidArguments(
                        "`sql` must be a query".to_owned(),
                    ));
                }
                let limits = ReadLimits {
                    rows: 1,
                    bytes: budget,
                };
                let shape = warehouse.query(&query, &[], limits, ctx).await?;
                let body = query.text().trim().trim_end_matches(';').to_owned();
                let columns = shape
                    .columns
                    .into_iter()
                    .map(|c| (c.name, c.r#type))
                    .collect();
                (format!("({body}) AS datamcp_source"), columns)
            }
            _ => {
                return Err(ToolError::InvalidArguments(
                    "give exactly one of `table` or `sql`".to_owned(),
                ));
            }
        };
        let columns: Vec<(String, String)> = match &params.columns {
            Some(wanted) => {
                let unknown: Vec<&String> = wanted
                    .iter()
                    .filter(|w| !columns.iter().any(|(n, _)| n == *w))
                    .collect();
                if !unknown.is_empty() {
                    return Err(ToolError::InvalidArguments(format!(
                        "unknown column(s) {unknown:?}; the source has: {}",
                        columns
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                columns
                    .into_iter()
                    .filter(|(n, _)| wanted.contains(n))
                    .collect()
            }
            None => columns,
        };
        if columns.len() > MAX_COLUMNS {
            ctx.warn(format!("only the first {MAX_COLUMNS} of {} columns were profiled; name the columns you need", columns.len()));
        }
        let columns = &columns[..columns.len().min(MAX_COLUMNS)];

        // One scan for counts and ranges of every column.
        let mut select = vec!["count(*)".to_owned()];
        for (name, type_name) in columns {
            let c = quote(dialect, name);
            select.push(format!("count({c})"));
            if comparable(dialect, type_name) {
                select.push(format!("count(DISTINCT {c})"));
                select.push(format!("min({c})"));
                select.push(format!("max({c})"));
            }
        }
        let steps = 1 + columns.len() as u64;
        ctx.progress(0.0, Some(steps as f64), "scanning for counts and ranges");
        let stats = run(
            warehouse,
            &format!("SELECT {} FROM {source}", select.join(", ")),
            budget,
            ctx,
        )
        .await?;
        ctx.progress(1.0, Some(steps as f64), "scanned; counting top values");
        let stats = stats.into_iter().next().unwrap_or_default();
        let mut values = stats.into_iter();
        let number = |v: Option<Value>| {
            v.and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0)
        };
        let row_count = number(values.next());
        let top = params.top.unwrap_or(5) as usize;
        let mut profiles = Vec::with_capacity(columns.len());
        let mut used = json_bytes(&row_count) + 64;
        for (name, type_name) in columns {
            let non_null = number(values.next());
            let (distinct, min, max) = if comparable(dialect, type_name) {
                (Some(number(values.next())), values.next(), values.next())
            } else {
                (None, None, None)
            };
            let left = budget.saturating_sub(used);
            let top_values = if top > 0 && comparable(dialect, type_name) && left >= 1024 {
                let c = quote(dialect, name);
                let sql = format!(
                    "SELECT {c}, count(*) AS datamcp_count FROM {source} WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY datamcp_count DESC, {c} LIMIT {top}"
                );
                match run(warehouse, &sql, left, ctx).await {
                    Ok(rows) => rows
                        .into_iter()
                        .map(|mut row| TopValue {
                            count: number(row.pop()),
                            value: row.pop().unwrap_or(Value::Null),
                        })
                        .collect(),
                    // One value over what is left of the budget: this column goes without.
                    Err(ToolError::InvalidArguments(_)) => {
                        truncated = true;
                        Vec::new()
                    }
                    Err(other) => return Err(other),
                }
            } else {
                Vec::new()
            };
            ctx.progress(
                (2 + profiles.len()) as f64,
                Some(steps as f64),
                format!("profiled column {name}"),
            );
            let nulls = row_count - non_null;
            let profile = ColumnProfile {
                name: name.clone(),
                r#type: type_name.clone(),
                nulls,
                null_fraction: if row_count > 0 {
                    nulls as f64 / row_count as f64
                } else {
                    0.0
                },
                distinct,
                min,
                max,
                top_values,
            };
            let size = json_bytes(&profile);
            if used + size > budget {
                truncated = true;
                break;
            }
            used += size;
            profiles.push(profile);
        }
        if truncated {
            ctx.warn(format!(
                "the profile reached its {budget}-byte budget: {} of {} columns are profiled and some top values may be missing; name fewer columns, lower top, or raise max_bytes",
                profiles.len(),
                columns.len()
            ));
        }
        Ok(ProfileOutput {
            warehouse: warehouse.name().to_owned(),
            row_count,
            columns: profiles,
            truncated,
        })
    }

    fn render_text(&self, _params: &ProfileParams, output: &ProfileOutput) -> String {
        let mut text = format!(
            "{} rows\n| column | type | nulls | distinct | min | max | top values |\n| --- | --- | --- | --- | --- | --- | --- |",
            output.row_count
        );
        let show = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        for c in &output.columns {
            let top: Vec<String> = c
                .top_values
                .iter()
                .map(|t| format!("{} ({})", t.value, t.count))
                .collect();
            text.push_str(&format!(
                "\n| {} | {} | {} ({:.1}%) | {} | {} | {} | {} |",
                c.name,
                c.r#type,
                c.nulls,
                c.null_fraction * 100.0,
                c.distinct.map(|d| d.to_string()).unwrap_or_default(),
                show(&c.min),
                show(&c.max),
                top.join(", ")
            ));
        }
        text
    }
}
