"""Seeds a fresh MLflow tracking server for the ML tests, and prints what it made as one JSON line.

Run it with the MLflow venv's python (`DATAMCP_MLFLOW_PYTHON`, installed by .ci/run):

    python tests/ml/mlflow_seed.py --tracking-uri http://127.0.0.1:PORT [--dataset-sqlite PATH]

Everything is deterministic (fixed seeds, fixed data) and nothing leaves loopback. It creates:
- experiment `churn` with three runs (`weak`, `strong`, `tree`), each with params `C` and
  `max_depth` (the string "None" where the model has no such setting), metrics `roc_auc` and
  `accuracy`, a `val_loss` history over 5 steps (a learning curve), and tags;
- registered model `churn-model`: version 1 from run `weak`, version 2 from run `strong` (the
  better one, higher `roc_auc`), alias `champion` on version 1; both scikit-learn models are
  logged with a signature and an input example;
- run artifacts `eval/scores.json` and `eval/holdout_head.csv` in each run (the models
  themselves are MLflow 3 logged models, stored under `<experiment>/models/<model_id>/artifacts`
  and not among the run's artifacts);
- registered model `churn-tree` (one version, from run `tree`, no aliases).
With `--dataset-sqlite`, the whole dataset is also written there as table `customers`, so a
warehouse can serve the very rows the models were trained and evaluated on.
"""

import argparse
import json
import os
import sqlite3
import sys
import warnings

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402

FEATURES = ["tenure_months", "monthly_spend", "support_tickets"]
LABEL = "churned"
ROWS = 300
TRAIN = 200  # the first 200 rows train, the last 100 evaluate


def dataset():
    """A churn table: short tenure, high spend and many tickets make churn likelier."""
    rng = np.random.RandomState(7)
    tenure = rng.randint(1, 73, ROWS)
    spend = np.round(rng.uniform(20, 120, ROWS), 2)
    tickets = rng.poisson(1.5, ROWS)
    logit = -0.06 * tenure + 0.03 * spend + 0.6 * tickets - 1.5 + rng.normal(0, 1.0, ROWS)
    churned = (logit > 0).astype(int)
    return pd.DataFrame(
        {
            "tenure_months": tenure.astype("int64"),
            "monthly_spend": spend.astype("float64"),
            "support_tickets": tickets.astype("int64"),
            LABEL: churned.astype("int64"),
        }
    )


