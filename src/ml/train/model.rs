//! The portable model, its predictions, and the training report.
//!
//! A [`Model`] is everything needed to predict, and nothing of the training data: the fitted
//! feature [`Pipeline`], the estimator's parameters, the class labels and the target's name,
//! versioned by [`MODEL_FORMAT`]. It is plain JSON through serde, so a model trained once can
//! be stored and used by another call, another process or another machine. A model read back
//! is checked before use ([`Model::validate`]), so a damaged or hand-edited file is an error
//! rather than a wrong answer or a crash.
//!
//! The [`Report`] says what training did for the user and holds the model's predictions on
//! the test split ([`Outcome`]s), from which the metrics are computed elsewhere.

use super::features::{ColumnEncoder, ColumnReport, Pipeline};
use super::linear::{self, LinearModel};
use super::logistic::{self, LogisticModel};
use super::target::{self, Target, label_value};
use super::tree::{self, TreeModel, TreeNode, TreeTarget};
use super::{Algorithm, Cell, TrainError, TrainSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use std::collections::HashMap;

/// The format tag of the models this code writes and reads.
pub const MODEL_FORMAT: &str = "datamcp-model/1";

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// A number.
    Regression,
    /// A class label.
    Classification,
}

/// The outcome of [`train`](super::train): the model and what was done to get it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trained {
    /// The portable model.
    pub model: Model,
    /// The training report.
    pub report: Report,
}

/// A trained model, portable as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Always [`MODEL_FORMAT`]; a model of another format is refused.
    pub format: String,
    /// The column the model predicts.
    pub target: String,
    /// Regression or classification.
    pub task: Task,
    /// The class labels in class order (classification).
    pub classes: Option<Vec<String>>,
    /// Whether the labels were numbers, so predictions are JSON numbers too.
    #[serde(default)]
    pub numeric_labels: bool,
    /// The encoded features' names, in the order the estimator reads them (for people reading
    /// the file; the pipeline defines them).
    pub features: Vec<String>,
    /// The fitted feature pipeline.
    pub pipeline: Pipeline,
    /// The estimator's parameters.
    pub estimator: Estimator,
}

/// The parameters of each kind of estimator, on encoded features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Estimator {
    /// A linear regression.
    LinearRegression(LinearModel),
    /// A logistic regression: for two classes one score, the second class's.
    LogisticRegression(LogisticModel),
    /// A decision tree.
    DecisionTree(TreeModel),
}

/// One prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The predicted number, or the predicted class label (a number when the labels were).
    pub value: Value,
    /// Each class's probability, in class order (classification).
    pub probabilities: Option<Vec<(String, f64)>>,
}

/// The model's prediction for one test row, next to the truth.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Outcome {
    /// The row's position in the dataset.
    pub row: usize,
    /// The target's value.
    pub actual: Value,
    /// The prediction.
    pub predicted: Value,
    /// For two classes, the probability of the positive class (the second in class order),
    /// for ROC AUC and the like.
    pub score: Option<f64>,
}

/// How many rows went where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct RowCounts {
    /// Rows in the data.
    pub input: usize,
    /// Rows with a target value.
    pub used: usize,
    /// Rows left out for having no target value.
    pub dropped_missing_target: usize,
    /// Rows trained on.
    pub train: usize,
    /// Rows held out for testing.
    pub test: usize,
}

/// An intercept and weights: a linear regression's, or one class's score in a logistic one.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Coefficients {
    /// The class whose score this is (logistic), none for a linear regression.
    pub class: Option<String>,
    /// The intercept.
    pub intercept: f64,
    /// The weight of each encoded feature (features are standardised, so weights compare).
    pub weights: Vec<FeatureWeight>,
}

/// A number attached to an encoded feature.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FeatureWeight {
    /// The encoded feature (`age`, `country=DE`).
    pub feature: String,
    /// The weight or importance.
    pub value: f64,
}

