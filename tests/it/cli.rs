//! The command line: exit codes, output, and the committed schemas.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

fn datamcp(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("DATAMCP_DATA_DIR", demo_data_dir())
        .env_remove("DATAMCP_CONFIG")
        .output()
        .expect("run datamcp")
}

#[test]
fn check_sql_says_allowed_or_refused_with_exit_codes() {
    let allowed = datamcp(&[
        "check-sql",
        "--dialect",
        "postgres",
        "SELECT deleted_at FROM t",
    ]);
    assert_eq!(allowed.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&allowed.stdout), "allowed\n");

    let refused = datamcp(&["check-sql", "--dialect", "mysql", "SELECT 1; DROP TABLE t"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("refused: 2 statements"));

    let catalog = datamcp(&[
        "check-sql",
        "--dialect",
        "postgres",
        "SELECT lower(name) FROM t",
    ]);
    assert_eq!(catalog.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&catalog.stdout),
        "allowed if the database vouches for lower()\n"
    );

    let usage = datamcp(&["check-sql", "--dialect", "oracle", "SELECT 1"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn check_sql_reads_stdin_when_no_sql_is_given() {
    let mut child = Command::new(BIN)
        .args(["check-sql", "--dialect", "sqlite"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"WITH x AS (SELECT 1) SELECT * FROM x")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "allowed\n");
}

#[test]
fn call_prints_the_result_and_fails_on_error_results() {
    let ok = datamcp(&[
        "call",
        "sql_query",
        r#"{"sql": "SELECT count(*) AS n FROM customers"}"#,
    ]);
    assert_eq!(ok.status.code(), Some(0));
    let result: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("JSON on stdout");
    assert_eq!(result["structuredContent"]["rows"][0][0], 2500);

    let refused = datamcp(&["call", "sql_query", r#"{"sql": "DROP TABLE customers"}"#]);
    assert_ne!(refused.status.code(), Some(0));
    let result: serde_json::Value =
        serde_json::from_slice(&refused.stdout).expect("JSON on stdout");
    assert_eq!(result["isError"], true);

    let bad_json = datamcp(&["call", "sql_query", "{sql"]);
    assert_ne!(bad_json.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad_json.stderr).contains("not valid JSON"));
}

#[test]
fn tools_lists_one_line_per_tool() {
    let output = datamcp(&["tools"]);
    assert_eq!(output.status.code(), Some(0));
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        listing.lines().any(|l| l.starts_with("sql_query ")),
        "{listing}"
    );
}

#[test]
fn committed_schemas_match_what_the_binary_generates() {
    let out = tempfile::tempdir().expect("temp dir");
    let status = datamcp(&["schemas", "--out", &out.path().display().to_string()]);
    assert_eq!(status.status.code(), Some(0));
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut generated: Vec<_> = std::fs::read_dir(out.path())
        .expect("read generated")
        .map(|e| e.expect("entry").file_name())
        .collect();
    generated.sort();
    let mut expected: Vec<_> = std::fs::read_dir(&committed)
        .expect("schemas/ exists")
        .map(|e| e.expect("entry").file_name())
        .collect();
    expected.sort();
    assert_eq!(
        generated, expected,
        "schemas/ has other files than `datamcp schemas` writes"
    );
    for name in generated {
        let fresh = std::fs::read_to_string(out.path().join(&name)).expect("read");
        let old = std::fs::read_to_string(committed.join(&name)).expect("read");
        assert!(
            fresh == old,
            "schemas/{} is stale: run `cargo run -- schemas --out schemas`",
            name.to_string_lossy()
        );
    }
}

#[test]
fn a_bad_config_is_refused_at_start_with_file_line_and_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "read_only = true\n[policy]\ntimeout = 5\n").expect("write");
    let output = datamcp(&["serve", "--config", &config.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("timeout"), "{stderr}");
    assert!(stderr.contains("hint"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing but protocol on stdout");
}
