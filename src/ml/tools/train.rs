//! `ml_train`: a small model trained in process on a SQL query's rows — linear or logistic
//! regression, or a decision tree — with the feature engineering done and reported, a held-out
//! test split and its metrics; optionally logged to MLflow with the model as a portable
//! artifact that `ml_predict` can score.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::predict::MODEL_ARTIFACT;
use super::{Servers, tidy};
use crate::ml::data::{Input, Warehouse, label};
use crate::ml::log::{LogAccess, LogTarget, Logged};
use crate::ml::mlflow::proxied_path;
use crate::ml::stats::classification::Confusion;
use crate::ml::stats::ranking::{ScoreGroup, log_loss, roc_auc};
use crate::ml::stats::regression::RegressionSums;
use crate::ml::train::{self, Algorithm, Dataset, Outcome, Task, TrainSpec, TreeTask};
use crate::tools::kind::KindHost;
use crate::tools::{CallContext, Tool, ToolError, ToolSpec};

/// Rows read to train on unless the caller says.
const DEFAULT_ROWS: u32 = 10_000;

/// Which model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Ordinary least squares (a number).
    LinearRegression,
    /// L2-regularised logistic regression (classes).
    LogisticRegression,
    /// A CART tree predicting a class.
    DecisionTreeClassifier,
    /// A CART tree predicting a number.
    DecisionTreeRegressor,
}

/// Arguments of `ml_train`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// SELECT of target and features.
    pub sql: String,
    #[serde(default)]
    pub params: Vec<Value>,
    pub target: String,
    pub algorithm: Kind,
    /// Default: all but target.
    pub features: Option<Vec<String>>,
    /// Logistic C (default 1).
    pub c: Option<f64>,
    /// Logistic solver steps (default 100).
    #[schemars(range(min = 1, max = 10_000))]
    pub max_iter: Option<u32>,
    /// Tree depth (default 5).
    #[schemars(range(min = 1, max = 20))]
    pub max_depth: Option<u32>,
    /// Tree leaf rows (default 1).
    pub min_samples_leaf: Option<u32>,
    /// Default 0.2.
    #[schemars(range(min = 0.0, max = 0.9))]
    pub test_fraction: Option<f64>,
    /// Default 42.
    pub seed: Option<u64>,
    /// Default 10000.
    #[schemars(range(min = 10, max = 100_000))]
    pub max_rows: Option<u32>,
    /// Log run and model to MLflow (allow_log).
    pub log: Option<LogTarget>,
    pub warehouse: Option<String>,
}

/// Result of `ml_train`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrainOutput {
    /// The warehouse the rows came from.
    pub warehouse: String,
    /// The model trained.
    pub algorithm: Kind,
    /// Metrics on the held-out test rows.
    pub metrics: BTreeMap<String, f64>,
    /// What was done to the data and what the model learned: rows, encoded features,
    /// coefficients or importances.
    pub report: train::Report,
    /// Where the run, its metrics and the model were logged; `ml_predict` with this run_id
    /// scores the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logged: Option<Logged>,
}

/// `ml_train`.
pub struct Train {
    host: KindHost,
    servers: Arc<Servers>,
    log: LogAccess,
}

impl Train {
    /// The tool, reading through `host`'s SQL tools and logging to `servers`.
    pub fn new(host: KindHost, servers: Arc<Servers>, log: LogAccess) -> Self {
        Train { host, servers, log }
    }
}