/// The shape of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TreeSummary {
    /// Nodes, leaves included.
    pub nodes: usize,
    /// Leaves.
    pub leaves: usize,
    /// The deepest leaf's depth.
    pub depth: usize,
}

/// What training did.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// The algorithm's name (`linear_regression`, `logistic_regression`, `decision_tree`).
    pub algorithm: String,
    /// Regression or classification.
    pub task: Task,
    /// The target column.
    pub target: String,
    /// Where the rows went.
    pub rows: RowCounts,
    /// What was done to each source feature column.
    pub columns: Vec<ColumnReport>,
    /// The encoded features, in order.
    pub features: Vec<String>,
    /// The classes, in class order (classification).
    pub classes: Option<Vec<String>>,
    /// The class a binary model's score is the probability of.
    pub positive_class: Option<String>,
    /// Intercepts and weights (linear and logistic regression).
    pub coefficients: Option<Vec<Coefficients>>,
    /// Normalised total impurity decrease per feature (decision tree).
    pub feature_importances: Option<Vec<FeatureWeight>>,
    /// The tree's shape (decision tree).
    pub tree: Option<TreeSummary>,
    /// The model's predictions on the test split.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test_outcomes: Vec<Outcome>,
    /// The solver (`newton` or `lbfgs`, logistic regression).
    pub solver: Option<String>,
    /// Solver iterations (logistic regression).
    pub iterations: Option<u32>,
    /// Whether the solver converged (always true for the closed-form and greedy fits).
    pub converged: bool,
    /// What the user should know: rows or columns left out, collinearity, no test split, …
    pub warnings: Vec<String>,
}

/// What [`fit`] needs from [`train`](super::train).
pub(crate) struct FitInput<'a> {
    pub(crate) spec: &'a TrainSpec,
    pub(crate) task: Task,
    pub(crate) pipeline: Pipeline,
    pub(crate) columns: Vec<ColumnReport>,
    pub(crate) target: &'a Target,
    /// Positions of the training rows among the used rows (indices into `target`).
    pub(crate) train_pos: &'a [usize],
    /// Positions of the test rows among the used rows.
    pub(crate) test_pos: &'a [usize],
    /// The test rows' positions in the dataset.
    pub(crate) test_rows: &'a [usize],
    pub(crate) x_train: &'a [Vec<f64>],
    pub(crate) x_test: &'a [Vec<f64>],
    pub(crate) rows: RowCounts,
    pub(crate) warnings: Vec<String>,
}

/// The learnt estimator and what the report says about it.
struct Learnt {
    estimator: Estimator,
    coefficients: Option<Vec<Coefficients>>,
    feature_importances: Option<Vec<FeatureWeight>>,
    tree: Option<TreeSummary>,
    solver: Option<String>,
    iterations: Option<u32>,
    converged: bool,
}

