//! The read-only guard: SQL is parsed with the warehouse's dialect and allowed only when it is
//! exactly one statement that reads.
//!
//! The guard decides on the syntax tree, never on words, so `deleted_at`, `'DROP'` in a string or
//! a column named `update` are fine, while a write hidden in a CTE, a locking read or a function
//! with side effects is refused wherever it sits. [`check`] is the only constructor of
//! [`GuardedSql`], and warehouses only execute a [`GuardedSql`]: no SQL reaches a connection
//! without passing here.

use std::ops::ControlFlow;

use sqlparser::ast::{ObjectName, ObjectNamePart, Statement, Visit};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

#[cfg(test)]
mod fuzz;
mod lexing;
mod lists;
mod walk;

pub use lists::{is_allowed_sqlite_function, is_reporting_sqlite_pragma};

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

/// The bounds a statement must fit before it is parsed, and the functions a warehouse's config
/// vouches for. The defaults admit any hand-written or generated analytical query we have seen
/// and keep the guard's own cost per call to a few milliseconds and a few megabytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Longest SQL text, in bytes.
    pub max_bytes: usize,
    /// Most tokens (words, literals, operators; not whitespace or comments).
    pub max_tokens: usize,
    /// Deepest nesting: parentheses plus the operators chained inside them.
    pub max_depth: usize,
    /// Functions allowed beyond the built-in lists, as `name` or `schema.name` (PostgreSQL and
    /// MySQL/MariaDB). Never overrides the functions that are never allowed.
    pub allowed_functions: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_bytes: 256 * 1024,
            max_tokens: 20_000,
            max_depth: 1_000,
            allowed_functions: Vec::new(),
        }
    }
}

impl Settings {
    /// Whether the config vouches for `function` as called: `name` allows unqualified calls,
    /// `schema.name` calls naming that schema.
    fn allows(&self, function: &FunctionName) -> bool {
        let called = function.to_string();
        self.allowed_functions
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&called))
    }
}

/// A function as the database resolves it: name folded as the dialect folds it, and the schema
/// when the call names one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionName {
    /// The schema (PostgreSQL) or database (MySQL) the call names, if any.
    pub schema: Option<String>,
    /// The function's name.
    pub name: String,
}

impl std::fmt::Display for FunctionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Why a statement was refused. Each message says what was found and what is allowed instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Nothing but whitespace or comments.
    #[error("the SQL is empty; send one SELECT query")]
    Empty,
    /// Longer than the warehouse allows.
    #[error(
        "the SQL is {bytes} bytes, over the limit of {limit} (max_sql_bytes); send a shorter query: aggregate in SQL, or pass long value lists as params"
    )]
    TooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More tokens than the warehouse allows.
    #[error(
        "the SQL has {tokens} tokens, over the limit of {limit} (max_sql_tokens); send a shorter query: aggregate in SQL, or pass long value lists as params"
    )]
    TooManyTokens {
        /// How many it has.
        tokens: usize,
        /// The limit.
        limit: usize,
    },
    /// Nested or chained deeper than the warehouse allows.
    #[error(
        "the SQL nests {depth} levels deep (parentheses plus chained operators such as + AND || UNION), over the limit of {limit} (max_sql_depth); split long chains, e.g. use IN (…) instead of many ORs"
    )]
    TooDeep {
        /// Its depth.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// Nested deeper than the parser follows.
    #[error(
        "the SQL nests subqueries, parentheses or prefix operators (NOT, -) more than {0} levels deep; flatten it"
    )]
    TooNested(usize),
    /// A NUL character, which databases treat inconsistently.
    #[error("the SQL contains a NUL character (\\0); remove it")]
    NulByte,
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
    #[error(
        "SELECT … INTO is not allowed (it writes a table, a file or variables); select the rows without INTO"
    )]
    SelectInto,
    /// `FOR UPDATE` / `FOR SHARE` take row locks.
    #[error("locking reads (FOR UPDATE/FOR SHARE) are not allowed; drop the locking clause")]
    LockingRead,
    /// `EXPLAIN ANALYZE` runs the statement.
    #[error(
        "EXPLAIN ANALYZE executes the statement and is not allowed; use EXPLAIN without ANALYZE"
    )]
    ExplainAnalyze,
    /// A function that is never allowed.
    #[error(
        "function {0}() is not allowed: it runs SQL of its own, reaches outside the database, sleeps, takes locks, or changes state that outlives the query"
    )]
    DeniedFunction(String),
    /// A function the dialect does not have (SQLite), or a name that cannot be resolved.
    #[error(
        "function {0}() is not one of the database's built-in read-only functions; use a built-in function"
    )]
    UnknownFunction(String),
    /// A PRAGMA that writes or is not known to be read-only.
    #[error(
        "PRAGMA {0} is not allowed here; reporting PRAGMAs are, e.g. PRAGMA table_info('orders') or SELECT * FROM pragma_table_info('orders')"
    )]
    Pragma(String),
    /// MySQL and MariaDB executable comments run their content on the server.
    #[error(
        "executable comments (/*! … */, /*M! … */) are not allowed: MySQL and MariaDB run their content; write the SQL without them"
    )]
    ExecutableComment,
    /// MySQL optimizer hints can change session limits for the statement.
    #[error(
        "optimizer hints (/*+ … */) are not allowed: they can lift the time limit; write the SQL without them"
    )]
    OptimizerHint,
    /// A comment the database could end at a different place than the guard.
    #[error(
        "'--' followed by a control or non-ASCII character is read differently by MySQL servers; put a plain space after '--'"
    )]
    UnusualComment,
    /// MySQL user variables persist on the pooled connection.
    #[error(
        "user variables (@name, :=) are not allowed: they persist on the shared connection; compute the value in the query instead"
    )]
    UserVariable,
    /// PostgreSQL `U&"…"` identifiers.
    #[error(
        "Unicode-escaped names (U&\"…\") are not allowed; write the name plainly, in double quotes if needed"
    )]
    UnicodeEscapedName,
}

