//! `ml_evaluate`: how a model scored on real outcomes, from a SQL query that returns its
//! predictions beside the labels.
//!
//! The warehouse does the counting: a confusion matrix is one `GROUP BY label, prediction`;
//! ROC-AUC and log loss need the scores, pulled as (distinct score, label, count) groups, exact
//! up to `exact_limit` distinct scores and binned beyond (the result states the error bound);
//! regression metrics are sums. datamcp never holds a row per prediction.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Bound, Servers, tidy};
use crate::ml::data::{Input, Warehouse, count, derived, label, literal, number, numeric_type};
use crate::ml::log::{LogAccess, LogTarget, Logged};
use crate::ml::stats::classification::{ClassificationMetrics, Confusion, sort_labels};
use crate::ml::stats::ranking::{ScoreGroup, log_loss, roc_auc, tie_bound};
use crate::ml::stats::regression::{RegressionMetrics, RegressionSums};
use crate::tools::kind::KindHost;
use crate::tools::{CallContext, Tool, ToolError, ToolSpec};

/// Distinct scores pulled for exact ranking metrics, unless the caller says.
const DEFAULT_EXACT_LIMIT: u32 = 20_000;
/// (label, prediction) pairs at most: more means the "prediction" is a score.
const MAX_CELLS: u32 = 10_000;

/// Model kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Classes (binary or multi-class).
    #[default]
    Classification,
    /// A number.
    Regression,
}

/// Arguments of `ml_evaluate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateParams {
    /// SELECT of predictions beside outcomes.
    pub sql: String,
    /// Placeholder values.
    #[serde(default)]
    pub params: Vec<Value>,
    #[serde(default)]
    pub task: Task,
    /// Outcome column (default label).
    pub label: Option<String>,
    /// Predicted class/value column (default prediction).
    pub prediction: Option<String>,
    /// Positive-class probability column: adds roc_auc, log_loss.
    pub score: Option<String>,
    /// Positive class (default 1/true/greater label).
    pub positive: Option<Value>,
    /// Score cut without a prediction column (default 0.5).
    pub threshold: Option<f64>,
    /// E.g. {"roc_auc": {"min": 0.75}}.
    #[serde(default)]
    pub checks: BTreeMap<String, Bound>,
    /// Distinct scores read exactly (default 20000), then binned.
    #[schemars(range(min = 100, max = 50_000))]
    pub exact_limit: Option<u32>,
    /// Log metrics to MLflow (allow_log).
    pub log: Option<LogTarget>,
    pub warehouse: Option<String>,
}

/// One check of a metric against its bound.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Check {
    /// The metric.
    pub metric: String,
    /// Its value.
    pub value: Option<f64>,
    /// What it had to meet.
    pub bound: Bound,
    /// Whether it did.
    pub passed: bool,
}

/// Result of `ml_evaluate`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EvaluateOutput {
    /// The warehouse that ran the queries.
    pub warehouse: String,
    /// classification or regression.
    pub task: Task,
    /// Rows evaluated.
    pub rows: u64,
    /// Rows left out because the label or prediction was NULL.
    pub skipped: u64,
    /// Every metric computed, by name.
    pub metrics: BTreeMap<String, f64>,
    /// Classification: per-class precision, recall, F1, support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassificationMetrics>,
    /// Classification: counts[true][predicted] over `labels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion_matrix: Option<Confusion>,
    /// Whether every metric is exact; when not, `approximation` says by how much.
    pub exact: bool,
    /// How the approximate metrics may differ from the exact ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximation: Option<String>,
    /// Approximate metrics: the most each may differ from the exact value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_bounds: BTreeMap<String, f64>,
    /// Each requested check.
    pub checks: Vec<Check>,
    /// Whether every check passed (true without checks).
    pub passed: bool,
    /// Where the metrics were logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logged: Option<Logged>,
}

/// `ml_evaluate`.
pub struct Evaluate {
    host: KindHost,
    servers: Arc<Servers>,
    log: LogAccess,
}

impl Evaluate {
    /// The tool, reading through `host`'s SQL tools and logging to `servers`.
    pub fn new(host: KindHost, servers: Arc<Servers>, log: LogAccess) -> Self {
        Evaluate { host, servers, log }
    }
}