/// Fits the estimator on the encoded training split and builds the model and report.
pub(crate) fn fit(input: FitInput<'_>) -> Result<Trained, TrainError> {
    let FitInput {
        spec,
        task,
        pipeline,
        columns,
        target,
        train_pos,
        test_pos,
        test_rows,
        x_train,
        x_test,
        rows,
        mut warnings,
    } = input;
    let features = pipeline.feature_names();
    let weights = |w: &[f64]| -> Vec<FeatureWeight> {
        features
            .iter()
            .zip(w)
            .map(|(f, v)| FeatureWeight {
                feature: f.clone(),
                value: *v,
            })
            .collect()
    };

    let (learnt, classes, numeric_labels) = match target {
        Target::Numbers(values) => {
            let y: Vec<f64> = train_pos.iter().map(|&i| values[i]).collect();
            let learnt = match &spec.algorithm {
                Algorithm::LinearRegression => {
                    let fit = linear::fit(x_train, &y);
                    warnings.extend(fit.warning);
                    Learnt {
                        coefficients: Some(vec![Coefficients {
                            class: None,
                            intercept: fit.model.intercept,
                            weights: weights(&fit.model.coefficients),
                        }]),
                        estimator: Estimator::LinearRegression(fit.model),
                        ..Learnt::plain()
                    }
                }
                Algorithm::DecisionTree {
                    max_depth,
                    min_samples_leaf,
                    ..
                } => {
                    let fit = tree::fit(
                        x_train,
                        &TreeTarget::Values(&y),
                        *max_depth,
                        *min_samples_leaf as usize,
                    );
                    Learnt::tree(fit, &weights)
                }
                Algorithm::LogisticRegression { .. } => {
                    return Err(TrainError::InvalidSpec(
                        "logistic regression predicts classes, not numbers".to_owned(),
                    ));
                }
            };
            (learnt, None, false)
        }
        Target::Labels { labels, numeric } => {
            let classes = target::classes(train_pos.iter().map(|&i| &labels[i]), *numeric);
            let index: HashMap<&str, usize> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let y: Vec<usize> = train_pos
                .iter()
                .map(|&i| index.get(labels[i].as_str()).copied().unwrap_or(0))
                .collect();
            let unseen = test_pos
                .iter()
                .filter(|&&i| !index.contains_key(labels[i].as_str()))
                .count();
            if unseen > 0 {
                warnings.push(format!(
                    "{unseen} test row(s) have a class the training split does not, which the \
                     model can never predict"
                ));
            }
            let learnt = match &spec.algorithm {
                Algorithm::LogisticRegression { c, max_iter } => {
                    if classes.len() < 2 {
                        return Err(one_class(&spec.target, &classes));
                    }
                    let fit = logistic::fit(x_train, &y, classes.len(), *c, *max_iter);
                    if !fit.converged {
                        warnings.push(format!(
                            "the solver stopped after {} iteration(s) with the gradient at {:.1e} \
                             (converged means below 1e-10); raise max_iter, or raise the \
                             regularisation (a smaller c)",
                            fit.iterations, fit.gradient
                        ));
                    }
                    let coefficients = if classes.len() == 2 {
                        vec![Coefficients {
                            class: Some(classes[1].clone()),
                            intercept: fit.model.intercepts[0],
                            weights: weights(&fit.model.coefficients[0]),
                        }]
                    } else {
                        classes
                            .iter()
                            .zip(fit.model.intercepts.iter().zip(&fit.model.coefficients))
                            .map(|(class, (b, w))| Coefficients {
                                class: Some(class.clone()),
                                intercept: *b,
                                weights: weights(w),
                            })
                            .collect()
                    };
                    Learnt {
                        estimator: Estimator::LogisticRegression(fit.model),
                        coefficients: Some(coefficients),
                        solver: Some(fit.solver.to_owned()),
                        iterations: Some(fit.iterations),
                        converged: fit.converged,
                        ..Learnt::plain()
                    }
                }
                Algorithm::DecisionTree {
                    max_depth,
                    min_samples_leaf,
                    ..
                } => {
                    if classes.len() < 2 {
                        warnings.push(format!(
                            "the target '{}' has one class in the training split; the tree \
                             always predicts it",
                            spec.target
                        ));
                    }
                    let target = TreeTarget::Classes {
                        y: &y,
                        classes: classes.len(),
                    };
                    let fit = tree::fit(x_train, &target, *max_depth, *min_samples_leaf as usize);
                    Learnt::tree(fit, &weights)
                }
                Algorithm::LinearRegression => {
                    return Err(TrainError::InvalidSpec(
                        "linear regression predicts numbers, not classes".to_owned(),
                    ));
                }
            };
            (learnt, Some(classes), *numeric)
        }
    };

    let model = Model {
        format: MODEL_FORMAT.to_owned(),
        target: spec.target.clone(),
        task,
        classes: classes.clone(),
        numeric_labels,
        features: features.clone(),
        pipeline,
        estimator: learnt.estimator,
    };
    model.validate()?;

    let binary = classes.as_ref().is_some_and(|c| c.len() == 2);
    let mut test_outcomes = Vec::with_capacity(test_pos.len());
    for ((&pos, &row), x) in test_pos.iter().zip(test_rows).zip(x_test) {
        let prediction = model.predict_encoded(x)?;
        let actual = match target {
            Target::Numbers(values) => float_value(values[pos]),
            Target::Labels { labels, numeric } => label_value(&labels[pos], *numeric),
        };
        let score = match &prediction.probabilities {
            Some(p) if binary => p.get(1).map(|(_, p)| *p),
            _ => None,
        };
        test_outcomes.push(Outcome {
            row,
            actual,
            predicted: prediction.value,
            score,
        });
    }

    let report = Report {
        algorithm: spec.algorithm.name().to_owned(),
        task,
        target: spec.target.clone(),
        rows,
        columns,
        features,
        positive_class: classes
            .as_ref()
            .filter(|c| c.len() == 2)
            .map(|c| c[1].clone()),
        classes,
        coefficients: learnt.coefficients,
        feature_importances: learnt.feature_importances,
        tree: learnt.tree,
        test_outcomes,
        solver: learnt.solver,
        iterations: learnt.iterations,
        converged: learnt.converged,
        warnings,
    };
    Ok(Trained { model, report })
}

