//! JSON ⇄ CEL values.
//!
//! Variables go in as the interpreter's own value objects borrowing the caller's JSON (strings
//! are not copied), so only the containers are rebuilt per evaluation. Results come back through
//! [`cel::Value`], the crate's owned form.

use base64::Engine as _;
use cel::Value as CelValue;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::objects::Key;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// A JSON value as an interpreter value. Integers stay integers (`int`, or `uint` above
/// `i64::MAX`); every other number is a `double`.
pub(crate) fn to_val(value: &Value) -> Box<dyn Val + '_> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => number(n),
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => {
            Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>()))
        }
        Value::Object(entries) => Box::new(CelMap::from(
            entries
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), to_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

fn number(n: &Number) -> Box<dyn Val + 'static> {
    if let Some(i) = n.as_i64() {
        Box::new(CelInt::from(i))
    } else if let Some(u) = n.as_u64() {
        Box::new(CelUInt::from(u))
    } else {
        // Without serde_json's arbitrary precision every other number is an f64.
        Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
    }
}

/// A result as JSON, or why it has no JSON form.
pub(crate) fn to_json(value: &CelValue) -> Result<Value, String> {
    Ok(match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(f) => Value::Number(Number::from_f64(*f).ok_or_else(|| {
            format!("the result holds the double {f}, which JSON cannot represent")
        })?),
        CelValue::String(s) => Value::String(s.as_str().to_owned()),
        CelValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(&**b)),
        CelValue::List(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        CelValue::Map(map) => {
            // JSON keys are strings: other CEL keys are written out, and sorted so that the
            // output does not depend on hash order.
            let mut entries = map
                .map
                .iter()
                .map(|(k, v)| Ok((key_text(k), to_json(v)?)))
                .collect::<Result<Vec<_>, String>>()?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut object = Map::new();
            for (k, v) in entries {
                if object.contains_key(&k) {
                    return Err(format!(
                        "the result is a map with two keys written '{k}' (e.g. 1 and '1'); \
                         JSON object keys are strings, so they would collide"
                    ));
                }
                object.insert(k, v);
            }
            Value::Object(object)
        }
        other => {
            return Err(format!(
                "the result is a CEL {}, which has no JSON form",
                type_name(other)
            ));
        }
    })
}

fn key_text(key: &Key) -> String {
    match key {
        Key::String(s) => s.as_str().to_owned(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

/// The CEL name of a value's type, as a user writes it in `type(x) == ...`.
pub(crate) fn type_name(value: &CelValue) -> String {
    match value {
        CelValue::Null => "null".into(),
        CelValue::Bool(_) => "bool".into(),
        CelValue::Int(_) => "int".into(),
        CelValue::UInt(_) => "uint".into(),
        CelValue::Float(_) => "double".into(),
        CelValue::String(_) => "string".into(),
        CelValue::Bytes(_) => "bytes".into(),
        CelValue::List(_) => "list".into(),
        CelValue::Map(_) => "map".into(),
        CelValue::Function(..) => "function".into(),
        CelValue::Opaque(o) => o.runtime_type_name().to_owned(),
        CelValue::Struct(s) => s.name().to_owned(),
        #[allow(unreachable_patterns)] // durations and timestamps, with the crate's chrono feature
        other => other.type_of().to_string(),
    }
}

/// A value shortened for an error message: its JSON when it has one.
pub(crate) fn preview(value: &CelValue) -> String {
    let text = match to_json(value) {
        Ok(json) => json.to_string(),
        Err(_) => format!("a {}", type_name(value)),
    };
    shorten(&text, 80)
}

pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
