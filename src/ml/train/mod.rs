//! Training a model on a table, in pure Rust (std, serde and serde_json only).
//!
//! [`train`] takes a [`Dataset`] (rows of [`Cell`]s under named columns) and a [`TrainSpec`]
//! (target column, features, [`Algorithm`], split) and returns a [`Trained`]: the portable
//! [`Model`] and a [`Report`] of everything that was done for the user on the way.
//!
//! The steps, each in its own file:
//! - [`split`](split.rs): a deterministic shuffle from the seed, then the last rows are the test
//!   split, so the same spec on the same data always gives the same model.
//! - [`target`](target.rs): the target column as numbers (regression) or class labels
//!   (classification); rows without a target are left out.
//! - [`features`](features.rs): the feature engineering, fitted on the training split only
//!   (so test metrics are honest): numeric columns imputed with the mean and standardised,
//!   text columns one-hot encoded. The fitted [`Pipeline`] is part of the model and encodes
//!   rows at prediction time the same way.
//! - [`linear`](linear.rs), [`logistic`](logistic.rs), [`tree`](tree.rs): the estimators, each
//!   written to give what scikit-learn's default estimator gives on the same encoded matrix;
//!   the unit tests hold numbers produced by scikit-learn.
//! - [`model`](model.rs): the portable [`Model`] (JSON through serde, versioned by
//!   [`MODEL_FORMAT`]), its predictions, and the [`Report`].
//!
//! Nothing here panics on input: bad data, a bad spec or a damaged model file is a
//! [`TrainError`] whose message says what to change.

mod features;
mod linalg;
mod linear;
mod logistic;
mod model;
mod split;
pub mod stop;
mod target;
mod tree;

pub use features::{
    ColumnEncoder, ColumnKind, ColumnReport, MAX_CATEGORIES, MISSING_CATEGORY, OTHER_CATEGORY,
    Pipeline,
};
pub use linear::LinearModel;
pub use logistic::LogisticModel;
pub use model::{
    Coefficients, Estimator, FeatureWeight, MODEL_FORMAT, Model, Outcome, Prediction, Report,
    RowCounts, Task, Trained, TreeSummary,
};
pub use tree::{TreeModel, TreeNode};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;

/// A table to learn from: column names and rows of cells in column order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dataset {
    /// Column names, unique.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Dataset {
    /// A dataset from JSON rows as a query returns them (see [`Cell::from_json`]).
    pub fn from_json_rows(columns: Vec<String>, rows: &[Vec<Value>]) -> Dataset {
        let rows = rows
            .iter()
            .map(|row| row.iter().map(Cell::from_json).collect())
            .collect();
        Dataset { columns, rows }
    }
}

/// One value of a table. Serialised untagged: a JSON number, string or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// A number. NaN counts as missing.
    Number(f64),
    /// Text: a category, or a class label.
    Text(String),
    /// No value (SQL NULL, JSON null).
    Missing,
}

impl Cell {
    /// The cell for a JSON value: numbers are numbers, strings text, null missing, booleans
    /// the text `true`/`false` (a yes/no column is a category), arrays and objects their JSON
    /// text.
    pub fn from_json(value: &Value) -> Cell {
        match value {
            Value::Null => Cell::Missing,
            Value::Number(n) => n.as_f64().map_or(Cell::Missing, Cell::Number),
            Value::String(s) => Cell::Text(s.clone()),
            Value::Bool(b) => Cell::Text(b.to_string()),
            other => Cell::Text(other.to_string()),
        }
    }

    /// Whether the cell holds no value (missing, or a NaN number).
    pub fn is_missing(&self) -> bool {
        match self {
            Cell::Missing => true,
            Cell::Number(x) => x.is_nan(),
            Cell::Text(_) => false,
        }
    }
}

/// What to train: the target, the features, the algorithm and the split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The column to predict.
    pub target: String,
    /// The columns to predict from; by default every column but the target.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// The estimator and its parameters.
    pub algorithm: Algorithm,
    /// The share of rows held out to test the model, in `[0, 1)`; default 0.2.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Seed of the shuffle before the split; default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

