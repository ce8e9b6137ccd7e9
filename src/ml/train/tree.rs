//! A CART decision tree, built as scikit-learn's `DecisionTreeClassifier` (Gini) and
//! `DecisionTreeRegressor` (squared error) build theirs with the default settings.
//!
//! Depth first, each node takes the split with the best impurity decrease over every feature
//! and every threshold halfway between consecutive distinct values (values closer than 1e-7
//! count as equal, as in scikit-learn), keeping at least `min_samples_leaf` rows on each side;
//! a node is a leaf at `max_depth`, when too small to split, or when pure. `x ≤ threshold`
//! goes left. Values are rounded to `f32` first, as scikit-learn stores `X`, so the
//! thresholds and the side a row falls on agree with its trees. scikit-learn visits features
//! in a random order and keeps the first of equally good splits; this tree visits them in
//! order, so the two agree exactly whenever no two candidate splits tie.
//!
//! Feature importances are each feature's total weighted impurity decrease, normalised to sum
//! to one, as `feature_importances_`.

use super::TrainError;
use serde::{Deserialize, Serialize};

/// Values closer than this are one value for splitting (scikit-learn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// A fitted tree on encoded features. Nodes are in depth-first order, the root first, and a
/// split's children always come after it, so walking down always ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeModel {
    /// The nodes, the root at 0.
    pub nodes: Vec<TreeNode>,
}

/// One node of a [`TreeModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case", deny_unknown_fields)]
pub enum TreeNode {
    /// Rows with `x[feature] ≤ threshold` go to `left`, the others to `right`.
    Split {
        /// The encoded feature's position.
        feature: usize,
        /// The threshold.
        threshold: f64,
        /// The left child's position.
        left: usize,
        /// The right child's position.
        right: usize,
        /// Training rows that reached the node.
        samples: usize,
    },
    /// A prediction.
    Leaf {
        /// Class probabilities in class order (classification), or the one mean (regression).
        value: Vec<f64>,
        /// Training rows that reached the node.
        samples: usize,
    },
}

impl TreeModel {
    /// The value of the leaf one encoded row falls in.
    pub fn leaf(&self, x: &[f64]) -> Result<&[f64], TrainError> {
        let mut at = 0;
        loop {
            match self.nodes.get(at) {
                Some(TreeNode::Leaf { value, .. }) => return Ok(value),
                Some(TreeNode::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    ..
                }) => {
                    let Some(&v) = x.get(*feature) else {
                        return Err(TrainError::InvalidModel(format!(
                            "tree node {at} reads feature {feature}, beyond the {} encoded",
                            x.len()
                        )));
                    };
                    let next = if f64::from(v as f32) <= *threshold {
                        *left
                    } else {
                        *right
                    };
                    if next <= at {
                        return Err(TrainError::InvalidModel(format!(
                            "tree node {at} points back to node {next}; the model is damaged"
                        )));
                    }
                    at = next;
                }
                None => {
                    return Err(TrainError::InvalidModel(format!(
                        "the tree has no node {at}; the model is damaged"
                    )));
                }
            }
        }
    }

    /// The depth of the deepest leaf (the root alone is depth 0).
    pub fn depth(&self) -> usize {
        let mut depth = vec![0; self.nodes.len()];
        let mut deepest = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let here = depth[i];
            deepest = deepest.max(here);
            if let TreeNode::Split { left, right, .. } = node {
                for child in [*left, *right] {
                    if let Some(d) = depth.get_mut(child) {
                        *d = here + 1;
                    }
                }
            }
        }
        deepest
    }

    /// How many leaves the tree has.
    pub fn leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, TreeNode::Leaf { .. }))
            .count()
    }
}

/// What the tree learns.
pub(crate) enum TreeTarget<'a> {
    /// Class positions in `0..classes`.
    Classes {
        /// The class of each row.
        y: &'a [usize],
        /// How many classes.
        classes: usize,
    },
    /// Numbers.
    Values(&'a [f64]),
}

/// A fitted tree and its feature importances (one per encoded feature).
pub(crate) struct TreeFit {
    /// The tree.
    pub(crate) model: TreeModel,
    /// Normalised impurity decrease per feature.
    pub(crate) importances: Vec<f64>,
}

