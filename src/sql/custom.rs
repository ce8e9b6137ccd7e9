//! Custom SQL tools from the config: a fixed statement, typed parameters bound through the
//! driver, identifiers chosen from an allow-list — the way most teams want to expose data.
//!
//! Each becomes an MCP tool with an input schema generated from its parameter definitions. The
//! statement is checked by the guard when the config loads (every identifier choice), so a
//! write in the config stops the server at start; it is checked again on every call.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::config::{SqlParameterType, SqlToolFile};
use super::guard::{self, Dialect, quote_identifier};
use super::query::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, QueryOutput, shape};
use super::warehouse::Warehouses;
use crate::table::{Format, ReadLimits, render};
use crate::tools::{Annotations, CallContext, DynTool, Tool, ToolError, ToolSpec, runtime};

/// A custom SQL tool, ready to serve.
pub struct CustomSqlTool {
    spec: ToolSpec,
    file: SqlToolFile,
    warehouses: Arc<Warehouses>,
    dialect: Dialect,
}

/// Builds and checks the tool `file` describes; the error says what in its definition is wrong
/// (the caller names the tool).
pub fn build(file: &SqlToolFile, warehouses: &Arc<Warehouses>) -> Result<Arc<dyn DynTool>, String> {
    let warehouse = warehouses
        .get(file.warehouse.as_deref())
        .map_err(|e| e.to_string())?;
    let dialect = warehouse.dialect();

    for identifier in &file.identifiers {
        if identifier.allowed.is_empty() {
            return Err(format!("identifier '{}' allows nothing", identifier.name));
        }
        if let Some(default) = &identifier.default
            && !identifier.allowed.contains(default)
        {
            return Err(format!(
                "the default of identifier '{}' is not allowed",
                identifier.name
            ));
        }
        if !file.statement.contains(&format!("{{{}}}", identifier.name)) {
            return Err(format!(
                "identifier '{}' is not used as {{{}}} in the statement",
                identifier.name, identifier.name
            ));
        }
    }
    // Every identifier choice must give a statement the guard allows.
    let first_choice = |except: &str| -> Vec<(String, String)> {
        file.identifiers
            .iter()
            .filter(|i| i.name != except)
            .map(|i| (i.name.clone(), i.allowed[0].clone()))
            .collect()
    };
    let mut variants = vec![first_choice("")];
    for identifier in &file.identifiers {
        for allowed in &identifier.allowed {
            let mut choice = first_choice(&identifier.name);
            choice.push((identifier.name.clone(), allowed.clone()));
            variants.push(choice);
        }
    }
    for choice in &variants {
        let statement = render_statement(&file.statement, dialect, choice);
        if statement.contains('{')
            && file
                .identifiers
                .iter()
                .any(|i| statement.contains(&format!("{{{}}}", i.name)))
        {
            return Err("the statement has an unfilled identifier".to_owned());
        }
        let checked = guard::check_with(&statement, dialect, warehouse.guard_settings())
            .map_err(|e| format!("the statement is refused: {e}"))?;
        let placeholders = guard::placeholder_count(checked.text(), dialect).unwrap_or(0);
        if placeholders != file.parameters.len() {
            return Err(format!(
                "the statement has {placeholders} placeholder(s) but {} parameter(s) are declared",
                file.parameters.len()
            ));
        }
    }
    for parameter in &file.parameters {
        if let Some(default) = &parameter.default
            && !fits(parameter.kind, default)
        {
            return Err(format!(
                "the default of '{}' is not a {:?}",
                parameter.name, parameter.kind
            ));
        }
    }

    let spec = ToolSpec {
        name: file.name.clone(),
        title: file.name.replace('_', " "),
        description: format!(
            "{} (read-only SQL on warehouse '{}')",
            file.description,
            warehouse.name()
        ),
        annotations: Annotations::READ_ONLY,
    };
    let tool = CustomSqlTool {
        spec,
        file: file.clone(),
        warehouses: Arc::clone(warehouses),
        dialect,
    };
    Ok(runtime(tool, input_schema(file), None))
}