impl Tool for Evaluate {
    type Params = EvaluateParams;
    type Output = EvaluateOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_evaluate".to_owned(),
            title: "Evaluate predictions on outcomes".to_owned(),
            description: "Model metrics from a SQL query of predictions and real outcomes, computed in the warehouse: accuracy, precision, recall, F1, ROC-AUC, log loss, confusion matrix; or RMSE, MAE, R², MAPE. `checks` gives a pass/fail verdict.".to_owned(),
            annotations: self.log.annotations(),
        }
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &EvaluateParams,
    ) -> Result<EvaluateOutput, ToolError> {
        for (metric, bound) in &params.checks {
            bound.check(metric)?;
        }
        let target = match &params.log {
            Some(log) => Some((crate::ml::log::target(&self.servers, self.log, log)?, log)),
            None => None,
        };
        let warehouse = Warehouse::open(&self.host, ctx, params.warehouse.as_deref()).await?;
        let mut output = match params.task {
            Task::Classification => classification(ctx, &warehouse, params).await?,
            Task::Regression => regression(&warehouse, params).await?,
        };
        let known = output
            .metrics
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        for (metric, bound) in &params.checks {
            if !output.metrics.contains_key(metric) {
                return Err(ToolError::InvalidArguments(format!(
                    "no metric '{metric}' to check; this evaluation has: {known}"
                )));
            }
            let value = output.metrics.get(metric).copied();
            output.checks.push(Check {
                metric: metric.clone(),
                passed: value.is_some_and(|v| bound.passes(v)),
                value,
                bound: bound.clone(),
            });
        }
        output.passed = output.checks.iter().all(|c| c.passed);
        if let Some((mlflow, log)) = target {
            let mut logged_params = BTreeMap::from([
                (
                    "task".to_owned(),
                    format!("{:?}", params.task).to_lowercase(),
                ),
                ("rows".to_owned(), output.rows.to_string()),
                ("warehouse".to_owned(), output.warehouse.clone()),
            ]);
            if log.run_id.is_some() {
                // Params cannot be changed once logged; a run given by the caller keeps its own.
                logged_params.clear();
            }
            output.logged = Some(
                crate::ml::log::log(
                    ctx,
                    mlflow,
                    log,
                    "ml_evaluate",
                    &output.metrics,
                    &logged_params,
                )
                .await?,
            );
        }
        Ok(output)
    }

    fn render_text(&self, _params: &EvaluateParams, output: &EvaluateOutput) -> String {
        let mut text = format!("{} rows evaluated", output.rows);
        if output.skipped > 0 {
            text.push_str(&format!(
                " ({} skipped: NULL label or prediction)",
                output.skipped
            ));
        }
        text.push_str(":\n");
        let metrics: Vec<String> = output
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} {}", tidy(*v)))
            .collect();
        text.push_str(&metrics.join(", "));
        if let Some(confusion) = &output.confusion_matrix
            && confusion.labels.len() <= 10
        {
            text.push_str(&format!(
                "\nConfusion (rows true, columns predicted; labels {}): {:?}",
                confusion.labels.join(", "),
                confusion.counts
            ));
        }
        if let Some(approximation) = &output.approximation {
            text.push_str(&format!("\nApproximate: {approximation}"));
        }
        for check in &output.checks {
            text.push_str(&format!(
                "\n{} {} = {} (must be {})",
                if check.passed { "PASS" } else { "FAIL" },
                check.metric,
                check
                    .value
                    .map_or("none".to_owned(), |v| tidy(v).to_string()),
                check.bound.describe()
            ));
        }
        if !output.checks.is_empty() {
            text.push_str(if output.passed {
                "\nAll checks passed."
            } else {
                "\nSome checks failed."
            });
        }
        if let Some(logged) = &output.logged {
            text.push_str(&format!(
                "\nLogged to run {} on {}",
                logged.run_id, logged.server
            ));
        }
        text
    }
}

fn empty(warehouse: &Warehouse<'_>, task: Task) -> EvaluateOutput {
    EvaluateOutput {
        warehouse: warehouse.name().to_owned(),
        task,
        rows: 0,
        skipped: 0,
        metrics: BTreeMap::new(),
        classes: None,
        confusion_matrix: None,
        exact: true,
        approximation: None,
        error_bounds: BTreeMap::new(),
        checks: Vec::new(),
        passed: true,
        logged: None,
    }
}

