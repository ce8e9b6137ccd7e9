//! Data drift between a reference sample and a current sample of one feature.
//!
//! Both sides arrive as histograms of distinct values — `(value, count)` for a numeric
//! feature, `(category, count)` for a categorical one — because that is what a `GROUP BY`
//! returns and it is exact. Entries may come in any order and may repeat a value. A numeric
//! entry whose value is NaN is skipped: missing values are reported by [`missing_drift`]
//! rather than mixed into the distribution.

use std::collections::BTreeMap;

use serde::Serialize;

use super::special::{chi_square_sf, kolmogorov_sf};

/// Floor applied to each bin's share before the PSI formula, so that an empty bin gives a
/// large but finite term instead of `ln 0`.
pub const PSI_SHARE_FLOOR: f64 = 1e-4;

/// The numeric histogram merged by value, sorted ascending, NaN and zero counts removed.
fn merged(histogram: &[(f64, u64)]) -> Vec<(f64, u64)> {
    let mut entries: Vec<(f64, u64)> = histogram
        .iter()
        .copied()
        .filter(|(value, count)| !value.is_nan() && *count > 0)
        .collect();
    entries.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, u64)> = Vec::with_capacity(entries.len());
    for (value, count) in entries {
        match out.last_mut() {
            // `==` so that 0.0 and -0.0 are one value, as in NumPy's comparisons.
            Some(last) if last.0 == value => last.1 = last.1.saturating_add(count),
            _ => out.push((value, count)),
        }
    }
    out
}

/// Sum of the counts.
fn total(entries: &[(f64, u64)]) -> u64 {
    entries.iter().fold(0u64, |a, (_, c)| a.saturating_add(*c))
}

/// Two-sample Kolmogorov–Smirnov test result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Ks {
    /// `sup_x |F_reference(x) − F_current(x)|` over the empirical CDFs.
    pub statistic: f64,
    /// Two-sided p-value from SciPy's asymptotic method; `None` when both samples hold a
    /// single row (SciPy's effective size rounds to 0 and it returns NaN).
    pub p_value: Option<f64>,
}

/// Two-sample Kolmogorov–Smirnov test: the statistic of
/// `scipy.stats.ks_2samp(reference, current)` on the expanded samples, exact (ties included),
/// and the p-value of `ks_2samp(..., method="asymp")`.
///
/// SciPy's asymptotic p-value is `kstwo.sf(D, round(n1·n2 / (n1 + n2)))`, the exact
/// distribution of a one-sample statistic at the effective sample size (see
/// [`kolmogorov_sf`]). Note that `ks_2samp`'s default `method="auto"` is exact, not asymptotic,
/// when both samples have at most 10 000 rows, so its p-value differs there. `None` when a side
/// has no rows.
pub fn ks_two_sample(reference: &[(f64, u64)], current: &[(f64, u64)]) -> Option<Ks> {
    let reference = merged(reference);
    let current = merged(current);
    let (n1, n2) = (total(&reference), total(&current));
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // |c1/n1 − c2/n2| = |c1·n2 − c2·n1| / (n1·n2): compare exact integers, divide once.
    let (mut i, mut j) = (0, 0);
    let (mut c1, mut c2) = (0u128, 0u128);
    let mut largest: u128 = 0;
    while i < reference.len() || j < current.len() {
        let next = match (reference.get(i), current.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => break,
        };
        while let Some(&(value, count)) = reference.get(i)
            && value == next
        {
            c1 += u128::from(count);
            i += 1;
        }
        while let Some(&(value, count)) = current.get(j)
            && value == next
        {
            c2 += u128::from(count);
            j += 1;
        }
        let difference = (c1 * u128::from(n2)).abs_diff(c2 * u128::from(n1));
        largest = largest.max(difference);
    }
    let statistic = largest as f64 / (u128::from(n1) * u128::from(n2)) as f64;
    let (m, n) = (n1 as f64, n2 as f64);
    let effective = (m * n / (m + n)).round_ties_even();
    let p_value = if effective >= 1.0 {
        kolmogorov_sf(effective as u64, statistic)
    } else {
        None
    };
    Some(Ks { statistic, p_value })
}

