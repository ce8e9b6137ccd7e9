//! The MLflow-backed ML tools against a real `mlflow server` (MLflow 3.17.2, SQLite backend) and
//! a real scoring server (`mlflow models serve` of a scikit-learn model the seed logged), each
//! started on a free loopback port: every tool end to end through an MCP client, deploys gated
//! off and on, a model trained here logged and scored back, a scoring endpoint's error passed
//! on, and MLflow going down and coming back.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mlflow_support::{MlflowServer, ScoringServer};
use crate::support::*;

/// A config with the seed's dataset as warehouse `churn` and the tracking server as `local`.
fn config(
    dir: &Path,
    mlflow: &MlflowServer,
    scoring: &str,
    extra: &str,
    ml: &str,
) -> std::path::PathBuf {
    let path = dir.join("datamcp.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\n[warehouses.churn]\nurl = \"sqlite://{}\"\n\n[ml.local]\ntracking_uri = \"{}\"\nrequest_timeout_ms = 3000\n{ml}\n[ml.local.endpoints]\nchurn = \"{scoring}/invocations\"\n",
            dir.join("churn.db").display(),
            mlflow.url()
        ),
    )
    .expect("config");
    path
}

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

#[track_caller]
fn ok(result: &rmcp::model::CallToolResult) -> serde_json::Map<String, Value> {
    assert!(!is_error(result), "{}", text(result));
    structured(result)
}