async fn classification(
    ctx: &CallContext,
    w: &Warehouse<'_>,
    params: &EvaluateParams,
) -> Result<EvaluateOutput, ToolError> {
    let input = derived(&params.sql, &params.params)?;
    let columns = w.columns(&input).await?;
    let y = w.column(
        params.label.as_deref().unwrap_or("label"),
        &columns,
        "label",
    )?;
    let score = match params.score.as_deref() {
        Some(s) => Some(w.column(s, &columns, "score")?),
        None => None,
    };
    let threshold = params.threshold.unwrap_or(0.5);
    let prediction = match (&params.prediction, &score) {
        (Some(p), _) => Prediction::Column(w.column(p, &columns, "prediction")?),
        (None, Some(s)) => Prediction::Threshold(s.clone()),
        (None, None) => Prediction::Column(w.column("prediction", &columns, "prediction")?),
    };
    let mut output = empty(w, Task::Classification);

    // The confusion matrix, counted by the warehouse.
    let predicted = match &prediction {
        Prediction::Column(p) => p.clone(),
        Prediction::Threshold(s) => format!(
            "CASE WHEN {s} IS NULL THEN NULL WHEN {} >= {} THEN 1 ELSE 0 END",
            w.float(s),
            literal(threshold)
        ),
    };
    let cells = w
        .rows(
            &format!("SELECT {y}, {predicted}, COUNT(*) FROM {input} GROUP BY 1, 2"),
            &input,
            MAX_CELLS,
        )
        .await?;
    if cells.truncated {
        return Err(ToolError::InvalidArguments(format!(
            "more than {MAX_CELLS} (label, prediction) pairs: if the prediction column holds probabilities, pass it as `score` (with `threshold`) instead of `prediction`"
        )));
    }
    let numeric = |i: usize| cells.types.get(i).is_some_and(|t| numeric_type(t));
    let (label_numeric, predicted_numeric) = (numeric(0), numeric(1));
    let mut triples = Vec::new();
    for row in &cells.rows {
        let n = count(row.get(2).unwrap_or(&Value::Null));
        let class = |i: usize, numeric: bool| class_of(row.get(i)?, numeric);
        match (class(0, label_numeric), class(1, predicted_numeric)) {
            (Some(t), Some(p)) => triples.push((t, p, n)),
            _ => output.skipped += n,
        }
    }
    let mut labels: Vec<String> = triples.iter().map(|(t, _, _)| t.clone()).collect();
    if let Prediction::Column(_) = prediction {
        labels.extend(triples.iter().map(|(_, p, _)| p.clone()));
    }
    sort_labels(&mut labels);
    labels.dedup();
    let positive = positive_label(params.positive.as_ref(), &labels)?;
    if let Prediction::Threshold(_) = prediction {
        // 1 / 0 from the CASE are "positive" / "the other class".
        let negative = binary_negative(&labels, positive.as_deref())?;
        let positive = positive.clone().unwrap_or_default();
        for (_, p, _) in &mut triples {
            *p = if p == "1" {
                positive.clone()
            } else {
                negative.clone()
            };
        }
    }
    let confusion =
        Confusion::from_counts(triples.iter().map(|(t, p, n)| (t.as_str(), p.as_str(), *n)));
    output.rows = confusion.total();
    let report = confusion.metrics(positive.as_deref());
    if let Some(report) = &report {
        insert_metrics(report, &mut output.metrics);
    }

    if let Some(s) = &score {
        let positive = positive.clone().ok_or_else(|| {
            ToolError::InvalidArguments(
                "name the positive class with `positive` to use `score`".into(),
            )
        })?;
        let (groups, binned) = score_groups(w, &input, &y, s, &positive, params).await?;
        if let Some(auc) = roc_auc(&groups) {
            output.metrics.insert("roc_auc".into(), auc);
        }
        match log_loss(&groups) {
            Some(loss) => {
                output.metrics.insert("log_loss".into(), loss);
            }
            None if !groups.is_empty() => ctx.warn(
                "no log_loss: it needs the score to be a probability, and some scores are outside [0, 1]",
            ),
            None => {}
        }
        if let Some(approximation) = binned {
            output.exact = false;
            output
                .error_bounds
                .insert("roc_auc".into(), tie_bound(&groups));
            output.approximation = Some(approximation);
        }
    }
    output.classes = report;
    output.confusion_matrix = Some(confusion);
    Ok(output)
}

/// A class as text: the label, with NUMERIC/DECIMAL values that arrive as text ("1.0") read as
/// the numbers they are, so they meet integer predictions and the positive class.
fn class_of(value: &Value, numeric_column: bool) -> Option<String> {
    match value {
        Value::String(text) if numeric_column => match text.trim().parse::<f64>() {
            Ok(n) => label(&json!(n)),
            Err(_) => label(value),
        },
        _ => label(value),
    }
}

enum Prediction {
    /// A column of predicted classes.
    Column(String),
    /// Classes from a score column cut at the threshold.
    Threshold(String),
}