impl Tool for Train {
    type Params = TrainParams;
    type Output = TrainOutput;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ml_train".to_owned(),
            title: "Train a small model".to_owned(),
            description: "Train linear/logistic regression or a decision tree on a SQL query's rows; one-hot encoding, standardisation and missing values handled; test-split metrics; coefficients or importances.".to_owned(),
            annotations: self.log.annotations(),
        }
    }

    fn cacheable(&self, output: &TrainOutput) -> bool {
        output.logged.is_none()
    }

    async fn invoke(
        &self,
        ctx: &CallContext,
        params: &TrainParams,
    ) -> Result<TrainOutput, ToolError> {
        let target = match &params.log {
            Some(log) => Some((crate::ml::log::target(&self.servers, self.log, log)?, log)),
            None => None,
        };
        let w = Warehouse::open(&self.host, ctx, params.warehouse.as_deref()).await?;
        let max_rows = params.max_rows.unwrap_or(DEFAULT_ROWS).clamp(10, 100_000);
        let input = Input {
            table: String::new(),
            params: params.params.clone(),
        };
        let rows = w.rows(&params.sql, &input, max_rows).await?;
        if rows.truncated {
            ctx.warn(format!(
                "trained on the first {max_rows} rows; more exist (raise max_rows up to 100000, or sample in SQL)"
            ));
        }
        let data = Dataset::from_json_rows(rows.columns, &rows.rows);
        drop(rows.rows);
        let mut spec = TrainSpec::new(&params.target, algorithm(params));
        spec.features = params.features.clone();
        if let Some(fraction) = params.test_fraction {
            spec.test_fraction = fraction;
        }
        if let Some(seed) = params.seed {
            spec.seed = seed;
        }
        // Training is CPU work: off the async threads. The thread cannot be killed, so when the
        // call ends (deadline, cancellation) the stop flag tells the fit to end early.
        let stop = Arc::new(AtomicBool::new(false));
        let signal = Arc::clone(&stop);
        let _stop_on_drop = StopOnDrop(Arc::clone(&stop));
        let training = tokio::task::spawn_blocking(move || {
            train::stop::run_until(signal, || train::train(&data, &spec))
        });
        let trained = tokio::select! {
            joined = training => joined
                .map_err(|e| ToolError::Internal(format!("training stopped: {e}")))?
                .map_err(|e| ToolError::InvalidArguments(e.to_string()))?,
            () = ctx.cancellation().cancelled() => {
                stop.store(true, Ordering::Relaxed);
                return Err(ToolError::Cancelled);
            }
        };
        let mut report = trained.report;
        // Every test row's outcome is for the metrics, not for the model's context.
        let outcomes = std::mem::take(&mut report.test_outcomes);
        let metrics = test_metrics(&outcomes, report.task, report.positive_class.as_deref());
        if metrics.is_empty() {
            ctx.warn("no test rows, so no test metrics: raise test_fraction or read more rows");
        }
        let mut output = TrainOutput {
            warehouse: w.name().to_owned(),
            algorithm: params.algorithm,
            metrics,
            report,
            logged: None,
        };
        if let Some((mlflow, log)) = target {
            let mut logged_params = BTreeMap::from([
                ("algorithm".to_owned(), format!("{:?}", params.algorithm)),
                ("target".to_owned(), params.target.clone()),
                (
                    "train_rows".to_owned(),
                    output.report.rows.train.to_string(),
                ),
                ("test_rows".to_owned(), output.report.rows.test.to_string()),
                ("seed".to_owned(), params.seed.unwrap_or(42).to_string()),
            ]);
            if let Some(c) = params.c {
                logged_params.insert("C".into(), c.to_string());
            }
            if let Some(depth) = params.max_depth {
                logged_params.insert("max_depth".into(), depth.to_string());
            }
            let logged = crate::ml::log::log(
                ctx,
                mlflow,
                log,
                "ml_train",
                &output.metrics,
                &logged_params,
            )
            .await?;
            let uri = logged.artifact_uri.clone().unwrap_or_default();
            let path = proxied_path(&uri)?;
            let model = serde_json::to_vec_pretty(&trained.model)
                .map_err(|e| ToolError::Internal(format!("the model did not serialise: {e}")))?;
            mlflow
                .upload(ctx, &format!("{path}/{MODEL_ARTIFACT}"), model)
                .await?;
            output.logged = Some(logged);
        }
        Ok(output)
    }

    fn render_text(&self, _params: &TrainParams, output: &TrainOutput) -> String {
        let report = &output.report;
        let mut text = format!(
            "{:?} on {} rows ({} train, {} test), target {}.\nTest metrics: ",
            output.algorithm, report.rows.used, report.rows.train, report.rows.test, report.target
        );
        let metrics: Vec<String> = output
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} {}", tidy(*v)))
            .collect();
        text.push_str(&metrics.join(", "));
        let weights = strongest(report, 10);
        if !weights.is_empty() {
            text.push_str("\nStrongest features: ");
            let shown: Vec<String> = weights
                .iter()
                .map(|(name, w)| format!("{name} {}", tidy(*w)))
                .collect();
            text.push_str(&shown.join(", "));
        }
        for warning in &report.warnings {
            text.push_str(&format!("\nNote: {warning}"));
        }
        if let Some(logged) = &output.logged {
            text.push_str(&format!(
                "\nLogged to run {} on {}; ml_predict with run_id scores it.",
                logged.run_id, logged.server
            ));
        }
        text
    }
}

