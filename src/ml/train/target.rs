//! The target column: numbers for a regression, class labels for a classification.
//!
//! Class labels are strings so that a label read from a number and the same label read from
//! text are one class; a number is written without a fraction when it is whole (`1`, not
//! `1.0`), so an integer column read as floats still has the labels a user expects. When every
//! label came from a number the classes sort numerically and predictions are numbers again, as
//! scikit-learn orders `np.unique(y)`.

use super::{Cell, Dataset, Task, TrainError};
use serde_json::{Number, Value};
use std::collections::BTreeSet;

/// The target of the rows used, in the order of those rows.
pub(crate) enum Target {
    /// Regression: one number per row.
    Numbers(Vec<f64>),
    /// Classification: one label per row, and whether every label came from a number.
    Labels {
        /// The label of each row.
        labels: Vec<String>,
        /// Whether every label was a number (then classes sort numerically).
        numeric: bool,
    },
}

/// The rows that have a target value, and how many do not.
pub(crate) fn rows_with_target(data: &Dataset, target: usize) -> (Vec<usize>, usize) {
    let used: Vec<usize> = (0..data.rows.len())
        .filter(|&r| data.rows[r].get(target).is_some_and(|c| !c.is_missing()))
        .collect();
    let dropped = data.rows.len() - used.len();
    (used, dropped)
}

impl Target {
    /// Reads column `target` of `rows` (all with a value) for `task`.
    pub(crate) fn read(
        data: &Dataset,
        target: usize,
        rows: &[usize],
        task: Task,
    ) -> Result<Target, TrainError> {
        let name = &data.columns[target];
        let cells = rows.iter().map(|&r| (r, &data.rows[r][target]));
        match task {
            Task::Regression => {
                let mut values = Vec::with_capacity(rows.len());
                for (r, cell) in cells {
                    match cell {
                        Cell::Number(x) => values.push(*x),
                        Cell::Text(t) => {
                            return Err(TrainError::TargetType(format!(
                                "the target '{name}' has text (\"{t}\" in row {r}) but a \
                                 regression predicts a number; cast the column to a number in \
                                 the query, or use a classifier (logistic_regression, or \
                                 decision_tree with task classification)"
                            )));
                        }
                        Cell::Missing => {}
                    }
                }
                Ok(Target::Numbers(values))
            }
            Task::Classification => {
                let mut numeric = true;
                let labels = cells
                    .map(|(_, cell)| match cell {
                        Cell::Number(x) => number_text(*x),
                        Cell::Text(t) => {
                            numeric = false;
                            t.clone()
                        }
                        Cell::Missing => String::new(),
                    })
                    .collect();
                Ok(Target::Labels { labels, numeric })
            }
        }
    }
}

/// The distinct labels in `labels`, in class order: numerically when `numeric`, else as text.
pub(crate) fn classes<'a>(labels: impl Iterator<Item = &'a String>, numeric: bool) -> Vec<String> {
    let distinct: BTreeSet<&String> = labels.collect();
    let mut classes: Vec<String> = distinct.into_iter().cloned().collect();
    if numeric {
        classes.sort_by(|a, b| {
            let (x, y) = (a.parse::<f64>(), b.parse::<f64>());
            match (x, y) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            }
        });
    }
    classes
}

/// A number as a label or category: whole numbers without a fraction, others in Rust's
/// shortest round-tripping form.
pub(crate) fn number_text(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A label as JSON: a number when the labels were numbers (an integer when whole), else text.
pub(crate) fn label_value(label: &str, numeric: bool) -> Value {
    if numeric && let Ok(x) = label.parse::<f64>() {
        return number_value(x);
    }
    Value::String(label.to_owned())
}

/// A number as JSON: an integer when whole, null when not finite (JSON has no NaN).
pub(crate) fn number_value(x: f64) -> Value {
    if x == x.trunc() && x.abs() < 1e15 {
        Value::from(x as i64)
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_labels_without_a_fraction() {
        assert_eq!(number_text(1.0), "1");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(2.5), "2.5");
        assert_eq!(number_text(0.1), "0.1");
    }

    #[test]
    fn numeric_classes_sort_as_numbers_and_text_classes_as_text() {
        let labels: Vec<String> = ["10", "2", "1", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(classes(labels.iter(), true), ["1", "2", "10"]);
        assert_eq!(classes(labels.iter(), false), ["1", "10", "2"]);
    }

    #[test]
    fn numeric_labels_come_back_as_json_numbers() {
        assert_eq!(label_value("1", true), Value::from(1));
        assert_eq!(label_value("1.5", true), Value::from(1.5));
        assert_eq!(label_value("1", false), Value::from("1"));
    }
}
