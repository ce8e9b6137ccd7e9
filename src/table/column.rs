//! A result column, as every engine and every kind reports it.

use schemars::JsonSchema;
use serde::Serialize;

/// A result column: its name and the type the database reports for it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Column {
    /// Column name as the query labels it.
    pub name: String,
    /// Database type: the declared type, or for an expression the storage class of its values.
    #[serde(rename = "type")]
    pub r#type: String,
}

impl Column {
    /// A column named `name` of database type `type_name`.
    pub fn new(name: &str, type_name: &str) -> Self {
        Column {
            name: name.to_owned(),
            r#type: type_name.to_owned(),
        }
    }
}
