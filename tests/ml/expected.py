"""Reference values for the ML tests, computed by scikit-learn, SciPy and NumPy.

Reads one JSON request on stdin, prints one JSON object on stdout. Run it with the MLflow venv's
python (`DATAMCP_MLFLOW_PYTHON`, installed by .ci/run), which has all three libraries.

Requests (`op` picks the function):
  {"op": "classification", "y_true": [...], "y_pred": [...], "y_score": [...]?, "positive": 1}
  {"op": "regression", "y_true": [...], "y_pred": [...]}
  {"op": "ks", "reference": [...], "current": [...]}
  {"op": "chi2", "reference_counts": [...], "current_counts": [...]}
  {"op": "psi", "reference": [...], "current": [...], "bins": 10}
  {"op": "sql", "dsn": "sqlite:///path.db" | "postgres://...", "sql": "SELECT ..."}

A JSON list of requests gets a list of answers, in order. Values that are not finite (an
undefined metric) are printed as null; so is roc_auc when y_true holds one class only.
"""

import json
import math
import sys

import numpy as np
from scipy import stats
from sklearn import metrics


def classification(req):
    y_true, y_pred = req["y_true"], req["y_pred"]
    positive = req.get("positive", 1)
    labels = sorted(set(y_true) | set(y_pred))
    out = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "labels": labels,
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    for average in ("binary", "macro", "weighted"):
        extra = {"pos_label": positive} if average == "binary" else {}
        if average == "binary" and len(labels) > 2:
            continue
        p, r, f, _ = metrics.precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=0, **extra
        )
        out[average] = {"precision": p, "recall": r, "f1": f}
    if req.get("y_score") is not None:
        # y_score is the probability of the positive class.
        truth = [1 if y == positive else 0 for y in y_true]
        score = req["y_score"]
        out["roc_auc"] = metrics.roc_auc_score(truth, score) if len(set(truth)) == 2 else None
        out["log_loss"] = metrics.log_loss(truth, score, labels=[0, 1])
    return out


def regression(req):
    y_true, y_pred = req["y_true"], req["y_pred"]
    return {
        "rmse": math.sqrt(metrics.mean_squared_error(y_true, y_pred)),
        "mae": metrics.mean_absolute_error(y_true, y_pred),
        "r2": metrics.r2_score(y_true, y_pred),
        # sklearn's MAPE is a fraction (0.1 = 10 %), with a tiny epsilon for zero targets.
        "mape": metrics.mean_absolute_percentage_error(y_true, y_pred),
    }


def ks(req):
    result = stats.ks_2samp(req["reference"], req["current"], method="asymp")
    return {"statistic": result.statistic, "pvalue": result.pvalue}


def chi2(req):
    table = np.array([req["reference_counts"], req["current_counts"]], dtype=float)
    statistic, p, dof, expected = stats.chi2_contingency(table, correction=False)
    return {"statistic": statistic, "pvalue": p, "dof": int(dof), "expected": expected.tolist()}


def psi(req):
    reference = np.asarray(req["reference"], dtype=float)
    current = np.asarray(req["current"], dtype=float)
    bins = int(req.get("bins", 10))
    edges = np.unique(np.quantile(reference, [i / bins for i in range(1, bins)]))
    # Bin k holds (edges[k-1], edges[k]]: the first is (-inf, e1], the last (e_last, inf).
    ref_counts = np.bincount(np.digitize(reference, edges, right=True), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.digitize(current, edges, right=True), minlength=len(edges) + 1)
    ref_share = np.maximum(ref_counts / len(reference), 1e-4)
    cur_share = np.maximum(cur_counts / len(current), 1e-4)
    terms = (cur_share - ref_share) * np.log(cur_share / ref_share)
    return {
        "psi": float(terms.sum()),
        "edges": edges.tolist(),
        "reference_counts": ref_counts.tolist(),
        "current_counts": cur_counts.tolist(),
        "terms": terms.tolist(),
    }


def sql(req):
    dsn, query = req["dsn"], req["sql"]
    if dsn.startswith("sqlite:"):
        import sqlite3

        # sqlite:///abs/path.db (the warehouse URL form) or sqlite:relative.db
        path = dsn.removeprefix("sqlite://") if dsn.startswith("sqlite://") else dsn[7:]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            cursor = conn.execute(query)
            columns = [d[0] for d in cursor.description]
            rows = [list(r) for r in cursor.fetchall()]
    else:
        try:
            import psycopg
        except ImportError:
            return {"skipped": "psycopg is not installed in this python"}
        with psycopg.connect(dsn) as conn:
            cursor = conn.execute(query)
            columns = [d.name for d in cursor.description]
            rows = [list(r) for r in cursor.fetchall()]
    return {"columns": columns, "rows": rows}


OPS = {
    "classification": classification,
    "regression": regression,
    "ks": ks,
    "chi2": chi2,
    "psi": psi,
    "sql": sql,
}


def plain(value):
    """NumPy scalars to Python ones, and NaN/inf to null, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main():
    request = json.load(sys.stdin)
    # A list of requests gets a list of answers: one process start (about 1.5 s of imports) for all.
    if isinstance(request, list):
        answer = [OPS[r["op"]](r) for r in request]
    else:
        answer = OPS[request["op"]](request)
    print(json.dumps(plain(answer), default=str))


if __name__ == "__main__":
    main()