#[tokio::test]
async fn every_mlflow_tool_end_to_end_with_deploys_gated_and_a_model_trained_here() {
    let mlflow = MlflowServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let seed = mlflow.seed_with_dataset(&dir.path().join("churn.db"));
    let scoring = ScoringServer::start(seed["model_uri"].as_str().expect("uri"), &mlflow.url());

    // Read-only (the default), even with deploys and logging allowed on the tracking server:
    // the reading tools, no deploy, no logging.
    let read_only = config(
        dir.path(),
        &mlflow,
        &scoring.url(),
        "",
        "allow_deploy = true\nallow_log = true",
    );
    let client = connect(Some(&read_only)).await;
    let listed = names(&client.list_all_tools().await.expect("tools"));
    for tool in [
        "ml_list_experiments",
        "ml_search_runs",
        "ml_get_run",
        "ml_list_models",
        "ml_get_model",
        "ml_predict",
        "ml_evaluate",
        "ml_monitor",
        "ml_train",
    ] {
        assert!(
            listed.contains(&tool.to_owned()),
            "{tool} missing: {listed:?}"
        );
    }
    assert!(
        !listed.contains(&"ml_deploy".to_owned()),
        "deploys are off by default"
    );

    let experiments = ok(&call(&client, "ml_list_experiments", json!({})).await);
    let churn = experiments["experiments"]
        .as_array()
        .expect("experiments")
        .iter()
        .find(|e| e["name"] == "churn")
        .expect("the seeded experiment");
    assert_eq!(churn["id"], seed["experiment_id"]);

    let runs = ok(&call(
        &client,
        "ml_search_runs",
        json!({"experiments": ["churn"], "order_by": ["metrics.roc_auc DESC"]}),
    )
    .await);
    let listed_runs = runs["runs"].as_array().expect("runs");
    assert_eq!(listed_runs.len(), 3);
    assert_eq!(listed_runs[0]["run_id"], seed["runs"]["strong"]);
    let differing = runs["differing_metrics"].as_array().expect("differing");
    assert!(differing.contains(&json!("roc_auc")), "{differing:?}");
    assert!(
        runs["differing_params"]
            .as_array()
            .expect("params")
            .contains(&json!("C"))
    );
    let filtered = ok(&call(
        &client,
        "ml_search_runs",
        json!({"experiments": [seed["experiment_id"]], "filter": "metrics.roc_auc > 0.9"}),
    )
    .await);
    for run in filtered["runs"].as_array().expect("runs") {
        assert!(
            run["metrics"]["roc_auc"].as_f64().expect("auc") > 0.9,
            "{run}"
        );
    }
    let bad_filter = call(
        &client,
        "ml_search_runs",
        json!({"filter": "metrics.roc_auc >>> 1"}),
    )
    .await;
    assert!(is_error(&bad_filter));
    assert!(
        text(&bad_filter).contains("comparator"),
        "MLflow's reason is passed on: {}",
        text(&bad_filter)
    );

    let run = ok(&call(
        &client,
        "ml_get_run",
        json!({"run_id": seed["runs"]["weak"]}),
    )
    .await);
    assert_eq!(run["run_name"], "weak");
    assert!(run["params"].get("C").is_some(), "{run:?}");
    assert_eq!(
        run["metrics"]["val_loss"]["count"], 5,
        "the history is summarised"
    );
    assert!(
        run["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .any(|a| a["path"] == "eval"),
        "{run:?}"
    );
    let missing = call(
        &client,
        "ml_get_run",
        json!({"run_id": "0123456789abcdef0123456789abcdef"}),
    )
    .await;
    assert!(is_error(&missing));
    assert!(text(&missing).contains("not found"), "{}", text(&missing));

    let models = ok(&call(&client, "ml_list_models", json!({})).await);
    let churn_model = models["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == "churn-model")
        .expect("churn-model");
    assert_eq!(churn_model["aliases"]["champion"], "1");
    assert_eq!(churn_model["latest_version"], "2");

    let model = ok(&call(&client, "ml_get_model", json!({"name": "churn-model"})).await);
    let versions = model["versions"].as_array().expect("versions");
    assert_eq!(versions[0]["version"], "2");
    assert_eq!(versions[1]["aliases"], json!(["champion"]));
    assert_eq!(versions[1]["run_id"], seed["runs"]["weak"]);
    let inputs: Vec<&str> = versions[1]["signature"]["inputs"]
        .as_array()
        .expect("the signature from the MLmodel file")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(
        inputs,
        ["tenure_months", "monthly_spend", "support_tickets"]
    );

    // Predictions from the scoring endpoint, beside the keys.
    let sample = &seed["sample"];
    let columns = sample["columns"].as_array().expect("columns");
    let rows: Vec<Value> = sample["data"]
        .as_array()
        .expect("data")
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut object = serde_json::Map::new();
            object.insert("customer".into(), json!(1000 + i));
            for (c, v) in columns.iter().zip(row.as_array().expect("row")) {
                object.insert(c.as_str().expect("name").to_owned(), v.clone());
            }
            Value::Object(object)
        })
        .collect();
    let predicted = ok(&call(
        &client,
        "ml_predict",
        json!({"endpoint": "churn", "rows": rows, "keys": ["customer"]}),
    )
    .await);
    let predictions: Vec<Value> = predicted["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["prediction"].clone())
        .collect();
    assert_eq!(json!(predictions), seed["sample_predictions"]);
    assert_eq!(predicted["predictions"][0]["keys"]["customer"], 1000);
    let from_sql = ok(&call(
        &client,
        "ml_predict",
        json!({"endpoint": "churn", "sql": "SELECT rowid AS id, tenure_months, monthly_spend, support_tickets FROM customers", "max_rows": 50}),
    )
    .await);
    assert_eq!(from_sql["predictions"].as_array().expect("list").len(), 50);
    assert_eq!(from_sql["truncated"], true);

    // The endpoint's own error, passed on.
    let refused = call(
        &client,
        "ml_predict",
        json!({"endpoint": "churn", "rows": rows, "keys": ["customer"], "features": ["tenure_months"]}),
    )
    .await;
    assert!(is_error(&refused));
    let message = text(&refused);
    assert!(
        message.contains("'churn'") && message.contains("missing inputs"),
        "{message}"
    );

    // Gated: nothing is written from a read-only server.
    let log = call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT churned AS label, churned AS prediction FROM customers", "log": {"experiment": "churn"}}),
    )
    .await;
    assert!(is_error(&log));
    assert!(text(&log).contains("read-only"), "{}", text(&log));
    let deploy = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("ml_deploy").with_arguments(arguments(
                json!({"model": "churn-model", "alias": "champion", "version": 2}),
            )),
        )
        .await;
    assert!(
        deploy.as_ref().map_or(true, |r| r.is_error == Some(true)),
        "an unlisted write is not callable: {deploy:?}"
    );
    drop(client);

    // allow_deploy and allow_log on a writable server.
    let writable = config(
        dir.path(),
        &mlflow,
        &scoring.url(),
        "read_only = false",
        "allow_deploy = true\nallow_log = true",
    );
    let client = connect(Some(&writable)).await;
    let tools = client.list_all_tools().await.expect("tools");
    let deploy_tool = tools
        .iter()
        .find(|t| t.name == "ml_deploy")
        .expect("ml_deploy listed");
    let annotations = deploy_tool.annotations.as_ref().expect("annotations");
    assert_eq!(annotations.destructive_hint, Some(true));
    assert_eq!(annotations.read_only_hint, Some(false));

    let too_weak = call(
        &client,
        "ml_deploy",
        json!({"model": "churn-model", "alias": "champion", "version": 1, "require": {"metric": "roc_auc", "min": 0.99}}),
    )
    .await;
    assert!(is_error(&too_weak));
    assert!(text(&too_weak).contains("roc_auc"), "{}", text(&too_weak));
    let strong = seed["metrics"]["strong"]["roc_auc"]
        .as_f64()
        .expect("seeded auc");
    let moved = ok(&call(
        &client,
        "ml_deploy",
        json!({"model": "churn-model", "alias": "champion", "version": 2, "require": {"metric": "roc_auc", "min": strong - 0.01}}),
    )
    .await);
    assert_eq!(moved["previous_version"], "1");
    assert_eq!(moved["version"], "2");
    let after = ok(&call(&client, "ml_get_model", json!({"name": "churn-model"})).await);
    assert_eq!(after["aliases"]["champion"], "2");

    // Train here, log to MLflow, score the logged model in process.
    let trained = ok(&call(
        &client,
        "ml_train",
        json!({"sql": "SELECT tenure_months, monthly_spend, support_tickets, churned FROM customers", "target": "churned", "algorithm": "logistic_regression", "log": {"experiment": "churn", "run_name": "datamcp-logistic"}}),
    )
    .await);
    let run_id = trained["logged"]["run_id"]
        .as_str()
        .expect("logged run")
        .to_owned();
    let logged = ok(&call(&client, "ml_get_run", json!({"run_id": run_id})).await);
    assert!(logged["metrics"].get("roc_auc").is_some(), "{logged:?}");
    assert_eq!(logged["params"]["target"], "churned");
    assert!(
        logged["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .any(|a| a["path"] == "datamcp-model")
    );
    let scored = ok(&call(
        &client,
        "ml_predict",
        json!({"run_id": run_id, "rows": rows, "keys": ["customer"]}),
    )
    .await);
    let scored = scored["predictions"].as_array().expect("predictions");
    assert_eq!(scored.len(), rows.len());
    assert!(scored[0]["probabilities"].is_object(), "{:?}", scored[0]);

    // Evaluation metrics logged to an existing run.
    let evaluated = ok(&call(
        &client,
        "ml_evaluate",
        json!({"sql": "SELECT churned, support_tickets >= 3 AS predicted FROM customers", "label": "churned", "prediction": "predicted", "log": {"run_id": seed["runs"]["tree"]}}),
    )
    .await);
    assert_eq!(evaluated["logged"]["run_id"], seed["runs"]["tree"]);
    let tree_run = ok(&call(
        &client,
        "ml_get_run",
        json!({"run_id": seed["runs"]["tree"]}),
    )
    .await);
    assert_eq!(
        tree_run["metrics"]["f1"]["last"].as_f64(),
        evaluated["metrics"]["f1"].as_f64(),
        "{tree_run:?}"
    );
    drop(client);
    drop(scoring);
}

#[tokio::test]
async fn mlflow_down_is_a_clear_error_within_the_deadline_and_serving_resumes_when_it_returns() {
    let mut mlflow = MlflowServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("datamcp.toml");
    std::fs::write(
        &path,
        format!(
            "demo = true\n[tools.ml_list_experiments]\ntimeout_ms = 4000\n[ml.local]\ntracking_uri = \"{}\"\nrequest_timeout_ms = 2000\n",
            mlflow.url()
        ),
    )
    .expect("config");
    let client = connect(Some(&path)).await;
    ok(&call(&client, "ml_list_experiments", json!({})).await);

    mlflow.stop();
    let started = Instant::now();
    let down = call(&client, "ml_list_experiments", json!({})).await;
    let took = started.elapsed();
    assert!(is_error(&down));
    let message = text(&down);
    assert!(
        message.contains("not reachable") && message.contains("local"),
        "{message}"
    );
    assert!(
        took < Duration::from_secs(6),
        "answered within the deadline: {took:?}"
    );
    // Other tools keep serving meanwhile.
    ok(&call(&client, "sql_query", json!({"sql": "SELECT 1"})).await);

    mlflow.restart();
    ok(&call(&client, "ml_list_experiments", json!({})).await);
}
