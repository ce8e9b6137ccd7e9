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

/// The form of a schema a model reads: what it must know, nothing it pays for in vain.
///
/// Drops `$schema`, the `title` schemars puts on generated types, numeric `format`s
/// (`uint32`, `double`: the type and bounds already say it), `default: null`; folds
/// descriptions onto one line; inlines a `$defs` entry referenced once. What a value may be is
/// unchanged — validation uses the full schema, and the lean one accepts and refuses the same.
pub fn lean(schema: &Value) -> Value {
    let mut schema = schema.clone();
    inline_defs(&mut schema, 1);
    strip(&mut schema);
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        // "Arguments of `sql_query`.": the tool's own description says it better.
        object.remove("description");
    }
    schema
}

const NUMERIC_FORMATS: &[&str] = &[
    "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
    "float", "double",
];

/// Keywords whose value is one subschema.
const ONE_SCHEMA: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
];
/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const SCHEMA_MAPS: &[&str] = &["properties", "$defs", "definitions", "patternProperties"];

fn strip(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if object.get("title").is_some_and(Value::is_string) {
        object.remove("title");
    }
    if object
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| NUMERIC_FORMATS.contains(&f))
    {
        object.remove("format");
    }
    // A default the description already states is said twice.
    let stated = object
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.contains("default"));
    if object.get("default") == Some(&Value::Null) || stated {
        object.remove("default");
    }
    // `items: true` allows any item, as no `items` does.
    if object.get("items") == Some(&Value::Bool(true)) {
        object.remove("items");
    }
    if let Some(Value::String(description)) = object.get_mut("description") {
        *description = description.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    consts_to_enum(object);
    for (key, value) in object.iter_mut() {
        let key = key.as_str();
        if ONE_SCHEMA.contains(&key) {
            strip(value);
        } else if SCHEMA_LISTS.contains(&key) {
            if let Some(items) = value.as_array_mut() {
                items.iter_mut().for_each(strip);
            }
        } else if SCHEMA_MAPS.contains(&key)
            && let Some(map) = value.as_object_mut()
        {
            map.values_mut().for_each(strip);
        }
    }
}

/// A `oneOf` whose every alternative is one string constant (how schemars writes a documented
/// enum) becomes the equivalent `enum`; the alternatives' own descriptions go with it.
fn consts_to_enum(object: &mut serde_json::Map<String, Value>) {
    let Some(Value::Array(alternatives)) = object.get("oneOf") else {
        return;
    };
    let constants: Option<Vec<Value>> = alternatives
        .iter()
        .map(|alternative| {
            let alternative = alternative.as_object()?;
            let only_const = alternative
                .keys()
                .all(|k| matches!(k.as_str(), "const" | "type" | "description"));
            let constant = alternative.get("const").filter(|c| c.is_string())?;
            (only_const && alternative.get("type").is_none_or(|t| t == "string"))
                .then(|| constant.clone())
        })
        .collect();
    if let Some(constants) = constants {
        object.remove("oneOf");
        object.insert("type".to_owned(), Value::from("string"));
        object.insert("enum".to_owned(), Value::Array(constants));
    }
}

/// The wire form of an output schema: the shape of a result (types, fields, what is always
/// there), without descriptions and bounds. Clients check a result against it; they do not
/// decide a call by it, and a looser check of our own answers refuses nothing they could get.
pub fn lean_output(schema: &Value) -> Value {
    // Every definition inlined: cut to its types below, a copy costs little.
    let mut schema = schema.clone();
    inline_defs(&mut schema, usize::MAX);
    let mut schema = lean(&schema);
    drop_annotations(&mut schema);
    shallow(&mut schema, 0);
    schema
}

/// Removes descriptions, bounds, defaults, `required` and `items: true` from every schema in
/// `value`. A property named like one of them is kept: its value is a schema object, and only
/// string-, number- or list-valued keywords are removed.
fn drop_annotations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for keyword in ["description", "minimum", "maximum", "default", "required"] {
                if map
                    .get(keyword)
                    .is_some_and(|v| v.is_string() || v.is_number() || v.is_array())
                {
                    map.remove(keyword);
                }
            }
            if map.get("items") == Some(&Value::Bool(true)) {
                map.remove("items");
            }
            map.values_mut().for_each(drop_annotations);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_annotations),
        _ => {}
    }
}

/// How deep an output schema keeps its fields: the result's own fields and those of objects
/// in them (a workflow's declared output); the elements of a list keep only their type (a
/// client validating a result needs no more, and the model sees the fields in the result).
const OUTPUT_DEPTH: usize = 2;

