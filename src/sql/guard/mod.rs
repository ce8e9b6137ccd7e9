//! The read-only guard: SQL is parsed with the warehouse's dialect and allowed only when it is
//! exactly one statement that reads.
//!
//! The guard decides on the syntax tree, never on words, so `deleted_at`, `'DROP'` in a string or
//! a column named `update` are fine, while a write hidden in a CTE, a locking read or a function
//! with side effects is refused wherever it sits. [`check`] is the only constructor of
//! [`GuardedSql`], and warehouses only execute a [`GuardedSql`]: no SQL reaches a connection
//! without passing here.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor, Visit,
    Visitor,
};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

mod lists;

use lists::denied_functions;
pub use lists::{is_denied_sqlite_function, is_reporting_sqlite_pragma};

/// The SQL dialects the guard knows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
}

impl Dialect {
    /// The lowercase name used in config and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    fn parser_dialect(self) -> &'static dyn sqlparser::dialect::Dialect {
        match self {
            Dialect::Sqlite => &SQLiteDialect {},
            Dialect::Postgres => &PostgreSqlDialect {},
            Dialect::Mysql => &MySqlDialect {},
        }
    }
}

/// Why a statement was refused. Each message says what was found and what is allowed instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Nothing but whitespace or comments.
    #[error("the SQL is empty; send one SELECT query")]
    Empty,
    /// Not valid SQL for this dialect; the guard fails closed.
    #[error("the SQL does not parse as {dialect}: {message}")]
    Parse {
        /// Dialect used.
        dialect: &'static str,
        /// The parser's message, with line and column.
        message: String,
    },
    /// More than one statement.
    #[error("{0} statements found; send exactly one read-only query (no ';' between statements)")]
    MultipleStatements(usize),
    /// A statement that is not a read.
    #[error(
        "{0} is not allowed: only a single read-only query is (SELECT, WITH … SELECT, VALUES, EXPLAIN without ANALYZE)"
    )]
    NotARead(String),
    /// A write nested inside a query, e.g. in a CTE.
    #[error("a data-modifying {0} inside the query is not allowed; the query must only read")]
    NestedWrite(String),
    /// `SELECT … INTO` creates a table or writes variables/files.
    #[error("SELECT … INTO is not allowed (it writes); select the rows without INTO")]
    SelectInto,
    /// `FOR UPDATE` / `FOR SHARE` take row locks.
    #[error("locking reads (FOR UPDATE/FOR SHARE) are not allowed; drop the locking clause")]
    LockingRead,
    /// `EXPLAIN ANALYZE` runs the statement.
    #[error(
        "EXPLAIN ANALYZE executes the statement and is not allowed; use EXPLAIN without ANALYZE"
    )]
    ExplainAnalyze,
    /// A function with side effects or host access.
    #[error("function {0}() is not allowed: it has side effects or reaches outside the database")]
    DeniedFunction(String),
    /// A PRAGMA that writes or is not known to be read-only.
    #[error(
        "PRAGMA {0} is not allowed here; reporting PRAGMAs are, e.g. PRAGMA table_info('orders') or SELECT * FROM pragma_table_info('orders')"
    )]
    Pragma(String),
    /// MySQL executable comments run their content on the server.
    #[error("MySQL executable comments (/*! … */) are not allowed; write the SQL without them")]
    ExecutableComment,
}

/// SQL that passed the guard: one read-only statement in a known dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedSql {
    text: String,
    canonical: String,
    dialect: Dialect,
    is_query: bool,
}

impl GuardedSql {
    /// The SQL as submitted.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The statement re-rendered from its syntax tree: whitespace, comments and keyword case
    /// normalised. Equal canonical forms mean the same statement (the cache key uses this), and
    /// it is exactly what the guard checked.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The dialect it was checked for.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// SQL that did NOT pass the guard, for tests that measure the database-side layer alone.
    /// Exists only with the `test-bypass-guard` feature, which only the test suite enables.
    #[cfg(feature = "test-bypass-guard")]
    pub fn bypassing_the_guard_in_tests(sql: &str, dialect: Dialect) -> Self {
        GuardedSql {
            text: sql.to_owned(),
            canonical: sql.to_owned(),
            dialect,
            is_query: false,
        }
    }

    /// Whether it is a plain query (not EXPLAIN or a PRAGMA), so it can be wrapped in a cursor.
    pub fn is_query(&self) -> bool {
        self.is_query
    }
}

/// Quotes an identifier for `dialect`, doubling any quote character inside it, so that a name
/// can never end the quoting and become SQL.
pub fn quote_identifier(dialect: Dialect, identifier: &str) -> String {
    match dialect {
        Dialect::Mysql => format!("`{}`", identifier.replace('`', "``")),
        _ => format!("\"{}\"", identifier.replace('"', "\"\"")),
    }
}