/// How far [`ks_two_sample`]'s statistic may be BELOW the statistic of the underlying rows when
/// each histogram entry is a bin (value = bin index or lower edge) rather than one value:
/// the largest share of either sample inside one bin, `max_bin max(p_ref(bin), p_cur(bin))`.
///
/// At bin edges both empirical CDFs are exact. Inside a bin the reference CDF rises by at most
/// `p_ref(bin)` and the current CDF by at most `p_cur(bin)`, so their difference moves at most
/// `max(p_ref, p_cur)` away from its value at the bin's lower edge. `None` when a side has no
/// rows.
pub fn ks_binned_bound(reference: &[(f64, u64)], current: &[(f64, u64)]) -> Option<f64> {
    let reference = merged(reference);
    let current = merged(current);
    let (n1, n2) = (total(&reference), total(&current));
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut shares: BTreeMap<u64, f64> = BTreeMap::new();
    for (entries, n) in [(&reference, n1), (&current, n2)] {
        for &(value, count) in entries {
            // Keyed by the bits of the value (NaN removed, -0.0 folded into 0.0).
            let key = (value + 0.0).to_bits();
            let share = count as f64 / n as f64;
            let slot = shares.entry(key).or_insert(0.0);
            *slot = slot.max(share);
        }
    }
    Some(shares.values().copied().fold(0.0, f64::max))
}

/// PSI bin edges: the reference's quantiles at `1/bins, 2/bins, …, (bins−1)/bins`, as
/// `numpy.quantile(reference, q)` computes them on the expanded sample (the default `linear`
/// method: position `(n−1)·q`, linear interpolation between the neighbouring order
/// statistics), with repeated edges removed. Empty when `bins < 2` or the reference has no
/// rows.
pub fn quantile_edges(reference: &[(f64, u64)], bins: usize) -> Vec<f64> {
    let entries = merged(reference);
    let n = total(&entries);
    if bins < 2 || n == 0 {
        return Vec::new();
    }
    // ends[i] = number of rows up to and including entries[i].
    let mut ends = Vec::with_capacity(entries.len());
    let mut running = 0u64;
    for (_, count) in &entries {
        running = running.saturating_add(*count);
        ends.push(running);
    }
    let order_statistic = |index: u64| -> f64 {
        let position = ends.partition_point(|&end| end <= index);
        entries
            .get(position)
            .or(entries.last())
            .map_or(f64::NAN, |e| e.0)
    };
    let mut edges: Vec<f64> = Vec::with_capacity(bins - 1);
    for i in 1..bins {
        let q = i as f64 / bins as f64;
        let virtual_index = (n - 1) as f64 * q;
        let below = virtual_index.floor();
        let gamma = virtual_index - below;
        let below = below as u64;
        let a = order_statistic(below);
        let b = order_statistic((below + 1).min(n - 1));
        edges.push(lerp(a, b, gamma));
        if let [.., previous, last] = edges.as_slice()
            && previous == last
        {
            edges.pop();
        }
    }
    edges
}

/// NumPy's `_lerp`: `a + (b − a)·t`, computed from the nearer end for `t >= 0.5`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let difference = b - a;
    if t >= 0.5 {
        b - difference * (1.0 - t)
    } else {
        a + difference * t
    }
}

/// One PSI bin of a numeric feature.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PsiBin {
    /// Exclusive lower edge; `None` for the first bin (−∞).
    pub lower: Option<f64>,
    /// Inclusive upper edge; `None` for the last bin (+∞).
    pub upper: Option<f64>,
    /// Share of reference rows in the bin (before the floor).
    pub reference_share: f64,
    /// Share of current rows in the bin (before the floor).
    pub current_share: f64,
}

/// Population stability index of a numeric feature and its bins.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Psi {
    /// `Σ (c − r)·ln(c / r)` over bins, with shares floored at [`PSI_SHARE_FLOOR`].
    pub value: f64,
    /// The bins, lowest first.
    pub bins: Vec<PsiBin>,
}

/// One term of the PSI sum, on floored shares.
fn psi_term(reference_share: f64, current_share: f64) -> f64 {
    let r = reference_share.max(PSI_SHARE_FLOOR);
    let c = current_share.max(PSI_SHARE_FLOOR);
    (c - r) * (c / r).ln()
}