def train_run(client_experiment, name, model, params, train, test, tags, model_name):
    """One run: fit, log params/metrics/history/tags and the model, register a version."""
    x_test, y_test = test[FEATURES], test[LABEL]
    with mlflow.start_run(experiment_id=client_experiment, run_name=name) as run:
        mlflow.log_params(params)
        mlflow.set_tags(tags)
        # A learning curve: held-out loss after training on 1/5, 2/5, ... of the training rows.
        for step in range(5):
            part = train.iloc[: len(train) * (step + 1) // 5]
            model.fit(part[FEATURES], part[LABEL])
            loss = log_loss(y_test, model.predict_proba(x_test)[:, 1], labels=[0, 1])
            mlflow.log_metric("val_loss", loss, step=step)
        score = model.predict_proba(x_test)[:, 1]
        roc_auc = roc_auc_score(y_test, score)
        accuracy = accuracy_score(y_test, model.predict(x_test))
        mlflow.log_metrics({"roc_auc": roc_auc, "accuracy": accuracy})
        # Run artifacts of their own (MLflow 3 keeps the model apart, under the logged model).
        mlflow.log_dict({"roc_auc": roc_auc, "accuracy": accuracy}, "eval/scores.json")
        mlflow.log_text(test.head(10).to_csv(index=False), "eval/holdout_head.csv")
        example = train[FEATURES].head(3)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(train[FEATURES], model.predict(train[FEATURES])),
            input_example=example,
            # Explicit requirements: inferring them would import-trace the model in a subprocess.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            registered_model_name=model_name,
            # MLflow 3.17 saves with skops, which refuses a tree's node storage unless trusted.
            skops_trusted_types=["sklearn.tree._tree.Tree"] if hasattr(model, "tree_") else None,
        )
    return run.info.run_id, info, {"roc_auc": roc_auc, "accuracy": accuracy}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--dataset-sqlite", help="also write the dataset to this SQLite file")
    args = parser.parse_args()
    # MLflow prints "View run at ..." lines on stdout; keep stdout for the one JSON line.
    out, sys.stdout = sys.stdout, sys.stderr

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_registry_uri(args.tracking_uri)
    client = MlflowClient(args.tracking_uri)

    data = dataset()
    train, test = data.iloc[:TRAIN], data.iloc[TRAIN:]
    experiment_id = client.create_experiment("churn", tags={"team": "retention"})

    runs = {}
    model_ids = {}  # MLflow 3 logged-model ids (m-...), the models the versions point at
    versions = {}
    metrics = {}
    # Version 1: heavily regularised and trained on few rows; version 2: the better model.
    for name, model, params, rows in [
        ("weak", LogisticRegression(C=0.001, max_iter=1000), {"C": "0.001", "max_depth": "None"}, 40),
        ("strong", LogisticRegression(C=1.0, max_iter=1000), {"C": "1.0", "max_depth": "None"}, TRAIN),
    ]:
        run_id, info, scores = train_run(
            experiment_id,
            name,
            model,
            {**params, "train_rows": str(rows)},
            train.iloc[:rows],
            test,
            {"model_family": "logistic_regression", "owner": "data-science"},
            "churn-model",
        )
        runs[name] = run_id
        model_ids[name] = info.model_id
        metrics[name] = scores
        versions[name] = info.registered_model_version
    run_id, info, scores = train_run(
        experiment_id,
        "tree",
        DecisionTreeClassifier(max_depth=3, random_state=0),
        {"C": "None", "max_depth": "3", "train_rows": str(TRAIN)},
        train,
        test,
        {"model_family": "decision_tree", "owner": "data-science"},
        "churn-tree",
    )
    runs["tree"] = run_id
    metrics["tree"] = scores
    model_ids["tree"] = info.model_id
    tree_version = info.registered_model_version

    assert metrics["strong"]["roc_auc"] > metrics["weak"]["roc_auc"], metrics
    client.set_registered_model_alias("churn-model", "champion", str(versions["weak"]))
    client.update_registered_model("churn-model", description="Predicts customer churn.")
    client.set_registered_model_tag("churn-model", "owner", "data-science")
    client.set_model_version_tag("churn-model", str(versions["strong"]), "validated", "true")

    if args.dataset_sqlite:
        with sqlite3.connect(args.dataset_sqlite) as conn:
            data.to_sql("customers", conn, index=False, if_exists="replace")

    # What a scoring server for version 1 must answer for these rows.
    sample = test[FEATURES].head(5)
    v1 = mlflow.sklearn.load_model(f"models:/churn-model/{versions['weak']}")
    created = {
        "tracking_uri": args.tracking_uri,
        "experiment_id": experiment_id,
        "experiment_name": "churn",
        "runs": runs,
        "metrics": metrics,
        "registered_models": {
            "churn-model": {
                "versions": {str(versions["weak"]): runs["weak"], str(versions["strong"]): runs["strong"]},
                "aliases": {"champion": str(versions["weak"])},
                "best_version": str(versions["strong"]),
            },
            "churn-tree": {"versions": {str(tree_version): runs["tree"]}, "aliases": {}},
        },
        "model_ids": model_ids,
        "model_uri": f"models:/churn-model/{versions['weak']}",
        "champion_uri": "models:/churn-model@champion",
        "features": FEATURES,
        "label": LABEL,
        "rows": ROWS,
        "train_rows": TRAIN,
        "sample": json.loads(sample.to_json(orient="split", index=False)),
        "sample_predictions": v1.predict(sample).tolist(),
        "sample_probabilities": v1.predict_proba(sample)[:, 1].tolist(),
    }
    print(json.dumps(created), file=out)


if __name__ == "__main__":
    sys.exit(main())
