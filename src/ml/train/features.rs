//! The feature engineering done for the user, fitted on the training split and reported.
//!
//! A column is numeric when every value it has is a number, else categorical (a number in a
//! categorical column is a category, written as a label: `1`, not `1.0`). Numeric columns are
//! imputed with the training mean and standardised with the training mean and population
//! standard deviation, which is what `SimpleImputer(strategy="mean")` then `StandardScaler()`
//! do; a column constant in training keeps scale 1, so it is centred only. Categorical columns
//! are one-hot encoded, categories sorted, a missing value being the category `(missing)`. A
//! category first met at prediction time encodes as all zeros (`handle_unknown="ignore"`).
//! A column with more than [`MAX_CATEGORIES`] categories keeps the most frequent ones and
//! folds the rest, and any new value, into `(other)`.
//!
//! Only the training split is looked at for statistics and categories, so the test split
//! measures the model as it will meet new rows. The column's kind is decided on every row used,
//! since a kind decided on a sample could be contradicted by the rest.

use super::target::number_text;
use super::{Cell, Dataset, TrainError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The most one-hot columns one categorical column may become, `(other)` included.
pub const MAX_CATEGORIES: usize = 50;

/// The category of a missing value.
pub const MISSING_CATEGORY: &str = "(missing)";

/// The category that stands for the values beyond [`MAX_CATEGORIES`].
pub const OTHER_CATEGORY: &str = "(other)";

/// How a source column is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Imputed with the mean, then standardised: one encoded feature.
    Numeric,
    /// One-hot encoded: one feature per category.
    Categorical,
}

/// The fitted encoding of one source column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnEncoder {
    /// `(x − mean) / scale`; a missing value encodes as 0 (the mean).
    Numeric {
        /// The source column.
        column: String,
        /// The training mean, which also replaces missing values.
        mean: f64,
        /// The training standard deviation, or 1 when that is 0.
        scale: f64,
    },
    /// One 0/1 feature per category, in this order.
    Categorical {
        /// The source column.
        column: String,
        /// The categories, sorted.
        categories: Vec<String>,
        /// Whether the column was capped: then [`OTHER_CATEGORY`] is among the categories and
        /// takes every value not listed; else such a value encodes as all zeros.
        other: bool,
    },
}

impl ColumnEncoder {
    /// The source column's name.
    pub fn column(&self) -> &str {
        match self {
            ColumnEncoder::Numeric { column, .. } | ColumnEncoder::Categorical { column, .. } => {
                column
            }
        }
    }

    /// How many encoded features the column becomes.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoder::Numeric { .. } => 1,
            ColumnEncoder::Categorical { categories, .. } => categories.len(),
        }
    }

    /// The encoded features' names: the column, or `column=category`.
    pub fn feature_names(&self) -> Vec<String> {
        match self {
            ColumnEncoder::Numeric { column, .. } => vec![column.clone()],
            ColumnEncoder::Categorical {
                column, categories, ..
            } => categories.iter().map(|c| format!("{column}={c}")).collect(),
        }
    }
}

/// The fitted feature pipeline: turns a row into the encoded vector the estimators read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// One encoder per source column, in feature order.
    pub columns: Vec<ColumnEncoder>,
}

/// What was done to one source column, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ColumnReport {
    /// The source column.
    pub column: String,
    /// Numeric or categorical.
    pub kind: ColumnKind,
    /// Missing values replaced by the training mean (numeric), over the rows used.
    pub imputed: usize,
    /// Missing values over the rows used (for a categorical column: the `(missing)` rows).
    pub missing: usize,
    /// The training mean (numeric).
    pub mean: Option<f64>,
    /// The training population standard deviation after imputation (numeric).
    pub std: Option<f64>,
    /// The categories kept (categorical).
    pub categories: Option<Vec<String>>,
    /// How many distinct values the training split has (categorical).
    pub distinct: Option<usize>,
    /// The encoded features this column became.
    pub features: Vec<String>,
}