impl Learnt {
    /// A learnt estimator with nothing but converged set (the caller sets the rest).
    fn plain() -> Learnt {
        Learnt {
            estimator: Estimator::LinearRegression(LinearModel {
                intercept: 0.0,
                coefficients: Vec::new(),
            }),
            coefficients: None,
            feature_importances: None,
            tree: None,
            solver: None,
            iterations: None,
            converged: true,
        }
    }

    fn tree(fit: tree::TreeFit, weights: &dyn Fn(&[f64]) -> Vec<FeatureWeight>) -> Learnt {
        Learnt {
            tree: Some(TreeSummary {
                nodes: fit.model.nodes.len(),
                leaves: fit.model.leaves(),
                depth: fit.model.depth(),
            }),
            feature_importances: Some(weights(&fit.importances)),
            estimator: Estimator::DecisionTree(fit.model),
            ..Learnt::plain()
        }
    }
}

/// The error for a classification with fewer than two classes to learn.
fn one_class(target: &str, classes: &[String]) -> TrainError {
    TrainError::NotEnoughData(format!(
        "the target '{target}' has {} class(es) in the training split ({}); a classifier needs \
         at least two: check the query's filter, or predict a number with linear_regression",
        classes.len(),
        classes.join(", ")
    ))
}

/// A regression number as JSON (null if not finite, which JSON cannot hold).
fn float_value(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

impl Model {
    /// Reads a model from JSON and checks it ([`Model::validate`]).
    pub fn from_json(text: &str) -> Result<Model, TrainError> {
        let model: Model = serde_json::from_str(text).map_err(|e| {
            TrainError::InvalidModel(format!("not a datamcp model ({MODEL_FORMAT}): {e}"))
        })?;
        model.validate()?;
        Ok(model)
    }

    /// Checks that the parts fit together: the format, the task and the estimator, the number
    /// of features and classes everywhere, the tree's links, finite parameters.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidModel(m));
        if self.format != MODEL_FORMAT {
            return bad(format!(
                "the model is in format '{}'; this datamcp reads '{MODEL_FORMAT}': train it again",
                self.format
            ));
        }
        let width = self.pipeline.width();
        if self.features.len() != width {
            return bad(format!(
                "the model lists {} features but its pipeline makes {width}",
                self.features.len()
            ));
        }
        for encoder in &self.pipeline.columns {
            if let ColumnEncoder::Numeric {
                column,
                mean,
                scale,
            } = encoder
                && !(mean.is_finite() && scale.is_finite() && *scale > 0.0)
            {
                return bad(format!(
                    "column '{column}' has mean {mean} and scale {scale}; both must be finite \
                     and the scale positive"
                ));
            }
        }
        let classes = match (self.task, &self.classes) {
            (Task::Classification, Some(c)) if !c.is_empty() => c.len(),
            (Task::Classification, _) => return bad("a classifier without classes".to_owned()),
            (Task::Regression, _) => 0,
        };
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        match (&self.estimator, self.task) {
            (Estimator::LinearRegression(m), Task::Regression) => {
                if m.coefficients.len() != width
                    || !finite(&m.coefficients)
                    || !m.intercept.is_finite()
                {
                    return bad(format!(
                        "the linear model needs {width} finite coefficients and a finite \
                         intercept"
                    ));
                }
            }
            (Estimator::LogisticRegression(m), Task::Classification) => {
                let scores = if classes == 2 { 1 } else { classes };
                if classes < 2
                    || m.intercepts.len() != scores
                    || m.coefficients.len() != scores
                    || m.coefficients
                        .iter()
                        .any(|w| w.len() != width || !finite(w))
                    || !finite(&m.intercepts)
                {
                    return bad(format!(
                        "the logistic model for {classes} classes needs {scores} intercept(s) \
                         and as many rows of {width} finite coefficients"
                    ));
                }
            }
            (Estimator::DecisionTree(t), _) => {
                if t.nodes.is_empty() {
                    return bad("the tree has no nodes".to_owned());
                }
                let leaf_len = classes.max(1);
                for (i, node) in t.nodes.iter().enumerate() {
                    match node {
                        TreeNode::Split {
                            feature,
                            threshold,
                            left,
                            right,
                            ..
                        } => {
                            if *feature >= width
                                || threshold.is_nan()
                                || *left <= i
                                || *right <= i
                                || *left >= t.nodes.len()
                                || *right >= t.nodes.len()
                            {
                                return bad(format!(
                                    "tree node {i} has a feature beyond {width} or children \
                                     that are not later nodes"
                                ));
                            }
                        }
                        TreeNode::Leaf { value, .. } => {
                            if value.len() != leaf_len || !finite(value) {
                                return bad(format!(
                                    "tree leaf {i} needs {leaf_len} finite value(s)"
                                ));
                            }
                        }
                    }
                }
            }
            (_, task) => {
                return bad(format!(
                    "the estimator does not fit the task {task:?}; train the model again"
                ));
            }
        }
        Ok(())
    }

    /// Predicts `rows`, whose cells are named by `columns` (any order; extra columns are
    /// ignored; every column the model reads must be there).
    pub fn predict(
        &self,
        columns: &[String],
        rows: &[Vec<Cell>],
    ) -> Result<Vec<Prediction>, TrainError> {
        self.validate()?;
        let x = self.pipeline.encode(columns, rows)?;
        x.iter().map(|row| self.predict_encoded(row)).collect()
    }

    /// Predicts one encoded row of a validated model.
    pub(crate) fn predict_encoded(&self, x: &[f64]) -> Result<Prediction, TrainError> {
        let probabilities = match &self.estimator {
            Estimator::LinearRegression(m) => {
                return Ok(Prediction {
                    value: float_value(m.predict(x)),
                    probabilities: None,
                });
            }
            Estimator::LogisticRegression(m) => m.probabilities(x),
            Estimator::DecisionTree(t) => {
                let value = t.leaf(x)?;
                if self.task == Task::Regression {
                    return Ok(Prediction {
                        value: float_value(value.first().copied().unwrap_or(f64::NAN)),
                        probabilities: None,
                    });
                }
                value.to_vec()
            }
        };
        let classes = self.classes.as_deref().unwrap_or_default();
        let mut best = 0;
        for (i, p) in probabilities.iter().enumerate() {
            if *p > probabilities[best] {
                best = i;
            }
        }
        let label = classes.get(best).map_or("", String::as_str);
        Ok(Prediction {
            value: label_value(label, self.numeric_labels),
            probabilities: Some(
                classes
                    .iter()
                    .cloned()
                    .zip(probabilities.iter().copied())
                    .collect(),
            ),
        })
    }
}
