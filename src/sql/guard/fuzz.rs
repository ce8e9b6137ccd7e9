//! The guard fuzzed: statements built from the pieces that broke guards before (comment
//! openers, quotes, `U&`, `@`, deep operator chains, NUL, non-ASCII spaces) and corpus
//! statements with bytes flipped, in every dialect. No input may panic or overflow the stack,
//! and a verdict never depends on anything but the input.
//!
//! `DATAMCP_FUZZ_CASES` sets how many statements each property tries (default 1,500, a few
//! seconds in a debug build), so CI stays bounded and a long local run is one variable away.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::{Dialect, check};

const PIECES: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "WITH",
    "AS",
    "UNION",
    "ALL",
    "AND",
    "OR",
    "NOT",
    "INTO",
    "@v",
    "@@version",
    ":=",
    "(",
    ")",
    ",",
    ";",
    "+",
    "-",
    "*",
    "/",
    "||",
    "::",
    "->>",
    "=",
    "<>",
    "'",
    "\"",
    "`",
    "$$",
    "$a$",
    "\\",
    "/*",
    "*/",
    "/*!",
    "/*M!",
    "/*+",
    "--",
    "-- ",
    "#",
    "\n",
    " ",
    "\u{2003}",
    "\u{0}",
    "U&",
    "u&\"x\"",
    "E'",
    "pg_sleep",
    "load_file",
    "sleep",
    "count",
    "lower",
    "json_extract",
    "generate_series",
    "1",
    "1e9",
    "0x1F",
    "x'00'",
    "?",
    "$1",
    "t",
    "\"t\"",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "EXPLAIN",
    "ANALYZE",
    "PRAGMA",
    "FOR",
    "UPDATE",
    "VALUES",
    "[",
    "]",
    "ü",
    "é",
];

fn cases() -> u32 {
    std::env::var("DATAMCP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn judge_in_every_dialect(sql: &str) {
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
        let first = check(sql, dialect).map(|g| g.text().to_owned());
        let second = check(sql, dialect).map(|g| g.text().to_owned());
        assert_eq!(
            first, second,
            "the verdict on {sql:?} changed between two checks"
        );
        if let Ok(text) = first {
            assert!(!text.contains('\0'), "NUL passed in {sql:?}");
        }
    }
}

#[test]
fn statements_of_dangerous_pieces_never_panic() {
    let piece = proptest::sample::select(PIECES);
    let statement = proptest::collection::vec(piece, 1..60).prop_map(|pieces| pieces.join(" "));
    runner()
        .run(&statement, |sql| {
            judge_in_every_dialect(&sql);
            Ok(())
        })
        .expect("no panic");
}

#[test]
fn long_operator_chains_never_overflow_the_stack() {
    let operator = proptest::sample::select(
        &[
            "+",
            " AND ",
            " || ",
            " UNION ALL SELECT ",
            "::int+",
            " OR NOT ",
        ][..],
    );
    let chain = (operator, 1usize..3_000, 0usize..40).prop_map(|(op, terms, parens)| {
        let mut sql = String::from("SELECT ");
        sql.push_str(&"(".repeat(parens));
        sql.push('1');
        for _ in 1..terms {
            sql.push_str(op);
            sql.push('1');
        }
        sql.push_str(&")".repeat(parens));
        sql
    });
    let mut runner = TestRunner::new(Config {
        cases: cases() / 10 + 1,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&chain, |sql| {
            judge_in_every_dialect(&sql);
            Ok(())
        })
        .expect("no panic");
}

#[test]
fn corpus_statements_with_bytes_changed_never_panic() {
    let corpus = include_str!("../../../tests/data/guard_corpus.tsv");
    let statements: Vec<String> = corpus
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.splitn(5, '\t').nth(4).map(str::to_owned))
        .collect();
    let mutated = (
        proptest::sample::select(statements),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                proptest::sample::select(PIECES),
            ),
            1..6,
        ),
    )
        .prop_map(|(statement, edits)| {
            let mut sql = statement;
            for (at, piece) in edits {
                let mut index = at.index(sql.len() + 1);
                while !sql.is_char_boundary(index) {
                    index -= 1;
                }
                sql.insert_str(index, piece);
            }
            sql
        });
    runner()
        .run(&mutated, |sql| {
            judge_in_every_dialect(&sql);
            Ok(())
        })
        .expect("no panic");
}