/// The positive class: the one asked for (one of the labels, numbers compared as numbers),
/// else `1`, `true`, or the greater of two labels (in scikit-learn's order).
fn positive_label(asked: Option<&Value>, labels: &[String]) -> Result<Option<String>, ToolError> {
    if let Some(asked) = asked {
        let wanted = label(asked).unwrap_or_default();
        let as_number = |text: &str| text.parse::<f64>().ok();
        let found = labels.iter().find(|l| {
            **l == wanted || (as_number(l).is_some() && as_number(l) == as_number(&wanted))
        });
        return match found {
            Some(found) => Ok(Some(found.clone())),
            None => Err(ToolError::InvalidArguments(format!(
                "positive {asked} is not one of the labels: {}",
                labels.join(", ")
            ))),
        };
    }
    for candidate in ["1", "true", "yes"] {
        if labels.iter().any(|l| l == candidate) {
            return Ok(Some(candidate.to_owned()));
        }
    }
    Ok((labels.len() == 2).then(|| labels[1].clone()))
}

fn binary_negative(labels: &[String], positive: Option<&str>) -> Result<String, ToolError> {
    let others: Vec<&String> = labels
        .iter()
        .filter(|l| Some(l.as_str()) != positive)
        .collect();
    match others.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Ok(if positive == Some("1") {
            "0".into()
        } else {
            "(negative)".into()
        }),
        _ => Err(ToolError::InvalidArguments(format!(
            "a score with a threshold needs two classes, and the labels are {}; pass a `prediction` column for multi-class models",
            labels.join(", ")
        ))),
    }
}

/// Scores grouped by distinct value (exact), or by bin when there are more than the limit.
async fn score_groups(
    w: &Warehouse<'_>,
    input: &Input,
    y: &str,
    s: &str,
    positive: &str,
    params: &EvaluateParams,
) -> Result<(Vec<ScoreGroup>, Option<String>), ToolError> {
    let limit = params
        .exact_limit
        .unwrap_or(DEFAULT_EXACT_LIMIT)
        .clamp(100, 50_000);
    let sf = w.float(s);
    let present = format!("{s} IS NOT NULL AND {y} IS NOT NULL");
    let shape = w
        .one_row(
            &format!(
                "SELECT COUNT(DISTINCT {s}), MIN({sf}), MAX({sf}) FROM {input} WHERE {present}"
            ),
            input,
        )
        .await?;
    let distinct = count(&shape[0]);
    let (lo, hi) = (
        shape.get(1).and_then(number).unwrap_or(0.0),
        shape.get(2).and_then(number).unwrap_or(0.0),
    );
    let mut by_key: BTreeMap<u64, (f64, u64, u64)> = BTreeMap::new();
    if !lo.is_finite() || !hi.is_finite() {
        return Err(ToolError::InvalidArguments(
            "the scores are not finite numbers; check the score column".into(),
        ));
    }
    let binned = distinct > u64::from(limit) && hi > lo;
    let sql = if binned {
        // hi/limit - lo/limit cannot overflow where hi - lo can.
        let scale = 1.0 / (hi / f64::from(limit) - lo / f64::from(limit));
        format!(
            "SELECT ROUND(({sf} - {}) * {}), {y}, COUNT(*), SUM({sf}) FROM {input} WHERE {present} GROUP BY 1, 2",
            literal(lo),
            literal(scale)
        )
    } else {
        format!("SELECT {sf}, {y}, COUNT(*) FROM {input} WHERE {present} GROUP BY 1, 2")
    };
    let rows = w.rows(&sql, input, 2 * limit + 2).await?;
    if rows.truncated {
        return Err(ToolError::InvalidArguments(
            "more (score, label) groups than expected: a score belongs to a binary model, and the label column has more than two classes; use `prediction` for multi-class models".into(),
        ));
    }
    let label_numeric = rows.types.get(1).is_some_and(|t| numeric_type(t));
    for row in &rows.rows {
        let (Some(key), Some(class)) = (
            row.first().and_then(number),
            row.get(1).and_then(|v| class_of(v, label_numeric)),
        ) else {
            continue;
        };
        let n = count(row.get(2).unwrap_or(&Value::Null));
        // Exact groups are keyed by the score itself, bins by their index (and scored by the
        // mean of their scores, so only bins need the sum).
        let entry = by_key.entry(key.to_bits()).or_insert((0.0, 0, 0));
        entry.0 += row.get(3).and_then(number).unwrap_or(0.0);
        if class == positive {
            entry.1 += n;
        } else {
            entry.2 += n;
        }
    }
    let mut groups: Vec<ScoreGroup> = by_key
        .into_iter()
        .map(|(key, (sum, positives, negatives))| ScoreGroup {
            score: if binned {
                sum / (positives + negatives).max(1) as f64
            } else {
                f64::from_bits(key)
            },
            positives,
            negatives,
        })
        .collect();
    groups.sort_by(|a, b| a.score.total_cmp(&b.score));
    let approximation = binned.then(|| {
        format!(
            "{distinct} distinct scores, more than exact_limit {limit}: scores were rounded to {} equal-width bins; roc_auc is within ±{:.2e} of the exact value; log_loss uses each bin's mean score (no bound stated)",
            limit + 1,
            tie_bound(&groups)
        )
    });
    Ok((groups, approximation))
}

