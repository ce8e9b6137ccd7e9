//! Ordinary least squares with an intercept, as `sklearn.linear_model.LinearRegression()`.
//!
//! Like scikit-learn, the fit centres `X` and `y` on their training means, solves for the
//! weights without the intercept, and sets `intercept = ȳ − x̄·w`, so the intercept is never
//! part of a minimum norm. The centred normal equations `XcᵀXc·w = Xcᵀyc` are solved by
//! Cholesky, refined once; when they are singular (one-hot columns always sum to one, which
//! the intercept already is; a constant column; fewer rows than features) the solution is the
//! minimum-norm one, which is what scikit-learn's `lstsq` gives, and the report says so.

use super::linalg::{cholesky, cholesky_solve, mat_vec, min_norm_solve};
use serde::{Deserialize, Serialize};

/// Below this share of the largest diagonal entry, a Cholesky pivot counts as zero.
const SINGULAR_PIVOT: f64 = 1e-10;

/// Eigenvalues below this share of the largest count as zero in the minimum-norm solution.
const RANK_CUTOFF: f64 = 1e-10;

/// A fitted linear regression: `y = intercept + Σ coefficients[j]·x[j]` on encoded features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearModel {
    /// The intercept.
    pub intercept: f64,
    /// One weight per encoded feature.
    pub coefficients: Vec<f64>,
}

impl LinearModel {
    /// The prediction for one encoded row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.intercept
            + self
                .coefficients
                .iter()
                .zip(x)
                .map(|(w, v)| w * v)
                .sum::<f64>()
    }
}

/// A fit and what the user should know about it.
pub(crate) struct LinearFit {
    /// The model.
    pub(crate) model: LinearModel,
    /// Set when the system was singular.
    pub(crate) warning: Option<String>,
}

