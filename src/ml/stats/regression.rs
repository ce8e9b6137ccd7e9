//! Regression metrics from sums.
//!
//! RMSE, MAE, R² and MAPE only need a handful of sums over the rows, which a database can
//! compute in one aggregate query; the metrics are then derived here exactly as
//! scikit-learn defines them.

use serde::Serialize;

/// Sums over the rows `(y, p)` of truth and prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionSums {
    /// Number of rows.
    pub n: u64,
    /// `Σ y`.
    pub sum_y: f64,
    /// `Σ (y − ȳ)²`, the total sum of squares. The caller computes it around the mean (two
    /// passes, or a numerically stable one-pass update), because `Σy² − (Σy)²/n` cancels badly.
    pub sum_y2_centered: f64,
    /// `Σ (y − p)²`.
    pub sse: f64,
    /// `Σ |y − p|`.
    pub sae: f64,
    /// `Σ |y − p| / max(|y|, f64::EPSILON)`, scikit-learn's guard against dividing by zero.
    pub sape: f64,
}

/// The metrics scikit-learn's regression functions give for the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RegressionMetrics {
    /// `sqrt(sse / n)`: `root_mean_squared_error`.
    pub rmse: f64,
    /// `sae / n`: `mean_absolute_error`.
    pub mae: f64,
    /// `1 − sse / Σ(y − ȳ)²`: `r2_score`. When every `y` is equal it is 1.0 for a perfect fit
    /// and 0.0 otherwise (`force_finite=True`); `None` below two rows, where scikit-learn
    /// returns NaN.
    pub r2: Option<f64>,
    /// `sape / n`: `mean_absolute_percentage_error`, a fraction (0.1 = 10 %), huge when some
    /// `y` is 0.
    pub mape: f64,
}

impl RegressionSums {
    /// Computes the sums from in-memory `(y, p)` pairs, the mean first so that the total sum
    /// of squares is taken around it (two passes).
    pub fn from_pairs(pairs: &[(f64, f64)]) -> RegressionSums {
        let n = pairs.len() as u64;
        let sum_y: f64 = pairs.iter().map(|(y, _)| y).sum();
        let mean = if n == 0 { 0.0 } else { sum_y / n as f64 };
        let mut sums = RegressionSums {
            n,
            sum_y,
            sum_y2_centered: 0.0,
            sse: 0.0,
            sae: 0.0,
            sape: 0.0,
        };
        for &(y, p) in pairs {
            let error = (y - p).abs();
            sums.sum_y2_centered += (y - mean) * (y - mean);
            sums.sse += error * error;
            sums.sae += error;
            sums.sape += error / y.abs().max(f64::EPSILON);
        }
        sums
    }

    /// The mean of `y`, or `None` without rows.
    pub fn mean_y(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum_y / self.n as f64)
    }

    /// Derives the metrics. `None` without rows, or when a sum is NaN or infinite (a NaN in
    /// the data, which scikit-learn refuses), or a sum of non-negative terms is negative.
    pub fn metrics(&self) -> Option<RegressionMetrics> {
        if self.n == 0 {
            return None;
        }
        let sums = [
            self.sum_y,
            self.sum_y2_centered,
            self.sse,
            self.sae,
            self.sape,
        ];
        if sums.iter().any(|s| !s.is_finite()) {
            return None;
        }
        if [self.sum_y2_centered, self.sse, self.sae, self.sape]
            .iter()
            .any(|&s| s < 0.0)
        {
            return None;
        }
        let n = self.n as f64;
        let r2 = if self.n < 2 {
            None
        } else if self.sum_y2_centered == 0.0 {
            Some(if self.sse == 0.0 { 1.0 } else { 0.0 })
        } else {
            Some(1.0 - self.sse / self.sum_y2_centered)
        };
        Some(RegressionMetrics {
            rmse: (self.sse / n).sqrt(),
            mae: self.sae / n,
            r2,
            mape: self.sape / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs(),
            "actual {actual}, expected {expected}"
        );
    }

    #[test]
    fn metrics_match_sklearn_including_a_zero_truth() {
        // y = [3, -0.5, 2, 7, 0, 4.2]; p = [2.5, 0.0, 2, 8, 0.3, 4.0]
        let pairs = [
            (3.0, 2.5),
            (-0.5, 0.0),
            (2.0, 2.0),
            (7.0, 8.0),
            (0.0, 0.3),
            (4.2, 4.0),
        ];
        let metrics = RegressionSums::from_pairs(&pairs).metrics().expect("rows");
        // sklearn.metrics.root_mean_squared_error(y, p)
        assert_close(metrics.rmse, 0.5212165257037297);
        // sklearn.metrics.mean_absolute_error(y, p)
        assert_close(metrics.mae, 0.4166666666666667);
        // sklearn.metrics.r2_score(y, p)
        assert_close(metrics.r2.expect("two rows or more"), 0.9579987116169207);
        // sklearn.metrics.mean_absolute_percentage_error(y, p)  (0.3 / f64::EPSILON dominates)
        assert_close(metrics.mape, 225179981368525.0);
    }

    #[test]
    fn r2_of_constant_truth_is_one_if_perfect_else_zero() {
        // sklearn.metrics.r2_score([2, 2, 2], [2, 2, 2])
        let perfect = RegressionSums::from_pairs(&[(2.0, 2.0), (2.0, 2.0), (2.0, 2.0)]);
        assert_eq!(perfect.metrics().and_then(|m| m.r2), Some(1.0));
        // sklearn.metrics.r2_score([2, 2, 2], [2, 3, 2])
        let off = RegressionSums::from_pairs(&[(2.0, 2.0), (2.0, 3.0), (2.0, 2.0)]);
        assert_eq!(off.metrics().and_then(|m| m.r2), Some(0.0));
    }

    #[test]
    fn r2_is_none_below_two_rows() {
        // sklearn.metrics.r2_score([1.0], [2.0]) is nan (UndefinedMetricWarning)
        let one = RegressionSums::from_pairs(&[(1.0, 2.0)])
            .metrics()
            .expect("one row");
        assert_eq!(one.r2, None);
        assert_eq!(one.rmse, 1.0);
    }

    #[test]
    fn no_rows_or_nan_gives_no_metrics() {
        assert_eq!(RegressionSums::from_pairs(&[]).metrics(), None);
        assert_eq!(RegressionSums::from_pairs(&[]).mean_y(), None);
        let nan = RegressionSums::from_pairs(&[(1.0, f64::NAN), (2.0, 2.0)]);
        assert_eq!(nan.metrics(), None);
    }
}
