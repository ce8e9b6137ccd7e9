//! The little dense linear algebra the estimators need, on row-major `n×n` slices.
//!
//! Systems here are small (one row and column per encoded feature, times the classes for a
//! multinomial model) and symmetric positive (semi)definite, so Cholesky solves the regular
//! ones and a Jacobi eigendecomposition, slow but simple and accurate, gives the
//! minimum-norm solution of the singular ones.

/// The lower-triangular `L` with `L·Lᵀ = a`, or `None` when a pivot is at most
/// `rel_tol · max(diag(a))`, i.e. `a` is singular to that tolerance.
pub(crate) fn cholesky(a: &[f64], n: usize, rel_tol: f64) -> Option<Vec<f64>> {
    let max_diag = (0..n).map(|i| a[i * n + i]).fold(0.0_f64, f64::max);
    let tol = rel_tol * max_diag;
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let d = a[j * n + j] - (0..j).map(|k| l[j * n + k] * l[j * n + k]).sum::<f64>();
        if d.is_nan() || d <= tol || d.is_infinite() {
            return None;
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            l[i * n + j] = s / d;
        }
    }
    Some(l)
}

/// Solves `L·Lᵀ·x = b` for the factor `l` of [`cholesky`].
pub(crate) fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s = b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>();
        y[i] = s / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s = y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>();
        x[i] = s / l[i * n + i];
    }
    x
}

/// `a·x` for a square `a`.
pub(crate) fn mat_vec(a: &[f64], n: usize, x: &[f64]) -> Vec<f64> {
    (0..n)
        .map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum())
        .collect()
}

/// The eigenvalues and eigenvectors (the columns of the row-major matrix returned) of the
/// symmetric `a`, by cyclic Jacobi rotations until the off-diagonal part vanishes.
pub(crate) fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        if super::stop::stopped() {
            break;
        }
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off <= 1e-30 * norm || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// The minimum-norm `x` minimising `‖a·x − b‖` for a symmetric positive semidefinite `a`:
/// `Σ vᵢ·(vᵢᵀb)/λᵢ` over the eigenpairs with `λᵢ > rel_cutoff · λmax`. Returns `x` and the
/// rank, the number of eigenvalues kept.
pub(crate) fn min_norm_solve(a: &[f64], n: usize, b: &[f64], rel_cutoff: f64) -> (Vec<f64>, usize) {
    let (values, vectors) = symmetric_eigen(a, n);
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let mut x = vec![0.0; n];
    let mut rank = 0;
    for (i, &lambda) in values.iter().enumerate() {
        if lambda.is_nan() || lambda <= rel_cutoff * max {
            continue;
        }
        rank += 1;
        let proj: f64 = (0..n).map(|k| vectors[k * n + i] * b[k]).sum::<f64>() / lambda;
        for (k, xk) in x.iter_mut().enumerate() {
            *xk += proj * vectors[k * n + i];
        }
    }
    (x, rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_positive_definite_system() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3, 1e-12).expect("positive definite");
        let x = cholesky_solve(&l, 3, &[1.0, 2.0, 3.0]);
        let back = mat_vec(&a, 3, &x);
        for (got, want) in back.iter().zip([1.0, 2.0, 3.0]) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn cholesky_refuses_a_singular_matrix() {
        assert!(cholesky(&[1.0, 1.0, 1.0, 1.0], 2, 1e-10).is_none());
    }

    #[test]
    fn jacobi_eigenvectors_rebuild_the_matrix() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let (values, v) = symmetric_eigen(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let rebuilt: f64 = (0..3)
                    .map(|k| v[i * 3 + k] * values[k] * v[j * 3 + k])
                    .sum();
                assert!((rebuilt - a[i * 3 + j]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn the_minimum_norm_solution_splits_weight_between_equal_columns() {
        // Columns x and x again: XᵀX = [[1,1],[1,1]], Xᵀy = [2,2]; the least-norm fit is (1,1).
        let (x, rank) = min_norm_solve(&[1.0, 1.0, 1.0, 1.0], 2, &[2.0, 2.0], 1e-10);
        assert_eq!(rank, 1);
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12);
    }
}
