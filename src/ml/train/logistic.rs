//! L2-regularised logistic regression with scikit-learn's objective, `LogisticRegression(C=c)`.
//!
//! The objective, over `n` training rows, is
//! `(1/n)·[Σᵢ lossᵢ + ‖W‖²/(2c)]`, the intercepts not penalised, which is what scikit-learn's
//! lbfgs solver minimises (its `C·Σ loss + ½‖W‖²` scaled by `1/(C·n)`; same minimiser).
//! Two classes use one weight vector for the second class in class order (`lossᵢ` the
//! logistic loss); more use one per class with a softmax (`lossᵢ = logsumexp(zᵢ) − zᵢ,yᵢ`).
//! The softmax intercepts are defined only up to a common shift; like scikit-learn's, they
//! are reported summing to zero.
//!
//! The objective is smooth and strictly convex in the weights, so Newton's method with a
//! backtracking line search (IRLS for the binary case) reaches a gradient of 1e-10 in a few
//! dozen steps, below where scikit-learn's lbfgs stops even at `tol=1e-10` (its gradient is
//! left near 1e-9), so the coefficients agree with it to about 1e-7. For a problem with more
//! than [`NEWTON_MAX_DIM`] parameters, or rows enough that one Hessian costs more than
//! [`NEWTON_MAX_WORK`], a limited-memory BFGS takes over.

use super::linalg::{cholesky, cholesky_solve};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The largest number of parameters solved by Newton's method; beyond, L-BFGS.
const NEWTON_MAX_DIM: usize = 400;

/// The most multiply-adds one Hessian may cost (rows × parameters²), about a second; beyond,
/// L-BFGS, whose steps cost rows × parameters.
const NEWTON_MAX_WORK: f64 = 2e9;

/// Converged when no gradient component of the (1/n-scaled) objective exceeds this.
const GRADIENT_TOL: f64 = 1e-10;

/// Steps L-BFGS remembers.
const LBFGS_MEMORY: usize = 10;

/// A fitted logistic regression on encoded features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticModel {
    /// One intercept per score: one (two classes: the second class's score) or one per class.
    pub intercepts: Vec<f64>,
    /// One weight vector per score, each with one weight per encoded feature.
    pub coefficients: Vec<Vec<f64>>,
}

impl LogisticModel {
    /// The class probabilities of one encoded row, in class order.
    pub fn probabilities(&self, x: &[f64]) -> Vec<f64> {
        let scores: Vec<f64> = self
            .intercepts
            .iter()
            .zip(&self.coefficients)
            .map(|(b, w)| b + w.iter().zip(x).map(|(w, v)| w * v).sum::<f64>())
            .collect();
        if let [z] = scores[..] {
            let p = sigmoid(z);
            vec![1.0 - p, p]
        } else {
            softmax(&scores)
        }
    }
}

/// A fit and how the solver went.
pub(crate) struct LogisticFit {
    /// The model.
    pub(crate) model: LogisticModel,
    /// Solver iterations taken.
    pub(crate) iterations: u32,
    /// Whether the gradient reached [`GRADIENT_TOL`].
    pub(crate) converged: bool,
    /// The largest gradient component at the end.
    pub(crate) gradient: f64,
    /// `newton` or `lbfgs`.
    pub(crate) solver: &'static str,
}

/// The solvers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Solver {
    /// Damped Newton's method.
    Newton,
    /// Limited-memory BFGS.
    Lbfgs,
}

/// Fits `k` ≥ 2 classes (`y` in `0..k`) with inverse regularisation `c`, choosing the solver
/// by size.
pub(crate) fn fit(x: &[Vec<f64>], y: &[usize], k: usize, c: f64, max_iter: u32) -> LogisticFit {
    let problem = Problem::new(x, y, k, c);
    let dim = problem.dim();
    let work = x.len() as f64 * (dim * dim) as f64;
    let solver = if dim <= NEWTON_MAX_DIM && work <= NEWTON_MAX_WORK {
        Solver::Newton
    } else {
        Solver::Lbfgs
    };
    fit_with(&problem, max_iter, solver)
}

/// Fits with the `solver` given.
pub(crate) fn fit_with(problem: &Problem<'_>, max_iter: u32, solver: Solver) -> LogisticFit {
    let (theta, iterations, gradient) = match solver {
        Solver::Newton => newton(problem, max_iter),
        Solver::Lbfgs => lbfgs(problem, max_iter.saturating_mul(10)),
    };
    LogisticFit {
        model: problem.model(&theta),
        iterations,
        converged: gradient <= GRADIENT_TOL,
        gradient,
        solver: match solver {
            Solver::Newton => "newton",
            Solver::Lbfgs => "lbfgs",
        },
    }
}

