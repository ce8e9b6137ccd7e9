//! The one expression language of datamcp: [CEL](https://cel.dev), through the `cel` crate.
//!
//! Workflow steps use it for `args`, `if`, `assert`, `for_each` and `output`; stream message
//! filters will too. An [`Expr`] is compiled once (at load time, so syntax errors surface
//! before anything runs) and evaluated many times against [`Vars`], named JSON values such as
//! `inputs`, `steps` and `item`. A [`Template`] is a JSON value whose strings may embed
//! `${{ expr }}`.
//!
//! What is available is CEL's standard library and macros: `size`, `has`, `map`, `filter`,
//! `all`, `exists`, `exists_one`, the string methods `contains`, `startsWith`, `endsWith`, the
//! conversions `int`, `uint`, `double`, `string`, `bytes`, `bool`, and `type`. There is no
//! regex (`matches`), no `timestamp`/`duration`, and no function of datamcp's own.
//!
//! # Bounds
//!
//! CEL always terminates, but a comprehension over a large list, nested in another, multiplies
//! the work. What bounds an evaluation:
//! - expression text is at most [`MAX_EXPR_BYTES`] (4 KiB), refused at compile;
//! - macros (`map`, `filter`, `all`, `exists`, `exists_one`) nest at most [`MAX_MACRO_NESTING`]
//!   deep, refused at compile, so the work is at most the product of that many list sizes;
//! - the tree is at most [`MAX_DEPTH`] levels deep, refused at compile (the parser's own limit
//!   is 96 levels of brackets and calls);
//! - the size of the variables, which the caller bounds (the row caps of tool results).
//!
//! The interpreter cannot be interrupted once started; run evaluations over big inputs off the
//! async executor. A panic inside the parser or the interpreter is caught and reported as an
//! [`ExprError`]. Both recurse over the tree; compiling runs on a stack of its own, and an
//! evaluation grows the stack first when what is left may not hold the tree's depth.

mod convert;
mod template;

pub use template::Template;

use cel::common::ast::{EntryExpr, Expr as Node, IdedExpr, LiteralValue};
use cel::{Context, Env, ExecutionError, Program};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

/// Longest expression text [`Expr::compile`] accepts, in bytes.
pub const MAX_EXPR_BYTES: usize = 4096;

/// How deep macros (comprehensions) may nest in one expression.
pub const MAX_MACRO_NESTING: usize = 3;

/// How deep the expression tree may be. Only a chain of arithmetic operators gets deep
/// (`a + b + c` nests to the left; `&&` and `||` chains are balanced), and the interpreter
/// recurses once per level, with large frames.
pub const MAX_DEPTH: usize = 64;

/// Parsing recurses over the text and may meet a chain as long as [`MAX_EXPR_BYTES`] allows
/// (2,000 levels) before the depth is known, so it runs on a stack of its own, reserved, not
/// committed, by the OS.
const COMPILE_STACK: usize = 32 << 20;

/// Interpreter stack per tree level, measured in a debug build (about 38 KiB; release frames
/// are smaller), with room to spare.
const EVAL_STACK_PER_LEVEL: usize = 48 << 10;

// The standard library is registered once; every evaluation shares it.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Why an expression or a template could not be compiled or evaluated. Every message quotes
/// the expression, for a reader (often an LLM agent) who sees only the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    #[error(
        "expression is {len} bytes long, over the limit of {max} bytes; split the work over several steps"
    )]
    TooLong { len: usize, max: usize },
    #[error("cannot parse `{expr}`: {message}")]
    Parse {
        expr: String,
        message: String,
        /// 1-based line and column of the first error, when the parser gave one.
        position: Option<(usize, usize)>,
    },
    #[error("`{expr}` nests {what} {depth} deep; at most {max} levels are allowed")]
    TooDeep {
        expr: String,
        what: &'static str,
        depth: usize,
        max: usize,
    },
    #[error("evaluating `{expr}`: {message}{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Eval {
        expr: String,
        message: String,
        hint: Option<String>,
    },
    #[error("`{expr}` must evaluate to a bool, but gave {found}")]
    NotBool { expr: String, found: String },
    #[error("bad template string {text:?}: {message}")]
    TemplateSyntax { text: String, message: String },
    /// An error inside a [`Template`], with the JSON path of the string that holds it.
    #[error("at {path}: {error}")]
    At { path: String, error: Box<ExprError> },
}

/// A variable the expression reads: its root identifier and, when written as a field or a
/// string key right after it, that name (`steps.orders.output` and `steps["orders"]` →
/// `steps`, `orders`; `item` → `item`, none; `steps[i]` → `steps`, none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub root: String,
    pub field: Option<String>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}.{field}", self.root),
            None => f.write_str(&self.root),
        }
    }
}