async fn regression(
    w: &Warehouse<'_>,
    params: &EvaluateParams,
) -> Result<EvaluateOutput, ToolError> {
    let input = derived(&params.sql, &params.params)?;
    let columns = w.columns(&input).await?;
    let y = w.float(&w.column(
        params.label.as_deref().unwrap_or("label"),
        &columns,
        "label",
    )?);
    let p = w.float(&w.column(
        params.prediction.as_deref().unwrap_or("prediction"),
        &columns,
        "prediction",
    )?);
    let mut output = empty(w, Task::Regression);
    let present = format!("{y} IS NOT NULL AND {p} IS NOT NULL");
    let eps = literal(f64::EPSILON);
    // A NULL in either value makes the differences NULL, which SUM skips; only Σy needs the
    // condition spelled out.
    let sums = w
        .one_row(
            &format!(
                "SELECT COUNT(*), SUM(CASE WHEN {present} THEN 1 ELSE 0 END), \
             SUM(CASE WHEN {present} THEN {y} END), SUM(({y} - {p}) * ({y} - {p})), \
             SUM(ABS({y} - {p})), \
             SUM(ABS({y} - {p}) / CASE WHEN ABS({y}) > {eps} THEN ABS({y}) ELSE {eps} END) \
             FROM {input}"
            ),
            &input,
        )
        .await?;
    let n = count(&sums[1]);
    output.skipped = count(&sums[0]).saturating_sub(n);
    output.rows = n;
    if n == 0 {
        return Ok(output);
    }
    // A sum that overflowed a double comes back as NULL (SQLite) or an error: never as zero.
    let finite = |value: &Value| number(value).filter(|v| v.is_finite());
    if sums[2..].iter().any(|s| finite(s).is_none()) {
        return Err(ToolError::InvalidArguments(
            "a sum of the values overflowed a double; scale the label and prediction down in the SQL".into(),
        ));
    }
    let sum_y = number(&sums[2]).unwrap_or(0.0);
    // Σ(y - ȳ)² in a second pass: one-pass Σy² - n·ȳ² loses digits for large values.
    let mean = sum_y / n as f64;
    let centered = w
        .one_row(
            &format!(
                "SELECT SUM(({y} - {m}) * ({y} - {m})) FROM {input} WHERE {present}",
                m = literal(mean)
            ),
            &input,
        )
        .await?;
    let sums = RegressionSums {
        n,
        sum_y,
        sum_y2_centered: number(&centered[0]).unwrap_or(0.0),
        sse: number(&sums[3]).unwrap_or(0.0),
        sae: number(&sums[4]).unwrap_or(0.0),
        sape: number(&sums[5]).unwrap_or(0.0),
    };
    if let Some(metrics) = sums.metrics() {
        insert_regression(&metrics, &mut output.metrics);
    }
    Ok(output)
}

/// A classification report's numbers under the names checks and MLflow use: `accuracy`;
/// `precision`, `recall`, `f1` of the positive class; the same with `_macro` and `_weighted`.
pub(super) fn insert_metrics(report: &ClassificationMetrics, metrics: &mut BTreeMap<String, f64>) {
    metrics.insert("accuracy".into(), report.accuracy);
    if let Some(binary) = &report.binary {
        metrics.insert("precision".into(), binary.precision);
        metrics.insert("recall".into(), binary.recall);
        metrics.insert("f1".into(), binary.f1);
    }
    for (suffix, averages) in [
        ("macro", &report.macro_avg),
        ("weighted", &report.weighted_avg),
    ] {
        metrics.insert(format!("precision_{suffix}"), averages.precision);
        metrics.insert(format!("recall_{suffix}"), averages.recall);
        metrics.insert(format!("f1_{suffix}"), averages.f1);
    }
}

/// Regression metrics under their names.
pub(super) fn insert_regression(m: &RegressionMetrics, metrics: &mut BTreeMap<String, f64>) {
    metrics.insert("rmse".into(), m.rmse);
    metrics.insert("mae".into(), m.mae);
    if let Some(r2) = m.r2 {
        metrics.insert("r2".into(), r2);
    }
    metrics.insert("mape".into(), m.mape);
}