/// A fitted pipeline with its report.
pub(crate) struct Fitted {
    /// The pipeline.
    pub(crate) pipeline: Pipeline,
    /// What was done to each feature column.
    pub(crate) reports: Vec<ColumnReport>,
    /// What the user should know (columns left out, capped).
    pub(crate) warnings: Vec<String>,
}

/// Fits the encoders of columns `features` on `train` rows; kinds and missing counts come
/// from all `used` rows.
pub(crate) fn fit(data: &Dataset, features: &[usize], train: &[usize], used: &[usize]) -> Fitted {
    let mut fitted = Fitted {
        pipeline: Pipeline {
            columns: Vec::new(),
        },
        reports: Vec::new(),
        warnings: Vec::new(),
    };
    for &c in features {
        let name = &data.columns[c];
        let used_cells = || used.iter().map(|&r| &data.rows[r][c]);
        let missing = used_cells().filter(|cell| cell.is_missing()).count();
        if missing == used.len() {
            fitted.warnings.push(format!(
                "column '{name}' has no values in the rows used; it was left out"
            ));
            continue;
        }
        let numeric = used_cells().all(|cell| !matches!(cell, Cell::Text(_)));
        let train_cells: Vec<&Cell> = train.iter().map(|&r| &data.rows[r][c]).collect();
        let (encoder, report) = if numeric {
            fit_numeric(name, &train_cells, missing, &mut fitted.warnings)
        } else {
            fit_categorical(name, &train_cells, missing, &mut fitted.warnings)
        };
        fitted.pipeline.columns.push(encoder);
        fitted.reports.push(report);
    }
    if fitted.pipeline.columns.is_empty() {
        fitted.warnings.push(
            "no feature column has values; the model predicts from the target alone".to_owned(),
        );
    }
    fitted
}

/// Mean imputation and standardisation, from the training cells.
fn fit_numeric(
    name: &str,
    cells: &[&Cell],
    missing: usize,
    warnings: &mut Vec<String>,
) -> (ColumnEncoder, ColumnReport) {
    let values: Vec<f64> = cells
        .iter()
        .filter_map(|cell| match cell {
            Cell::Number(x) if !x.is_nan() => Some(*x),
            _ => None,
        })
        .collect();
    let mean = if values.is_empty() {
        warnings.push(format!(
            "column '{name}' has no values in the training split; its missing values are taken \
             as 0"
        ));
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    };
    // Imputed cells sit at the mean and add nothing to the sum of squares, but count in n.
    let n = cells.len().max(1) as f64;
    let std = (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    let scale = if std > 0.0 { std } else { 1.0 };
    let encoder = ColumnEncoder::Numeric {
        column: name.to_owned(),
        mean,
        scale,
    };
    let report = ColumnReport {
        column: name.to_owned(),
        kind: ColumnKind::Numeric,
        imputed: missing,
        missing,
        mean: Some(mean),
        std: Some(std),
        categories: None,
        distinct: None,
        features: encoder.feature_names(),
    };
    (encoder, report)
}

/// The categories of the training cells, capped at [`MAX_CATEGORIES`].
fn fit_categorical(
    name: &str,
    cells: &[&Cell],
    missing: usize,
    warnings: &mut Vec<String>,
) -> (ColumnEncoder, ColumnReport) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for cell in cells {
        *counts.entry(category(cell)).or_insert(0) += 1;
    }
    let distinct = counts.len();
    let other = distinct > MAX_CATEGORIES;
    let categories: Vec<String> = if other {
        let mut by_count: Vec<(&String, &usize)> = counts.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut kept: Vec<String> = by_count
            .into_iter()
            .take(MAX_CATEGORIES - 1)
            .map(|(c, _)| c.clone())
            .collect();
        kept.push(OTHER_CATEGORY.to_owned());
        kept.sort();
        warnings.push(format!(
            "column '{name}' has {distinct} distinct values in training; the {} most frequent \
             are kept and the rest are '{OTHER_CATEGORY}' (an identifier column is rarely a \
             useful feature: leave it out with `features`)",
            MAX_CATEGORIES - 1
        ));
        kept
    } else {
        counts.into_keys().collect()
    };
    let encoder = ColumnEncoder::Categorical {
        column: name.to_owned(),
        categories: categories.clone(),
        other,
    };
    let report = ColumnReport {
        column: name.to_owned(),
        kind: ColumnKind::Categorical,
        imputed: 0,
        missing,
        mean: None,
        std: None,
        categories: Some(categories),
        distinct: Some(distinct),
        features: encoder.feature_names(),
    };
    (encoder, report)
}

