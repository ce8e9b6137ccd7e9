//! The ML tools on warehouses alone (no MLflow): `ml_evaluate`, `ml_monitor` and `ml_train` over
//! stdio on the demo, on PostgreSQL and on MariaDB. Every metric and drift statistic is checked
//! against scikit-learn / SciPy / NumPy (`tests/ml/expected.py`) on the very rows the warehouse
//! holds: exactly where the tool says exact, within its stated bound where it says approximate.

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::mlflow_support::expected;
use crate::support::*;

const EXACT: f64 = 1e-9;

/// Rows of `sql` as the warehouse returns them, through `sql_query`.
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Value>> {
    let result = call(
        client,
        "sql_query",
        json!({"sql": sql, "max_rows": 100000, "max_bytes": 67108864}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    serde_json::from_value(structured(&result)["rows"].clone()).expect("rows")
}

fn column(rows: &[Vec<Value>], index: usize) -> Vec<Value> {
    rows.iter().map(|r| r[index].clone()).collect()
}

fn numbers(rows: &[Vec<Value>], index: usize) -> Vec<f64> {
    rows.iter().filter_map(|r| r[index].as_f64()).collect()
}

#[track_caller]
fn close(actual: &Value, expected: &Value, tolerance: f64, what: &str) {
    let (a, e) = (
        actual
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: no value in {actual}")),
        expected
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: no expected value in {expected}")),
    );
    let scale = e.abs().max(1.0);
    assert!(
        (a - e).abs() <= tolerance * scale,
        "{what}: datamcp {a}, reference {e} (tolerance {tolerance})"
    );
}

const FEATURES: &str = "tenure_months, monthly_spend, support_tickets, plan, days_since_login";

#[tokio::test]
async fn a_newcomers_first_monitor_call_on_the_demo_finds_the_drifting_week() {
    let client = connect(None).await;
    let tools = client.list_all_tools().await.expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for tool in ["ml_evaluate", "ml_monitor", "ml_train"] {
        assert!(
            names.contains(&tool),
            "{tool} is listed without any config: {names:?}"
        );
    }
    assert!(
        !names.contains(&"ml_list_models") && !names.contains(&"ml_deploy"),
        "MLflow tools need an [ml.*] table: {names:?}"
    );

    let result = call(
        &client,
        "ml_monitor",
        json!({
            "reference_sql": format!("SELECT {FEATURES} FROM feature_snapshots WHERE week < '2024-12-23'"),
            "current_sql": format!("SELECT {FEATURES} FROM feature_snapshots WHERE week = '2024-12-23'"),
        }),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    assert_eq!(out["verdict"], "drift", "{}", text(&result));
    let drifting: Vec<&str> = out["drifting"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for feature in ["monthly_spend", "plan", "days_since_login"] {
        assert!(
            drifting.contains(&feature),
            "{feature} drifts: {drifting:?}"
        );
    }
    for feature in ["tenure_months", "support_tickets"] {
        assert!(
            !drifting.contains(&feature),
            "{feature} is stable: {drifting:?}"
        );
    }
    assert!(text(&result).contains("DRIFT in"), "{}", text(&result));
    let feature = |name: &str| {
        out["features"]
            .as_array()
            .expect("features")
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .expect("feature reported")
    };

    // The same statistics from SciPy / NumPy on the same rows.
    let reference = rows(
        &client,
        &format!("SELECT {FEATURES} FROM feature_snapshots WHERE week < '2024-12-23'"),
    )
    .await;
    let current = rows(
        &client,
        &format!("SELECT {FEATURES} FROM feature_snapshots WHERE week = '2024-12-23'"),
    )
    .await;
    for (index, name) in [
        (0, "tenure_months"),
        (1, "monthly_spend"),
        (2, "support_tickets"),
    ] {
        let f = feature(name);
        assert_eq!(f["kind"], "numeric", "{name}");
        assert_eq!(f["exact"], true, "{name}");
        let ks = expected(
            json!({"op": "ks", "reference": numbers(&reference, index), "current": numbers(&current, index)}),
        );
        close(
            &f["ks"]["statistic"],
            &ks["statistic"],
            EXACT,
            &format!("{name} KS"),
        );
        close(
            &f["ks"]["p_value"],
            &ks["pvalue"],
            1e-6,
            &format!("{name} KS p-value"),
        );
        let psi = expected(
            json!({"op": "psi", "reference": numbers(&reference, index), "current": numbers(&current, index), "bins": 10}),
        );
        close(&f["psi"], &psi["psi"], EXACT, &format!("{name} PSI"));
    }
    // days_since_login has missing values: the statistics use the present ones, and the
    // missing share is its own drift.
    let login = feature("days_since_login");
    let missing = |rows: &[Vec<Value>]| {
        rows.iter().filter(|r| r[4].is_null()).count() as f64 / rows.len() as f64
    };
    close(
        &login["missing"]["reference_rate"],
        &json!(missing(&reference)),
        EXACT,
        "missing share (reference)",
    );
    close(
        &login["missing"]["current_rate"],
        &json!(missing(&current)),
        EXACT,
        "missing share (current)",
    );
    let ks = expected(
        json!({"op": "ks", "reference": numbers(&reference, 4), "current": numbers(&current, 4)}),
    );
    close(
        &login["ks"]["statistic"],
        &ks["statistic"],
        EXACT,
        "days_since_login KS",
    );

    let plan = feature("plan");
    assert_eq!(plan["kind"], "categorical");
    let counts = |rows: &[Vec<Value>]| {
        ["basic", "premium", "standard"]
            .iter()
            .map(|p| rows.iter().filter(|r| r[3] == *p).count())
            .collect::<Vec<_>>()
    };
    let chi2 = expected(
        json!({"op": "chi2", "reference_counts": counts(&reference), "current_counts": counts(&current)}),
    );
    close(
        &plan["chi_square"]["statistic"],
        &chi2["statistic"],
        EXACT,
        "plan chi-square",
    );
    close(
        &plan["chi_square"]["p_value"],
        &chi2["pvalue"],
        1e-6,
        "plan chi-square p-value",
    );
    assert_eq!(plan["chi_square"]["dof"], chi2["dof"]);

    // The weeks before the drift are stable.
    let stable = call(
        &client,
        "ml_monitor",
        json!({
            "reference_sql": format!("SELECT {FEATURES} FROM feature_snapshots WHERE week < ?"),
            "reference_params": ["2024-12-09"],
            "current_sql": format!("SELECT {FEATURES} FROM feature_snapshots WHERE week = ?"),
            "current_params": ["2024-12-16"],
        }),
    )
    .await;
    assert!(!is_error(&stable), "{}", text(&stable));
    assert_eq!(
        structured(&stable)["verdict"],
        "stable",
        "{}",
        text(&stable)
    );
}

#[tokio::test]
async fn classification_metrics_on_the_demo_equal_scikit_learns() {
    let client = connect(None).await;
    let sql = "SELECT churn_score, predicted_churn, churned FROM model_scores WHERE scored_on = '2024-12-16'";
    let result = call(
        &client,
        "ml_evaluate",
        json!({"sql": sql, "label": "churned", "prediction": "predicted_churn", "score": "churn_score",
               "checks": {"roc_auc": {"min": 0.7}, "accuracy": {"min": 0.99}}}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    let data = rows(&client, sql).await;
    let reference = expected(json!({
        "op": "classification",
        "y_true": column(&data, 2),
        "y_pred": column(&data, 1),
        "y_score": column(&data, 0),
        "positive": 1,
    }));
    let m = &out["metrics"];
    close(&m["accuracy"], &reference["accuracy"], EXACT, "accuracy");
    for (ours, average) in [
        ("", "binary"),
        ("_macro", "macro"),
        ("_weighted", "weighted"),
    ] {
        for metric in ["precision", "recall", "f1"] {
            close(
                &m[format!("{metric}{ours}")],
                &reference[average][metric],
                EXACT,
                &format!("{metric} {average}"),
            );
        }
    }
    close(&m["roc_auc"], &reference["roc_auc"], EXACT, "roc_auc");
    close(&m["log_loss"], &reference["log_loss"], EXACT, "log_loss");
    assert_eq!(
        out["confusion_matrix"]["counts"],
        reference["confusion_matrix"]
    );
    assert_eq!(out["exact"], true);
    assert_eq!(out["rows"], json!(data.len()));
    // One check passes, one fails, so the verdict fails.
    let checks = out["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2);
    assert_eq!(out["passed"], false, "{}", text(&result));
    assert!(text(&result).contains("FAIL accuracy"), "{}", text(&result));

    // Without a prediction column, the score is cut at the threshold.
    let cut = call(
        &client,
        "ml_evaluate",
        json!({"sql": sql, "label": "churned", "score": "churn_score", "threshold": 0.3}),
    )
    .await;
    assert!(!is_error(&cut), "{}", text(&cut));
    let predicted: Vec<Value> = data
        .iter()
        .map(|r| json!(i64::from(r[0].as_f64().expect("score") >= 0.3)))
        .collect();
    let reference =
        expected(json!({"op": "classification", "y_true": column(&data, 2), "y_pred": predicted}));
    close(
        &structured(&cut)["metrics"]["f1"],
        &reference["binary"]["f1"],
        EXACT,
        "f1 at threshold 0.3",
    );
}

#[tokio::test]
async fn beyond_the_exact_limit_scores_are_binned_and_the_stated_bound_holds() {
    let client = connect(None).await;
    // Every week: 12,000 rows with thousands of distinct scores, read with a small limit.
    let sql = "SELECT churn_score, churned FROM model_scores";
    let result = call(
        &client,
        "ml_evaluate",
        json!({"sql": sql, "label": "churned", "score": "churn_score", "exact_limit": 100}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    assert_eq!(out["exact"], false);
    let bound = out["error_bounds"]["roc_auc"]
        .as_f64()
        .expect("a stated bound");
    let data = rows(&client, sql).await;
    let reference = expected(
        json!({"op": "classification", "y_true": column(&data, 1), "y_pred": column(&data, 1), "y_score": column(&data, 0), "positive": 1}),
    );
    let exact = reference["roc_auc"].as_f64().expect("auc");
    let approximate = out["metrics"]["roc_auc"].as_f64().expect("auc");
    assert!(
        (approximate - exact).abs() <= bound,
        "|{approximate} - {exact}| > {bound}"
    );
    assert!(bound < 0.01, "100 bins keep the bound small: {bound}");
}

#[tokio::test]
async fn regression_metrics_on_the_demo_equal_scikit_learns() {
    let client = connect(None).await;
    let sql =
        "SELECT predicted_spend, actual_spend FROM model_scores WHERE scored_on >= '2024-12-09'";
    let result = call(
        &client,
        "ml_evaluate",
        json!({"sql": sql, "task": "regression", "label": "actual_spend", "prediction": "predicted_spend", "checks": {"r2": {"min": 0.5}}}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    let data = rows(&client, sql).await;
    let reference = expected(
        json!({"op": "regression", "y_true": column(&data, 1), "y_pred": column(&data, 0)}),
    );
    for metric in ["rmse", "mae", "r2", "mape"] {
        close(&out["metrics"][metric], &reference[metric], EXACT, metric);
    }
}

#[tokio::test]
async fn training_reports_its_feature_engineering_and_held_out_metrics() {
    let client = connect(None).await;
    let sql = "SELECT f.tenure_months, f.support_tickets, f.plan, f.days_since_login, m.churned \
               FROM feature_snapshots f JOIN model_scores m ON m.customer_id = f.customer_id AND m.scored_on = f.week \
               WHERE f.week < '2024-12-23'";
    let result = call(
        &client,
        "ml_train",
        json!({"sql": sql, "target": "churned", "algorithm": "logistic_regression", "max_rows": 20000}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    let report = &out["report"];
    assert_eq!(report["rows"]["used"], 10_500);
    assert_eq!(report["rows"]["test"], 2_100);
    let columns = report["columns"].as_array().expect("columns");
    let login = columns
        .iter()
        .find(|c| c["column"] == "days_since_login")
        .expect("login column");
    assert!(
        login["imputed"].as_u64().expect("count") > 0,
        "missing logins are imputed: {login}"
    );
    let features: Vec<&str> = report["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        features.contains(&"plan=premium"),
        "plan is one-hot encoded: {features:?}"
    );
    let auc = out["metrics"]["roc_auc"]
        .as_f64()
        .expect("auc on the test split");
    assert!(auc > 0.7, "the churn signal is learnt: {auc}");
    assert!(
        text(&result).contains("Strongest features"),
        "{}",
        text(&result)
    );

    // A tree and a linear regression on the same data.
    let tree = call(
        &client,
        "ml_train",
        json!({"sql": sql, "target": "churned", "algorithm": "decision_tree_classifier", "max_depth": 3}),
    )
    .await;
    assert!(!is_error(&tree), "{}", text(&tree));
    assert!(structured(&tree)["report"]["feature_importances"].is_array());
    let linear = call(
        &client,
        "ml_train",
        json!({"sql": "SELECT tenure_months, plan, monthly_spend FROM feature_snapshots", "target": "monthly_spend", "algorithm": "linear_regression"}),
    )
    .await;
    assert!(!is_error(&linear), "{}", text(&linear));
    assert!(structured(&linear)["metrics"]["r2"].as_f64().expect("r2") > 0.0);

    // Bad requests say what to change.
    let text_target = call(
        &client,
        "ml_train",
        json!({"sql": "SELECT tenure_months, plan FROM feature_snapshots", "target": "plan", "algorithm": "linear_regression"}),
    )
    .await;
    assert!(is_error(&text_target));
    assert!(
        text(&text_target).contains("plan"),
        "{}",
        text(&text_target)
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_writes_stay_refused() {
    let client = connect(None).await;
    let refused = call(
        &client,
        "ml_evaluate",
        json!({"sql": "DELETE FROM model_scores", "label": "churned", "prediction": "predicted_churn"}),
    )
    .await;
    assert!(is_error(&refused));
    assert!(text(&refused).contains("refused"), "{}", text(&refused));

    let missing = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT churned FROM model_scores", "label": "churned", "prediction": "nope"}),
    )
    .await;
    assert!(is_error(&missing));
    assert!(text(&missing).contains("nope"), "{}", text(&missing));

    let log = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT predicted_churn, churned FROM model_scores", "label": "churned", "prediction": "predicted_churn", "log": {"experiment": "x"}}),
    )
    .await;
    assert!(is_error(&log));
    assert!(text(&log).contains("MLflow"), "{}", text(&log));

    let unknown_check = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT predicted_churn, churned FROM model_scores", "label": "churned", "prediction": "predicted_churn", "checks": {"auc": {"min": 0.5}}}),
    )
    .await;
    assert!(is_error(&unknown_check));
    assert!(
        text(&unknown_check).contains("roc_auc") || text(&unknown_check).contains("accuracy"),
        "{}",
        text(&unknown_check)
    );

    let different = call(
        &client,
        "ml_monitor",
        json!({"reference_sql": "SELECT plan FROM feature_snapshots", "current_sql": "SELECT tenure_months FROM feature_snapshots"}),
    )
    .await;
    assert!(is_error(&different));
    assert!(
        text(&different).contains("same columns"),
        "{}",
        text(&different)
    );
    // The server keeps serving.
    let ok = call(&client, "sql_query", json!({"sql": "SELECT 1"})).await;
    assert!(!is_error(&ok));
}

/// Labels as text, a NULL, mixed-case and reserved column names, DECIMAL values: the same
/// metrics on PostgreSQL and MariaDB as scikit-learn gives.
#[tokio::test]
async fn postgres_and_mariadb_compute_the_same_metrics_as_scikit_learn() {
    let mut values = Vec::new();
    let mut y_true = Vec::new();
    let mut y_pred = Vec::new();
    let mut y_score = Vec::new();
    let mut actual = Vec::new();
    let mut forecast = Vec::new();
    let mut state: u64 = 7;
    for id in 0..400 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let score = ((state >> 33) % 1000) as f64 / 1000.0;
        let churned = ((state >> 13) % 100) as f64 / 100.0 < score * 0.8 + 0.1;
        let label = if churned { "yes" } else { "no" };
        let predicted = if score >= 0.5 { "yes" } else { "no" };
        let spend = 50.0 + ((state >> 20) % 10_000) as f64 / 100.0;
        let guess = spend + (((state >> 40) % 2_000) as f64 - 1_000.0) / 100.0;
        values.push(format!(
            "({id}, '{label}', '{predicted}', {score}, {spend:.2}, {guess:.2})"
        ));
        y_true.push(json!(label));
        y_pred.push(json!(predicted));
        y_score.push(json!(score));
        actual.push(json!((spend * 100.0).round() / 100.0));
        forecast.push(json!((guess * 100.0).round() / 100.0));
    }
    values.push("(400, NULL, 'yes', 0.5, NULL, 1.0)".into());
    let classification = expected(
        json!({"op": "classification", "y_true": y_true, "y_pred": y_pred, "y_score": y_score, "positive": "yes"}),
    );
    let regression = expected(json!({"op": "regression", "y_true": actual, "y_pred": forecast}));

    let check = |out: &serde_json::Map<String, Value>, task: &str| {
        let m = &out["metrics"];
        assert_eq!(out["skipped"], 1, "the NULL label is skipped");
        if task == "classification" {
            for (ours, theirs) in [
                ("accuracy", "/accuracy"),
                ("f1", "/binary/f1"),
                ("f1_macro", "/macro/f1"),
                ("precision_weighted", "/weighted/precision"),
                ("roc_auc", "/roc_auc"),
                ("log_loss", "/log_loss"),
            ] {
                close(
                    &m[ours],
                    classification.pointer(theirs).expect("reference"),
                    EXACT,
                    ours,
                );
            }
        } else {
            for metric in ["rmse", "mae", "r2", "mape"] {
                close(&m[metric], &regression[metric], EXACT, metric);
            }
        }
    };
    let requests = |table: &str, quote: &str| {
        let q = |name: &str| format!("{quote}{name}{quote}");
        (
            json!({"sql": format!("SELECT * FROM {table}"), "label": "Outcome", "prediction": "order", "score": "Score", "positive": "yes"}),
            json!({"sql": format!("SELECT {}, {} FROM {table}", q("Spend"), q("Forecast")), "task": "regression", "label": "Spend", "prediction": "Forecast"}),
        )
    };

    // PostgreSQL.
    let schema = PgSchema::new(
        "ml_metrics",
        &format!(
            "CREATE TABLE scores (id int, \"Outcome\" text, \"order\" text, \"Score\" double precision, \"Spend\" numeric(10,2), \"Forecast\" numeric(10,2));
             INSERT INTO scores VALUES {};",
            values.join(", ")
        ),
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("datamcp.toml"),
        format!("[warehouses.pg]\nurl = \"{PG_SERVER}\"\nallow_privileged_account = true\n"),
    )
    .expect("config");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let (class, reg) = requests(&format!("{}.scores", schema.name), "\"");
    let result = call(&client, "ml_evaluate", class).await;
    assert!(!is_error(&result), "{}", text(&result));
    check(&structured(&result), "classification");
    let result = call(&client, "ml_evaluate", reg).await;
    assert!(!is_error(&result), "{}", text(&result));
    check(&structured(&result), "regression");
    // NUMERIC labels arrive as text ("1.0") and still meet integer predictions.
    let numeric = call(
        &client,
        "ml_evaluate",
        json!({"sql": format!("SELECT CAST(CASE WHEN \"Outcome\" = 'yes' THEN 1 ELSE 0 END AS numeric(3,1)) AS label, CASE WHEN \"order\" = 'yes' THEN 1 ELSE 0 END AS prediction FROM {}.scores WHERE \"Outcome\" IS NOT NULL", schema.name)}),
    )
    .await;
    assert!(!is_error(&numeric), "{}", text(&numeric));
    let out = structured(&numeric);
    assert_eq!(
        out["confusion_matrix"]["labels"],
        json!(["0", "1"]),
        "{}",
        text(&numeric)
    );
    close(
        &out["metrics"]["accuracy"],
        &classification["accuracy"],
        EXACT,
        "accuracy with NUMERIC labels",
    );
    let scored = call(
        &client,
        "ml_evaluate",
        json!({"sql": format!("SELECT CAST(CASE WHEN \"Outcome\" = 'yes' THEN 1 ELSE 0 END AS numeric(3,1)) AS label, \"Score\" FROM {}.scores WHERE \"Outcome\" IS NOT NULL", schema.name), "score": "Score"}),
    )
    .await;
    assert!(!is_error(&scored), "{}", text(&scored));
    close(
        &structured(&scored)["metrics"]["roc_auc"],
        &classification["roc_auc"],
        EXACT,
        "roc_auc with NUMERIC labels",
    );
    drop(client);
    schema.drop().await;

    // MariaDB.
    let table = format!("it_{}_ml_metrics", std::process::id());
    let mut conn = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")
        .await
        .expect("MariaDB");
    for sql in [
        format!("DROP TABLE IF EXISTS {table}"),
        format!(
            "CREATE TABLE {table} (id int, `Outcome` varchar(8), `order` varchar(8), `Score` double, `Spend` decimal(10,2), `Forecast` decimal(10,2))"
        ),
        format!("INSERT INTO {table} VALUES {}", values.join(", ")),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("fixture");
    }
    std::fs::write(
        dir.path().join("datamcp.toml"),
        "[warehouses.my]\nurl = \"mysql://root@127.0.0.1:3306/test\"\nallow_privileged_account = true\n",
    )
    .expect("config");
    let client = connect(Some(&dir.path().join("datamcp.toml"))).await;
    let (class, reg) = requests(&table, "`");
    let result = call(&client, "ml_evaluate", class).await;
    assert!(!is_error(&result), "{}", text(&result));
    check(&structured(&result), "classification");
    let result = call(&client, "ml_evaluate", reg).await;
    assert!(!is_error(&result), "{}", text(&result));
    check(&structured(&result), "regression");
    // Drift on MariaDB: the same statistics as SciPy on the same rows.
    let window =
        |condition: &str| format!("SELECT `Score`, `Outcome` FROM {table} WHERE id {condition}");
    let drift = call(
        &client,
        "ml_monitor",
        json!({"reference_sql": window("< 200"), "current_sql": window(">= 200")}),
    )
    .await;
    assert!(!is_error(&drift), "{}", text(&drift));
    let out = structured(&drift);
    let score = |range: std::ops::Range<usize>| y_score[range].to_vec();
    // Row 400 (a NULL outcome) scores 0.5 and belongs to the current window.
    let mut current = score(200..400);
    current.push(json!(0.5));
    let ks = expected(json!({"op": "ks", "reference": score(0..200), "current": current}));
    assert_eq!(out["features"][0]["kind"], "numeric");
    close(
        &out["features"][0]["ks"]["statistic"],
        &ks["statistic"],
        EXACT,
        "KS on MariaDB",
    );
    assert_eq!(out["features"][1]["kind"], "categorical");
    assert_eq!(
        out["features"][1]["missing"]["current_rate"],
        json!(1.0 / 201.0)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(&mut conn)
        .await
        .expect("drop");
}

#[tokio::test]
async fn the_release_gate_workflow_promotes_only_a_model_that_scores_and_does_not_drift() {
    let client = connect(None).await;
    let gate = |week: &'static str| call(&client, "model_release_gate", json!({"week": week}));
    let drifting = gate("2024-12-23").await;
    assert!(!is_error(&drifting), "{}", text(&drifting));
    let out = structured(&drifting);
    assert_eq!(out["output"]["ready_to_promote"], false, "{out:?}");
    let features = out["output"]["drifting_features"].as_array().expect("list");
    assert!(features.contains(&json!("monthly_spend")), "{features:?}");
    let calm = gate("2024-12-16").await;
    assert!(!is_error(&calm), "{}", text(&calm));
    assert_eq!(
        structured(&calm)["output"]["ready_to_promote"],
        true,
        "{}",
        text(&calm)
    );
}

/// The adversarial review's cases: each was a wrong number or a silent pass before.
#[tokio::test]
async fn labels_bounds_and_types_that_used_to_mislead() {
    let client = connect(None).await;
    // Numeric labels order as numbers: 10 is the greater class, so the positive one.
    let tens = "SELECT CASE WHEN churned = 1 THEN 10 ELSE 2 END AS label, churn_score FROM model_scores WHERE scored_on = '2024-12-16'";
    let numeric = call(
        &client,
        "ml_evaluate",
        json!({"sql": tens, "score": "churn_score"}),
    )
    .await;
    let ones = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT churned AS label, churn_score FROM model_scores WHERE scored_on = '2024-12-16'", "score": "churn_score"}),
    )
    .await;
    assert_eq!(
        structured(&numeric)["metrics"]["roc_auc"],
        structured(&ones)["metrics"]["roc_auc"],
        "{}",
        text(&numeric)
    );
    // A positive class that is no label is refused, named with the labels there are.
    let absent = call(
        &client,
        "ml_evaluate",
        json!({"sql": tens, "score": "churn_score", "positive": "yes"}),
    )
    .await;
    assert!(is_error(&absent));
    assert!(text(&absent).contains("2, 10"), "{}", text(&absent));
    // ... and `1.0` names the label 1.
    let float_positive = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT churned AS label, churn_score FROM model_scores", "score": "churn_score", "positive": 1.0}),
    )
    .await;
    assert!(!is_error(&float_positive), "{}", text(&float_positive));
    // A bound without min or max would pass anything.
    let empty = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT churned AS label, predicted_churn AS prediction FROM model_scores", "checks": {"accuracy": {}}}),
    )
    .await;
    assert!(is_error(&empty));
    assert!(
        text(&empty).contains("neither min nor max"),
        "{}",
        text(&empty)
    );
    // A sum that overflows is an error, not a perfect model.
    let huge = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT actual_spend * 1e160 AS label, predicted_spend * 1e160 AS prediction FROM model_scores", "task": "regression"}),
    )
    .await;
    assert!(is_error(&huge), "{}", text(&huge));
    assert!(text(&huge).contains("overflowed"), "{}", text(&huge));

    // On SQLite an expression column is typed by all its values, not by the first row.
    let spend = |week: &str, order: &str| {
        format!(
            "SELECT CASE WHEN customer_id % 7 = 1 THEN NULL ELSE monthly_spend * 1.0 END AS s FROM feature_snapshots WHERE week = '{week}' ORDER BY customer_id {order}"
        )
    };
    for order in ["ASC", "DESC"] {
        let result = call(
            &client,
            "ml_monitor",
            json!({"reference_sql": spend("2024-12-09", order), "current_sql": spend("2024-12-16", order)}),
        )
        .await;
        let out = structured(&result);
        assert_eq!(
            out["features"][0]["kind"],
            "numeric",
            "{order}: {}",
            text(&result)
        );
        assert_eq!(out["verdict"], "stable", "{order}: {}", text(&result));
    }
    // An id is no category: more than 1,000 values are reported, not compared into false drift.
    let ids = call(
        &client,
        "ml_monitor",
        json!({"reference_sql": "SELECT customer_id FROM feature_snapshots WHERE week = '2024-12-09'",
               "current_sql": "SELECT customer_id FROM feature_snapshots WHERE week = '2024-12-16'",
               "categorical": ["customer_id"]}),
    )
    .await;
    let out = structured(&ids);
    assert_eq!(out["verdict"], "stable", "{}", text(&ids));
    assert_eq!(out["features"][0]["exact"], false);
}