/// The objective on the training rows. Parameters are laid out score by score, each block
/// being that score's weights then its intercept.
pub(crate) struct Problem<'a> {
    x: &'a [Vec<f64>],
    y: &'a [usize],
    /// Encoded features.
    p: usize,
    /// Scores: 1 for two classes, else the number of classes.
    m: usize,
    c: f64,
}

impl<'a> Problem<'a> {
    /// The problem for `k` classes.
    pub(crate) fn new(x: &'a [Vec<f64>], y: &'a [usize], k: usize, c: f64) -> Problem<'a> {
        Problem {
            x,
            y,
            p: x.first().map_or(0, Vec::len),
            m: if k <= 2 { 1 } else { k },
            c,
        }
    }

    fn dim(&self) -> usize {
        self.m * (self.p + 1)
    }

    /// The scores of row `i`.
    fn scores(&self, theta: &[f64], i: usize, z: &mut [f64]) {
        let block = self.p + 1;
        for (j, zj) in z.iter_mut().enumerate() {
            let w = &theta[j * block..j * block + self.p];
            *zj = theta[j * block + self.p]
                + w.iter().zip(&self.x[i]).map(|(w, v)| w * v).sum::<f64>();
        }
    }

    /// The residuals `∂lossᵢ/∂zᵢ` of row `i` (written to `r`) and its loss.
    fn residuals(&self, z: &[f64], label: usize, r: &mut [f64]) -> f64 {
        if self.m == 1 {
            let t = if label == 1 { 1.0 } else { 0.0 };
            r[0] = sigmoid(z[0]) - t;
            softplus(z[0]) - t * z[0]
        } else {
            let lse = log_sum_exp(z);
            for (j, rj) in r.iter_mut().enumerate() {
                *rj = (z[j] - lse).exp() - if j == label { 1.0 } else { 0.0 };
            }
            lse - z[label]
        }
    }

    /// The objective and its gradient at `theta`.
    fn value_grad(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let block = self.p + 1;
        let mut f = 0.0;
        let mut g = vec![0.0; self.dim()];
        let mut z = vec![0.0; self.m];
        let mut r = vec![0.0; self.m];
        for (i, row) in self.x.iter().enumerate() {
            self.scores(theta, i, &mut z);
            f += self.residuals(&z, self.y[i], &mut r);
            for (j, &rj) in r.iter().enumerate() {
                let gj = &mut g[j * block..(j + 1) * block];
                for (ga, v) in gj.iter_mut().zip(row) {
                    *ga += rj * v;
                }
                gj[self.p] += rj;
            }
        }
        for j in 0..self.m {
            for a in 0..self.p {
                let w = theta[j * block + a];
                f += w * w / (2.0 * self.c);
                g[j * block + a] += w / self.c;
            }
        }
        let n = self.x.len().max(1) as f64;
        g.iter_mut().for_each(|v| *v /= n);
        (f / n, g)
    }

    /// The Hessian at `theta`, plus (for a softmax) the unit matrix along the common shift of
    /// the intercepts, the one direction the objective is flat in, so it can be factored.
    fn hessian(&self, theta: &[f64]) -> Vec<f64> {
        let block = self.p + 1;
        let d = self.dim();
        let mut h = vec![0.0; d * d];
        let mut z = vec![0.0; self.m];
        let mut s = vec![0.0; self.m * self.m];
        let mut xt = vec![1.0; block];
        for (i, row) in self.x.iter().enumerate() {
            self.scores(theta, i, &mut z);
            if self.m == 1 {
                let q = sigmoid(z[0]);
                s[0] = q * (1.0 - q);
            } else {
                let prob = softmax(&z);
                for j in 0..self.m {
                    for l in 0..self.m {
                        let delta = if j == l { prob[j] } else { 0.0 };
                        s[j * self.m + l] = delta - prob[j] * prob[l];
                    }
                }
            }
            xt[..self.p].copy_from_slice(row);
            for j in 0..self.m {
                for l in 0..=j {
                    let sjl = s[j * self.m + l];
                    if sjl == 0.0 {
                        continue;
                    }
                    for a in 0..block {
                        let sa = sjl * xt[a];
                        let at = (j * block + a) * d + l * block;
                        for (hb, xb) in h[at..at + block].iter_mut().zip(&xt) {
                            *hb += sa * xb;
                        }
                    }
                }
            }
        }
        // Fill the upper blocks from the lower ones.
        for j in 0..self.m {
            for l in 0..j {
                for a in 0..block {
                    for b in 0..block {
                        h[(l * block + b) * d + j * block + a] =
                            h[(j * block + a) * d + l * block + b];
                    }
                }
            }
        }
        let n = self.x.len().max(1) as f64;
        h.iter_mut().for_each(|v| *v /= n);
        for j in 0..self.m {
            for a in 0..self.p {
                let at = j * block + a;
                h[at * d + at] += 1.0 / (self.c * n);
            }
        }
        if self.m > 1 {
            let shift = 1.0 / self.m as f64;
            for j in 0..self.m {
                for l in 0..self.m {
                    h[(j * block + self.p) * d + l * block + self.p] += shift;
                }
            }
        }
        h
    }

    /// Moves a softmax's intercepts to sum to zero, which changes no probability.
    fn centre(&self, theta: &mut [f64]) {
        if self.m > 1 {
            let block = self.p + 1;
            let mean = (0..self.m).map(|j| theta[j * block + self.p]).sum::<f64>() / self.m as f64;
            for j in 0..self.m {
                theta[j * block + self.p] -= mean;
            }
        }
    }

    fn model(&self, theta: &[f64]) -> LogisticModel {
        let mut theta = theta.to_vec();
        self.centre(&mut theta);
        let block = self.p + 1;
        LogisticModel {
            intercepts: (0..self.m).map(|j| theta[j * block + self.p]).collect(),
            coefficients: (0..self.m)
                .map(|j| theta[j * block..j * block + self.p].to_vec())
                .collect(),
        }
    }
}