/// The `n` features with the largest absolute coefficient or importance.
fn strongest(report: &train::Report, n: usize) -> Vec<(String, f64)> {
    let mut weights: Vec<(String, f64)> = match (&report.coefficients, &report.feature_importances)
    {
        (Some(coefficients), _) => coefficients
            .iter()
            .flat_map(|c| {
                c.weights.iter().map(move |w| {
                    let name = match &c.class {
                        Some(class)
                            if report
                                .coefficients
                                .as_ref()
                                .is_some_and(|all| all.len() > 1) =>
                        {
                            format!("{}[{class}]", w.feature)
                        }
                        _ => w.feature.clone(),
                    };
                    (name, w.value)
                })
            })
            .collect(),
        (None, Some(importances)) => importances
            .iter()
            .map(|w| (w.feature.clone(), w.value))
            .collect(),
        (None, None) => Vec::new(),
    };
    weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    weights.truncate(n);
    weights
}

/// Raises the stop flag when the call's future is dropped (its deadline passed), so the fit on
/// the blocking thread ends too.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn algorithm(params: &TrainParams) -> Algorithm {
    let tree = |task| {
        let mut algorithm = Algorithm::tree(task);
        if let Algorithm::DecisionTree {
            max_depth,
            min_samples_leaf,
            ..
        } = &mut algorithm
        {
            if params.max_depth.is_some() {
                *max_depth = params.max_depth;
            }
            if let Some(leaf) = params.min_samples_leaf {
                *min_samples_leaf = leaf;
            }
        }
        algorithm
    };
    match params.algorithm {
        Kind::LinearRegression => Algorithm::LinearRegression,
        Kind::LogisticRegression => {
            let mut algorithm = Algorithm::logistic();
            if let Algorithm::LogisticRegression { c, max_iter } = &mut algorithm {
                if let Some(asked) = params.c {
                    *c = asked;
                }
                if let Some(asked) = params.max_iter {
                    *max_iter = asked;
                }
            }
            algorithm
        }
        Kind::DecisionTreeClassifier => tree(TreeTask::Classification),
        Kind::DecisionTreeRegressor => tree(TreeTask::Regression),
    }
}

/// The metrics `ml_evaluate` would give on the test split's outcomes.
fn test_metrics(outcomes: &[Outcome], task: Task, positive: Option<&str>) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    if outcomes.is_empty() {
        return metrics;
    }
    match task {
        Task::Regression => {
            let pairs: Vec<(f64, f64)> = outcomes
                .iter()
                .filter_map(|o| Some((o.actual.as_f64()?, o.predicted.as_f64()?)))
                .collect();
            if let Some(m) = RegressionSums::from_pairs(&pairs).metrics() {
                super::evaluate::insert_regression(&m, &mut metrics);
            }
        }
        Task::Classification => {
            let labels: Vec<(String, String)> = outcomes
                .iter()
                .filter_map(|o| Some((label(&o.actual)?, label(&o.predicted)?)))
                .collect();
            let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for (actual, predicted) in &labels {
                *counts
                    .entry((actual.as_str(), predicted.as_str()))
                    .or_default() += 1;
            }
            let confusion = Confusion::from_counts(counts.iter().map(|((a, p), n)| (*a, *p, *n)));
            if let Some(report) = confusion.metrics(positive) {
                super::evaluate::insert_metrics(&report, &mut metrics);
            }
            if let Some(positive) = positive {
                let mut groups: BTreeMap<u64, ScoreGroup> = BTreeMap::new();
                for o in outcomes {
                    let Some(score) = o.score else { continue };
                    let group = groups.entry(score.to_bits()).or_insert(ScoreGroup {
                        score,
                        positives: 0,
                        negatives: 0,
                    });
                    if label(&o.actual).as_deref() == Some(positive) {
                        group.positives += 1;
                    } else {
                        group.negatives += 1;
                    }
                }
                let mut groups: Vec<ScoreGroup> = groups.into_values().collect();
                groups.sort_by(|a, b| a.score.total_cmp(&b.score));
                if let Some(auc) = roc_auc(&groups) {
                    metrics.insert("roc_auc".into(), auc);
                }
                if let Some(loss) = log_loss(&groups) {
                    metrics.insert("log_loss".into(), loss);
                }
            }
        }
    }
    metrics
}