/// Named JSON values an expression is evaluated against. Values may be borrowed, so the
/// engine's state needs no copy per evaluation.
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    vars: Vec<(String, Cow<'a, Value>)>,
}

impl<'a> Vars<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` (a `Value` or a `&Value`), replacing a variable of the same name.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<VarValue<'a>>) -> Self {
        self.set(name, value);
        self
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<VarValue<'a>>) {
        let name = name.into();
        let value = value.into().0;
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.vars.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// A variable's value for [`Vars`], owned or borrowed.
#[derive(Debug, Clone)]
pub struct VarValue<'a>(Cow<'a, Value>);

impl From<Value> for VarValue<'_> {
    fn from(value: Value) -> Self {
        VarValue(Cow::Owned(value))
    }
}

impl<'a> From<&'a Value> for VarValue<'a> {
    fn from(value: &'a Value) -> Self {
        VarValue(Cow::Borrowed(value))
    }
}

/// A compiled CEL expression. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<Program>,
    references: Arc<[Reference]>,
    /// The distinct roots of `references`: the only variables an evaluation converts.
    roots: Arc<[String]>,
    /// Tree depth, which sizes the stack an evaluation needs.
    depth: usize,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&&*self.source).finish()
    }
}

impl Expr {
    pub fn compile(text: &str) -> Result<Expr, ExprError> {
        if text.len() > MAX_EXPR_BYTES {
            return Err(ExprError::TooLong {
                len: text.len(),
                max: MAX_EXPR_BYTES,
            });
        }
        stacker::grow(COMPILE_STACK, || Self::compile_here(text))
    }

    fn compile_here(text: &str) -> Result<Expr, ExprError> {
        let program = match catch_unwind(|| ENV.compile(text)) {
            Ok(Ok(program)) => program,
            Ok(Err(errors)) => return Err(parse_error(text, &errors)),
            Err(panic) => {
                return Err(ExprError::Parse {
                    expr: text.to_owned(),
                    message: format!("the parser failed: {}", panic_text(&*panic)),
                    position: None,
                });
            }
        };
        let mut walk = Walk::default();
        walk.visit(program.expression(), 0);
        if walk.max_nesting > MAX_MACRO_NESTING {
            return Err(ExprError::TooDeep {
                expr: text.to_owned(),
                what: "macros (map, filter, all, exists, exists_one)",
                depth: walk.max_nesting,
                max: MAX_MACRO_NESTING,
            });
        }
        if walk.max_depth > MAX_DEPTH {
            return Err(ExprError::TooDeep {
                expr: text.to_owned(),
                what: "operations (a long chain of + or * counts one level per operator)",
                depth: walk.max_depth,
                max: MAX_DEPTH,
            });
        }
        let (references, depth) = (walk.references, walk.max_depth);
        let mut roots: Vec<String> = references.iter().map(|r| r.root.clone()).collect();
        roots.sort_unstable();
        roots.dedup();
        Ok(Expr {
            source: text.into(),
            program: Arc::new(program),
            references: references.into(),
            roots: roots.into(),
            depth,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the expression reads, in order of first appearance, each once.
    /// Variables a macro binds (`r` in `rows.map(r, r[0])`) are not references.
    pub fn references(&self) -> Vec<Reference> {
        self.references.to_vec()
    }

    pub fn eval(&self, vars: &Vars) -> Result<Value, ExprError> {
        let result = self.run(vars)?;
        convert::to_json(&result).map_err(|message| ExprError::Eval {
            expr: self.source.to_string(),
            message,
            hint: None,
        })
    }

    /// Evaluates a condition (`if`, `assert`, a filter): anything but a bool is an error.
    pub fn eval_bool(&self, vars: &Vars) -> Result<bool, ExprError> {
        match self.run(vars)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(ExprError::NotBool {
                expr: self.source.to_string(),
                found: format!(
                    "a {} ({})",
                    convert::type_name(&other),
                    convert::preview(&other)
                ),
            }),
        }
    }

    fn run(&self, vars: &Vars) -> Result<cel::Value, ExprError> {
        let mut context = Context::with_env(Arc::clone(&ENV));
        for root in self.roots.iter() {
            if let Some(value) = vars.get(root) {
                context.add_variable_as_val(root.as_str(), convert::to_val(value));
            }
        }
        let stack = (self.depth + 4) * EVAL_STACK_PER_LEVEL;
        let outcome = stacker::maybe_grow(stack, stack + (1 << 20), || {
            catch_unwind(AssertUnwindSafe(|| self.program.execute(&context)))
        });
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.describe(error, vars)),
            Err(panic) => Err(ExprError::Eval {
                expr: self.source.to_string(),
                message: format!("the interpreter failed: {}", panic_text(&*panic)),
                hint: None,
            }),
        }
    }