/// Fits `y ≈ intercept + X·w` by least squares. `x` has at least one row.
pub(crate) fn fit(x: &[Vec<f64>], y: &[f64]) -> LinearFit {
    let n = x.len().max(1) as f64;
    let p = x.first().map_or(0, Vec::len);
    let mut x_mean = vec![0.0; p];
    for row in x {
        for (m, v) in x_mean.iter_mut().zip(row) {
            *m += v / n;
        }
    }
    let y_mean = y.iter().sum::<f64>() / n;
    let mut gram = vec![0.0; p * p];
    let mut rhs = vec![0.0; p];
    let mut centred = vec![0.0; p];
    for (index, (row, &target)) in x.iter().zip(y).enumerate() {
        if index % 1024 == 0 && super::stop::stopped() {
            break;
        }
        for ((c, v), m) in centred.iter_mut().zip(row).zip(&x_mean) {
            *c = v - m;
        }
        let yc = target - y_mean;
        for i in 0..p {
            rhs[i] += centred[i] * yc;
            for j in 0..=i {
                gram[i * p + j] += centred[i] * centred[j];
            }
        }
    }
    for i in 0..p {
        for j in 0..i {
            gram[j * p + i] = gram[i * p + j];
        }
    }
    let (weights, warning) = match cholesky(&gram, p, SINGULAR_PIVOT) {
        Some(l) => {
            let mut w = cholesky_solve(&l, p, &rhs);
            // One step of iterative refinement recovers digits lost to rounding.
            let residual: Vec<f64> = rhs
                .iter()
                .zip(mat_vec(&gram, p, &w))
                .map(|(b, aw)| b - aw)
                .collect();
            for (wi, d) in w.iter_mut().zip(cholesky_solve(&l, p, &residual)) {
                *wi += d;
            }
            (w, None)
        }
        None => {
            let (w, rank) = min_norm_solve(&gram, p, &rhs, RANK_CUTOFF);
            let warning = format!(
                "the encoded features are collinear (rank {rank} of {p} once centred: one-hot \
                 columns sum to the intercept, a column is constant, or there are fewer rows \
                 than features); the coefficients are the minimum-norm least-squares solution, \
                 as scikit-learn's LinearRegression gives, so individual weights of collinear \
                 features are not meaningful on their own"
            );
            (w, Some(warning))
        }
    };
    let intercept = y_mean - weights.iter().zip(&x_mean).map(|(w, m)| w * m).sum::<f64>();
    LinearFit {
        model: LinearModel {
            intercept,
            coefficients: weights,
        },
        warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(got: f64, want: f64, rel: f64) {
        let tol = rel * want.abs().max(1.0);
        assert!((got - want).abs() <= tol, "{got} vs {want}");
    }

    #[test]
    fn ols_coefficients_equal_sklearn_linear_regression() {
        // ~/.cache/datamcp/mlflow-3.17.2/bin/python (scikit-learn 1.9.1):
        //   import numpy as np; from sklearn.linear_model import LinearRegression
        //   X = np.array([[1,2.5,0],[2,1.0,1],[3,4.2,0],[4,3.3,1],[5,0.7,0],[6,5.1,1],[7,2.2,0]])
        //   y = np.array([3.1,4.9,8.2,9.0,9.7,14.8,13.1])
        //   m = LinearRegression().fit(X, y)
        //   print(repr(m.coef_.tolist()), repr(m.intercept_))
        let x = vec![
            vec![1.0, 2.5, 0.0],
            vec![2.0, 1.0, 1.0],
            vec![3.0, 4.2, 0.0],
            vec![4.0, 3.3, 1.0],
            vec![5.0, 0.7, 0.0],
            vec![6.0, 5.1, 1.0],
            vec![7.0, 2.2, 0.0],
        ];
        let y = [3.1, 4.9, 8.2, 9.0, 9.7, 14.8, 13.1];
        let fit = fit(&x, &y);
        assert!(fit.warning.is_none());
        let want = [1.7441298552289677, 0.6485168562076061, 0.5660876387810895];
        for (got, want) in fit.model.coefficients.iter().zip(want) {
            assert_close(*got, want, 1e-10);
        }
        assert_close(fit.model.intercept, -0.007959875814126605, 1e-10);
    }

    #[test]
    fn collinear_one_hot_columns_give_sklearns_minimum_norm_solution() {
        // One-hot columns a, b, c (summing to one) and a numeric column.
        //   X = np.array([[1,0,0,0.5],[0,1,0,1.5],[0,0,1,-0.3],[1,0,0,2.0],[0,1,0,0.1],
        //                 [0,0,1,1.1],[1,0,0,-1.0],[0,1,0,0.7]])
        //   y = np.array([1.0,2.5,0.2,3.1,1.4,1.9,-0.5,2.2])
        //   m = LinearRegression().fit(X, y); print(repr(m.coef_.tolist()), repr(m.intercept_))
        let x = vec![
            vec![1.0, 0.0, 0.0, 0.5],
            vec![0.0, 1.0, 0.0, 1.5],
            vec![0.0, 0.0, 1.0, -0.3],
            vec![1.0, 0.0, 0.0, 2.0],
            vec![0.0, 1.0, 0.0, 0.1],
            vec![0.0, 0.0, 1.0, 1.1],
            vec![1.0, 0.0, 0.0, -1.0],
            vec![0.0, 1.0, 0.0, 0.7],
        ];
        let y = [1.0, 2.5, 0.2, 3.1, 1.4, 1.9, -0.5, 2.2];
        let fit = fit(&x, &y);
        assert!(fit.warning.is_some(), "the collinearity is reported");
        let want = [
            -0.16469072164948442,
            0.36582474226804096,
            -0.20113402061855662,
            1.1355670103092776,
        ];
        for (got, want) in fit.model.coefficients.iter().zip(want) {
            assert_close(*got, want, 1e-7);
        }
        assert_close(fit.model.intercept, 0.7969072164948459, 1e-7);
    }

    #[test]
    fn a_single_row_predicts_its_own_target() {
        let fit = fit(&[vec![3.0]], &[7.5]);
        assert_eq!(fit.model.predict(&[3.0]), 7.5);
    }
}