/// The largest absolute component.
fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Backtracking along `step` from `theta` (value `f`, gradient `g`): the first of 1, ½, ¼, …
/// with sufficient decrease (Armijo), or, once the values differ only by rounding, with a
/// smaller gradient. `None` when no step length is accepted.
fn line_search(
    problem: &Problem<'_>,
    theta: &[f64],
    f: f64,
    g: &[f64],
    step: &[f64],
) -> Option<(Vec<f64>, f64, Vec<f64>)> {
    let slope = dot(g, step);
    let g_max = max_abs(g);
    let mut t = 1.0;
    for _ in 0..60 {
        let candidate: Vec<f64> = theta.iter().zip(step).map(|(a, s)| a + t * s).collect();
        let (fc, gc) = problem.value_grad(&candidate);
        let armijo = fc <= f + 1e-4 * t * slope;
        let rounding = fc <= f + 1e-13 * f.abs().max(1.0) && max_abs(&gc) < g_max;
        if fc.is_finite() && (armijo || rounding) {
            return Some((candidate, fc, gc));
        }
        t /= 2.0;
    }
    None
}

/// Damped Newton's method from zero. Returns the parameters, the steps taken and the final
/// largest gradient component.
fn newton(problem: &Problem<'_>, max_iter: u32) -> (Vec<f64>, u32, f64) {
    let d = problem.dim();
    let mut theta = vec![0.0; d];
    let (mut f, mut g) = problem.value_grad(&theta);
    let mut iterations = 0;
    while max_abs(&g) > GRADIENT_TOL && iterations < max_iter && !super::stop::stopped() {
        iterations += 1;
        let mut h = problem.hessian(&theta);
        let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
        // The Hessian is positive definite in exact arithmetic; should rounding say otherwise,
        // a growing multiple of the unit matrix is added (Levenberg–Marquardt).
        let mut ridge = 0.0;
        let step = loop {
            if let Some(l) = cholesky(&h, d, 1e-14) {
                break Some(cholesky_solve(&l, d, &neg_g));
            }
            let max_diag = (0..d)
                .map(|i| h[i * d + i])
                .fold(0.0_f64, f64::max)
                .max(1e-300);
            let next = if ridge == 0.0 {
                1e-10 * max_diag
            } else {
                ridge * 10.0
            };
            if next.is_nan() || next >= 1e10 * max_diag {
                break None;
            }
            for i in 0..d {
                h[i * d + i] += next - ridge;
            }
            ridge = next;
        };
        let Some(step) = step else { break };
        let Some((next, fc, gc)) = line_search(problem, &theta, f, &g, &step) else {
            break;
        };
        theta = next;
        problem.centre(&mut theta);
        (f, g) = (fc, gc);
    }
    (theta, iterations, max_abs(&g))
}