/// A cell's category: its text, a number as a label, or [`MISSING_CATEGORY`].
fn category(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => t.clone(),
        Cell::Number(x) if !x.is_nan() => number_text(*x),
        _ => MISSING_CATEGORY.to_owned(),
    }
}

impl Pipeline {
    /// How many encoded features a row becomes.
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnEncoder::width).sum()
    }

    /// The encoded features' names, in order (`age`, `country=DE`, …).
    pub fn feature_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .flat_map(ColumnEncoder::feature_names)
            .collect()
    }

    /// Encodes `rows`, whose cells are named by `columns` (any order; extra columns are
    /// ignored). Every source column the pipeline reads must be present.
    pub fn encode(
        &self,
        columns: &[String],
        rows: &[Vec<Cell>],
    ) -> Result<Vec<Vec<f64>>, TrainError> {
        let mut positions = Vec::with_capacity(self.columns.len());
        for encoder in &self.columns {
            let name = encoder.column();
            let Some(p) = columns.iter().position(|c| c == name) else {
                return Err(TrainError::UnknownColumn {
                    column: name.to_owned(),
                    available: columns.to_vec(),
                });
            };
            positions.push(p);
        }
        for (r, row) in rows.iter().enumerate() {
            if row.len() != columns.len() {
                return Err(TrainError::InvalidData(format!(
                    "row {r} has {} value(s) but {} columns are named",
                    row.len(),
                    columns.len()
                )));
            }
        }
        self.encode_with(rows.len(), |r, e| &rows[r][positions[e]])
    }

    /// Encodes `rows` of `data`, whose columns the pipeline was fitted on.
    pub(crate) fn encode_indexed(
        &self,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<Vec<Vec<f64>>, TrainError> {
        let mut positions = Vec::with_capacity(self.columns.len());
        for encoder in &self.columns {
            let name = encoder.column();
            let p = data.columns.iter().position(|c| c == name).ok_or_else(|| {
                TrainError::UnknownColumn {
                    column: name.to_owned(),
                    available: data.columns.clone(),
                }
            })?;
            positions.push(p);
        }
        self.encode_with(rows.len(), |i, e| &data.rows[rows[i]][positions[e]])
    }

    /// Encodes `n` rows, `cell(row, encoder)` giving the cell each encoder reads.
    fn encode_with<'a>(
        &self,
        n: usize,
        cell: impl Fn(usize, usize) -> &'a Cell,
    ) -> Result<Vec<Vec<f64>>, TrainError> {
        let lookups: Vec<HashMap<&str, usize>> = self
            .columns
            .iter()
            .map(|encoder| match encoder {
                ColumnEncoder::Numeric { .. } => HashMap::new(),
                ColumnEncoder::Categorical { categories, .. } => categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i))
                    .collect(),
            })
            .collect();
        let width = self.width();
        let mut encoded = Vec::with_capacity(n);
        for r in 0..n {
            let mut x = Vec::with_capacity(width);
            for (e, encoder) in self.columns.iter().enumerate() {
                let cell = cell(r, e);
                match encoder {
                    ColumnEncoder::Numeric {
                        column,
                        mean,
                        scale,
                    } => x.push((numeric_value(cell, column, r)?.unwrap_or(*mean) - mean) / scale),
                    ColumnEncoder::Categorical {
                        categories, other, ..
                    } => {
                        let start = x.len();
                        x.resize(start + categories.len(), 0.0);
                        let key = category(cell);
                        let hit = lookups[e].get(key.as_str()).copied().or_else(|| {
                            other
                                .then(|| lookups[e].get(OTHER_CATEGORY).copied())
                                .flatten()
                        });
                        if let Some(i) = hit {
                            x[start + i] = 1.0;
                        }
                    }
                }
            }
            encoded.push(x);
        }
        Ok(encoded)
    }
}