/// How many values the statement's placeholders take: the highest `$n`/`?n`, or the number of
/// plain `?`. `None` when the SQL does not tokenize.
pub fn placeholder_count(sql: &str, dialect: Dialect) -> Option<usize> {
    let tokens = Tokenizer::new(dialect.parser_dialect(), sql)
        .tokenize()
        .ok()?;
    let mut plain = 0;
    let mut highest = 0;
    for token in tokens {
        if let Token::Placeholder(text) = token {
            match text[1..].parse::<usize>() {
                Ok(n) => highest = highest.max(n),
                Err(_) => plain += 1,
            }
        }
    }
    Some(plain.max(highest))
}

/// Checks `sql` for `dialect`; the only way to obtain a [`GuardedSql`].
pub fn check(sql: &str, dialect: Dialect) -> Result<GuardedSql, GuardError> {
    let parser_dialect = dialect.parser_dialect();
    if dialect == Dialect::Mysql && has_executable_comment(sql) {
        return Err(GuardError::ExecutableComment);
    }
    let statements = Parser::new(parser_dialect)
        .with_recursion_limit(64)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| GuardError::Parse {
            dialect: dialect.name(),
            message: e.to_string(),
        })?;
    let statement = match statements.as_slice() {
        [] => return Err(GuardError::Empty),
        [one] => one,
        many => return Err(GuardError::MultipleStatements(many.len())),
    };
    check_top_level(statement, dialect)?;
    let mut walker = ReadOnlyWalker { dialect, depth: 0 };
    if let ControlFlow::Break(error) = statement.visit(&mut walker) {
        return Err(error);
    }
    Ok(GuardedSql {
        text: sql.to_owned(),
        canonical: statement.to_string(),
        dialect,
        is_query: matches!(statement, Statement::Query(_)),
    })
}

fn check_top_level(statement: &Statement, dialect: Dialect) -> Result<(), GuardError> {
    match statement {
        Statement::Query(_) => Ok(()),
        Statement::Explain {
            analyze,
            statement,
            options,
            ..
        } => {
            // `EXPLAIN (ANALYZE) …` and `EXPLAIN (ANALYZE true) …` run the statement too.
            let analyze_option = options.iter().flatten().any(|option| {
                option.name.value.eq_ignore_ascii_case("analyze")
                    && option.arg.as_ref().is_none_or(|arg| {
                        !matches!(
                            arg.to_string().to_ascii_lowercase().as_str(),
                            "false" | "off" | "0"
                        )
                    })
            });
            if *analyze || analyze_option {
                Err(GuardError::ExplainAnalyze)
            } else if matches!(**statement, Statement::Query(_)) {
                Ok(())
            } else {
                Err(GuardError::NotARead(format!(
                    "EXPLAIN of {}",
                    statement_kind(statement)
                )))
            }
        }
        Statement::Pragma { name, value, is_eq } if dialect == Dialect::Sqlite => {
            let pragma = last_part(name);
            // `PRAGMA table_info('orders')` names what to report on; `PRAGMA x = v` sets x.
            if !is_eq && is_reporting_sqlite_pragma(&pragma, value.is_some()) {
                Ok(())
            } else {
                Err(GuardError::Pragma(pragma))
            }
        }
        other => Err(GuardError::NotARead(statement_kind(other))),
    }
}

/// Walks the whole tree: nested statements, SELECT … INTO, locks, functions.
struct ReadOnlyWalker {
    dialect: Dialect,
    depth: usize,
}