/// Limited-memory BFGS from zero (two-loop recursion, backtracking line search).
fn lbfgs(problem: &Problem<'_>, max_iter: u32) -> (Vec<f64>, u32, f64) {
    let d = problem.dim();
    let mut theta = vec![0.0; d];
    let (mut f, mut g) = problem.value_grad(&theta);
    let mut memory: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let mut iterations = 0;
    while max_abs(&g) > GRADIENT_TOL && iterations < max_iter && !super::stop::stopped() {
        iterations += 1;
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(memory.len());
        for (s, y, rho) in memory.iter().rev() {
            let alpha = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= alpha * yi);
            alphas.push(alpha);
        }
        let gamma = match memory.back() {
            Some((s, y, _)) => dot(s, y) / dot(y, y),
            None => 1.0 / max_abs(&g).max(1.0),
        };
        q.iter_mut().for_each(|qi| *qi *= gamma);
        for ((s, y, rho), alpha) in memory.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &q);
            q.iter_mut()
                .zip(s)
                .for_each(|(qi, si)| *qi += (alpha - beta) * si);
        }
        let mut step: Vec<f64> = q.iter().map(|v| -v).collect();
        if dot(&step, &g) >= 0.0 {
            memory.clear();
            step = g.iter().map(|v| -v / max_abs(&g).max(1.0)).collect();
        }
        let Some((next, fc, gc)) = line_search(problem, &theta, f, &g, &step) else {
            break;
        };
        let s: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gc.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-16 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() && sy > 0.0 {
            if memory.len() == LBFGS_MEMORY {
                memory.pop_front();
            }
            memory.push_back((s, y, 1.0 / sy));
        }
        theta = next;
        (f, g) = (fc, gc);
    }
    (theta, iterations, max_abs(&g))
}