/// SQL that passed the guard: one read-only statement in a known dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedSql {
    text: String,
    statement_end: usize,
    dialect: Dialect,
    is_query: bool,
    for_the_catalog: Vec<FunctionName>,
}

impl GuardedSql {
    /// The SQL as submitted, which is exactly what the database runs (and what the result cache
    /// keys on: a normalised form would merge statements the database tells apart).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text without trailing semicolons and what follows them, so it can stand inside
    /// parentheses: `SELECT 1; -- done` is one statement, `(SELECT 1; -- done)` is not.
    pub fn statement(&self) -> &str {
        self.text.get(..self.statement_end).unwrap_or(&self.text)
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
            statement_end: sql.len(),
            dialect,
            is_query: false,
            for_the_catalog: Vec::new(),
        }
    }

    /// Whether it is a plain query (not EXPLAIN or a PRAGMA), so it can be wrapped in a cursor.
    pub fn is_query(&self) -> bool {
        self.is_query
    }

    /// Functions the statement calls that only the database's catalog can vouch for
    /// (PostgreSQL: volatility; MySQL/MariaDB: a stored function's declared SQL access). The
    /// engine checks them before running the statement.
    pub fn functions_for_the_catalog(&self) -> &[FunctionName] {
        &self.for_the_catalog
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

/// Checks `sql` for `dialect` with the default [`Settings`].
pub fn check(sql: &str, dialect: Dialect) -> Result<GuardedSql, GuardError> {
    check_with(sql, dialect, &Settings::default())
}

/// Nesting of subqueries, parenthesised expressions and prefix operators the parser follows.
const RECURSION_LIMIT: usize = 64;
/// Stack each level of depth may need while the tree is parsed, walked or dropped: a level
/// of parentheses can be a whole subquery, several frames in each walk. Measured on debug builds
/// (the larger frames), with room to spare.
const STACK_PER_LEVEL: usize = 16 * 1024;
/// Stack the parser keeps free between the points where it can grow its stack.
const PARSER_RED_ZONE: usize = 512 * 1024;
static PARSER_STACK: std::sync::Once = std::sync::Once::new();
/// Stack any statement may need besides its depth.
const STACK_BASE: usize = 1024 * 1024;

/// Checks `sql` for `dialect` within `settings`; the only way to obtain a [`GuardedSql`].
///
/// Size and depth are bounded on the tokens, before anything is parsed, and the parse, the walk
/// and the tree's drop run on a stack sized for the depth allowed, so no input can overflow a
/// thread's stack or make the guard itself the costly part of a call.
pub fn check_with(
    sql: &str,
    dialect: Dialect,
    settings: &Settings,
) -> Result<GuardedSql, GuardError> {
    if sql.len() > settings.max_bytes {
        return Err(GuardError::TooLong {
            bytes: sql.len(),
            limit: settings.max_bytes,
        });
    }
    if sql.contains('\0') {
        return Err(GuardError::NulByte);
    }
    if dialect == Dialect::Mysql {
        lexing::check_mysql_comments(sql)?;
    }
    // Sized for a typical statement's tokens, so the buffer is not copied as it grows.
    let mut tokens = Vec::with_capacity(sql.len() / 3 + 8);
    Tokenizer::new(dialect.parser_dialect(), sql)
        .tokenize_with_location_into_buf(&mut tokens)
        .map_err(|e| GuardError::Parse {
            dialect: dialect.name(),
            message: e.to_string(),
        })?;
    let shape = lexing::scan(&tokens, dialect)?;
    if shape.tokens > settings.max_tokens {
        return Err(GuardError::TooManyTokens {
            tokens: shape.tokens,
            limit: settings.max_tokens,
        });
    }
    if shape.depth > settings.max_depth {
        return Err(GuardError::TooDeep {
            depth: shape.depth,
            limit: settings.max_depth,
        });
    }
    PARSER_STACK.call_once(|| {
        // sqlparser grows its stack in the functions it marks recursive when less than this is
        // left; in between, its frames (large in debug builds) must fit in what remains.
        recursive::set_minimum_stack_size(PARSER_RED_ZONE);
    });
    // Only a thread with less stack left than this statement may need pays for a new one.
    let stack = STACK_BASE + shape.depth * STACK_PER_LEVEL;
    stacker::maybe_grow(stack, stack, || {
        check_tree(sql, tokens, shape, dialect, settings)
    })
}

fn check_tree(
    sql: &str,
    tokens: Vec<TokenWithSpan>,
    shape: lexing::Shape,
    dialect: Dialect,
    settings: &Settings,
) -> Result<GuardedSql, GuardError> {
    let statement_end = lexing::statement_end(sql, &tokens);
    let statements = Parser::new(dialect.parser_dialect())
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => GuardError::TooNested(RECURSION_LIMIT),
            other => GuardError::Parse {
                dialect: dialect.name(),
                message: other.to_string(),
            },
        })?;
    let statement = match statements.as_slice() {
        [] => return Err(GuardError::Empty),
        [one] => one,
        many => return Err(GuardError::MultipleStatements(many.len())),
    };
    check_top_level(statement, dialect)?;
    let mut walker = walk::ReadOnlyWalker {
        dialect,
        settings,
        depth: 0,
        for_the_catalog: Vec::new(),
    };
    if let ControlFlow::Break(error) = statement.visit(&mut walker) {
        return Err(error);
    }
    if shape.has_into {
        return Err(GuardError::SelectInto);
    }
    Ok(GuardedSql {
        text: sql.to_owned(),
        statement_end,
        dialect,
        is_query: matches!(statement, Statement::Query(_)),
        for_the_catalog: walker.for_the_catalog,
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
                // PostgreSQL also takes the British spelling.
                (option.name.value.eq_ignore_ascii_case("analyze")
                    || option.name.value.eq_ignore_ascii_case("analyse"))
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

/// The lowercase last part of a possibly qualified name.
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
        assert_eq!(
            refused(Dialect::Postgres, "EXPLAIN (ANALYSE) SELECT 1"),
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
    fn the_statement_is_cut_at_trailing_semicolons_and_nothing_else() {
        let cut = |sql: &str| {
            check(sql, Dialect::Postgres)
                .expect("allowed")
                .statement()
                .to_owned()
        };
        assert_eq!(cut("SELECT 1"), "SELECT 1");
        assert_eq!(cut("SELECT 1;"), "SELECT 1");
        assert_eq!(cut("SELECT 1 ; ;\n"), "SELECT 1 ");
        assert_eq!(cut("SELECT 1; -- done"), "SELECT 1");
        assert_eq!(cut("SELECT 'a;'\n  ;/* x; */"), "SELECT 'a;'\n  ");
        assert_eq!(cut("SELECT 'é;' -- ;"), "SELECT 'é;' -- ;");
    }

    #[test]
    fn the_guarded_text_is_exactly_what_was_submitted() {
        let sql = "select  id\nFROM orders -- note\n";
        assert_eq!(check(sql, Dialect::Sqlite).expect("allowed").text(), sql);
    }

    fn chain(first: &str, separator: &str, terms: usize) -> String {
        let mut sql = String::from(first);
        for _ in 1..terms {
            sql.push_str(separator);
            sql.push('1');
        }
        sql
    }

    #[test]
    fn deep_chains_are_refused_before_parsing_with_the_limit_named() {
        for (dialect, separator) in [
            (Dialect::Postgres, "+"),
            (Dialect::Postgres, " AND "),
            (Dialect::Postgres, " || "),
            (Dialect::Mysql, " OR "),
            (Dialect::Sqlite, " UNION ALL SELECT "),
        ] {
            let sql = chain("SELECT 1", separator, 40_000);
            let started = std::time::Instant::now();
            let error = refused(dialect, &sql);
            assert!(
                matches!(
                    error,
                    GuardError::TooDeep { .. }
                        | GuardError::TooManyTokens { .. }
                        | GuardError::TooLong { .. }
                ),
                "{separator}: {error}"
            );
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
        let settings = Settings {
            max_tokens: 1_000_000,
            max_bytes: 10_000_000,
            ..Settings::default()
        };
        let sql = chain("SELECT 1", "+", 5_000);
        assert_eq!(
            check_with(&sql, Dialect::Postgres, &settings),
            Err(GuardError::TooDeep {
                depth: 5_000,
                limit: 1_000
            })
        );
    }

    #[test]
    fn the_deepest_accepted_trees_are_walked_and_dropped_on_a_small_stack() {
        // Run on a thread with a small stack: the guard must grow its own when it needs to.
        let deep = move || {
            let limit = Settings::default().max_depth;
            let near = limit - 10;
            for (dialect, first, separator) in [
                (Dialect::Postgres, "SELECT 1", "+"),
                (Dialect::Postgres, "SELECT 1 = 1", " AND 1 ="),
                (Dialect::Postgres, "SELECT '1'", " || "),
                (Dialect::Mysql, "SELECT 1", " - "),
                (Dialect::Sqlite, "SELECT 1", " UNION ALL SELECT "),
                (Dialect::Postgres, "SELECT 1", "::int::text::int + "),
            ] {
                let terms = near
                    / separator
                        .matches(['+', '-', '|', 'A', 'U', ':', '='])
                        .count()
                        .max(1);
                let sql = chain(first, separator, terms.max(2));
                if let Err(error) = check(&sql, dialect) {
                    panic!("{separator:?} x {terms}: {error}");
                }
            }
            // The deepest nesting the parser follows (subqueries, calls, CASE, CTEs): each
            // level is several frames in every walk, and the deepest must pass on this stack.
            let forms: [(Dialect, &str, &str, &str, &str); 4] = [
                (Dialect::Postgres, "SELECT ", "(SELECT ", "1", ")"),
                (Dialect::Sqlite, "SELECT ", "abs(", "1", ")"),
                (
                    Dialect::Mysql,
                    "SELECT ",
                    "CASE WHEN true THEN (",
                    "1",
                    ") END",
                ),
                (
                    Dialect::Postgres,
                    "",
                    "WITH x AS (",
                    "SELECT 1",
                    ") SELECT * FROM x",
                ),
            ];
            for (dialect, prefix, open, inner, close) in forms {
                let nested = |levels: usize| {
                    let mut sql = prefix.to_owned();
                    sql.push_str(&open.repeat(levels));
                    sql.push_str(inner);
                    sql.push_str(&close.repeat(levels));
                    sql
                };
                // Every level up to the limit and past it: each ends in a verdict, none in
                // an overflow.
                let passing = (1..RECURSION_LIMIT + 8)
                    .filter(|levels| check(&nested(*levels), dialect).is_ok())
                    .max()
                    .unwrap_or(0);
                assert!(passing >= 8, "{open}: only {passing} levels pass");
            }
            let minus = format!("SELECT {}1", "- ".repeat(near));
            assert_eq!(
                check(&minus, Dialect::Postgres),
                Err(GuardError::TooNested(64))
            );
            let not = format!("SELECT {}true", "NOT ".repeat(near));
            assert!(check(&not, Dialect::Postgres).is_err());
            let parens = format!("SELECT {}1{}", "(".repeat(near), ")".repeat(near));
            assert_eq!(
                check(&parens, Dialect::Sqlite),
                Err(GuardError::TooNested(64))
            );
        };
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(deep)
            .expect("thread")
            .join()
            .expect("the guard overflowed a small stack");
    }

    #[test]
    fn wide_selects_are_bounded_by_tokens() {
        let wide = format!("SELECT {}", vec!["1"; 9_000].join(","));
        allowed(Dialect::Sqlite, &wide);
        let too_wide = format!("SELECT {}", vec!["1"; 20_000].join(","));
        assert!(matches!(
            refused(Dialect::Sqlite, &too_wide),
            GuardError::TooManyTokens { .. }
        ));
        let huge = format!("SELECT {}", vec!["1"; 2_000_000].join(","));
        assert!(matches!(
            refused(Dialect::Postgres, &huge),
            GuardError::TooLong { .. }
        ));
    }

    #[test]
    fn every_executable_comment_and_hint_form_is_refused_on_mysql() {
        for sql in [
            "SELECT 1 /*! , LOAD_FILE('/etc/passwd') */",
            "SELECT 1 /*!50000 , SLEEP(1) */",
            "SELECT 1 /*M! , LOAD_FILE('/etc/passwd') */",
            "SELECT 1 /*M!100000 , SLEEP(1) */",
            "SELECT 1 /*m!100000 , SLEEP(1) */",
            "SELECT /*!*/ 1",
        ] {
            assert_eq!(
                refused(Dialect::Mysql, sql),
                GuardError::ExecutableComment,
                "{sql}"
            );
        }
        assert_eq!(
            refused(
                Dialect::Mysql,
                "SELECT /*+ MAX_EXECUTION_TIME(100000000) */ 1"
            ),
            GuardError::OptimizerHint
        );
        assert_eq!(
            refused(
                Dialect::Mysql,
                "SELECT 1 --\u{2003}, LOAD_FILE('/etc/passwd')"
            ),
            GuardError::UnusualComment
        );
        allowed(Dialect::Mysql, "SELECT '/*M!100000 not a comment */'");
        allowed(Dialect::Mysql, "SELECT 1 -- a comment\n");
        allowed(Dialect::Mysql, "SELECT 1 --\ta comment\n");
        allowed(Dialect::Mysql, "SELECT 1 # a comment\n");
        allowed(Dialect::Mysql, "SELECT 1--1");
        assert_eq!(
            refused(
                Dialect::Mysql,
                "SELECT 1 --\x7f'\n/*!50000 , SLEEP(1) */ -- '"
            ),
            GuardError::UnusualComment
        );
        // PostgreSQL has no executable comments: a comment there is only a comment.
        allowed(Dialect::Postgres, "SELECT 1 /*! not run */");
    }

    #[test]
    fn names_are_judged_as_the_database_resolves_them() {
        assert_eq!(
            refused(
                Dialect::Postgres,
                r#"SELECT U&"pg\005fread\005ffile"('/etc/passwd')"#
            ),
            GuardError::UnicodeEscapedName
        );
        assert_eq!(
            refused(
                Dialect::Postgres,
                r#"SELECT * FROM u&"pg\005fls\005fdir"('/')"#
            ),
            GuardError::UnicodeEscapedName
        );
        allowed(
            Dialect::Postgres,
            r"SELECT U&'d\0061t\+000061' AS unicode_string",
        );
        for sql in [
            r#"SELECT "pg_read_file"('/etc/passwd')"#,
            "SELECT PG_READ_FILE('/etc/passwd')",
            r#"SELECT "pg_catalog"."pg_read_file"('/etc/passwd')"#,
        ] {
            assert!(
                matches!(
                    refused(Dialect::Postgres, sql),
                    GuardError::DeniedFunction(_)
                ),
                "{sql}"
            );
        }
        // A quoted upper-case name is another function to PostgreSQL: the catalog must vouch.
        let upper = check(r#"SELECT "PG_READ_FILE"('x')"#, Dialect::Postgres).expect("parsed");
        assert_eq!(
            upper.functions_for_the_catalog(),
            [FunctionName {
                schema: None,
                name: "PG_READ_FILE".into()
            }]
        );
        for sql in [
            "SELECT `sleep`(1)",
            "SELECT SLEEP(1)",
            "SELECT test.sleep(1)",
        ] {
            assert!(
                matches!(refused(Dialect::Mysql, sql), GuardError::DeniedFunction(_)),
                "{sql}"
            );
        }
        assert!(matches!(
            refused(Dialect::Sqlite, r#"SELECT "LOAD_EXTENSION"('x')"#),
            GuardError::DeniedFunction(_)
        ));
    }

    #[test]
    fn functions_that_run_sql_or_write_pages_are_refused() {
        for sql in [
            "SELECT ts_rewrite('a & b'::tsquery, 'SELECT pg_sleep(1)')",
            "SELECT query_to_xml('DELETE FROM t', true, true, '')",
            "SELECT brin_summarize_new_values('orders_brin')",
            "SELECT brin_desummarize_range('orders_brin', 0)",
            "SELECT gin_clean_pending_list('docs_gin')",
            "SELECT pg_create_logical_replication_slot('s', 'test_decoding')",
            "SELECT database_to_xml(true, true, '')",
            "SELECT setseed(0.5)",
        ] {
            assert!(
                matches!(
                    refused(Dialect::Postgres, sql),
                    GuardError::DeniedFunction(_)
                ),
                "{sql}"
            );
        }
    }

    #[test]
    fn user_variables_and_into_are_refused_in_every_form() {
        for sql in [
            "SELECT @v := 1",
            "SELECT @v",
            "SELECT id FROM t WHERE id = @v",
            "SELECT 1 INTO @v",
            "SELECT id FROM t LIMIT 1 INTO @v",
            "SELECT * FROM t INTO OUTFILE '/tmp/x'",
            "SELECT * FROM t INTO DUMPFILE '/tmp/x'",
            "SELECT LAST_INSERT_ID(5)",
            "SELECT LAST_INSERT_ID()",
            "SET @v = 1",
        ] {
            refused(Dialect::Mysql, sql);
        }
        allowed(Dialect::Mysql, "SELECT @@version, @@session.sql_mode");
        allowed(Dialect::Mysql, "SELECT `@v` FROM t");
        refused(Dialect::Postgres, "SELECT 1 INTO TEMP t");
    }

    #[test]
    fn nul_bytes_are_invalid_input() {
        for dialect in ALL {
            assert_eq!(refused(dialect, "SELECT '\0'"), GuardError::NulByte);
        }
    }

    #[test]
    fn unknown_functions_are_refused_or_left_to_the_catalog() {
        assert!(matches!(
            refused(Dialect::Sqlite, "SELECT my_udf(1)"),
            GuardError::UnknownFunction(_)
        ));
        let stored = check("SELECT shop.margin(price) FROM products", Dialect::Mysql)
            .expect("left to the catalog");
        assert_eq!(
            stored.functions_for_the_catalog(),
            [FunctionName {
                schema: Some("shop".into()),
                name: "margin".into()
            }]
        );
        let pg = check(
            "SELECT lower(name), date_trunc('day', now()), my_schema.score(x) FROM t",
            Dialect::Postgres,
        )
        .expect("left to the catalog");
        // lower, date_trunc, now and my_schema.score: the catalog decides each.
        assert_eq!(pg.functions_for_the_catalog().len(), 4);
        let configured = Settings {
            allowed_functions: vec!["my_schema.score".into(), "LOWER".into()],
            ..Settings::default()
        };
        let pg = check_with(
            "SELECT lower(name), my_schema.score(x) FROM t",
            Dialect::Postgres,
            &configured,
        )
        .expect("allowed");
        assert!(pg.functions_for_the_catalog().is_empty());
        // An unqualified entry does not vouch for a same-named function of another schema.
        let other = check_with(
            "SELECT other.lower(name) FROM t",
            Dialect::Postgres,
            &configured,
        )
        .expect("left to the catalog");
        assert_eq!(other.functions_for_the_catalog().len(), 1);
        // The config never lifts the functions that are never allowed.
        let reckless = Settings {
            allowed_functions: vec!["pg_sleep".into()],
            ..Settings::default()
        };
        assert!(check_with("SELECT pg_sleep(1)", Dialect::Postgres, &reckless).is_err());
    }

    #[test]
    fn honest_analytical_reads_pass_in_every_dialect() {
        for sql in [
            "SELECT date(ordered_at), count(*), sum(total), avg(total), min(total), max(total) FROM orders GROUP BY 1",
            "SELECT id, rank() OVER (PARTITION BY customer_id ORDER BY total DESC), lag(total) OVER w FROM orders WINDOW w AS (ORDER BY id)",
            "SELECT json_extract(payload, '$.page'), json_array_length(payload, '$.items') FROM events",
            "SELECT strftime('%Y-%m', ordered_at), julianday('now') - julianday(ordered_at) FROM orders",
            "SELECT upper(name), substr(name, 1, 3), replace(name, 'a', 'b'), length(name), trim(name), instr(name, 'x') FROM customers",
            "SELECT group_concat(name, ', '), total(price), round(avg(price), 2), abs(-1), coalesce(NULL, 1), ifnull(NULL, 2), nullif(1, 1) FROM products",
            "SELECT ntile(4) OVER (ORDER BY total), percent_rank() OVER (ORDER BY total), cume_dist() OVER (ORDER BY total) FROM orders",
            "SELECT key, value FROM json_each('{\"a\":1}')",
            "SELECT payload ->> '$.page', payload -> '$.items' FROM events",
        ] {
            allowed(Dialect::Sqlite, sql);
        }
        for sql in [
            "SELECT DATE_FORMAT(ordered_at, '%Y-%m'), COUNT(*), SUM(total), AVG(total), STDDEV(total) FROM orders GROUP BY 1",
            "SELECT id, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY total DESC), LEAD(total) OVER (ORDER BY id) FROM orders",
            "SELECT JSON_EXTRACT(payload, '$.page'), JSON_UNQUOTE(JSON_EXTRACT(payload, '$.x')), JSON_LENGTH(payload) FROM events",
            "SELECT DATE_ADD(ordered_at, INTERVAL 1 DAY), DATEDIFF(NOW(), ordered_at), TIMESTAMPDIFF(HOUR, ordered_at, NOW()) FROM orders",
            "SELECT CONCAT(first, ' ', last), UPPER(name), SUBSTRING(name, 1, 3), LPAD(id, 5, '0'), REPLACE(name, 'a', 'b') FROM customers",
            "SELECT GROUP_CONCAT(DISTINCT country ORDER BY country SEPARATOR ', '), IF(COUNT(*) > 1, 'many', 'one'), IFNULL(MAX(total), 0) FROM customers",
            "SELECT CAST(total AS DECIMAL(10,2)), CONVERT(name USING utf8mb4), ROUND(total, 1), FLOOR(total) FROM orders",
        ] {
            allowed(Dialect::Mysql, sql);
        }
        for sql in [
            "SELECT date_trunc('month', ordered_at), count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders GROUP BY 1",
            "SELECT id, dense_rank() OVER (PARTITION BY customer_id ORDER BY total DESC) FROM orders",
            "SELECT payload->>'page', jsonb_array_length(payload->'items'), jsonb_build_object('a', 1) FROM events",
            "SELECT now() - interval '7 days', age(ordered_at), extract(dow FROM ordered_at) FROM orders",
            "SELECT string_agg(name, ', ' ORDER BY name), coalesce(max(total), 0), greatest(1, 2), nullif(a, b) FROM t",
            "SELECT * FROM generate_series(1, 10) AS g(n)",
        ] {
            allowed(Dialect::Postgres, sql);
        }
    }
}