/// Statistics of a set of rows: class counts (classification) or sum and sum of squares.
#[derive(Clone)]
struct Stats {
    n: usize,
    counts: Vec<f64>,
    sum: f64,
    sum_sq: f64,
}

impl Stats {
    fn empty(classes: usize) -> Stats {
        Stats {
            n: 0,
            counts: vec![0.0; classes],
            sum: 0.0,
            sum_sq: 0.0,
        }
    }

    fn add(&mut self, target: &TreeTarget<'_>, row: usize) {
        self.n += 1;
        match target {
            TreeTarget::Classes { y, .. } => self.counts[y[row]] += 1.0,
            TreeTarget::Values(y) => {
                self.sum += y[row];
                self.sum_sq += y[row] * y[row];
            }
        }
    }

    fn remove(&mut self, target: &TreeTarget<'_>, row: usize) {
        self.n -= 1;
        match target {
            TreeTarget::Classes { y, .. } => self.counts[y[row]] -= 1.0,
            TreeTarget::Values(y) => {
                self.sum -= y[row];
                self.sum_sq -= y[row] * y[row];
            }
        }
    }

    /// Gini impurity or variance, computed as scikit-learn computes them.
    fn impurity(&self, classification: bool) -> f64 {
        let n = self.n as f64;
        if n == 0.0 {
            return 0.0;
        }
        if classification {
            1.0 - self.counts.iter().map(|c| c * c).sum::<f64>() / (n * n)
        } else {
            self.sum_sq / n - (self.sum / n) * (self.sum / n)
        }
    }

    /// The value ranked to choose splits (higher is better), scikit-learn's "proxy": minus
    /// the weighted child impurities for Gini, `Σ sum²/n` for squared error.
    fn proxy(left: &Stats, right: &Stats, classification: bool) -> f64 {
        if classification {
            -(right.n as f64) * right.impurity(true) - (left.n as f64) * left.impurity(true)
        } else {
            left.sum * left.sum / left.n as f64 + right.sum * right.sum / right.n as f64
        }
    }

    fn leaf_value(&self, classification: bool) -> Vec<f64> {
        let n = (self.n as f64).max(1.0);
        if classification {
            self.counts.iter().map(|c| c / n).collect()
        } else {
            vec![self.sum / n]
        }
    }
}

/// A node waiting to be built: its rows, depth and where its parent points to it.
struct Pending {
    rows: Vec<usize>,
    depth: u32,
    parent: Option<(usize, bool)>,
}