/// The number in a cell of a numeric column: `None` when missing; text is read as a number
/// if it is one (a CSV value), else refused.
fn numeric_value(cell: &Cell, column: &str, row: usize) -> Result<Option<f64>, TrainError> {
    let x = match cell {
        Cell::Missing => return Ok(None),
        Cell::Number(x) => *x,
        Cell::Text(t) => t.trim().parse::<f64>().map_err(|_| {
            TrainError::InvalidData(format!(
                "column '{column}' is numeric in the model but row {row} has the text \"{t}\"; \
                 pass a number or null"
            ))
        })?,
    };
    if x.is_nan() {
        return Ok(None);
    }
    if x.is_infinite() {
        return Err(TrainError::InvalidData(format!(
            "row {row}, column '{column}' is infinite; pass a finite number or null"
        )));
    }
    Ok(Some(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(x: f64) -> Cell {
        Cell::Number(x)
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }

    /// A mixed table: a numeric column with a gap, a text column with a gap, a numeric column
    /// that is constant, and a code column mixing numbers and text (so categorical).
    fn mixed() -> Dataset {
        Dataset {
            columns: ["age", "country", "flag", "code"]
                .map(String::from)
                .to_vec(),
            rows: vec![
                vec![num(30.0), text("DE"), num(1.0), num(7.0)],
                vec![num(40.0), text("FR"), num(1.0), text("x")],
                vec![Cell::Missing, text("DE"), num(1.0), num(7.0)],
                vec![num(50.0), Cell::Missing, num(1.0), num(2.5)],
                vec![num(20.0), text("US"), num(1.0), text("x")],
            ],
        }
    }

    #[test]
    fn numeric_columns_are_mean_imputed_then_standardised_like_sklearn() {
        let data = mixed();
        let rows: Vec<usize> = (0..5).collect();
        let fitted = fit(&data, &[0, 1, 2, 3], &rows, &rows);
        let x = fitted
            .pipeline
            .encode_indexed(&data, &rows)
            .expect("encodes");
        // ~/.cache/datamcp/mlflow-3.17.2/bin/python (scikit-learn 1.9.1):
        //   from sklearn.impute import SimpleImputer; from sklearn.preprocessing import StandardScaler
        //   from sklearn.pipeline import make_pipeline; import numpy as np
        //   p = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler())
        //   p.fit_transform(np.array([[30],[40],[np.nan],[50],[20.]])).ravel().tolist()
        //   → [-0.5, 0.5, 0.0, 1.5, -1.5];  p[1].mean_, p[1].scale_ → [35.], [10.]
        let age = [-0.5, 0.5, 0.0, 1.5, -1.5];
        for (row, want) in x.iter().zip(age) {
            assert!((row[0] - want).abs() < 1e-12, "{} vs {want}", row[0]);
        }
        let age_report = &fitted.reports[0];
        assert_eq!(age_report.kind, ColumnKind::Numeric);
        assert_eq!(age_report.imputed, 1);
        assert_eq!(age_report.mean, Some(35.0));
        let std = age_report.std.expect("numeric columns report a std");
        assert!((std - 10.0).abs() < 1e-12);
    }

    #[test]
    fn text_columns_are_one_hot_with_sorted_categories_and_a_missing_category() {
        let data = mixed();
        let rows: Vec<usize> = (0..5).collect();
        let fitted = fit(&data, &[0, 1, 2, 3], &rows, &rows);
        assert_eq!(
            fitted.pipeline.feature_names(),
            [
                "age",
                "country=(missing)",
                "country=DE",
                "country=FR",
                "country=US",
                "flag",
                "code=2.5",
                "code=7",
                "code=x"
            ]
        );
        let x = fitted
            .pipeline
            .encode_indexed(&data, &rows)
            .expect("encodes");
        // sklearn.preprocessing.OneHotEncoder(handle_unknown="ignore") on the country column
        // with None as "(missing)" gives the same rows; the flag column is constant, so it is
        // centred to 0 and not scaled (StandardScaler keeps scale_ 1.0 there too).
        assert_eq!(x[0][1..], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(x[3][1..], [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(x[4][1..], [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(fitted.reports[1].kind, ColumnKind::Categorical);
        assert_eq!(fitted.reports[1].missing, 1);
        assert_eq!(fitted.reports[3].kind, ColumnKind::Categorical);
    }

    #[test]
    fn an_unseen_category_encodes_as_zeros_and_columns_may_come_in_any_order() {
        let data = mixed();
        let rows: Vec<usize> = (0..5).collect();
        let fitted = fit(&data, &[1, 0], &rows, &rows);
        let columns = ["extra", "country", "age"].map(String::from).to_vec();
        let x = fitted
            .pipeline
            .encode(&columns, &[vec![text("?"), text("JP"), num(35.0)]])
            .expect("encodes");
        assert_eq!(x, vec![vec![0.0, 0.0, 0.0, 0.0, 0.0]]);
    }

    #[test]
    fn statistics_and_categories_come_from_the_training_rows_only() {
        let data = mixed();
        let fitted = fit(&data, &[0, 1], &[0, 1], &[0, 1, 2, 3, 4]);
        assert_eq!(fitted.reports[0].mean, Some(35.0));
        assert_eq!(fitted.reports[0].std, Some(5.0));
        assert_eq!(
            fitted.pipeline.feature_names(),
            ["age", "country=DE", "country=FR"]
        );
    }

    #[test]
    fn a_column_with_too_many_categories_keeps_the_most_frequent_and_folds_the_rest() {
        let mut rows = Vec::new();
        for i in 0..60 {
            rows.push(vec![text(&format!("v{i:02}"))]);
        }
        rows.push(vec![text("v59")]);
        let data = Dataset {
            columns: vec!["id".to_owned()],
            rows,
        };
        let all: Vec<usize> = (0..61).collect();
        let fitted = fit(&data, &[0], &all, &all);
        assert_eq!(fitted.pipeline.width(), MAX_CATEGORIES);
        let names = fitted.pipeline.feature_names();
        assert!(
            names.contains(&"id=v59".to_owned()),
            "the most frequent is kept"
        );
        assert!(names.contains(&"id=(other)".to_owned()));
        assert_eq!(fitted.warnings.len(), 1);
        let other = names
            .iter()
            .position(|n| n == "id=(other)")
            .expect("listed");
        let x = fitted
            .pipeline
            .encode(&data.columns, &[vec![text("never seen")]])
            .expect("encodes");
        assert_eq!(x[0][other], 1.0);
        assert_eq!(x[0].iter().sum::<f64>(), 1.0);
    }

    #[test]
    fn prediction_rows_missing_a_column_or_with_text_in_a_numeric_one_are_refused() {
        let data = mixed();
        let rows: Vec<usize> = (0..5).collect();
        let fitted = fit(&data, &[0], &rows, &rows);
        let err = fitted
            .pipeline
            .encode(&["country".to_owned()], &[vec![text("DE")]])
            .expect_err("age is missing");
        assert!(matches!(err, TrainError::UnknownColumn { .. }), "{err}");
        let err = fitted
            .pipeline
            .encode(&["age".to_owned()], &[vec![text("old")]])
            .expect_err("text in a numeric column");
        assert!(err.to_string().contains("numeric"), "{err}");
        let x = fitted
            .pipeline
            .encode(
                &["age".to_owned()],
                &[vec![text(" 35 ")], vec![Cell::Missing]],
            )
            .expect("numbers as text are read");
        assert_eq!(x, vec![vec![0.0], vec![0.0]]);
    }
}
