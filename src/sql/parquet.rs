//! Parquet output: a result too large to inline is written to the configured output folder and
//! returned as a resource link, which `resources/read` serves.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use futures::future::BoxFuture;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::types::Column;
use crate::tools::resources::{
    ResourceContent, ResourceInfo, ResourceProvider, ResourceTemplateInfo,
};
use crate::tools::{Registry, ToolError};

/// URI prefix of output files.
pub const URI_PREFIX: &str = "datamcp://output/";
/// MIME type of Parquet files.
pub const MIME: &str = "application/vnd.apache.parquet";

/// Writes `rows` under `columns` to `dir/name` as Parquet; returns the file's size. Blocking.
///
/// Column types follow the values: all integers → INT64, all numbers → DOUBLE, all booleans →
/// BOOLEAN, anything else → UTF8 (strings as they are, other JSON as JSON text).
pub fn write(
    dir: &Path,
    name: &str,
    columns: &[Column],
    rows: &[Vec<Value>],
) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    remove_expired(dir);
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
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|e| e.to_string())?;
    let path = dir.join(name);
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut writer = ArrowWriter::try_new(file, schema, None).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    std::fs::metadata(&path)
        .map(|m| m.len())
        .map_err(|e| e.to_string())
}

/// How long a result file is kept: long enough to be read, short enough not to pile up.
const KEEP_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes result files older than [`KEEP_FOR`]; only files this server names, nothing else.
fn remove_expired(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("datamcp-") && name.ends_with(".parquet");
        let expired = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > KEEP_FOR);
        if ours && expired {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Serves the files in the output folder as resources.
pub struct OutputFiles {
    dir: PathBuf,
}

impl OutputFiles {
    /// Files in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        OutputFiles { dir }
    }
}

impl ResourceProvider for OutputFiles {
    fn resources(&self) -> Vec<ResourceInfo> {
        Vec::new()
    }

    fn templates(&self) -> Vec<ResourceTemplateInfo> {
        vec![ResourceTemplateInfo {
            uri_template: format!("{URI_PREFIX}{{file}}"),
            name: "query-output".to_owned(),
            description: "A query result written as a file (sql_query with format parquet)"
                .to_owned(),
            mime_type: MIME.to_owned(),
        }]
    }

    fn read<'a>(
        &'a self,
        uri: &'a str,
        _registry: &'a Registry,
    ) -> Option<BoxFuture<'a, Result<ResourceContent, ToolError>>> {
        let name = uri.strip_prefix(URI_PREFIX)?;
        Some(Box::pin(async move {
            // Only plain file names the server wrote: no paths, no way out of the folder.
            let plain = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && !name.starts_with('.');
            if !plain {
                return Err(ToolError::InvalidArguments(format!(
                    "no output file '{name}'"
                )));
            }
            let path = self.dir.join(name);
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|_| ToolError::InvalidArguments(format!("no output file '{name}'")))?;
            Ok(ResourceContent::Blob {
                bytes,
                mime_type: MIME.to_owned(),
            })
        }))
    }
}
