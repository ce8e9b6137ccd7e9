//! The exploration tools an agent needs before it writes SQL: which warehouses exist, which
//! tables they hold, what a table looks like, where a column lives, and how a query would run.
//! One file per tool; the helpers they share are here.

mod describe;
mod explain;
mod search;
mod tables;
mod warehouses;

pub use describe::{
    ColumnInfo, DescribeTable, DescribeTableOutput, DescribeTableParams, ForeignKey, IndexInfo,
};
pub use explain::{Explain, ExplainOutput, ExplainParams};
pub use search::{Detail, Search, SearchMatch, SearchOutput, SearchParams};
pub use tables::{ListTables, ListTablesOutput, ListTablesParams, TableInfo};
pub use warehouses::{ListWarehouses, ListWarehousesOutput, ListWarehousesParams, WarehouseInfo};

use serde_json::Value;

pub(super) fn string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        Value::String(s) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

pub(super) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(super) fn cell(row: &[Value], index: usize) -> &Value {
    row.get(index).unwrap_or(&Value::Null)
}

/// A LIKE pattern from an optional glob-ish user pattern: `*` and `?` work as in a shell, `%`
/// and `_` as in SQL; absent means everything.
pub(super) fn like_pattern(pattern: Option<&str>) -> String {
    match pattern {
        None | Some("") => "%".to_owned(),
        Some(p) => p.replace('*', "%").replace('?', "_"),
    }
}
