//! Classification metrics from a confusion matrix.
//!
//! Predictions usually arrive already aggregated (`GROUP BY true, predicted` in SQL), so
//! everything here starts from `(true label, predicted label, count)` triples. The results are
//! those of scikit-learn on the expanded rows, including its default zero-division behaviour
//! (`zero_division="warn"`: an undefined ratio counts as 0.0).

use std::collections::BTreeMap;

use serde::Serialize;

/// A confusion matrix: `counts[t][p]` rows whose true label is `labels[t]` and whose
/// predicted label is `labels[p]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Confusion {
    /// Every label that occurs as a true or a predicted label, in scikit-learn's
    /// `unique_labels` order (see [`sort_labels`]).
    pub labels: Vec<String>,
    /// `counts[true_index][predicted_index]`; square, `labels.len()` on each side.
    pub counts: Vec<Vec<u64>>,
}

/// Sorts labels the way scikit-learn's `unique_labels` orders them for the data a tool sees:
/// numerically when every label parses as a number (so `"10"` comes after `"9"`), otherwise
/// lexically. Labels that parse to the same number (`"1"`, `"1.0"`) are ordered lexically.
pub fn sort_labels(labels: &mut [String]) {
    let numeric = labels.iter().all(|l| l.trim().parse::<f64>().is_ok());
    if numeric {
        labels.sort_by(|a, b| {
            let x = a.trim().parse::<f64>().unwrap_or(f64::NAN);
            let y = b.trim().parse::<f64>().unwrap_or(f64::NAN);
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        labels.sort();
    }
}

impl Confusion {
    /// Builds the matrix from `(true_label, predicted_label, count)` triples. Repeated pairs
    /// are added up. A triple with count 0 adds no rows, so (as with the expanded data) it
    /// does not make its labels appear.
    pub fn from_counts<I, S>(triples: I) -> Confusion
    where
        I: IntoIterator<Item = (S, S, u64)>,
        S: Into<String>,
    {
        let mut cells: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (truth, predicted, count) in triples {
            if count == 0 {
                continue;
            }
            let cell = cells.entry((truth.into(), predicted.into())).or_insert(0);
            *cell = cell.saturating_add(count);
        }
        let mut labels: Vec<String> = cells
            .keys()
            .flat_map(|(t, p)| [t.clone(), p.clone()])
            .collect();
        labels.sort();
        labels.dedup();
        sort_labels(&mut labels);
        let index: BTreeMap<&str, usize> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let mut counts = vec![vec![0u64; labels.len()]; labels.len()];
        for ((truth, predicted), count) in &cells {
            if let (Some(&t), Some(&p)) = (index.get(truth.as_str()), index.get(predicted.as_str()))
            {
                counts[t][p] = count.saturating_add(counts[t][p]);
            }
        }
        Confusion { labels, counts }
    }

    /// Position of `label` in [`Confusion::labels`], if it occurs in the data.
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// Number of rows counted.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .flatten()
            .fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// Scores the matrix; `positive` names the class whose binary precision/recall/F1 are
    /// wanted. `None` when the matrix holds no rows.
    pub fn metrics(&self, positive: Option<&str>) -> Option<ClassificationMetrics> {
        ClassificationMetrics::from_confusion(self, positive)
    }
}

/// Precision, recall, F1 and support of one class, one-vs-rest.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ClassMetrics {
    /// The class.
    pub label: String,
    /// `tp / (tp + fp)`; 0.0 when the class is never predicted.
    pub precision: f64,
    /// `tp / (tp + fn)`; 0.0 when the class never occurs.
    pub recall: f64,
    /// `2·tp / (2·tp + fp + fn)` (scikit-learn's form of the harmonic mean); 0.0 when undefined.
    pub f1: f64,
    /// Rows whose true label is this class.
    pub support: u64,
}

/// Precision, recall and F1 averaged over classes.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Averages {
    /// Averaged precision.
    pub precision: f64,
    /// Averaged recall.
    pub recall: f64,
    /// Averaged F1 (the average of per-class F1, not the F1 of the averages).
    pub f1: f64,
}