/// Grows a tree on `x` (rows of encoded features, at least one row).
pub(crate) fn fit(
    x: &[Vec<f64>],
    target: &TreeTarget<'_>,
    max_depth: Option<u32>,
    min_samples_leaf: usize,
) -> TreeFit {
    let p = x.first().map_or(0, Vec::len);
    let (classification, classes) = match target {
        TreeTarget::Classes { classes, .. } => (true, *classes),
        TreeTarget::Values(_) => (false, 0),
    };
    // Column-major and rounded to f32, as scikit-learn holds X.
    let columns: Vec<Vec<f64>> = (0..p)
        .map(|j| x.iter().map(|r| f64::from(r[j] as f32)).collect())
        .collect();
    let min_leaf = min_samples_leaf.max(1);
    let mut nodes: Vec<TreeNode> = Vec::new();
    let mut decrease = vec![0.0; p];
    let mut stack = vec![Pending {
        rows: (0..x.len()).collect(),
        depth: 0,
        parent: None,
    }];
    while let Some(Pending {
        rows,
        depth,
        parent,
    }) = stack.pop()
    {
        if super::stop::stopped() {
            break;
        }
        let at = nodes.len();
        if let Some((parent, is_left)) = parent
            && let Some(TreeNode::Split { left, right, .. }) = nodes.get_mut(parent)
        {
            *(if is_left { left } else { right }) = at;
        }
        let mut stats = Stats::empty(classes);
        for &r in &rows {
            stats.add(target, r);
        }
        let impurity = stats.impurity(classification);
        let is_leaf = max_depth.is_some_and(|d| depth >= d)
            || rows.len() < 2
            || rows.len() < 2 * min_leaf
            || impurity <= f64::EPSILON;
        let best = if is_leaf {
            None
        } else {
            best_split(&columns, &rows, target, &stats, min_leaf, classification)
        };
        let Some(split) = best else {
            nodes.push(TreeNode::Leaf {
                value: stats.leaf_value(classification),
                samples: rows.len(),
            });
            continue;
        };
        let (left_rows, right_rows): (Vec<usize>, Vec<usize>) = rows
            .iter()
            .partition(|&&r| columns[split.feature][r] <= split.threshold);
        let child_impurity = |rows: &[usize]| {
            let mut s = Stats::empty(classes);
            for &r in rows {
                s.add(target, r);
            }
            s.impurity(classification) * rows.len() as f64
        };
        decrease[split.feature] +=
            rows.len() as f64 * impurity - child_impurity(&left_rows) - child_impurity(&right_rows);
        nodes.push(TreeNode::Split {
            feature: split.feature,
            threshold: split.threshold,
            left: 0,
            right: 0,
            samples: rows.len(),
        });
        // Right pushed first so the left subtree is built (and numbered) first.
        stack.push(Pending {
            rows: right_rows,
            depth: depth + 1,
            parent: Some((at, false)),
        });
        stack.push(Pending {
            rows: left_rows,
            depth: depth + 1,
            parent: Some((at, true)),
        });
    }
    let total: f64 = decrease.iter().sum();
    let importances = if total > 0.0 {
        decrease.iter().map(|d| d / total).collect()
    } else {
        decrease
    };
    TreeFit {
        model: TreeModel { nodes },
        importances,
    }
}

/// A chosen split.
struct Split {
    feature: usize,
    threshold: f64,
}

