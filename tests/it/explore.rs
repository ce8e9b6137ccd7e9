//! The exploration tools on every engine: warehouses, tables, a table's shape, search, plans.

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::*;

fn names(items: &Value, field: &str) -> Vec<String> {
    items
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i[field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_agent_can_find_its_way_around_the_demo_warehouse() {
    let client = connect(None).await;

    let warehouses = call(&client, "sql_list_warehouses", json!({})).await;
    let body = structured(&warehouses);
    assert_eq!(body["warehouses"][0]["name"], "demo");
    assert_eq!(body["warehouses"][0]["dialect"], "sqlite");
    assert_eq!(body["warehouses"][0]["default"], true);

    let tables = call(&client, "sql_list_tables", json!({})).await;
    let body = structured(&tables);
    assert_eq!(
        names(&body["tables"], "name"),
        [
            "customers",
            "events",
            "feature_snapshots",
            "model_scores",
            "order_items",
            "orders",
            "products"
        ]
    );
    let orders = &body["tables"][5];
    assert_eq!(orders["kind"], "table");
    assert_eq!(orders["row_estimate"], 25000);
    let filtered = call(&client, "sql_list_tables", json!({"name": "order*"})).await;
    assert_eq!(
        names(&structured(&filtered)["tables"], "name"),
        ["order_items", "orders"]
    );

    let described = call(&client, "sql_describe_table", json!({"table": "orders"})).await;
    assert!(!is_error(&described), "{}", text(&described));
    let body = structured(&described);
    assert_eq!(
        names(&body["columns"], "name")[..3],
        ["id", "customer_id", "ordered_at"]
    );
    assert_eq!(body["columns"][0]["primary_key_position"], 1);
    assert_eq!(body["columns"][7]["type"], "DECIMAL(10,2)");
    assert_eq!(body["columns"][7]["nullable"], true);
    assert_eq!(body["columns"][1]["nullable"], false);
    assert_eq!(
        body["foreign_keys"],
        json!([{"column": "customer_id", "references_table": "customers", "references_column": "id"}])
    );
    assert!(names(&body["indexes"], "name").contains(&"orders_customer".to_owned()));

    let missing = call(&client, "sql_describe_table", json!({"table": "ordres"})).await;
    assert!(is_error(&missing));
    assert!(
        text(&missing).contains("sql_list_tables"),
        "{}",
        text(&missing)
    );

    let found = call(&client, "sql_search", json!({"pattern": "*_at"})).await;
    let body = structured(&found);
    let columns: Vec<String> = body["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| {
            format!(
                "{}.{}",
                m["table"].as_str().unwrap_or(""),
                m["column"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        columns.contains(&"orders.ordered_at".to_owned()),
        "{columns:?}"
    );
    assert!(
        columns.contains(&"events.occurred_at".to_owned()),
        "{columns:?}"
    );

    let plan = call(
        &client,
        "sql_explain",
        json!({"sql": "SELECT * FROM orders WHERE customer_id = ?", "params": [7]}),
    )
    .await;
    assert!(!is_error(&plan), "{}", text(&plan));
    assert!(
        structured(&plan)["plan"]
            .to_string()
            .contains("orders_customer"),
        "{}",
        text(&plan)
    );
    let refused = call(&client, "sql_explain", json!({"sql": "DELETE FROM orders"})).await;
    assert!(is_error(&refused));
    assert!(
        text(&refused).starts_with("refused: "),
        "{}",
        text(&refused)
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn postgres_tables_are_described_with_keys_comments_and_plans() {
    const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";
    let schema = format!("it_{}_explore", std::process::id());
    let mut conn = sqlx::PgConnection::connect(SERVER).await.expect("connect");
    let setup = format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema};
         CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL UNIQUE);
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers(id),
                              total numeric(12,2) DEFAULT 0, created_at timestamptz);
         COMMENT ON TABLE orders IS 'one row per order';
         COMMENT ON COLUMN orders.total IS 'after discounts';
         CREATE INDEX orders_customer ON orders (customer_id, created_at);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
        .execute(&mut conn)
        .await
        .expect("fixture");

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("c.toml"),
        format!("[warehouses.pg]\nurl = \"{SERVER}\"\nallow_privileged_account = true\n"),
    )
    .expect("config");
    let client = connect(Some(&dir.path().join("c.toml"))).await;

    let tables = call(&client, "sql_list_tables", json!({"schema": schema})).await;
    let body = structured(&tables);
    assert_eq!(
        names(&body["tables"], "name"),
        ["big_orders", "customers", "orders"]
    );
    assert_eq!(body["tables"][0]["kind"], "view");
    assert_eq!(body["tables"][2]["comment"], "one row per order");

    let described = call(
        &client,
        "sql_describe_table",
        json!({"table": "orders", "schema": schema}),
    )
    .await;
    assert!(!is_error(&described), "{}", text(&described));
    let body = structured(&described);
    let total = &body["columns"][2];
    assert_eq!(total["type"], "numeric(12,2)");
    assert_eq!(total["default"], "0");
    assert_eq!(total["comment"], "after discounts");
    assert_eq!(body["columns"][0]["primary_key_position"], 1);
    assert_eq!(body["foreign_keys"][0]["column"], "customer_id");
    assert_eq!(
        body["foreign_keys"][0]["references_table"],
        format!("{schema}.customers")
    );
    let orders_customer = body["indexes"]
        .as_array()
        .expect("indexes")
        .iter()
        .find(|i| i["name"] == "orders_customer")
        .expect("index listed");
    assert_eq!(orders_customer["columns"], "customer_id, created_at");

    let found = call(&client, "sql_search", json!({"pattern": "created"})).await;
    assert!(
        text(&found).contains(&format!("{schema}.orders.created_at")),
        "{}",
        text(&found)
    );

    let plan = call(
        &client,
        "sql_explain",
        json!({"sql": format!("SELECT * FROM {schema}.orders WHERE id = $1"), "params": [1]}),
    )
    .await;
    assert!(!is_error(&plan), "{}", text(&plan));
    assert!(
        structured(&plan)["plan"][0]["Plan"]["Node Type"].is_string(),
        "{}",
        text(&plan)
    );
    client.cancel().await.expect("close");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut conn)
        .await
        .expect("drop");
}

#[tokio::test]
async fn mysql_tables_are_described_with_keys_and_plans() {
    const SERVER: &str = "mysql://root@127.0.0.1:3306/test";
    let prefix = format!("it_{}_explore", std::process::id());
    let mut conn = sqlx::MySqlConnection::connect(SERVER)
        .await
        .expect("connect");
    for sql in [
        format!("DROP TABLE IF EXISTS {prefix}_orders"),
        format!("DROP TABLE IF EXISTS {prefix}_customers"),
        format!("CREATE TABLE {prefix}_customers (id int PRIMARY KEY, email varchar(100) NOT NULL) ENGINE=InnoDB"),
        format!(
            "CREATE TABLE {prefix}_orders (id bigint PRIMARY KEY, customer_id int, total decimal(12,2) DEFAULT 0 COMMENT 'after discounts',
             KEY by_customer (customer_id), FOREIGN KEY (customer_id) REFERENCES {prefix}_customers(id)) ENGINE=InnoDB COMMENT='one row per order'"
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("fixture");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("c.toml"),
        format!("[warehouses.my]\nurl = \"{SERVER}\"\nallow_privileged_account = true\n"),
    )
    .expect("config");
    let client = connect(Some(&dir.path().join("c.toml"))).await;

    let tables = call(
        &client,
        "sql_list_tables",
        json!({"name": format!("{prefix}*")}),
    )
    .await;
    let body = structured(&tables);
    assert_eq!(
        body["tables"].as_array().map(Vec::len),
        Some(2),
        "{}",
        text(&tables)
    );
    assert_eq!(body["tables"][1]["comment"], "one row per order");

    let described = call(
        &client,
        "sql_describe_table",
        json!({"table": format!("{prefix}_orders")}),
    )
    .await;
    assert!(!is_error(&described), "{}", text(&described));
    let body = structured(&described);
    assert_eq!(body["columns"][2]["comment"], "after discounts");
    assert_eq!(body["columns"][0]["primary_key_position"], 1);
    assert_eq!(body["columns"][0]["nullable"], false);
    assert_eq!(
        body["foreign_keys"][0]["references_table"],
        format!("test.{prefix}_customers")
    );
    assert!(names(&body["indexes"], "name").contains(&"by_customer".to_owned()));

    let plan = call(
        &client,
        "sql_explain",
        json!({"sql": format!("SELECT * FROM {prefix}_orders WHERE id = ?"), "params": [1]}),
    )
    .await;
    assert!(
        structured(&plan)["plan"]["query_block"].is_object(),
        "{}",
        text(&plan)
    );
    client.cancel().await.expect("close");
    for sql in [
        format!("DROP TABLE {prefix}_orders"),
        format!("DROP TABLE {prefix}_customers"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("drop");
    }
}

#[tokio::test]
async fn a_profile_shows_nulls_ranges_and_common_values() {
    let client = connect(None).await;
    let result = call(
        &client,
        "sql_profile",
        json!({"table": "orders", "columns": ["status", "discount"], "top": 2}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let body = structured(&result);
    assert_eq!(body["row_count"], 25000);
    let status = &body["columns"][0];
    assert_eq!(status["name"], "status");
    assert_eq!(status["nulls"], 0);
    assert_eq!(status["distinct"], 6);
    assert_eq!(status["top_values"][0]["value"], "delivered");
    assert_eq!(status["top_values"].as_array().map(Vec::len), Some(2));
    let discount = &body["columns"][1];
    let share = discount["null_fraction"].as_f64().expect("fraction");
    assert!((0.70..0.80).contains(&share), "{share}");
    assert!(discount["min"].as_f64().expect("min") > 0.0);

    let result = call(
        &client,
        "sql_profile",
        json!({"sql": "SELECT currency FROM orders WHERE total > 1000"}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(structured(&result)["columns"][0]["distinct"], 3);

    let refused = call(&client, "sql_profile", json!({"sql": "DELETE FROM orders"})).await;
    assert!(
        text(&refused).starts_with("refused: "),
        "{}",
        text(&refused)
    );
    let sneaky = call(
        &client,
        "sql_profile",
        json!({"table": "orders\"; DROP TABLE orders; --"}),
    )
    .await;
    assert!(is_error(&sneaky));
    assert!(
        text(&sneaky).contains("no table or view"),
        "{}",
        text(&sneaky)
    );
    let unknown = call(
        &client,
        "sql_profile",
        json!({"table": "orders", "columns": ["nope"]}),
    )
    .await;
    assert!(
        text(&unknown).contains("unknown column"),
        "{}",
        text(&unknown)
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn table_schemas_are_resources() {
    use rmcp::model::ReadResourceRequestParams;

    let client = connect(None).await;
    let resources = client.list_all_resources().await.expect("resources/list");
    assert!(
        resources
            .iter()
            .any(|r| r.uri == "datamcp://warehouse/demo/tables")
    );
    let templates = client
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "datamcp://warehouse/{warehouse}/table/{table}")
    );

    let read = |uri: &'static str| {
        let client = &client;
        async move {
            client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
                .map(|r| serde_json::to_value(&r.contents[0]).expect("contents"))
        }
    };
    let tables = read("datamcp://warehouse/demo/tables")
        .await
        .expect("tables");
    let tables: Value = serde_json::from_str(tables["text"].as_str().expect("text")).expect("json");
    assert_eq!(tables["tables"].as_array().map(Vec::len), Some(7));

    let orders = read("datamcp://warehouse/demo/table/orders")
        .await
        .expect("orders");
    let orders: Value = serde_json::from_str(orders["text"].as_str().expect("text")).expect("json");
    assert_eq!(orders["columns"][0]["name"], "id");
    assert_eq!(orders["foreign_keys"][0]["references_table"], "customers");

    let missing = read("datamcp://warehouse/demo/table/nope")
        .await
        .expect_err("no such table");
    assert!(
        missing.to_string().contains("no table or view 'nope'"),
        "{missing}"
    );
    client.cancel().await.expect("close");
}