/// Population stability index over the bins cut by `edges` (usually [`quantile_edges`]):
/// bin `i` is `(edges[i−1], edges[i]]` with −∞ and +∞ at the ends, so a value equal to an
/// edge falls in the lower bin, as `numpy.digitize(x, edges, right=True)` assigns it.
/// `edges` is sorted and deduplicated first (NaN dropped); no edges gives one bin and PSI 0.
/// `None` when a side has no rows.
pub fn psi(reference: &[(f64, u64)], current: &[(f64, u64)], edges: &[f64]) -> Option<Psi> {
    let mut cuts: Vec<f64> = edges.iter().copied().filter(|e| !e.is_nan()).collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup_by(|a, b| a == b);
    let count_bins = |entries: &[(f64, u64)]| -> (Vec<u64>, u64) {
        let mut counts = vec![0u64; cuts.len() + 1];
        for &(value, count) in entries {
            let bin = cuts.partition_point(|&edge| edge < value);
            counts[bin] = counts[bin].saturating_add(count);
        }
        let n = counts.iter().fold(0u64, |a, c| a.saturating_add(*c));
        (counts, n)
    };
    let (reference_counts, n1) = count_bins(&merged(reference));
    let (current_counts, n2) = count_bins(&merged(current));
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let bins: Vec<PsiBin> = (0..=cuts.len())
        .map(|i| PsiBin {
            lower: i.checked_sub(1).and_then(|k| cuts.get(k)).copied(),
            upper: cuts.get(i).copied(),
            reference_share: reference_counts[i] as f64 / n1 as f64,
            current_share: current_counts[i] as f64 / n2 as f64,
        })
        .collect();
    let value = bins
        .iter()
        .map(|b| psi_term(b.reference_share, b.current_share))
        .sum();
    Some(Psi { value, bins })
}

/// One category's shares on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CategoryShare {
    /// The category.
    pub category: String,
    /// Share of reference rows in this category.
    pub reference_share: f64,
    /// Share of current rows in this category.
    pub current_share: f64,
}

/// Population stability index of a categorical feature.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CategoricalPsi {
    /// `Σ (c − r)·ln(c / r)` over categories, shares floored at [`PSI_SHARE_FLOOR`].
    pub value: f64,
    /// Every category seen on either side, sorted by name.
    pub categories: Vec<CategoryShare>,
}

/// Both sides' counts per category, over the union of categories with rows, sorted by name.
fn category_table<S: AsRef<str>>(
    reference: &[(S, u64)],
    current: &[(S, u64)],
) -> BTreeMap<String, (u64, u64)> {
    let mut table: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (category, count) in reference.iter().filter(|(_, c)| *c > 0) {
        let slot = table.entry(category.as_ref().to_owned()).or_default();
        slot.0 = slot.0.saturating_add(*count);
    }
    for (category, count) in current.iter().filter(|(_, c)| *c > 0) {
        let slot = table.entry(category.as_ref().to_owned()).or_default();
        slot.1 = slot.1.saturating_add(*count);
    }
    table
}

/// Population stability index of a categorical feature over the union of categories, each
/// category one bin, with the same floor as [`psi`]. `None` when a side has no rows.
pub fn psi_categorical<S: AsRef<str>>(
    reference: &[(S, u64)],
    current: &[(S, u64)],
) -> Option<CategoricalPsi> {
    let table = category_table(reference, current);
    let n1 = table.values().fold(0u64, |a, c| a.saturating_add(c.0));
    let n2 = table.values().fold(0u64, |a, c| a.saturating_add(c.1));
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let categories: Vec<CategoryShare> = table
        .into_iter()
        .map(|(category, (r, c))| CategoryShare {
            category,
            reference_share: r as f64 / n1 as f64,
            current_share: c as f64 / n2 as f64,
        })
        .collect();
    let value = categories
        .iter()
        .map(|c| psi_term(c.reference_share, c.current_share))
        .sum();
    Some(CategoricalPsi { value, categories })
}

/// Pearson chi-square test of homogeneity between two categorical samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChiSquare {
    /// `Σ (observed − expected)² / expected` over the 2 × k table.
    pub statistic: f64,
    /// Degrees of freedom, `k − 1`.
    pub dof: u64,
    /// `P(χ²_dof >= statistic)`; 1.0 when `dof == 0`.
    pub p_value: f64,
}