    /// The interpreter's error in the words of someone writing the expression.
    fn describe(&self, error: ExecutionError, vars: &Vars) -> ExprError {
        let names = || vars.names().join(", ");
        let (message, hint) = match error {
            ExecutionError::UndeclaredReference(name) if self.roots.contains(&*name) => (
                format!("unknown variable '{name}'"),
                Some(format!("available variables: {}", names())),
            ),
            ExecutionError::UndeclaredReference(name) => (
                format!("unknown function or method '{name}'"),
                Some(
                    "available: CEL's standard functions and macros (size, has, map, filter, \
                     all, exists, contains, startsWith, endsWith, int, double, string, ...)"
                        .to_owned(),
                ),
            ),
            ExecutionError::NoSuchKey(key) => {
                (format!("no such key '{key}'"), self.keys_hint(&key, vars))
            }
            ExecutionError::NoSuchOverload(overload) => {
                (overload.to_string(), Some(CONVERT_HINT.to_owned()))
            }
            ExecutionError::UnsupportedBinaryOperator(op, a, b) => (
                format!(
                    "'{op}' does not apply to {} {} and {} {}",
                    convert::type_name(&a),
                    convert::preview(&a),
                    convert::type_name(&b),
                    convert::preview(&b)
                ),
                Some(CONVERT_HINT.to_owned()),
            ),
            ExecutionError::DivisionByZero(_) => ("division by zero".to_owned(), None),
            ExecutionError::RemainderByZero(_) => ("remainder (%) by zero".to_owned(), None),
            ExecutionError::Overflow(op, a, b) => (
                format!(
                    "integer overflow in {} {op} {}",
                    convert::preview(&a),
                    convert::preview(&b)
                ),
                Some("use double() for values this large".to_owned()),
            ),
            ExecutionError::IndexOutOfBounds(index) => (
                format!("index {} is out of bounds", convert::preview(&index)),
                Some("check size(list) first".to_owned()),
            ),
            ExecutionError::ValuesNotComparable(a, b) => (
                format!(
                    "{} cannot be compared with {}",
                    convert::preview(&a),
                    convert::preview(&b)
                ),
                None,
            ),
            ExecutionError::UnsupportedIndex(index, target) => (
                format!(
                    "cannot index {} with {}",
                    convert::preview(&target),
                    convert::preview(&index)
                ),
                None,
            ),
            other => (other.to_string(), None),
        };
        ExprError::Eval {
            expr: self.source.to_string(),
            message,
            hint,
        }
    }

    /// For a missing key: the keys the object does have, when the expression reads it at a
    /// path known without evaluating (`inputs.x`, `steps.a.output["x"]`).
    fn keys_hint(&self, key: &str, vars: &Vars) -> Option<String> {
        let mut walk = Walk {
            collect_accesses: true,
            ..Walk::default()
        };
        walk.visit(self.program.expression(), 0);
        walk.accesses
            .iter()
            .filter(|access| access.key == key)
            .find_map(|access| {
                let mut value = vars.get(&access.root)?;
                for segment in &access.path {
                    value = match segment {
                        Segment::Key(k) => value.get(k.as_str())?,
                        Segment::Index(i) => value.get(usize::try_from(*i).ok()?)?,
                    };
                }
                let object = value.as_object()?;
                if object.contains_key(key) {
                    return None;
                }
                let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
                keys.sort_unstable();
                let shown = convert::shorten(&keys.join(", "), 300);
                Some(if keys.is_empty() {
                    "the map there is empty".to_owned()
                } else {
                    format!("available keys: {shown}; use has(x.key) to test for an optional one")
                })
            })
    }
}

const CONVERT_HINT: &str = "CEL does not convert types implicitly, not even int to double; \
     convert with int(), uint(), double() or string(), or write 2.0 for a double";