/// What scikit-learn's `accuracy_score`, `precision_recall_fscore_support` and
/// `classification_report` give for the same data.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ClassificationMetrics {
    /// Rows scored.
    pub samples: u64,
    /// Share of rows whose prediction equals the truth.
    pub accuracy: f64,
    /// One entry per label, in [`Confusion::labels`] order.
    pub per_class: Vec<ClassMetrics>,
    /// Unweighted mean over all labels (`average="macro"`), including labels that are only
    /// ever predicted.
    pub macro_avg: Averages,
    /// Mean weighted by support (`average="weighted"`).
    pub weighted_avg: Averages,
    /// The positive class's own precision/recall/F1 (`average="binary", pos_label=…`). `None`
    /// when no positive label was asked for or it never occurs in the data (check
    /// [`Confusion::index_of`] to tell the two apart). For more than two classes this is the
    /// one-vs-rest score, which scikit-learn gives with `labels=[pos], average="micro"`.
    pub binary: Option<ClassMetrics>,
}

/// `numerator / denominator`, or 0.0 when the denominator is zero (scikit-learn's
/// `zero_division="warn"` result).
fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        0.0
    } else {
        numerator / denominator
    }
}

impl ClassificationMetrics {
    /// Scores a confusion matrix. `None` when it holds no rows or is not square.
    pub fn from_confusion(confusion: &Confusion, positive: Option<&str>) -> Option<Self> {
        let k = confusion.labels.len();
        if confusion.counts.len() != k || confusion.counts.iter().any(|row| row.len() != k) {
            return None;
        }
        let total = confusion.total();
        if total == 0 {
            return None;
        }
        let correct = (0..k).fold(0u64, |a, i| a.saturating_add(confusion.counts[i][i]));
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|i| {
                let tp = confusion.counts[i][i] as f64;
                let support = confusion.counts[i]
                    .iter()
                    .fold(0u64, |a, &c| a.saturating_add(c));
                let predicted = confusion
                    .counts
                    .iter()
                    .fold(0u64, |a, row| a.saturating_add(row[i]));
                ClassMetrics {
                    label: confusion.labels[i].clone(),
                    precision: ratio(tp, predicted as f64),
                    recall: ratio(tp, support as f64),
                    f1: ratio(2.0 * tp, support as f64 + predicted as f64),
                    support,
                }
            })
            .collect();
        let average = |weight: &dyn Fn(&ClassMetrics) -> f64| {
            let weights: f64 = per_class.iter().map(weight).sum();
            let mean = |value: &dyn Fn(&ClassMetrics) -> f64| {
                ratio(
                    per_class.iter().map(|c| weight(c) * value(c)).sum(),
                    weights,
                )
            };
            Averages {
                precision: mean(&|c| c.precision),
                recall: mean(&|c| c.recall),
                f1: mean(&|c| c.f1),
            }
        };
        let macro_avg = average(&|_| 1.0);
        let weighted_avg = average(&|c| c.support as f64);
        let binary = positive
            .and_then(|label| confusion.index_of(label))
            .map(|i| per_class[i].clone());
        Some(ClassificationMetrics {
            samples: total,
            accuracy: correct as f64 / total as f64,
            per_class,
            macro_avg,
            weighted_avg,
            binary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1e-300),
            "actual {actual}, expected {expected}"
        );
    }

    /// 15 rows; `bird` is never predicted and `fish` is only predicted.
    /// Expanded (Python):
    /// y = ['cat']*7 + ['dog']*4 + ['bird']*3 + ['cat']
    /// p = ['cat']*5 + ['dog']*2 + ['dog']*3 + ['cat'] + ['cat']*2 + ['dog'] + ['fish']
    fn animals() -> Confusion {
        Confusion::from_counts([
            ("cat", "cat", 5),
            ("cat", "dog", 2),
            ("dog", "dog", 3),
            ("dog", "cat", 1),
            ("bird", "cat", 2),
            ("bird", "dog", 1),
            ("cat", "fish", 1),
            ("cat", "cat", 0),
        ])
    }

    #[test]
    fn confusion_matches_sklearn_confusion_matrix() {
        let confusion = animals();
        // sorted(set(y) | set(p))
        assert_eq!(confusion.labels, ["bird", "cat", "dog", "fish"]);
        // sklearn.metrics.confusion_matrix(y, p).tolist()
        let expected = vec![
            vec![0, 2, 1, 0],
            vec![0, 5, 2, 1],
            vec![0, 1, 3, 0],
            vec![0, 0, 0, 0],
        ];
        assert_eq!(confusion.counts, expected);
        assert_eq!(confusion.total(), 15);
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        // sklearn.metrics.confusion_matrix([10, 9, 2, 10], [9, 9, 10, 10]).tolist()
        //   == [[0, 0, 1], [0, 1, 0], [0, 1, 1]]  with labels [2, 9, 10]
        let confusion = Confusion::from_counts([
            ("10", "9", 1),
            ("9", "9", 1),
            ("2", "10", 1),
            ("10", "10", 1),
        ]);
        assert_eq!(confusion.labels, ["2", "9", "10"]);
        assert_eq!(
            confusion.counts,
            vec![vec![0, 0, 1], vec![0, 1, 0], vec![0, 1, 1]]
        );
    }

    #[test]
    fn mixed_labels_sort_lexically() {
        let mut labels = vec!["b".to_owned(), "10".to_owned(), "9".to_owned()];
        sort_labels(&mut labels);
        assert_eq!(labels, ["10", "9", "b"]);
    }

    #[test]
    fn per_class_metrics_count_zero_division_as_zero() {
        let metrics = animals().metrics(None).expect("rows");
        // sklearn.metrics.accuracy_score(y, p)
        assert_close(metrics.accuracy, 0.5333333333333333);
        // sklearn.metrics.precision_recall_fscore_support(y, p)
        let precision = [0.0, 0.625, 0.5, 0.0];
        let recall = [0.0, 0.625, 0.75, 0.0];
        let f1 = [0.0, 0.625, 0.6, 0.0];
        let support = [3, 8, 4, 0];
        for (i, class) in metrics.per_class.iter().enumerate() {
            assert_close(class.precision, precision[i]);
            assert_close(class.recall, recall[i]);
            assert_close(class.f1, f1[i]);
            assert_eq!(class.support, support[i]);
        }
        assert_eq!(metrics.binary, None);
    }

    #[test]
    fn macro_and_weighted_averages_match_sklearn() {
        let metrics = animals().metrics(None).expect("rows");
        // sklearn.metrics.precision_recall_fscore_support(y, p, average="macro")[:3]
        assert_close(metrics.macro_avg.precision, 0.28125);
        assert_close(metrics.macro_avg.recall, 0.34375);
        assert_close(metrics.macro_avg.f1, 0.30625);
        // sklearn.metrics.precision_recall_fscore_support(y, p, average="weighted")[:3]
        assert_close(metrics.weighted_avg.precision, 0.4666666666666667);
        assert_close(metrics.weighted_avg.recall, 0.5333333333333333);
        assert_close(metrics.weighted_avg.f1, 0.49333333333333335);
    }

    #[test]
    fn positive_label_of_a_multiclass_matrix_is_one_vs_rest() {
        let metrics = animals().metrics(Some("dog")).expect("rows");
        let binary = metrics.binary.expect("dog occurs");
        // sklearn.metrics.precision_recall_fscore_support(y, p, labels=["dog"], average="micro")[:3]
        assert_close(binary.precision, 0.5);
        assert_close(binary.recall, 0.75);
        assert_close(binary.f1, 0.6);
        assert_eq!(animals().metrics(Some("horse")).expect("rows").binary, None);
    }

    #[test]
    fn binary_metrics_match_sklearn_average_binary() {
        // y = [1]*6 + [0]*4; p = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0]
        let confusion =
            Confusion::from_counts([("1", "1", 4), ("1", "0", 2), ("0", "1", 1), ("0", "0", 3)]);
        let metrics = confusion.metrics(Some("1")).expect("rows");
        let binary = metrics.binary.expect("1 occurs");
        // sklearn.metrics.precision_recall_fscore_support(y, p, average="binary", pos_label=1)[:3]
        assert_close(binary.precision, 0.8);
        assert_close(binary.recall, 0.6666666666666666);
        assert_close(binary.f1, 0.7272727272727273);
        // sklearn.metrics.accuracy_score(y, p)
        assert_close(metrics.accuracy, 0.7);
    }

    #[test]
    fn no_rows_gives_no_metrics() {
        let empty = Confusion::from_counts(Vec::<(String, String, u64)>::new());
        assert_eq!(empty.metrics(None), None);
        let zeros = Confusion::from_counts([("a", "b", 0)]);
        assert!(zeros.labels.is_empty());
        assert_eq!(zeros.metrics(Some("a")), None);
        let ragged = Confusion {
            labels: vec!["a".to_owned()],
            counts: vec![vec![1, 2]],
        };
        assert_eq!(ragged.metrics(None), None);
    }
}