/// Chi-square test on the 2 × k table of reference and current counts per category, the same
/// as `scipy.stats.chi2_contingency([ref_counts, cur_counts], correction=False)`. Categories
/// absent from both sides are dropped (SciPy refuses zero expected counts). With a single
/// category the statistic is 0 and the p-value 1, as SciPy gives. `None` when a side has no
/// rows.
pub fn chi_square<S: AsRef<str>>(
    reference: &[(S, u64)],
    current: &[(S, u64)],
) -> Option<ChiSquare> {
    let table = category_table(reference, current);
    let n1 = table.values().fold(0u64, |a, c| a.saturating_add(c.0)) as f64;
    let n2 = table.values().fold(0u64, |a, c| a.saturating_add(c.1)) as f64;
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    let n = n1 + n2;
    let dof = (table.len() as u64).saturating_sub(1);
    if dof == 0 {
        return Some(ChiSquare {
            statistic: 0.0,
            dof,
            p_value: 1.0,
        });
    }
    let mut statistic = 0.0;
    for &(r, c) in table.values() {
        let column = r as f64 + c as f64;
        for (observed, row) in [(r as f64, n1), (c as f64, n2)] {
            let expected = row * column / n;
            statistic += (observed - expected) * (observed - expected) / expected;
        }
    }
    let p_value = chi_square_sf(statistic, dof as f64)?;
    Some(ChiSquare {
        statistic,
        dof,
        p_value,
    })
}

/// Share of missing values on each side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MissingDrift {
    /// Missing rows / rows in the reference.
    pub reference_rate: f64,
    /// Missing rows / rows in the current sample.
    pub current_rate: f64,
    /// `current_rate − reference_rate`: positive when more values are missing now.
    pub difference: f64,
}

