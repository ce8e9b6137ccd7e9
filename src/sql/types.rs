//! Database values to JSON, without loss.
//!
//! SQLite stores every value in one of five storage classes, whatever a column declares:
//! INTEGER becomes a JSON integer, REAL a JSON number (non-finite values become null), TEXT a
//! string (dates and JSON documents are text in SQLite and stay so), BLOB a base64 string, NULL
//! null. A column declared BOOLEAN that holds 0 or 1 becomes `false`/`true`.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, TypeInfo as _, ValueRef as _};

/// A result column: its name and the type the database reports for it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Column {
    /// Column name as the query labels it.
    pub name: String,
    /// Database type (declared type, or the value's storage class for expressions).
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

/// The storage class (INTEGER, REAL, TEXT, BLOB, NULL) of column `index`'s value in `row`.
pub fn storage_class(row: &SqliteRow, index: usize) -> Result<String, sqlx::Error> {
    Ok(row.try_get_raw(index)?.type_info().name().to_owned())
}

/// The JSON value of column `index` of a SQLite row; `declared` is the column's reported type.
pub fn sqlite_value(row: &SqliteRow, index: usize, declared: &str) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_owned();
    Ok(match storage.as_str() {
        "INTEGER" => {
            let n: i64 = row.try_get_unchecked(index)?;
            if declared == "BOOLEAN" && (n == 0 || n == 1) {
                Value::Bool(n == 1)
            } else {
                Value::from(n)
            }
        }
        "REAL" => {
            let f: f64 = row.try_get_unchecked(index)?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        "BLOB" => {
            let bytes: Vec<u8> = row.try_get_unchecked(index)?;
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        _ => Value::String(row.try_get_unchecked::<String, _>(index)?),
    })
}
