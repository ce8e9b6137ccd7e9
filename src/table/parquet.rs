//! Rows as Parquet: JSON values have no declared types, so each column takes the narrowest
//! Arrow type all its values fit.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::Column;

/// `rows` under `columns` as one Arrow batch.
///
/// Column types follow the values: all integers → INT64, all numbers → DOUBLE, all booleans →
/// BOOLEAN, anything else → UTF8 (strings as they are, other JSON as JSON text).
pub(super) fn batch(columns: &[Column], rows: &[Vec<Value>]) -> Result<RecordBatch, String> {
    let mut seen = HashSet::new();
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (index, column) in columns.iter().enumerate() {
        let values = rows
            .iter()
            .map(|row| row.get(index).unwrap_or(&Value::Null));
        let non_null: Vec<&Value> = values.clone().filter(|v| !v.is_null()).collect();
        let (data_type, array): (DataType, ArrayRef) =
            if !non_null.is_empty() && non_null.iter().all(|v| v.is_i64()) {
                (
                    DataType::Int64,
                    Arc::new(values.map(Value::as_i64).collect::<Int64Array>()),
                )
            } else if !non_null.is_empty() && non_null.iter().all(|v| v.is_number()) {
                (
                    DataType::Float64,
                    Arc::new(values.map(Value::as_f64).collect::<Float64Array>()),
                )
            } else if !non_null.is_empty() && non_null.iter().all(|v| v.is_boolean()) {
                (
                    DataType::Boolean,
                    Arc::new(values.map(Value::as_bool).collect::<BooleanArray>()),
                )
            } else {
                let text = values.map(|v| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                });
                (DataType::Utf8, Arc::new(text.collect::<StringArray>()))
            };
        // Parquet readers dislike duplicate column names, which SQL allows.
        let mut field_name = column.name.clone();
        let mut n = 2;
        while !seen.insert(field_name.clone()) {
            field_name = format!("{}_{n}", column.name);
            n += 1;
        }
        fields.push(Field::new(field_name, data_type, true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())
}

/// Writes `batch` to `file` as a complete Parquet file. Blocking.
pub(super) fn write(file: std::fs::File, batch: &RecordBatch) -> Result<(), String> {
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow_array::Array as _;
    use serde_json::json;

    use super::*;

    #[test]
    fn column_types_follow_the_values_and_duplicate_names_are_numbered() {
        let columns = [
            Column::new("n", "INTEGER"),
            Column::new("n", "REAL"),
            Column::new("flag", "BOOLEAN"),
            Column::new("doc", "JSON"),
        ];
        let rows = vec![
            vec![json!(1), json!(1.5), json!(true), json!({"a": 1})],
            vec![Value::Null, json!(2), Value::Null, json!("text")],
        ];
        let batch = batch(&columns, &rows).expect("batch");
        let schema = batch.schema();
        let described: Vec<(&str, &DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            described,
            [
                ("n", &DataType::Int64),
                ("n_2", &DataType::Float64),
                ("flag", &DataType::Boolean),
                ("doc", &DataType::Utf8),
            ]
        );
        assert_eq!(batch.column(0).null_count(), 1);
        let doc = batch
            .column(3)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text");
        assert_eq!(doc.value(0), r#"{"a":1}"#);
        assert_eq!(doc.value(1), "text");
    }
}