/// Cuts an output schema below [`OUTPUT_DEPTH`] levels of fields, and list elements, down to
/// their types.
fn shallow(schema: &mut Value, depth: usize) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if depth >= OUTPUT_DEPTH {
        object.retain(|key, _| key == "type" || key == "$ref");
        return;
    }
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        properties.values_mut().for_each(|p| shallow(p, depth + 1));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = object.get_mut(key) {
            shallow(inner, OUTPUT_DEPTH);
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(Value::Array(items)) = object.get_mut(*key) {
            items.iter_mut().for_each(|i| shallow(i, depth));
        }
    }
}

/// Replaces each `{"$ref": "#/$defs/X", …}` whose definition is used at most `most` times by
/// the definition itself (the referring schema's own keywords win), and drops the definitions
/// left unused. A definition that refers to itself stays.
fn inline_defs(schema: &mut Value, most: usize) {
    let Some(defs) = schema
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .and_then(|d| match d {
            Value::Object(map) => Some(map),
            _ => None,
        })
    else {
        return;
    };
    let mut uses = std::collections::HashMap::new();
    count_refs(schema, &mut uses);
    for def in defs.values() {
        count_refs(def, &mut uses);
    }
    let once: serde_json::Map<String, Value> = defs
        .iter()
        .filter(|(name, def)| {
            uses.get(name.as_str()).is_some_and(|&n| n <= most) && !refers_to(def, name)
        })
        .map(|(name, def)| (name.clone(), def.clone()))
        .collect();
    let mut kept: serde_json::Map<String, Value> = defs
        .into_iter()
        .filter(|(name, _)| !once.contains_key(name))
        .collect();
    replace_refs(schema, &once);
    for def in kept.values_mut() {
        replace_refs(def, &once);
    }
    if !kept.is_empty()
        && let Some(object) = schema.as_object_mut()
    {
        object.insert("$defs".to_owned(), Value::Object(kept));
    }
}

fn refers_to(value: &Value, name: &str) -> bool {
    match value {
        Value::Object(map) => {
            map.get("$ref").and_then(Value::as_str).and_then(def_name) == Some(name)
                || map.values().any(|v| refers_to(v, name))
        }
        Value::Array(items) => items.iter().any(|v| refers_to(v, name)),
        _ => false,
    }
}

fn def_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/$defs/")
}

fn count_refs<'a>(value: &'a Value, uses: &mut std::collections::HashMap<&'a str, usize>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(def_name) {
                *uses.entry(name).or_default() += 1;
            }
            map.values().for_each(|v| count_refs(v, uses));
        }
        Value::Array(items) => items.iter().for_each(|v| count_refs(v, uses)),
        _ => {}
    }
}

fn replace_refs(value: &mut Value, once: &serde_json::Map<String, Value>) {
    match value {
        Value::Object(map) => {
            let target = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(def_name)
                .and_then(|name| once.get(name))
                .cloned();
            if let Some(Value::Object(mut def)) = target {
                map.remove("$ref");
                replace_refs_in_map(&mut def, once);
                for (key, own) in std::mem::take(map) {
                    def.insert(key, own);
                }
                *map = def;
            }
            replace_refs_in_map(map, once);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_refs(v, once)),
        _ => {}
    }
}

fn replace_refs_in_map(
    map: &mut serde_json::Map<String, Value>,
    once: &serde_json::Map<String, Value>,
) {
    for value in map.values_mut() {
        replace_refs(value, once);
    }
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
    fn the_lean_form_drops_what_a_model_does_not_need_and_refuses_the_same() {
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        enum Colour {
            /// Red.
            Red,
            /// Blue.
            Blue,
        }
        /// Arguments with a nested type.
        #[derive(Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Nested {
            /// How many,
            /// over two lines.
            count: u32,
            colour: Option<Colour>,
        }
        let full = schema_of::<Nested>();
        let lean = lean(&full);
        let text = lean.to_string();
        for gone in ["$schema", "\"title\"", "uint32", "$defs", "\\n"] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert!(text.contains("How many, over two lines."), "{text}");
        assert!(text.len() < full.to_string().len());
        let (full, lean) = (
            ArgumentValidator::compile(&full).expect("full"),
            ArgumentValidator::compile(&lean).expect("lean"),
        );
        for args in [
            serde_json::json!({"count": 1}),
            serde_json::json!({"count": 1, "colour": "Red"}),
            serde_json::json!({"count": 1, "colour": null}),
            serde_json::json!({"count": -1}),
            serde_json::json!({"count": 1.5}),
            serde_json::json!({"count": 1, "colour": "Green"}),
            serde_json::json!({"count": 1, "other": true}),
            serde_json::json!({}),
        ] {
            assert_eq!(full.is_valid(&args), lean.is_valid(&args), "{args}");
        }
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
