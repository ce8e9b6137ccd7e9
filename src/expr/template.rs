//! JSON values whose strings embed `${{ expr }}`.

use super::{Expr, ExprError, Reference, Vars};
use serde_json::{Map, Value};

/// A JSON value (a step's `args`, a workflow's `output`) whose strings may hold `${{ expr }}`.
///
/// - A string that is exactly one `${{ expr }}`, surrounding whitespace aside, renders to the
///   expression's value with its JSON type: a list stays a list, a number a number.
/// - A string mixing text and `${{ expr }}` renders each value as text: strings as they are,
///   anything else as compact JSON.
/// - `$${{` is a literal `${{`. Other strings, numbers, bools and nulls are literals.
/// - Arrays and objects render element by element; object keys are never templated.
#[derive(Debug, Clone)]
pub struct Template {
    root: Node,
    /// The whole value when it holds no expression, escapes resolved.
    literal: Option<Value>,
}

#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    Whole { expr: Expr, path: String },
    Text { parts: Vec<Part>, path: String },
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Expr(Expr),
}

impl Template {
    /// Compiles every embedded expression. Errors name the JSON path of the string relative to
    /// `value` (`region`, `filters[2].value`); see [`Template::compile_at`] for a prefix.
    pub fn compile(value: &Value) -> Result<Template, ExprError> {
        Self::compile_at(value, "")
    }

    /// As [`Template::compile`], naming paths under `base` (e.g. `args` → `args.region`), in
    /// compile and render errors alike.
    pub fn compile_at(value: &Value, base: &str) -> Result<Template, ExprError> {
        let root = compile_node(value, base)?;
        let literal = literal_of(&root);
        Ok(Template { root, literal })
    }

    /// The value itself when there is nothing to evaluate, so that it can be checked at load
    /// time (e.g. against the called tool's input schema).
    pub fn literal(&self) -> Option<&Value> {
        self.literal.as_ref()
    }

    pub fn render(&self, vars: &Vars) -> Result<Value, ExprError> {
        match &self.literal {
            Some(value) => Ok(value.clone()),
            None => render_node(&self.root, vars),
        }
    }

    /// The references of every embedded expression, each once.
    pub fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        collect_references(&self.root, &mut out);
        out
    }

    /// The embedded expressions, in document order.
    pub fn expressions(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        collect_exprs(&self.root, &mut out);
        out
    }
}

fn child_key(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    match (base.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{base}.{key}"),
        (_, false) => format!("{base}[{}]", Value::from(key)),
    }
}

fn shown_path(path: &str) -> String {
    if path.is_empty() {
        "the top-level value".to_owned()
    } else {
        path.to_owned()
    }
}

fn at(path: &str, error: ExprError) -> ExprError {
    ExprError::At {
        path: shown_path(path),
        error: Box::new(error),
    }
}

fn compile_node(value: &Value, path: &str) -> Result<Node, ExprError> {
    Ok(match value {
        Value::String(text) => compile_string(text, path).map_err(|e| at(path, e))?,
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_node(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(entries) => Node::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), compile_node(v, &child_key(path, k))?)))
                .collect::<Result<_, ExprError>>()?,
        ),
        other => Node::Literal(other.clone()),
    })
}

const OPEN: &str = "${{";