impl Visitor for ReadOnlyWalker {
    type Break = GuardError;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<GuardError> {
        self.depth += 1;
        // The top level was checked already; below it only queries may appear.
        if self.depth > 1 && !matches!(statement, Statement::Query(_)) {
            return ControlFlow::Break(GuardError::NestedWrite(statement_kind(statement)));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _statement: &Statement) -> ControlFlow<GuardError> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<GuardError> {
        if !query.locks.is_empty() {
            return ControlFlow::Break(GuardError::LockingRead);
        }
        if let Some(error) = nested_write(&query.body) {
            return ControlFlow::Break(error);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<GuardError> {
        if select.into.is_some() {
            return ControlFlow::Break(GuardError::SelectInto);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<GuardError> {
        if let Expr::Function(function) = expr {
            return self.check_function(&function.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<GuardError> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.check_function(name),
            _ => ControlFlow::Continue(()),
        }
    }
}

impl ReadOnlyWalker {
    fn check_function(&self, name: &ObjectName) -> ControlFlow<GuardError> {
        let function = last_part(name);
        if denied_functions(self.dialect).contains(&function.as_str()) {
            ControlFlow::Break(GuardError::DeniedFunction(function))
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn nested_write(body: &SetExpr) -> Option<GuardError> {
    match body {
        SetExpr::Insert(_) => Some(GuardError::NestedWrite("INSERT".into())),
        SetExpr::Update(_) => Some(GuardError::NestedWrite("UPDATE".into())),
        SetExpr::Delete(_) => Some(GuardError::NestedWrite("DELETE".into())),
        SetExpr::Merge(_) => Some(GuardError::NestedWrite("MERGE".into())),
        SetExpr::SetOperation { left, right, .. } => {
            nested_write(left).or_else(|| nested_write(right))
        }
        _ => None,
    }
}

/// The lowercase last part of a possibly qualified name (`pg_catalog.pg_sleep` → `pg_sleep`).
fn last_part(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => ident.value.to_lowercase(),
        Some(ObjectNamePart::Function(function)) => function.name.value.to_lowercase(),
        None => String::new(),
    }
}

/// A short name for a statement's kind, e.g. `INSERT` or `CREATE TABLE`, for messages.
fn statement_kind(statement: &Statement) -> String {
    let rendered = statement.to_string();
    let words: Vec<&str> = rendered.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second]
            if matches!(
                first.to_ascii_uppercase().as_str(),
                "CREATE" | "DROP" | "ALTER" | "TRUNCATE" | "SET" | "START" | "SHOW" | "LOCK"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "this statement".to_owned(),
    }
}

/// Whether MySQL would execute part of a comment (`/*! … */`). MySQL's tokenizer reads such a
/// comment's content as SQL, so a `/*!` that is not inside a token (a string literal or quoted
/// identifier) is an executable comment.
fn has_executable_comment(sql: &str) -> bool {
    let occurrences: Vec<usize> = sql.match_indices("/*!").map(|(i, _)| i).collect();
    if occurrences.is_empty() {
        return false;
    }
    let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, sql).tokenize_with_location() else {
        // Unparseable input is refused by the parser; stay on the safe side regardless.
        return true;
    };
    let offsets = LineOffsets::new(sql);
    let covered: Vec<(usize, usize)> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .filter_map(|t| Some((offsets.at(t.span.start)?, offsets.at(t.span.end)?)))
        .collect();
    occurrences
        .iter()
        .any(|&at| !covered.iter().any(|&(start, end)| start <= at && at < end))
}

/// Converts the tokenizer's (line, column) locations, counted in characters, to byte offsets.
struct LineOffsets<'a> {
    lines: Vec<&'a str>,
    starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineOffsets {
            lines: text.split('\n').collect(),
            starts,
        }
    }

    fn at(&self, location: sqlparser::tokenizer::Location) -> Option<usize> {
        let line = usize::try_from(location.line).ok()?.checked_sub(1)?;
        let column = usize::try_from(location.column).ok()?.checked_sub(1)?;
        let text = self.lines.get(line)?;
        let within = text
            .char_indices()
            .nth(column)
            .map_or(text.len(), |(i, _)| i);
        Some(self.starts.get(line)? + within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(dialect: Dialect, sql: &str) {
        if let Err(error) = check(sql, dialect) {
            panic!("{} should allow {sql:?} but said: {error}", dialect.name());
        }
    }

    fn refused(dialect: Dialect, sql: &str) -> GuardError {
        match check(sql, dialect) {
            Ok(_) => panic!("{} should refuse {sql:?}", dialect.name()),
            Err(error) => error,
        }
    }

    const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql];

    #[test]
    fn honest_reads_are_allowed_whatever_words_they_contain() {
        for dialect in ALL {
            allowed(dialect, "SELECT 1");
            allowed(
                dialect,
                "select id, deleted_at, updated_by from orders where status = 'DROP'",
            );
            allowed(
                dialect,
                "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.country",
            );
            allowed(
                dialect,
                "WITH recent AS (SELECT * FROM orders WHERE ordered_at > '2024-01-01') SELECT count(*) FROM recent",
            );
            allowed(dialect, "SELECT a FROM t UNION ALL SELECT b FROM u");
            allowed(
                dialect,
                "SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY ordered_at) FROM orders",
            );
            allowed(
                dialect,
                "SELECT * FROM (SELECT 1 AS x) sub WHERE x IN (SELECT 1)",
            );
            allowed(dialect, "SELECT 1;");
            allowed(dialect, "-- a comment\nSELECT 1 /* another */");
            allowed(dialect, "EXPLAIN SELECT * FROM orders");
        }
        allowed(Dialect::Sqlite, "SELECT \"update\" FROM t");
        allowed(
            Dialect::Sqlite,
            "SELECT json_extract(payload, '$.page') FROM events",
        );
        allowed(Dialect::Sqlite, "PRAGMA table_info('orders')");
        allowed(Dialect::Sqlite, "PRAGMA index_list(\"orders\")");
        allowed(Dialect::Sqlite, "PRAGMA compile_options");
        allowed(Dialect::Sqlite, "SELECT * FROM pragma_table_info('orders')");
        allowed(Dialect::Sqlite, "EXPLAIN QUERY PLAN SELECT * FROM orders");
        allowed(Dialect::Sqlite, "VALUES (1, 2), (3, 4)");
        allowed(
            Dialect::Postgres,
            "SELECT DISTINCT ON (customer_id) customer_id, total FROM orders ORDER BY customer_id, total DESC",
        );
        allowed(
            Dialect::Postgres,
            "SELECT payload->>'page', amount::numeric FROM events",
        );
        allowed(
            Dialect::Postgres,
            "SELECT count(*) FILTER (WHERE status = 'paid') FROM orders",
        );
        allowed(
            Dialect::Postgres,
            "SELECT country, city, sum(x) FROM t GROUP BY GROUPING SETS ((country), (city))",
        );
        allowed(
            Dialect::Postgres,
            "SELECT * FROM orders o, LATERAL (SELECT * FROM items i WHERE i.order_id = o.id LIMIT 1) x",
        );
        allowed(Dialect::Mysql, "SELECT `update`, `order` FROM `orders`");
    }

    #[test]
    fn writes_of_every_kind_are_refused() {
        for dialect in ALL {
            for sql in [
                "DELETE FROM orders",
                "UPDATE orders SET status = 'x'",
                "INSERT INTO orders (id) VALUES (1)",
                "DROP TABLE orders",
                "CREATE TABLE x (id INT)",
                "ALTER TABLE orders ADD COLUMN x INT",
                "BEGIN",
                "COMMIT",
            ] {
                assert!(
                    matches!(refused(dialect, sql), GuardError::NotARead(_)),
                    "{sql}"
                );
            }
        }
        refused(Dialect::Postgres, "TRUNCATE orders");
        refused(Dialect::Postgres, "SET search_path = evil");
        refused(Dialect::Postgres, "GRANT ALL ON orders TO public");
        refused(Dialect::Postgres, "COPY orders TO '/tmp/x'");
        refused(Dialect::Mysql, "SET autocommit = 1");
    }

    #[test]
    fn stacked_statements_are_refused() {
        for dialect in ALL {
            assert_eq!(
                refused(dialect, "SELECT 1; DROP TABLE orders"),
                GuardError::MultipleStatements(2)
            );
            assert_eq!(
                refused(dialect, "SELECT 1; COMMIT; DROP TABLE users;"),
                GuardError::MultipleStatements(3)
            );
        }
    }

    #[test]
    fn writes_hidden_in_queries_are_refused() {
        assert!(matches!(
            refused(
                Dialect::Postgres,
                "WITH x AS (DELETE FROM orders RETURNING id) SELECT * FROM x"
            ),
            GuardError::NestedWrite(_)
        ));
        assert!(matches!(
            refused(
                Dialect::Postgres,
                "WITH x AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT 1"
            ),
            GuardError::NestedWrite(_)
        ));
        assert_eq!(
            refused(Dialect::Postgres, "SELECT * INTO copy FROM orders"),
            GuardError::SelectInto
        );
        assert_eq!(
            refused(Dialect::Postgres, "SELECT * FROM orders FOR UPDATE"),
            GuardError::LockingRead
        );
        assert_eq!(
            refused(Dialect::Mysql, "SELECT * FROM orders FOR SHARE"),
            GuardError::LockingRead
        );
        assert_eq!(
            refused(Dialect::Postgres, "EXPLAIN ANALYZE SELECT 1"),
            GuardError::ExplainAnalyze
        );
        assert!(matches!(
            refused(Dialect::Postgres, "EXPLAIN DELETE FROM orders"),
            GuardError::NotARead(_)
        ));
    }

    #[test]
    fn side_effect_functions_are_refused_anywhere() {
        for (dialect, sql) in [
            (Dialect::Sqlite, "SELECT load_extension('/tmp/evil.so')"),
            (Dialect::Sqlite, "SELECT writefile('/tmp/x', 'y')"),
            (Dialect::Postgres, "SELECT pg_sleep(10)"),
            (
                Dialect::Postgres,
                "SELECT * FROM orders WHERE id = (SELECT pg_catalog.pg_terminate_backend(1))",
            ),
            (Dialect::Postgres, "SELECT * FROM pg_ls_dir('/')"),
            (Dialect::Postgres, "SELECT nextval('orders_id_seq')"),
            (
                Dialect::Postgres,
                "SELECT set_config('default_transaction_read_only', 'off', false)",
            ),
            (
                Dialect::Postgres,
                "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS t(a int)",
            ),
            (Dialect::Mysql, "SELECT SLEEP(5)"),
            (Dialect::Mysql, "SELECT LOAD_FILE('/etc/passwd')"),
            (Dialect::Mysql, "SELECT BENCHMARK(100000000, MD5('x'))"),
        ] {
            assert!(
                matches!(refused(dialect, sql), GuardError::DeniedFunction(_)),
                "{sql}"
            );
        }
    }

    #[test]
    fn sqlite_specific_escapes_are_refused() {
        assert!(matches!(
            refused(Dialect::Sqlite, "ATTACH DATABASE '/tmp/x.db' AS x"),
            GuardError::NotARead(_)
        ));
        refused(Dialect::Sqlite, "PRAGMA query_only = OFF");
        refused(Dialect::Sqlite, "PRAGMA table_info = 'orders'");
        assert!(matches!(
            refused(Dialect::Sqlite, "PRAGMA query_only(0)"),
            GuardError::Pragma(_)
        ));
        assert!(matches!(
            refused(Dialect::Sqlite, "PRAGMA user_version = 7"),
            GuardError::Pragma(_)
        ));
        assert!(matches!(
            refused(Dialect::Sqlite, "PRAGMA writable_schema"),
            GuardError::Pragma(_)
        ));
        refused(Dialect::Sqlite, "VACUUM INTO '/tmp/copy.db'");
        refused(Dialect::Sqlite, "VACUUM");
    }

    #[test]
    fn mysql_executable_comments_are_refused_but_not_in_strings() {
        assert_eq!(
            refused(Dialect::Mysql, "SELECT 1 /*!50000 , SLEEP(1) */"),
            GuardError::ExecutableComment
        );
        assert_eq!(
            refused(Dialect::Mysql, "SELECT 1; /*!50000 DROP TABLE users */"),
            GuardError::ExecutableComment
        );
        allowed(Dialect::Mysql, "SELECT '/*!50000 not a comment */'");
        allowed(Dialect::Mysql, "SELECT 1 /* an ordinary comment */");
    }

    #[test]
    fn empty_and_unparseable_input_is_refused() {
        for dialect in ALL {
            assert_eq!(refused(dialect, ""), GuardError::Empty);
            assert_eq!(refused(dialect, "  -- only a comment\n"), GuardError::Empty);
            assert!(matches!(
                refused(dialect, "SELEC 1"),
                GuardError::Parse { .. }
            ));
        }
    }

    #[test]
    fn comment_tricks_do_not_hide_a_second_statement() {
        refused(Dialect::Sqlite, "SELECT 1 /* /* */ ; DROP TABLE t; /* */");
        refused(Dialect::Sqlite, "SELECT 'a\\'; DROP TABLE t; --'");
        refused(Dialect::Mysql, "SELECT 1--1;DROP TABLE t");
    }

    #[test]
    fn quoted_identifiers_cannot_become_sql() {
        for dialect in ALL {
            let evil = quote_identifier(dialect, "total\"`; DROP TABLE orders; --");
            let sql = format!("SELECT 1 FROM t ORDER BY {evil}");
            allowed(dialect, &sql);
        }
        assert_eq!(quote_identifier(Dialect::Postgres, "a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier(Dialect::Mysql, "a`b"), "`a``b`");
    }

    #[test]
    fn placeholders_are_counted_per_dialect() {
        assert_eq!(
            placeholder_count("SELECT $1, $2, $1", Dialect::Postgres),
            Some(2)
        );
        assert_eq!(placeholder_count("SELECT ?, ?", Dialect::Mysql), Some(2));
        assert_eq!(placeholder_count("SELECT ?1, ?3", Dialect::Sqlite), Some(3));
        assert_eq!(placeholder_count("SELECT '?'", Dialect::Mysql), Some(0));
    }

    #[test]
    fn canonical_form_ignores_whitespace_comments_and_case() {
        let a = check("select  id\nFROM orders -- note\n", Dialect::Sqlite).expect("allowed");
        let b = check("SELECT id FROM orders", Dialect::Sqlite).expect("allowed");
        assert_eq!(a.canonical(), b.canonical());
    }
}
