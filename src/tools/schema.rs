//! JSON Schemas generated from Rust types, and the validators compiled from them.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The JSON Schema (draft 2020-12) of `T`, as MCP advertises it.
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// A validator compiled once per tool and reused for every call.
pub struct ArgumentValidator {
    validator: jsonschema::Validator,
}

impl ArgumentValidator {
    /// Compiles `schema`; fails when the schema itself is not a valid JSON Schema.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(|validator| ArgumentValidator { validator })
            .map_err(|e| e.to_string())
    }

    /// Checks `instance`; the error names each offending JSON path, what was expected and the
    /// value found, so a model can correct its call.
    pub fn check(&self, instance: &Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(instance)
            .take(5)
            .map(|error| {
                let path = error.instance_path().as_str();
                let path = if path.is_empty() { "(root)" } else { path };
                format!("at {path}: {error}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Whether `instance` is valid, without building messages.
    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Arguments of an imaginary tool.
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        /// How many.
        #[schemars(range(min = 1))]
        count: u32,
        label: Option<String>,
    }

    #[test]
    fn violations_name_the_path_the_expectation_and_the_value() {
        let validator = ArgumentValidator::compile(&schema_of::<Args>()).expect("schema compiles");
        let error = validator
            .check(&serde_json::json!({"count": "seven"}))
            .expect_err("a string is not a count");
        assert!(error.contains("/count"), "{error}");
        assert!(error.contains("\"seven\""), "{error}");
        assert!(error.contains("integer"), "{error}");
    }

    #[test]
    fn unknown_fields_and_missing_required_fields_are_refused() {
        let validator = ArgumentValidator::compile(&schema_of::<Args>()).expect("schema compiles");
        assert!(validator.check(&serde_json::json!({})).is_err());
        assert!(
            validator
                .check(&serde_json::json!({"count": 1, "colour": "red"}))
                .is_err()
        );
        assert!(validator.check(&serde_json::json!({"count": 1})).is_ok());
    }
}