impl TrainSpec {
    /// A spec with the defaults: every other column a feature, 20 % test, seed 42.
    pub fn new(target: &str, algorithm: Algorithm) -> TrainSpec {
        TrainSpec {
            target: target.to_owned(),
            features: None,
            algorithm,
            test_fraction: default_test_fraction(),
            seed: default_seed(),
        }
    }
}

fn default_test_fraction() -> f64 {
    0.2
}

fn default_seed() -> u64 {
    42
}

fn default_c() -> f64 {
    1.0
}

fn default_max_iter() -> u32 {
    100
}

fn default_max_depth() -> Option<u32> {
    Some(5)
}

fn default_min_samples_leaf() -> u32 {
    1
}

/// The estimators, with scikit-learn's defaults unless noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Algorithm {
    /// Ordinary least squares with an intercept (`LinearRegression()`).
    LinearRegression,
    /// L2-regularised logistic regression (`LogisticRegression(C=c)`): binary, or multinomial
    /// (softmax) for more than two classes.
    LogisticRegression {
        /// Inverse regularisation strength, > 0; default 1.0. Smaller is stronger.
        #[serde(default = "default_c")]
        c: f64,
        /// The cap on solver iterations, default 100: Newton steps, or for a problem too big
        /// for Newton's method ten times as many (cheaper) L-BFGS steps.
        #[serde(default = "default_max_iter")]
        max_iter: u32,
    },
    /// A CART decision tree (`DecisionTreeClassifier`/`DecisionTreeRegressor`).
    DecisionTree {
        /// Classification (Gini) or regression (squared error).
        task: TreeTask,
        /// The deepest a leaf may be (the root is depth 0); default 5, `null` for no limit.
        #[serde(default = "default_max_depth")]
        max_depth: Option<u32>,
        /// The fewest training rows a leaf may hold; default 1.
        #[serde(default = "default_min_samples_leaf")]
        min_samples_leaf: u32,
    },
}

impl Algorithm {
    /// Logistic regression with the defaults (`c` 1.0, 100 iterations).
    pub fn logistic() -> Algorithm {
        Algorithm::LogisticRegression {
            c: default_c(),
            max_iter: default_max_iter(),
        }
    }

    /// A decision tree for `task` with the defaults (depth 5, one row per leaf).
    pub fn tree(task: TreeTask) -> Algorithm {
        Algorithm::DecisionTree {
            task,
            max_depth: default_max_depth(),
            min_samples_leaf: default_min_samples_leaf(),
        }
    }

    /// Whether the algorithm predicts a class rather than a number.
    pub fn task(&self) -> Task {
        match self {
            Algorithm::LinearRegression => Task::Regression,
            Algorithm::LogisticRegression { .. } => Task::Classification,
            Algorithm::DecisionTree { task, .. } => match task {
                TreeTask::Classification => Task::Classification,
                TreeTask::Regression => Task::Regression,
            },
        }
    }

    /// The name in reports, as in the serialised spec.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::LinearRegression => "linear_regression",
            Algorithm::LogisticRegression { .. } => "logistic_regression",
            Algorithm::DecisionTree { .. } => "decision_tree",
        }
    }
}

/// What a decision tree predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeTask {
    /// A class label, splitting on Gini impurity.
    Classification,
    /// A number, splitting on squared error.
    Regression,
}