/// `1 / (1 + e^−z)`, without overflow for large |z|.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^z)`, without overflow for large z.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// `ln Σ e^zⱼ`, shifted by the largest so nothing overflows.
fn log_sum_exp(z: &[f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// `e^zⱼ / Σ e^zₗ`.
fn softmax(z: &[f64]) -> Vec<f64> {
    let lse = log_sum_exp(z);
    z.iter().map(|v| (v - lse).exp()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[[f64; 2]]) -> Vec<Vec<f64>> {
        values.iter().map(|r| r.to_vec()).collect()
    }

    fn assert_close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "{got} vs {want}");
    }

    // Data and expectations from ~/.cache/datamcp/mlflow-3.17.2/bin/python (scikit-learn
    // 1.9.1, numpy 2.4.6):
    //   rng = np.random.default_rng(3); X = np.round(rng.normal(size=(24, 2)), 2)
    //   y = (X[:, 0] - 0.5 * X[:, 1] + rng.normal(scale=0.8, size=24) > 0).astype(int)
    const X2: [[f64; 2]; 24] = [
        [2.04, -2.56],
        [0.42, -0.57],
        [-0.45, -0.22],
        [-2.02, -0.23],
        [-0.87, 3.32],
        [0.23, -0.35],
        [-0.28, -0.67],
        [-1.06, -0.39],
        [0.48, -0.24],
        [0.96, -0.2],
        [0.02, 1.55],
        [0.55, -0.51],
        [-0.18, 0.54],
        [1.94, -0.27],
        [-0.24, 1.0],
        [-0.89, -0.29],
        [0.88, 0.58],
        [0.09, 0.67],
        [-2.83, 1.02],
        [-0.96, -1.67],
        [0.28, 0.7],
        [-0.44, -1.08],
        [0.03, -0.05],
        [1.41, 0.75],
    ];
    const Y2: [usize; 24] = [
        1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1,
    ];

    //   rng = np.random.default_rng(5); X = np.round(rng.normal(size=(30, 2)), 2)
    //   s = np.stack([X[:,0], X[:,1], -X[:,0]-X[:,1]], 1) + rng.normal(scale=0.7, size=(30,3))
    //   y = s.argmax(1)
    const X3: [[f64; 2]; 30] = [
        [-0.8, -1.32],
        [-0.25, 0.42],
        [1.14, 0.11],
        [-0.55, -0.78],
        [0.75, 1.63],
        [0.27, -1.23],
        [-0.96, 1.6],
        [0.2, -1.73],
        [-0.08, -1.16],
        [-0.63, -0.49],
        [-0.71, 0.55],
        [-0.06, -0.59],
        [0.41, 0.83],
        [-1.64, -0.26],
        [-0.98, -0.17],
        [-1.29, 0.02],
        [-0.04, -0.3],
        [-1.05, -0.4],
        [-1.09, -1.36],
        [0.22, -1.11],
        [1.17, 0.72],
        [-2.0, 0.27],
        [-1.1, 0.03],
        [0.04, -1.99],
        [-0.23, -0.26],
        [0.96, -1.18],
        [0.74, -1.1],
        [-0.33, -0.84],
        [1.45, 0.57],
        [2.43, 0.64],
    ];
    const Y3: [usize; 30] = [
        2, 1, 0, 2, 1, 2, 1, 2, 2, 2, 1, 2, 1, 2, 2, 1, 0, 2, 2, 2, 0, 2, 2, 2, 2, 0, 0, 2, 0, 0,
    ];

    #[test]
    fn binary_coefficients_equal_sklearn_logistic_regression() {
        //   m = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(X, y)
        //   m.coef_ → [[1.1552236312033894, -1.0815399076241152]]
        //   m.intercept_ → [-0.7027607392144106]
        let x = rows(&X2);
        let fit = fit(&x, &Y2, 2, 1.0, 100);
        assert!(fit.converged, "gradient {}", fit.gradient);
        assert_eq!(fit.solver, "newton");
        assert_eq!(
            fit.model.coefficients.len(),
            1,
            "one weight vector for two classes"
        );
        let w = &fit.model.coefficients[0];
        assert_close(w[0], 1.1552236312033894, 1e-6);
        assert_close(w[1], -1.0815399076241152, 1e-6);
        assert_close(fit.model.intercepts[0], -0.7027607392144106, 1e-6);
    }

    #[test]
    fn a_smaller_c_regularises_as_sklearn_does() {
        //   LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(X, y)
        //   coef_ → [[0.8661934574014962, -0.78473235806452]], intercept_ → [-0.6240582408117987]
        let x = rows(&X2);
        let fit = fit(&x, &Y2, 2, 0.5, 100);
        assert!(fit.converged);
        let w = &fit.model.coefficients[0];
        assert_close(w[0], 0.8661934574014962, 1e-6);
        assert_close(w[1], -0.78473235806452, 1e-6);
        assert_close(fit.model.intercepts[0], -0.6240582408117987, 1e-6);
    }

    /// sklearn's multinomial fit: coef_, intercept_ (which sum to zero) and predict_proba of
    /// the first row.
    const COEF3: [[f64; 2]; 3] = [
        [1.4814889513119618, -0.15576740434906394],
        [-0.413431141826849, 1.4046304567307244],
        [-1.0680578094851134, -1.24886305238166],
    ];
    const INTERCEPT3: [f64; 3] = [
        -0.2029882837581288,
        -0.09227832176767392,
        0.2952666055258036,
    ];
    const PROBA3_ROW0: [f64; 3] = [
        0.018113571027231722,
        0.011746816852438549,
        0.9701396121203297,
    ];

    fn check_multinomial(fit: &LogisticFit) {
        assert!(fit.converged, "gradient {}", fit.gradient);
        for (got, want) in fit.model.coefficients.iter().zip(COEF3) {
            assert_close(got[0], want[0], 1e-6);
            assert_close(got[1], want[1], 1e-6);
        }
        for (got, want) in fit.model.intercepts.iter().zip(INTERCEPT3) {
            assert_close(*got, want, 1e-6);
        }
        let p = fit.model.probabilities(&X3[0]);
        for (got, want) in p.iter().zip(PROBA3_ROW0) {
            assert_close(*got, want, 1e-7);
        }
    }

    #[test]
    fn three_class_coefficients_equal_sklearn_multinomial_logistic_regression() {
        //   m = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(X, y)
        let x = rows(&X3);
        let fit = fit(&x, &Y3, 3, 1.0, 100);
        assert_eq!(fit.solver, "newton");
        check_multinomial(&fit);
    }

    #[test]
    fn lbfgs_for_large_problems_reaches_the_same_optimum() {
        let x = rows(&X3);
        let problem = Problem::new(&x, &Y3, 3, 1.0);
        let fit = fit_with(&problem, 100, Solver::Lbfgs);
        check_multinomial(&fit);
        let binary_x = rows(&X2);
        let problem = Problem::new(&binary_x, &Y2, 2, 1.0);
        let fit = fit_with(&problem, 100, Solver::Lbfgs);
        assert!(fit.converged);
        assert_close(fit.model.coefficients[0][0], 1.1552236312033894, 1e-6);
    }

    #[test]
    fn separable_data_still_converges_thanks_to_the_penalty() {
        let x = rows(&[[-2.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0]]);
        let fit = fit(&x, &[0, 0, 1, 1], 2, 1.0, 100);
        assert!(fit.converged);
        assert!(fit.model.coefficients[0][0] > 0.0);
        assert_eq!(fit.model.coefficients[0][1], 0.0);
    }

    #[test]
    fn the_stable_helpers_do_not_overflow() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(softplus(1000.0), 1000.0);
        assert_eq!(softmax(&[1000.0, 0.0])[0], 1.0);
    }
}
