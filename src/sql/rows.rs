//! What a query read: the type the engines produce and the warehouse passes on, kept apart from
//! both so neither has to import the other for it.

use serde_json::Value;

use crate::table::Column;

/// Rows read by a query, in order, with the columns they share.
#[derive(Debug)]
pub struct QueryRows {
    /// Column names and database types.
    pub columns: Vec<Column>,
    /// Values, one array per row, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Whether reading stopped at a cap with more rows left.
    pub truncated: bool,
    /// Whether the byte cap, not the row cap, stopped it.
    pub byte_limited: bool,
}
