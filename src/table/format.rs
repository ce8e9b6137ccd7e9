//! Text renderings of a result: JSON (rows as arrays under one column list), CSV (RFC 4180) and
//! a Markdown table, the leanest for a model to read.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Column;

/// How rows are rendered in the text content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"columns":[…],"rows":[[…],…]}`, compact.
    #[default]
    Json,
    /// Comma-separated values with a header row; NULL is an empty field.
    Csv,
    /// A Markdown table; NULL is shown as `NULL`.
    Markdown,
    /// A Parquet file in the output folder, returned as a resource link; for results too large
    /// to inline. The structured result then carries no rows.
    Parquet,
}

/// Renders `rows` under `columns` in `format`.
pub fn render(format: Format, columns: &[Column], rows: &[Vec<Value>]) -> String {
    match format {
        Format::Json => json(columns, rows),
        Format::Csv => csv(columns, rows),
        Format::Markdown => markdown(columns, rows),
        // The rows went to a file; the tool says where.
        Format::Parquet => String::new(),
    }
}

fn json(columns: &[Column], rows: &[Vec<Value>]) -> String {
    #[derive(Serialize)]
    struct Table<'a> {
        columns: Vec<&'a str>,
        rows: &'a [Vec<Value>],
    }
    let table = Table {
        columns: columns.iter().map(|c| c.name.as_str()).collect(),
        rows,
    };
    serde_json::to_string(&table).unwrap_or_default()
}

fn csv(columns: &[Column], rows: &[Vec<Value>]) -> String {
    let mut out = String::with_capacity(64 * (rows.len() + 1));
    let mut cell = String::new();
    let header = columns
        .iter()
        .map(|c| Value::from(c.name.as_str()))
        .collect();
    for row in std::iter::once(&header).chain(rows) {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            cell.clear();
            write_plain(&mut cell, value);
            if cell.contains([',', '"', '\n', '\r']) {
                out.push('"');
                for c in cell.chars() {
                    if c == '"' {
                        out.push('"');
                    }
                    out.push(c);
                }
                out.push('"');
            } else {
                out.push_str(&cell);
            }
        }
        out.push_str("\r\n");
    }
    out
}

fn markdown(columns: &[Column], rows: &[Vec<Value>]) -> String {
    let mut out = String::with_capacity(64 * (rows.len() + 2));
    let mut cell = String::new();
    let push_cell = |out: &mut String, text: &str| {
        out.push(' ');
        for c in text.chars() {
            match c {
                '|' => out.push_str("\\|"),
                '\n' | '\r' => out.push(' '),
                c => out.push(c),
            }
        }
        out.push_str(" |");
    };
    out.push('|');
    for column in columns {
        push_cell(&mut out, &column.name);
    }
    out.push_str("\n|");
    for _ in columns {
        out.push_str(" --- |");
    }
    for row in rows {
        out.push_str("\n|");
        for value in row {
            cell.clear();
            match value {
                Value::Null => cell.push_str("NULL"),
                other => write_plain(&mut cell, other),
            }
            push_cell(&mut out, &cell);
        }
    }
    out
}

/// Writes a value as plain text: strings without quotes, NULL as nothing, the rest as JSON.
fn write_plain(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns() -> Vec<Column> {
        vec![Column::new("id", "INTEGER"), Column::new("note", "TEXT")]
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_leaves_null_empty() {
        let rows = vec![
            vec![json!(1), json!("a, \"b\"")],
            vec![json!(2), Value::Null],
        ];
        assert_eq!(
            render(Format::Csv, &columns(), &rows),
            "id,note\r\n1,\"a, \"\"b\"\"\"\r\n2,\r\n"
        );
    }

    #[test]
    fn markdown_escapes_pipes_and_shows_null() {
        let rows = vec![vec![json!(1), json!("x|y")], vec![json!(2), Value::Null]];
        assert_eq!(
            render(Format::Markdown, &columns(), &rows),
            "| id | note |\n| --- | --- |\n| 1 | x\\|y |\n| 2 | NULL |"
        );
    }

    #[test]
    fn json_puts_rows_as_arrays_under_one_column_list() {
        let rows = vec![vec![json!(1), json!("a")]];
        assert_eq!(
            render(Format::Json, &columns(), &rows),
            r#"{"columns":["id","note"],"rows":[[1,"a"]]}"#
        );
    }
}