fn compile_string(text: &str, path: &str) -> Result<Node, ExprError> {
    if !text.contains(OPEN) {
        return Ok(Node::Literal(Value::String(text.to_owned())));
    }
    let syntax = |message: &str| ExprError::TemplateSyntax {
        text: super::convert::shorten(text, 200),
        message: message.to_owned(),
    };
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        if rest[..start].ends_with('$') {
            literal.push_str(&rest[..start - 1]);
            literal.push_str(OPEN);
            rest = &rest[start + OPEN.len()..];
            continue;
        }
        literal.push_str(&rest[..start]);
        let body = &rest[start + OPEN.len()..];
        let end = closing(body).ok_or_else(|| {
            syntax("`${{` without its closing `}}` (write `$${{` for a literal `${{`)")
        })?;
        let source = body[..end].trim();
        if source.is_empty() {
            return Err(syntax("empty `${{ }}`"));
        }
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(Part::Expr(Expr::compile(source)?));
        rest = &body[end + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    let mut exprs: Vec<Expr> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Expr(e) => Some(e.clone()),
            Part::Text(_) => None,
        })
        .collect();
    if exprs.is_empty() {
        // Only escapes: a literal, unescaped.
        return Ok(Node::Literal(Value::String(literal_text(parts))));
    }
    let only_blank_text = parts.iter().all(|p| match p {
        Part::Text(t) => t.trim().is_empty(),
        Part::Expr(_) => true,
    });
    if exprs.len() == 1
        && only_blank_text
        && let Some(expr) = exprs.pop()
    {
        return Ok(Node::Whole {
            expr,
            path: path.to_owned(),
        });
    }
    Ok(Node::Text {
        parts,
        path: path.to_owned(),
    })
}

fn literal_text(parts: Vec<Part>) -> String {
    parts
        .into_iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t),
            Part::Expr(_) => None,
        })
        .collect()
}

/// Where the `}}` closing an expression starts in `body`, skipping CEL string literals and
/// balanced braces (map literals), so `${{ {'a': {'b': '}}'}} }}` is one expression.
fn closing(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                let triple = bytes[i..].starts_with(&[quote, quote, quote]);
                i += if triple { 3 } else { 1 };
                loop {
                    match bytes.get(i) {
                        None => return None,
                        Some(b'\\') => i += 2,
                        Some(&b) if b == quote => {
                            if !triple {
                                break;
                            }
                            if bytes[i..].starts_with(&[quote, quote, quote]) {
                                i += 2;
                                break;
                            }
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn literal_of(node: &Node) -> Option<Value> {
    match node {
        Node::Literal(value) => Some(value.clone()),
        Node::Whole { .. } | Node::Text { .. } => None,
        Node::Array(items) => items
            .iter()
            .map(literal_of)
            .collect::<Option<_>>()
            .map(Value::Array),
        Node::Object(entries) => entries
            .iter()
            .map(|(k, v)| Some((k.clone(), literal_of(v)?)))
            .collect::<Option<Map<_, _>>>()
            .map(Value::Object),
    }
}

fn render_node(node: &Node, vars: &Vars) -> Result<Value, ExprError> {
    Ok(match node {
        Node::Literal(value) => value.clone(),
        Node::Whole { expr, path } => expr.eval(vars).map_err(|e| at(path, e))?,
        Node::Text { parts, path } => {
            let mut text = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => text.push_str(t),
                    Part::Expr(expr) => match expr.eval(vars).map_err(|e| at(path, e))? {
                        Value::String(s) => text.push_str(&s),
                        other => text.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(text)
        }
        Node::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_node(item, vars))
                .collect::<Result<_, _>>()?,
        ),
        Node::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), render_node(v, vars)?)))
                .collect::<Result<_, ExprError>>()?,
        ),
    })
}

fn collect_exprs<'a>(node: &'a Node, out: &mut Vec<&'a Expr>) {
    match node {
        Node::Literal(_) => {}
        Node::Whole { expr, .. } => out.push(expr),
        Node::Text { parts, .. } => out.extend(parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Text(_) => None,
        })),
        Node::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        Node::Object(entries) => entries.iter().for_each(|(_, v)| collect_exprs(v, out)),
    }
}

fn collect_references(node: &Node, out: &mut Vec<Reference>) {
    let mut exprs = Vec::new();
    collect_exprs(node, &mut exprs);
    for expr in exprs {
        for reference in expr.references.iter() {
            if !out.contains(reference) {
                out.push(reference.clone());
            }
        }
    }
}