fn fits(kind: SqlParameterType, value: &Value) -> bool {
    match kind {
        SqlParameterType::String => value.is_string(),
        SqlParameterType::Integer => value.is_i64() || value.is_u64(),
        SqlParameterType::Number => value.is_number(),
        SqlParameterType::Boolean => value.is_boolean(),
        SqlParameterType::Array => value.is_array(),
    }
}

fn json_type(kind: SqlParameterType) -> &'static str {
    match kind {
        SqlParameterType::String => "string",
        SqlParameterType::Integer => "integer",
        SqlParameterType::Number => "number",
        SqlParameterType::Boolean => "boolean",
        SqlParameterType::Array => "array",
    }
}

/// The JSON Schema of the tool's arguments, generated from the parameter definitions.
fn input_schema(file: &SqlToolFile) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in &file.parameters {
        let mut schema = json!({"type": json_type(p.kind), "description": p.description});
        if p.kind == SqlParameterType::Array {
            schema["items"] =
                json!({"type": json_type(p.items.unwrap_or(SqlParameterType::String))});
        }
        if let Some(values) = &p.allowed_values {
            schema["enum"] = Value::Array(values.clone());
        }
        if let Some(min) = p.minimum {
            schema["minimum"] = json!(min);
        }
        if let Some(max) = p.maximum {
            schema["maximum"] = json!(max);
        }
        if let Some(default) = &p.default {
            schema["default"] = default.clone();
        }
        if p.required.unwrap_or(p.default.is_none()) {
            required.push(Value::from(p.name.clone()));
        }
        properties.insert(p.name.clone(), schema);
    }
    for i in &file.identifiers {
        properties.insert(
            i.name.clone(),
            json!({
                "type": "string",
                "description": i.description,
                "enum": i.allowed,
                "default": i.default.clone().unwrap_or_else(|| i.allowed[0].clone()),
            }),
        );
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": file.name,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The statement with `{identifier}` replaced by the chosen, quoted identifiers.
fn render_statement(statement: &str, dialect: Dialect, choice: &[(String, String)]) -> String {
    let mut rendered = statement.to_owned();
    for (name, identifier) in choice {
        rendered = rendered.replace(
            &format!("{{{name}}}"),
            &quote_identifier(dialect, identifier),
        );
    }
    rendered
}

impl Tool for CustomSqlTool {
    // Checked against the schema built from the tool's definition before `invoke` sees them.
    type Params = Map<String, Value>;
    type Output = QueryOutput;

    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        args: &Map<String, Value>,
    ) -> Result<QueryOutput, ToolError> {
        let warehouse = self.warehouses.get(self.file.warehouse.as_deref())?;
        let choice: Vec<(String, String)> = self
            .file
            .identifiers
            .iter()
            .map(|i| {
                let chosen = args
                    .get(&i.name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| i.default.clone())
                    .unwrap_or_else(|| i.allowed[0].clone());
                (i.name.clone(), chosen)
            })
            .collect();
        // The schema's enum already restricts identifiers; this keeps it true without it.
        for (name, chosen) in &choice {
            let allowed = self
                .file
                .identifiers
                .iter()
                .any(|i| &i.name == name && i.allowed.contains(chosen));
            if !allowed {
                return Err(ToolError::InvalidArguments(format!(
                    "'{chosen}' is not allowed for {name}"
                )));
            }
        }
        let statement = render_statement(&self.file.statement, self.dialect, &choice);
        let sql = warehouse.guard(&statement)?;
        let values: Vec<Value> = self
            .file
            .parameters
            .iter()
            .map(|p| {
                args.get(&p.name)
                    .cloned()
                    .or_else(|| p.default.clone())
                    .unwrap_or(Value::Null)
            })
            .collect();
        let limits = ReadLimits {
            rows: self.file.max_rows.unwrap_or(DEFAULT_MAX_ROWS) as usize,
            bytes: DEFAULT_MAX_BYTES as usize,
        };
        let result = warehouse.query(&sql, &values, limits, ctx).await?;
        Ok(shape(warehouse.name(), result, limits, ctx))
    }

    fn render_text(&self, _args: &Map<String, Value>, output: &QueryOutput) -> String {
        render(Format::Json, &output.columns, &output.rows)
    }
}