fn parse_error(text: &str, errors: &cel::ParseErrors) -> ExprError {
    // The crate's positions are 1-based; 0 means none. Its syntax errors are the useful ones:
    // put them before the follow-up errors of its AST builder ("Incomplete ExprContext").
    let position = |e: &cel::ParseError| {
        let line = usize::try_from(e.pos.0).ok().filter(|l| *l > 0)?;
        let column = usize::try_from(e.pos.1).ok().filter(|c| *c > 0)?;
        Some((line, column))
    };
    let mut sorted: Vec<&cel::ParseError> = errors.errors.iter().collect();
    sorted.sort_by_key(|e| !e.msg.starts_with("Syntax error"));
    let message = sorted
        .iter()
        .take(3)
        .map(|e| match position(e) {
            Some((line, column)) if text.contains('\n') => {
                format!("{} (line {line}, column {column})", e.msg)
            }
            Some((_, column)) => format!("{} (at column {column})", e.msg),
            None => e.msg.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    ExprError::Parse {
        expr: text.to_owned(),
        message,
        position: sorted.first().and_then(|e| position(e)),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(i64),
}

/// A field or key read on a value found at a static path: `root.path... [key]`.
#[derive(Debug)]
struct Access {
    root: String,
    path: Vec<Segment>,
    key: String,
}

/// One pass over the AST: the references, the macro nesting and, for error hints, the keyed
/// accesses on static paths. Macro-bound names are in scope only inside their comprehension.
#[derive(Default)]
struct Walk<'a> {
    references: Vec<Reference>,
    bound: Vec<&'a str>,
    max_nesting: usize,
    depth: usize,
    max_depth: usize,
    collect_accesses: bool,
    accesses: Vec<Access>,
}

impl<'a> Walk<'a> {
    fn visit(&mut self, node: &'a IdedExpr, nesting: usize) {
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
        self.visit_node(node, nesting);
        self.depth -= 1;
    }

    fn visit_node(&mut self, node: &'a IdedExpr, nesting: usize) {
        match &node.expr {
            Node::Ident(name) => self.reference(name, None),
            Node::Select(select) => {
                self.access(&select.operand, &select.field);
                match &select.operand.expr {
                    Node::Ident(root) => self.reference(root, Some(&select.field)),
                    _ => self.visit(&select.operand, nesting),
                }
            }
            Node::Call(call) => {
                // Indexing (`a["b"]`, `a[0]`) and optional selection (`a.?b`, `a[?"b"]`).
                if matches!(call.func_name.as_str(), "_[_]" | "_[?_]" | "_?._")
                    && call.target.is_none()
                    && let [operand, index] = call.args.as_slice()
                {
                    let key = match &index.expr {
                        Node::Literal(LiteralValue::String(s)) => Some(s.inner()),
                        _ => None,
                    };
                    if let Some(key) = key {
                        self.access(operand, key);
                    }
                    match &operand.expr {
                        Node::Ident(root) => self.reference(root, key),
                        _ => self.visit(operand, nesting),
                    }
                    self.visit(index, nesting);
                    return;
                }
                if let Some(target) = &call.target {
                    self.visit(target, nesting);
                }
                for arg in &call.args {
                    self.visit(arg, nesting);
                }
            }
            Node::Comprehension(comp) => {
                self.visit(&comp.iter_range, nesting);
                self.visit(&comp.accu_init, nesting);
                let nesting = nesting + 1;
                self.max_nesting = self.max_nesting.max(nesting);
                let scope = self.bound.len();
                self.bound.push(&comp.iter_var);
                if let Some(second) = &comp.iter_var2 {
                    self.bound.push(second);
                }
                self.bound.push(&comp.accu_var);
                self.visit(&comp.loop_cond, nesting);
                self.visit(&comp.loop_step, nesting);
                self.visit(&comp.result, nesting);
                self.bound.truncate(scope);
            }
            Node::List(list) => {
                for element in &list.elements {
                    self.visit(element, nesting);
                }
            }
            Node::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        self.visit(&entry.key, nesting);
                        self.visit(&entry.value, nesting);
                    }
                }
            }
            Node::Struct(object) => {
                for entry in &object.entries {
                    match &entry.expr {
                        EntryExpr::StructField(field) => self.visit(&field.value, nesting),
                        EntryExpr::MapEntry(entry) => {
                            self.visit(&entry.key, nesting);
                            self.visit(&entry.value, nesting);
                        }
                    }
                }
            }
            Node::Literal(_) | Node::Unspecified => {}
        }
    }

    fn reference(&mut self, root: &str, field: Option<&str>) {
        // The macros' accumulator is `@result`, a name no expression can spell.
        if self.bound.contains(&root) || root.starts_with('@') {
            return;
        }
        let reference = Reference {
            root: root.to_owned(),
            field: field.map(str::to_owned),
        };
        if !self.references.contains(&reference) {
            self.references.push(reference);
        }
    }

    fn access(&mut self, operand: &'a IdedExpr, key: &str) {
        if !self.collect_accesses {
            return;
        }
        let mut path = Vec::new();
        let mut node = operand;
        let root = loop {
            match &node.expr {
                Node::Ident(root) => break root,
                Node::Select(select) => {
                    path.push(Segment::Key(select.field.clone()));
                    node = &select.operand;
                }
                Node::Call(call)
                    if call.func_name == "_[_]"
                        && call.target.is_none()
                        && call.args.len() == 2 =>
                {
                    path.push(match &call.args[1].expr {
                        Node::Literal(LiteralValue::String(s)) => {
                            Segment::Key(s.inner().to_owned())
                        }
                        Node::Literal(LiteralValue::Int(i)) => Segment::Index(*i.inner()),
                        _ => return,
                    });
                    node = &call.args[0];
                }
                _ => return,
            }
        };
        if self.bound.contains(&root.as_str()) {
            return;
        }
        path.reverse();
        self.accesses.push(Access {
            root: root.clone(),
            path,
            key: key.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests;
