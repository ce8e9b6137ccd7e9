//! Pure statistics for model evaluation and data drift.
//!
//! Everything here works on aggregates — confusion counts, scores grouped by value,
//! histograms of feature values, sums of errors — so that the heavy lifting can stay in the
//! database (`GROUP BY`, `SUM`) and only small tables reach this code. Each function is
//! defined to give what scikit-learn, SciPy or NumPy give on the expanded rows, and its
//! tests hold the Python expression that produced every expected number.
//!
//! Nothing here panics or returns NaN for bad input: empty data, a missing class or a NaN
//! gives `None` (or a documented value), so callers can turn it into a clear message.

pub mod classification;
pub mod drift;
pub mod ranking;
pub mod regression;
pub mod special;

pub use classification::{Averages, ClassMetrics, ClassificationMetrics, Confusion, sort_labels};
pub use drift::{
    CategoricalPsi, CategoryShare, ChiSquare, Ks, MissingDrift, PSI_SHARE_FLOOR, Psi, PsiBin,
    chi_square, ks_binned_bound, ks_two_sample, missing_drift, psi, psi_categorical,
    quantile_edges,
};
pub use ranking::{ScoreGroup, log_loss, roc_auc, tie_bound};
pub use regression::{RegressionMetrics, RegressionSums};