/// The best split of `rows` over every feature, or `None` when every feature is constant
/// there or no threshold leaves `min_leaf` rows on both sides.
fn best_split(
    columns: &[Vec<f64>],
    rows: &[usize],
    target: &TreeTarget<'_>,
    all: &Stats,
    min_leaf: usize,
    classification: bool,
) -> Option<Split> {
    let mut best: Option<(f64, Split)> = None;
    let mut sorted = rows.to_vec();
    for (feature, column) in columns.iter().enumerate() {
        sorted.sort_by(|&a, &b| column[a].total_cmp(&column[b]));
        let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
            continue;
        };
        if column[last] <= column[first] + FEATURE_THRESHOLD {
            continue;
        }
        let mut left = Stats::empty(all.counts.len());
        let mut right = all.clone();
        for i in 1..sorted.len() {
            left.add(target, sorted[i - 1]);
            right.remove(target, sorted[i - 1]);
            let (lo, hi) = (column[sorted[i - 1]], column[sorted[i]]);
            if hi <= lo + FEATURE_THRESHOLD || left.n < min_leaf || right.n < min_leaf {
                continue;
            }
            let proxy = Stats::proxy(&left, &right, classification);
            if best.as_ref().is_none_or(|(b, _)| proxy > *b) {
                let mut threshold = lo / 2.0 + hi / 2.0;
                if threshold == hi || threshold.is_infinite() {
                    threshold = lo;
                }
                best = Some((proxy, Split { feature, threshold }));
            }
        }
    }
    best.map(|(_, split)| split)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Data from ~/.cache/datamcp/mlflow-3.17.2/bin/python (scikit-learn 1.9.1, numpy 2.4.6):
    //   rng = np.random.default_rng(14); X = np.round(rng.uniform(0, 10, size=(30, 3)), 3)
    //   yc = ((X[:,0] > 5) ^ (X[:,1] > 3)).astype(int) + (X[:,2] > 8)
    //   yr = np.round(2 * X[:,0] - X[:,1] + rng.normal(size=30), 3)
    //   P = np.round(rng.uniform(0, 10, size=(10, 3)), 3)   # rows to predict
    // Seed 14 is the first for which the three trees below predict the same and have the same
    // importances for every random_state in 0..40, so no tie between splits decides anything.
    const X: [[f64; 3]; 30] = [
        [8.31, 3.609, 7.027],
        [8.601, 6.413, 5.484],
        [7.623, 7.163, 4.672],
        [5.725, 7.463, 0.636],
        [6.469, 7.361, 3.988],
        [5.072, 2.287, 6.502],
        [9.713, 2.987, 4.628],
        [8.916, 5.514, 4.215],
        [6.683, 0.308, 1.538],
        [8.713, 1.582, 0.295],
        [9.264, 7.528, 9.774],
        [7.597, 9.228, 3.444],
        [7.546, 1.644, 8.239],
        [7.323, 1.913, 1.84],
        [1.687, 8.189, 6.643],
        [2.808, 6.544, 6.86],
        [6.889, 9.96, 8.45],
        [4.3, 0.471, 2.286],
        [0.748, 7.845, 7.933],
        [2.143, 9.485, 3.231],
        [4.659, 5.81, 9.98],
        [8.969, 1.443, 8.935],
        [2.032, 8.03, 6.715],
        [1.516, 0.536, 9.294],
        [0.049, 1.477, 9.745],
        [6.97, 5.642, 4.537],
        [5.723, 4.628, 0.661],
        [2.305, 3.139, 4.962],
        [3.935, 7.216, 8.033],
        [7.685, 4.609, 3.924],
    ];
    const YC: [usize; 30] = [
        0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 2, 1, 1, 1, 1, 0, 1, 1, 2, 2, 1, 1, 1, 0, 0, 1, 2, 0,
    ];
    const YR: [f64; 30] = [
        12.791, 8.939, 7.477, 2.592, 6.097, 7.329, 16.395, 12.301, 12.87, 16.797, 11.487, 5.646,
        13.602, 13.286, -3.444, -0.798, 5.266, 7.535, -6.583, -6.686, 4.33, 15.462, -4.998, 3.338,
        -1.912, 7.545, 7.771, 1.287, 1.574, 10.358,
    ];
    const P: [[f64; 3]; 10] = [
        [4.456, 0.759, 7.575],
        [3.331, 3.029, 7.699],
        [0.049, 2.464, 9.067],
        [1.589, 0.725, 0.933],
        [5.196, 3.741, 5.131],
        [9.149, 2.411, 7.686],
        [5.807, 6.266, 0.277],
        [0.477, 1.516, 4.419],
        [3.658, 2.987, 8.657],
        [5.667, 3.369, 6.087],
    ];

    fn rows() -> Vec<Vec<f64>> {
        X.iter().map(|r| r.to_vec()).collect()
    }

    fn argmax(p: &[f64]) -> usize {
        let mut best = 0;
        for (i, v) in p.iter().enumerate() {
            if *v > p[best] {
                best = i;
            }
        }
        best
    }

    fn assert_all_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn classification_predictions_and_importances_equal_sklearn() {
        //   c = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, yc)
        //   c.predict(P) → [2, 1, 1, 1, 0, 2, 0, 1, 2, 0]
        //   c.feature_importances_ → [0.26974664679582705, 0.48411885245901637, 0.24613450074515658]
        //   c.tree_.node_count, c.get_depth(), c.get_n_leaves() → 9, 3, 5
        let target = TreeTarget::Classes { y: &YC, classes: 3 };
        let fit = fit(&rows(), &target, Some(3), 1);
        let predicted: Vec<usize> = P
            .iter()
            .map(|p| fit.model.leaf(p).map(argmax).expect("predicts"))
            .collect();
        assert_eq!(predicted, [2, 1, 1, 1, 0, 2, 0, 1, 2, 0]);
        assert_all_close(
            &fit.importances,
            &[
                0.26974664679582705,
                0.48411885245901637,
                0.24613450074515658,
            ],
            1e-12,
        );
        assert_eq!(
            (fit.model.nodes.len(), fit.model.depth(), fit.model.leaves()),
            (9, 3, 5)
        );
    }

    #[test]
    fn an_unlimited_classification_tree_fits_the_training_rows_like_sklearn() {
        //   c = DecisionTreeClassifier(max_depth=None, random_state=0).fit(X, yc)
        //   c.predict(P) → [2, 1, 1, 1, 0, 2, 0, 1, 2, 0]; (c.predict(X) == yc).all() → True
        //   c.feature_importances_ → [0.3376140588036498, 0.43912639405204457, 0.2232595471443056]
        let target = TreeTarget::Classes { y: &YC, classes: 3 };
        let fit = fit(&rows(), &target, None, 1);
        let predicted: Vec<usize> = P
            .iter()
            .map(|p| fit.model.leaf(p).map(argmax).expect("predicts"))
            .collect();
        assert_eq!(predicted, [2, 1, 1, 1, 0, 2, 0, 1, 2, 0]);
        for (x, y) in X.iter().zip(YC) {
            assert_eq!(fit.model.leaf(x).map(argmax).expect("predicts"), y);
        }
        assert_all_close(
            &fit.importances,
            &[0.3376140588036498, 0.43912639405204457, 0.2232595471443056],
            1e-12,
        );
    }

    #[test]
    fn regression_predictions_thresholds_and_importances_equal_sklearn() {
        //   r = DecisionTreeRegressor(max_depth=3, min_samples_leaf=2, random_state=0).fit(X, yr)
        //   r.predict(P) → [7.544999999999999, 1.0, 1.0, 0.24449999999999994, 7.544999999999999,
        //                   13.762444444444446, 5.564714285714286, 0.24449999999999994, 1.0,
        //                   7.544999999999999]
        //   r.feature_importances_ → [0.8030276771385508, 0.1964237792373808, 0.0005485436240683249]
        //   r.tree_.feature → [0, 1, 2, -2, -2, 0, -2, -2, 1, 0, -2, -2, 0, -2, -2]
        //   r.tree_.threshold[0] → 4.117500066757202 (a midpoint of float32 values)
        let target = TreeTarget::Values(&YR);
        let fit = fit(&rows(), &target, Some(3), 2);
        let predicted: Vec<f64> = P
            .iter()
            .map(|p| fit.model.leaf(p).map(|v| v[0]).expect("predicts"))
            .collect();
        assert_all_close(
            &predicted,
            &[
                7.544999999999999,
                1.0,
                1.0,
                0.24449999999999994,
                7.544999999999999,
                13.762444444444446,
                5.564714285714286,
                0.24449999999999994,
                1.0,
                7.544999999999999,
            ],
            1e-12,
        );
        assert_all_close(
            &fit.importances,
            &[
                0.8030276771385508,
                0.1964237792373808,
                0.0005485436240683249,
            ],
            1e-12,
        );
        let features: Vec<i64> = fit
            .model
            .nodes
            .iter()
            .map(|n| match n {
                TreeNode::Split { feature, .. } => *feature as i64,
                TreeNode::Leaf { .. } => -2,
            })
            .collect();
        assert_eq!(
            features,
            [0, 1, 2, -2, -2, 0, -2, -2, 1, 0, -2, -2, 0, -2, -2]
        );
        let TreeNode::Split { threshold, .. } = &fit.model.nodes[0] else {
            panic!("the root splits");
        };
        assert_eq!(*threshold, 4.117500066757202);
    }

    #[test]
    fn a_pure_node_is_a_leaf() {
        let target = TreeTarget::Classes {
            y: &[1, 1, 1],
            classes: 2,
        };
        let fit = fit(&[vec![1.0], vec![2.0], vec![3.0]], &target, Some(5), 1);
        assert_eq!(
            fit.model.nodes,
            [TreeNode::Leaf {
                value: vec![0.0, 1.0],
                samples: 3
            }]
        );
        assert_eq!(fit.importances, [0.0]);
    }

    #[test]
    fn a_damaged_tree_is_an_error_not_a_hang() {
        let model = TreeModel {
            nodes: vec![TreeNode::Split {
                feature: 0,
                threshold: 0.0,
                left: 0,
                right: 0,
                samples: 1,
            }],
        };
        assert!(model.leaf(&[1.0]).is_err());
        assert!(model.leaf(&[]).is_err());
    }
}