/// Why training or prediction could not be done. Every message names what to change.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainError {
    /// A column named in the spec or needed by the model is not in the data.
    UnknownColumn {
        /// The column asked for.
        column: String,
        /// The columns the data has.
        available: Vec<String>,
    },
    /// The spec asks for something impossible (a parameter out of range, the target among the
    /// features, …).
    InvalidSpec(String),
    /// The data is malformed (ragged rows, duplicate column names, infinite numbers, text in a
    /// column the model reads as numbers, …).
    InvalidData(String),
    /// The target column does not fit the task (text for a regression).
    TargetType(String),
    /// Too little to learn from (no rows, one class only).
    NotEnoughData(String),
    /// A model that is not a valid datamcp model (wrong format, inconsistent sizes).
    InvalidModel(String),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::UnknownColumn { column, available } => write!(
                f,
                "no column '{column}'; the columns are: {}",
                available.join(", ")
            ),
            TrainError::InvalidSpec(m)
            | TrainError::InvalidData(m)
            | TrainError::TargetType(m)
            | TrainError::NotEnoughData(m)
            | TrainError::InvalidModel(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TrainError {}

/// The most classes a classifier may have (multinomial work grows with their number).
pub const MAX_CLASSES: usize = 100;

/// The most encoded feature columns a model may have.
pub const MAX_ENCODED_FEATURES: usize = 200;

/// Trains `spec.algorithm` on `data` and reports what was done.
///
/// Rows without a target value are left out (and counted). The rest are shuffled with
/// `spec.seed` and split; the feature pipeline and the estimator see only the training split,
/// and the report holds the model's predictions on the test split.
pub fn train(data: &Dataset, spec: &TrainSpec) -> Result<Trained, TrainError> {
    check_dataset(data)?;
    check_spec(spec)?;
    let target_index = column_index(data, &spec.target)?;
    let feature_indices = feature_indices(data, spec, target_index)?;
    let task = spec.algorithm.task();
    let mut warnings = Vec::new();

    let (used, dropped) = target::rows_with_target(data, target_index);
    if dropped > 0 {
        warnings.push(format!(
            "{dropped} row(s) without a value in the target '{}' were left out",
            spec.target
        ));
    }
    if used.is_empty() {
        return Err(TrainError::NotEnoughData(format!(
            "no row has a value in the target '{}' ({} row(s) in the data); nothing to learn from",
            spec.target,
            data.rows.len()
        )));
    }
    let target = target::Target::read(data, target_index, &used, task)?;
    if let target::Target::Labels { labels, .. } = &target {
        let classes = labels.iter().collect::<HashSet<_>>().len();
        if classes > MAX_CLASSES {
            return Err(TrainError::InvalidData(format!(
                "the target '{}' has {classes} classes, more than {MAX_CLASSES}: an id or free text is not a class; predict a coarser label, or a number with a regression",
                spec.target
            )));
        }
    }

    let (train_pos, test_pos) = split::split(used.len(), spec.test_fraction, spec.seed);
    if test_pos.is_empty() {
        warnings.push(format!(
            "no test rows ({} usable row(s), test_fraction {}); the report has no test outcomes, \
             so no metrics can be computed",
            used.len(),
            spec.test_fraction
        ));
    }
    let train_rows: Vec<usize> = train_pos.iter().map(|&i| used[i]).collect();
    let test_rows: Vec<usize> = test_pos.iter().map(|&i| used[i]).collect();

    let fitted = features::fit(data, &feature_indices, &train_rows, &used);
    warnings.extend(fitted.warnings.iter().cloned());
    let pipeline = fitted.pipeline;
    // The work grows with the square (least squares, Newton) of the encoded width: a cap keeps
    // one call to seconds, since a fit that has started runs to its end.
    if pipeline.width() > MAX_ENCODED_FEATURES {
        return Err(TrainError::InvalidData(format!(
            "the features encode into {} columns (one per category of each text column), more than {MAX_ENCODED_FEATURES}; drop high-cardinality text columns or list fewer `features`",
            pipeline.width()
        )));
    }
    let x_train = pipeline.encode_indexed(data, &train_rows)?;
    let x_test = pipeline.encode_indexed(data, &test_rows)?;

    let trained = model::fit(model::FitInput {
        spec,
        task,
        pipeline,
        columns: fitted.reports,
        target: &target,
        train_pos: &train_pos,
        test_pos: &test_pos,
        test_rows: &test_rows,
        x_train: &x_train,
        x_test: &x_test,
        rows: RowCounts {
            input: data.rows.len(),
            used: used.len(),
            dropped_missing_target: dropped,
            train: train_rows.len(),
            test: test_rows.len(),
        },
        warnings,
    })?;
    if stop::stopped() {
        return Err(TrainError::InvalidSpec(
            "stopped: the call ended before the model was trained".into(),
        ));
    }
    Ok(trained)
}

/// Refuses a table the steps after it could not read: duplicate names, ragged rows, infinities.
fn check_dataset(data: &Dataset) -> Result<(), TrainError> {
    if data.columns.is_empty() {
        return Err(TrainError::NotEnoughData(
            "the data has no columns; nothing to learn from".to_owned(),
        ));
    }
    let mut seen = HashSet::new();
    for name in &data.columns {
        if !seen.insert(name.as_str()) {
            return Err(TrainError::InvalidData(format!(
                "the column name '{name}' appears twice; give each column its own name (an \
                 alias in the query)"
            )));
        }
    }
    for (r, row) in data.rows.iter().enumerate() {
        if row.len() != data.columns.len() {
            return Err(TrainError::InvalidData(format!(
                "row {r} has {} value(s) but there are {} columns",
                row.len(),
                data.columns.len()
            )));
        }
        for (c, cell) in row.iter().enumerate() {
            if let Cell::Number(x) = cell
                && x.is_infinite()
            {
                return Err(TrainError::InvalidData(format!(
                    "row {r}, column '{}' is infinite; filter it out or replace it",
                    data.columns[c]
                )));
            }
        }
    }
    Ok(())
}

/// Refuses parameters out of range before any work is done.
fn check_spec(spec: &TrainSpec) -> Result<(), TrainError> {
    if !(0.0..1.0).contains(&spec.test_fraction) {
        return Err(TrainError::InvalidSpec(format!(
            "test_fraction must be at least 0 and below 1 (it is {}); 0.2 holds out a fifth of \
             the rows",
            spec.test_fraction
        )));
    }
    match &spec.algorithm {
        Algorithm::LinearRegression => {}
        Algorithm::LogisticRegression { c, max_iter } => {
            if !(c.is_finite() && *c > 0.0) {
                return Err(TrainError::InvalidSpec(format!(
                    "c must be a positive number (it is {c}); 1.0 is the default, smaller \
                     regularises more"
                )));
            }
            if *max_iter == 0 {
                return Err(TrainError::InvalidSpec(
                    "max_iter must be at least 1; 100 is the default".to_owned(),
                ));
            }
        }
        Algorithm::DecisionTree {
            max_depth,
            min_samples_leaf,
            ..
        } => {
            if *max_depth == Some(0) {
                return Err(TrainError::InvalidSpec(
                    "max_depth must be at least 1, or null for no limit".to_owned(),
                ));
            }
            if *min_samples_leaf == 0 {
                return Err(TrainError::InvalidSpec(
                    "min_samples_leaf must be at least 1".to_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// The position of the column `name`, or an error listing the columns there are.
fn column_index(data: &Dataset, name: &str) -> Result<usize, TrainError> {
    data.columns
        .iter()
        .position(|c| c == name)
        .ok_or_else(|| TrainError::UnknownColumn {
            column: name.to_owned(),
            available: data.columns.clone(),
        })
}

/// The feature columns' positions: the spec's list (each once, in its order) or every column
/// but the target.
fn feature_indices(
    data: &Dataset,
    spec: &TrainSpec,
    target: usize,
) -> Result<Vec<usize>, TrainError> {
    let indices = match &spec.features {
        None => (0..data.columns.len()).filter(|&i| i != target).collect(),
        Some(names) => {
            let mut indices = Vec::new();
            for name in names {
                let i = column_index(data, name)?;
                if i == target {
                    return Err(TrainError::InvalidSpec(format!(
                        "'{name}' is the target; it cannot also be a feature"
                    )));
                }
                if !indices.contains(&i) {
                    indices.push(i);
                }
            }
            indices
        }
    };
    if indices.is_empty() {
        return Err(TrainError::InvalidSpec(format!(
            "no feature columns: the data has only the target '{}'; add columns to predict from",
            spec.target
        )));
    }
    Ok(indices)
}

#[cfg(test)]
mod tests;
