//! The account inspection against real read-only, read-write and administrative accounts.

use serde_json::json;
use sqlx::Connection;

use crate::support::*;

fn config(url: &str, require: bool, allow_privileged: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            "[warehouses.w]\nurl = \"{url}\"\nrequire_read_only_account = {require}\nallow_privileged_account = {allow_privileged}\n"
        ),
    )
    .expect("config");
    dir
}

async fn outcome(url: &str, require: bool) -> (bool, String, serde_json::Value) {
    outcome_with(url, require, false).await
}

async fn outcome_with(
    url: &str,
    require: bool,
    allow_privileged: bool,
) -> (bool, String, serde_json::Value) {
    let dir = config(url, require, allow_privileged);
    let client = connect(Some(&dir.path().join("c.toml"))).await;
    let result = call(&client, "sql_query", json!({"sql": "SELECT 1 AS one"})).await;
    let listed = call(&client, "sql_list_warehouses", json!({})).await;
    client.cancel().await.expect("close");
    (
        is_error(&result),
        text(&result),
        structured(&listed)["warehouses"][0]["account_can_write"].clone(),
    )
}

#[tokio::test]
async fn postgres_accounts_that_can_write_are_flagged_and_can_be_refused() {
    const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
    let (reader, writer, schema) = {
        let pid = std::process::id();
        (
            format!("it_reader_{pid}"),
            format!("it_writer_{pid}"),
            format!("it_{pid}_accounts"),
        )
    };
    let mut admin = sqlx::PgConnection::connect(ADMIN).await.expect("connect");
    let setup = format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.t (id int);
         DROP ROLE IF EXISTS {reader}; DROP ROLE IF EXISTS {writer};
         CREATE ROLE {reader} LOGIN; CREATE ROLE {writer} LOGIN;
         GRANT USAGE ON SCHEMA {schema} TO {reader}, {writer};
         GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader};
         GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO {writer};"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
        .execute(&mut admin)
        .await
        .expect("roles");

    let (failed, message, can_write) =
        outcome(&format!("postgres://{reader}@127.0.0.1:5432/test"), true).await;
    assert!(
        !failed,
        "a read-only role works under require_read_only_account: {message}"
    );
    assert_eq!(can_write, false);

    let (failed, message, can_write) =
        outcome(&format!("postgres://{writer}@127.0.0.1:5432/test"), true).await;
    assert!(failed, "a role that can insert is refused");
    assert!(message.starts_with("refused: "), "{message}");
    assert!(
        message.contains("can insert, update, delete or truncate tables"),
        "{message}"
    );
    assert_eq!(can_write, true);

    let (failed, message, _) = outcome(ADMIN, false).await;
    assert!(failed, "a superuser is refused by default");
    assert!(message.starts_with("refused: "), "{message}");
    assert!(message.contains("is a superuser"), "{message}");
    assert!(
        message.contains("CREATE ROLE") && message.contains("GRANT SELECT ON ALL TABLES"),
        "gives the SQL of a read-only role: {message}"
    );
    assert!(message.contains("allow_privileged_account"), "{message}");

    let (failed, message, can_write) = outcome_with(ADMIN, false, true).await;
    assert!(
        !failed,
        "with the override a superuser is only flagged: {message}"
    );
    assert_eq!(can_write, true);

    let teardown = format!(
        "DROP SCHEMA {schema} CASCADE; DROP OWNED BY {reader}; DROP OWNED BY {writer}; DROP ROLE {reader}; DROP ROLE {writer};"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(teardown))
        .execute(&mut admin)
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn mysql_accounts_that_can_write_are_flagged_and_can_be_refused() {
    const ADMIN: &str = "mysql://root@127.0.0.1:3306/test";
    let pid = std::process::id();
    let (reader, writer) = (format!("it_reader_{pid}"), format!("it_writer_{pid}"));
    let mut admin = sqlx::MySqlConnection::connect(ADMIN)
        .await
        .expect("connect");
    for sql in [
        format!("DROP USER IF EXISTS '{reader}'@'%'"),
        format!("DROP USER IF EXISTS '{writer}'@'%'"),
        format!("CREATE USER '{reader}'@'%'"),
        format!("CREATE USER '{writer}'@'%'"),
        format!("GRANT SELECT ON test.* TO '{reader}'@'%'"),
        format!("GRANT SELECT, INSERT, DELETE ON test.* TO '{writer}'@'%'"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("users");
    }

    let (failed, message, can_write) =
        outcome(&format!("mysql://{reader}@127.0.0.1:3306/test"), true).await;
    assert!(
        !failed,
        "a SELECT-only user works under require_read_only_account: {message}"
    );
    assert_eq!(can_write, false);

    let (failed, message, can_write) =
        outcome(&format!("mysql://{writer}@127.0.0.1:3306/test"), true).await;
    assert!(failed, "a user that can insert is refused");
    assert!(
        message.contains("holds DELETE") && message.contains("holds INSERT"),
        "{message}"
    );
    assert_eq!(can_write, true);

    let (failed, message, _) = outcome(ADMIN, false).await;
    assert!(failed, "root is refused by default");
    assert!(
        message.contains("holds FILE") && message.contains("holds SUPER"),
        "{message}"
    );
    assert!(
        message.contains("CREATE USER") && message.contains("GRANT SELECT ON `test`.*"),
        "gives the SQL of a read-only user: {message}"
    );
    let (failed, message, can_write) = outcome_with(ADMIN, false, true).await;
    assert!(!failed, "{message}");
    assert_eq!(can_write, true);

    for sql in [
        format!("DROP USER '{reader}'@'%'"),
        format!("DROP USER '{writer}'@'%'"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("cleanup");
    }
}