/// Compares missing-value rates; each side is `(missing, total)`. `None` when a side has no
/// rows or claims more missing rows than rows.
pub fn missing_drift(reference: (u64, u64), current: (u64, u64)) -> Option<MissingDrift> {
    let rate = |(missing, total): (u64, u64)| {
        (total > 0 && missing <= total).then(|| missing as f64 / total as f64)
    };
    let reference_rate = rate(reference)?;
    let current_rate = rate(current)?;
    Some(MissingDrift {
        reference_rate,
        current_rate,
        difference: current_rate - reference_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, relative: f64) {
        assert!(
            (actual - expected).abs() <= relative * expected.abs().max(1e-300),
            "actual {actual}, expected {expected}"
        );
    }

    /// 15 reference rows; `R = np.repeat([1.0, 2.5, 4.0, 7.0, 10.0], [3, 2, 5, 1, 4])`.
    fn reference() -> Vec<(f64, u64)> {
        vec![(4.0, 5), (1.0, 3), (2.5, 2), (10.0, 4), (7.0, 1)]
    }

    /// 14 current rows, sharing some values (ties) with the reference;
    /// `C = np.repeat([0.5, 2.5, 4.0, 8.0, 10.0], [2, 4, 1, 6, 1])`.
    fn current() -> Vec<(f64, u64)> {
        vec![
            (0.5, 2),
            (2.5, 4),
            (4.0, 1),
            (8.0, 6),
            (10.0, 1),
            (3.0, 0),
            (f64::NAN, 9),
        ]
    }

    #[test]
    fn ks_matches_scipy_asymp_with_ties() {
        let ks = ks_two_sample(&reference(), &current()).expect("rows");
        // scipy.stats.ks_2samp(R, C, method="asymp").statistic
        assert_close(ks.statistic, 0.23333333333333328, 1e-12);
        // scipy.stats.ks_2samp(R, C, method="asymp").pvalue
        assert_close(ks.p_value.expect("p-value"), 0.7647571195652577, 1e-6);
    }

    #[test]
    fn ks_matches_scipy_asymp_on_large_samples() {
        // rng = np.random.default_rng(7); rc = rng.integers(200, 900, 60)
        // cc = (rc * rng.uniform(0.8, 1.25, 60)).astype(int)
        let rc: [u64; 60] = [
            861, 637, 678, 828, 604, 742, 783, 357, 238, 410, 399, 811, 838, 203, 549, 774, 292,
            757, 283, 527, 771, 412, 439, 394, 703, 378, 893, 511, 534, 553, 607, 587, 556, 896,
            765, 754, 690, 635, 438, 892, 526, 350, 791, 312, 800, 628, 280, 230, 511, 224, 299,
            560, 879, 526, 765, 842, 776, 640, 508, 559,
        ];
        let cc: [u64; 60] = [
            881, 580, 545, 734, 671, 660, 756, 286, 279, 356, 367, 970, 862, 239, 597, 877, 245,
            789, 291, 628, 742, 440, 362, 383, 664, 327, 1042, 496, 662, 589, 650, 638, 614, 777,
            763, 684, 676, 535, 541, 799, 579, 327, 943, 342, 687, 741, 343, 277, 539, 193, 265,
            681, 921, 463, 916, 916, 819, 620, 500, 507,
        ];
        let histogram = |counts: &[u64]| -> Vec<(f64, u64)> {
            counts
                .iter()
                .enumerate()
                .map(|(i, &c)| (i as f64, c))
                .collect()
        };
        let ks = ks_two_sample(&histogram(&rc), &histogram(&cc)).expect("rows");
        // scipy.stats.ks_2samp(np.repeat(np.arange(60), rc), np.repeat(np.arange(60), cc),
        //                      method="asymp")  (n1 = 34985, n2 = 35576)
        assert_close(ks.statistic, 0.014965966975020534, 1e-12);
        assert_close(ks.p_value.expect("p-value"), 0.0007327566476918275, 1e-6);
    }

    #[test]
    fn ks_without_rows_is_none_and_single_rows_have_no_p_value() {
        assert_eq!(ks_two_sample(&[], &current()), None);
        assert_eq!(ks_two_sample(&reference(), &[(f64::NAN, 3)]), None);
        // scipy.stats.ks_2samp([1.0], [2.0], method="asymp").pvalue is nan (kstwo with n = 0)
        let single = ks_two_sample(&[(1.0, 1)], &[(2.0, 1)]).expect("rows");
        assert_eq!(single.statistic, 1.0);
        assert_eq!(single.p_value, None);
    }

    #[test]
    fn ks_binned_bound_is_the_largest_bin_share() {
        // Largest shares: reference 5/15 at 4.0, current 6/14 at 8.0.
        let bound = ks_binned_bound(&reference(), &current()).expect("rows");
        assert_close(bound, 6.0 / 14.0, 1e-15);
        assert_eq!(ks_binned_bound(&reference(), &[]), None);
    }

    #[test]
    fn quantile_edges_match_numpy_quantile_deduplicated() {
        // np.unique(np.quantile(R, [i / 10 for i in range(1, 10)]))
        let expected = [1.0, 2.2, 2.8000000000000003, 4.0, 6.399999999999997, 10.0];
        let edges = quantile_edges(&reference(), 10);
        assert_eq!(edges.len(), expected.len());
        for (edge, expected) in edges.iter().zip(expected) {
            assert_close(*edge, expected, 1e-12);
        }
        assert!(quantile_edges(&reference(), 1).is_empty());
        assert!(quantile_edges(&[], 10).is_empty());
        // np.quantile([5.0] * 4, [0.5]) == 5.0
        assert_eq!(quantile_edges(&[(5.0, 4)], 2), vec![5.0]);
    }

    /// The PSI of NumPy's binning, as used in every PSI expectation below:
    /// ```python
    /// def psi(R, C, edges):
    ///     nb = len(edges) + 1
    ///     rs = np.bincount(np.digitize(R, edges, right=True), minlength=nb) / len(R)
    ///     cs = np.bincount(np.digitize(C, edges, right=True), minlength=nb) / len(C)
    ///     rf, cf = np.maximum(rs, 1e-4), np.maximum(cs, 1e-4)
    ///     return np.sum((cf - rf) * np.log(cf / rf)), rs, cs
    /// ```
    #[test]
    fn psi_matches_numpy_digitize_right_with_floored_shares() {
        let edges = quantile_edges(&reference(), 10);
        let psi = psi(&reference(), &current(), &edges).expect("rows");
        // psi(R, C, np.unique(np.quantile(R, [i / 10 for i in range(1, 10)])))
        assert_close(psi.value, 0.6063900216230199, 1e-12);
        let reference_shares = [
            0.2,
            0.0,
            0.13333333333333333,
            0.3333333333333333,
            0.0,
            0.3333333333333333,
            0.0,
        ];
        let current_shares = [
            0.14285714285714285,
            0.0,
            0.2857142857142857,
            0.07142857142857142,
            0.0,
            0.5,
            0.0,
        ];
        assert_eq!(psi.bins.len(), 7);
        for (i, bin) in psi.bins.iter().enumerate() {
            assert_close(bin.reference_share, reference_shares[i], 1e-12);
            assert_close(bin.current_share, current_shares[i], 1e-12);
        }
        assert_eq!(psi.bins[0].lower, None);
        assert_eq!(psi.bins[0].upper, Some(1.0));
        assert_eq!(psi.bins[6].lower, Some(10.0));
        assert_eq!(psi.bins[6].upper, None);
    }

    #[test]
    fn psi_puts_values_on_an_edge_in_the_lower_bin() {
        // Unsorted edges with an empty first bin; 2.5 and 4.0 sit on no edge, 2.5 on one.
        // psi(R, C, np.array([0.0, 2.5, 3.0, 9.0]))
        let psi = psi(&reference(), &current(), &[9.0, 2.5, 0.0, 3.0]).expect("rows");
        assert_close(psi.value, 0.3034364962769859, 1e-12);
        let reference_shares = [0.0, 0.3333333333333333, 0.0, 0.4, 0.26666666666666666];
        let current_shares = [0.0, 0.42857142857142855, 0.0, 0.5, 0.07142857142857142];
        for (i, bin) in psi.bins.iter().enumerate() {
            assert_close(bin.reference_share, reference_shares[i], 1e-12);
            assert_close(bin.current_share, current_shares[i], 1e-12);
        }
    }

    #[test]
    fn psi_without_rows_is_none_and_without_edges_is_zero() {
        assert_eq!(psi(&[], &current(), &[1.0]), None);
        let one_bin = psi(&reference(), &current(), &[]).expect("rows");
        assert_eq!(one_bin.value, 0.0);
        assert_eq!(one_bin.bins.len(), 1);
    }

    /// Categorical counts as a caller passes them.
    type Counts<S> = Vec<(S, u64)>;

    /// ref = {"a": 10, "b": 0, "c": 25, "d": 5}; cur = {"a": 12, "c": 10, "d": 9, "e": 4, "b": 0}
    /// Table over the categories with rows, ['a', 'c', 'd', 'e']: [[10, 25, 5, 0], [12, 10, 9, 4]].
    fn categories() -> (Counts<&'static str>, Counts<String>) {
        (
            vec![("a", 10), ("b", 0), ("c", 20), ("d", 5), ("c", 5)],
            vec![
                ("a".to_owned(), 12),
                ("c".to_owned(), 10),
                ("d".to_owned(), 9),
                ("e".to_owned(), 4),
                ("b".to_owned(), 0),
            ],
        )
    }

    #[test]
    fn chi_square_matches_scipy_chi2_contingency_without_correction() {
        let (reference, current) = categories();
        let current: Vec<(&str, u64)> = current.iter().map(|(c, n)| (c.as_str(), *n)).collect();
        let test = chi_square(&reference, &current).expect("rows");
        // scipy.stats.chi2_contingency([[10, 25, 5, 0], [12, 10, 9, 4]], correction=False)
        assert_close(test.statistic, 11.470895176252316, 1e-12);
        assert_eq!(test.dof, 3);
        assert_close(test.p_value, 0.00943395629336566, 1e-6);
    }

    #[test]
    fn chi_square_of_one_category_is_zero_with_p_one() {
        // scipy.stats.chi2_contingency([[7], [3]], correction=False) → (0.0, 1.0, 0, …)
        let test = chi_square(&[("x", 7)], &[("x", 3)]).expect("rows");
        assert_eq!((test.statistic, test.dof, test.p_value), (0.0, 0, 1.0));
        assert_eq!(chi_square(&[("x", 7)], &[("x", 0)]), None);
    }

    #[test]
    fn categorical_psi_uses_the_union_with_floor() {
        let (reference, current) = categories();
        let current: Vec<(&str, u64)> = current.iter().map(|(c, n)| (c.as_str(), *n)).collect();
        let psi = psi_categorical(&reference, &current).expect("rows");
        // rs = np.array([10, 25, 5, 0]) / 40; cs = np.array([12, 10, 9, 4]) / 35
        // rf, cf = np.maximum(rs, 1e-4), np.maximum(cs, 1e-4)
        // np.sum((cf - rf) * np.log(cf / rf))
        assert_close(psi.value, 1.194239641095319, 1e-12);
        let names: Vec<&str> = psi.categories.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(names, ["a", "c", "d", "e"]);
        assert_eq!(psi_categorical::<&str>(&[], &[("a", 1)]), None);
    }

    #[test]
    fn missing_drift_reports_rates_and_their_difference() {
        let drift = missing_drift((5, 200), (30, 300)).expect("rows");
        assert_close(drift.reference_rate, 0.025, 1e-15);
        assert_close(drift.current_rate, 0.1, 1e-15);
        assert_close(drift.difference, 0.075, 1e-12);
        assert_eq!(missing_drift((0, 0), (1, 2)), None);
        assert_eq!(missing_drift((3, 2), (1, 2)), None);
    }
}
