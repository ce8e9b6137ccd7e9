//! Metrics of a binary score: ROC AUC and log loss.
//!
//! Scores arrive grouped by distinct value (`GROUP BY score` with the count of positive and
//! negative rows), which is exact and keeps the work proportional to the number of distinct
//! scores rather than rows. When the groups are bins of scores instead of single values,
//! [`tie_bound`] says how far the AUC may be off.

/// All rows that share one score (or, when binned, fall in one score bin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreGroup {
    /// The score; for [`log_loss`], the predicted probability of the positive class.
    pub score: f64,
    /// Rows of the positive class with this score.
    pub positives: u64,
    /// Rows of the negative class with this score.
    pub negatives: u64,
}

/// Totals of positives and negatives, or `None` if a group with rows has a NaN score.
fn totals(groups: &[ScoreGroup]) -> Option<(u64, u64)> {
    let mut positives = 0u64;
    let mut negatives = 0u64;
    for group in groups {
        if group.score.is_nan() && (group.positives > 0 || group.negatives > 0) {
            return None;
        }
        positives = positives.saturating_add(group.positives);
        negatives = negatives.saturating_add(group.negatives);
    }
    Some((positives, negatives))
}

/// The groups that hold rows, scores ascending, with `-0.0` read as `0.0` so that the two
/// form one group (NaN, where allowed, sorts last and forms its own group).
fn nonempty_by_score(groups: &[ScoreGroup]) -> Vec<ScoreGroup> {
    let mut sorted: Vec<ScoreGroup> = groups
        .iter()
        .filter(|g| g.positives > 0 || g.negatives > 0)
        .map(|g| ScoreGroup {
            score: g.score + 0.0,
            ..*g
        })
        .collect();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    sorted
}

/// The (positives, negatives) of each distinct score, lowest score first: groups that repeat a
/// score are added together.
fn per_score(groups: &[ScoreGroup]) -> Vec<(u128, u128)> {
    let mut totals: Vec<(f64, u128, u128)> = Vec::new();
    for group in nonempty_by_score(groups) {
        match totals.last_mut() {
            Some((score, pos, neg)) if score.total_cmp(&group.score).is_eq() => {
                *pos += u128::from(group.positives);
                *neg += u128::from(group.negatives);
            }
            _ => totals.push((
                group.score,
                u128::from(group.positives),
                u128::from(group.negatives),
            )),
        }
    }
    totals.into_iter().map(|(_, pos, neg)| (pos, neg)).collect()
}

/// Area under the ROC curve, exact with ties: the probability that a random positive scores
/// above a random negative, a tie counting one half. Equals `sklearn.metrics.roc_auc_score`
/// on the expanded rows. Groups may repeat a score and come in any order.
///
/// `None` when either class is absent (the AUC is undefined; scikit-learn raises) or a group
/// with rows has a NaN score. Infinite scores are ordered normally.
pub fn roc_auc(groups: &[ScoreGroup]) -> Option<f64> {
    let (positives, negatives) = totals(groups)?;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Twice the number of (positive, negative) pairs ranked correctly, ties counting one:
    // an integer, so the only rounding is the final division.
    let mut doubled_wins: u128 = 0;
    let mut positives_above: u128 = 0;
    for (pos, neg) in per_score(groups).into_iter().rev() {
        // Overflow needs more than 2^63 rows; report it as "no answer" rather than wrap.
        let wins = positives_above
            .checked_mul(2)
            .and_then(|twice| twice.checked_add(pos))
            .and_then(|sum| sum.checked_mul(neg))?;
        doubled_wins = doubled_wins.checked_add(wins)?;
        positives_above += pos;
    }
    let pairs = u128::from(positives) * u128::from(negatives);
    Some(doubled_wins as f64 / (2.0 * pairs as f64))
}

/// The most [`roc_auc`] can differ from the AUC of the underlying scores when each group is
/// a bin of scores rather than a single value: `0.5 · Σ_g positives_g · negatives_g / (P · N)`.
///
/// Pairs from different bins are ordered correctly whatever the scores inside the bins; a
/// positive–negative pair inside one bin counts one half, while its true contribution is 0 or
/// 1, so each such pair moves the AUC by at most `0.5 / (P · N)`. For groups of single
/// values the AUC is exact and this is the weight of the ties. 0.0 when a class is absent.
pub fn tie_bound(groups: &[ScoreGroup]) -> f64 {
    let mut positives = 0u128;
    let mut negatives = 0u128;
    let mut within: u128 = 0;
    // Groups that repeat a score form one bin.
    for (pos, neg) in per_score(groups) {
        within = within.saturating_add(pos * neg);
        positives += pos;
        negatives += neg;
    }
    if positives == 0 || negatives == 0 {
        return 0.0;
    }
    within as f64 / (2.0 * positives as f64 * negatives as f64)
}

/// Mean binary cross-entropy `−mean(y·ln p + (1−y)·ln(1−p))`, with `score` the predicted
/// probability of the positive class, as `sklearn.metrics.log_loss(y, p)` (with
/// `labels=[0, 1]` so that data holding one class is accepted too).
///
/// Like scikit-learn (≥ 1.5, `eps="auto"`), `p` and `1 − p` are each clipped to
/// `[ε, 1 − ε]` with `ε = f64::EPSILON`, so a confident wrong answer costs about 36.04 rather
/// than infinity. `None` when there are no rows, or a score with rows is NaN or outside [0, 1]
/// (scikit-learn raises).
pub fn log_loss(groups: &[ScoreGroup]) -> Option<f64> {
    let (positives, negatives) = totals(groups)?;
    let rows = positives.checked_add(negatives)?;
    if rows == 0 {
        return None;
    }
    let eps = f64::EPSILON;
    let mut total = 0.0;
    for group in groups {
        if group.positives == 0 && group.negatives == 0 {
            continue;
        }
        let p = group.score;
        if !(0.0..=1.0).contains(&p) {
            return None;
        }
        if group.positives > 0 {
            total -= group.positives as f64 * p.clamp(eps, 1.0 - eps).ln();
        }
        if group.negatives > 0 {
            total -= group.negatives as f64 * (1.0 - p).clamp(eps, 1.0 - eps).ln();
        }
    }
    Some(total / rows as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(score: f64, positives: u64, negatives: u64) -> ScoreGroup {
        ScoreGroup {
            score,
            positives,
            negatives,
        }
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs(),
            "actual {actual}, expected {expected}"
        );
    }

    /// Unequal classes (7 positives, 8 negatives), ties inside groups, a score repeated across
    /// two groups. Expanded:
    /// y = [1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    /// s = [.9, .9, .9, .9, .7, .7, .7, .7, .4, .4, .4, .4, .1, .1, .7]
    fn tied() -> Vec<ScoreGroup> {
        vec![
            group(0.9, 3, 1),
            group(0.7, 2, 2),
            group(0.4, 1, 3),
            group(0.1, 0, 2),
            group(0.7, 1, 0),
        ]
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // sklearn.metrics.roc_auc_score(y, s)
        assert_close(roc_auc(&tied()).expect("both classes"), 0.7857142857142857);
    }

    #[test]
    fn auc_is_none_without_both_classes_or_with_nan() {
        assert_eq!(roc_auc(&[group(0.3, 4, 0), group(0.8, 1, 0)]), None);
        assert_eq!(roc_auc(&[]), None);
        assert_eq!(roc_auc(&[group(f64::NAN, 1, 1), group(0.2, 1, 1)]), None);
        // A NaN score with no rows is ignored.
        assert_eq!(
            roc_auc(&[group(f64::NAN, 0, 0), group(0.2, 1, 1)]),
            Some(0.5)
        );
    }

    #[test]
    fn tie_bound_is_half_the_share_of_pairs_within_groups() {
        // Pairs within groups: 0.9 → 3·1, 0.7 → (2+1)·2, 0.4 → 1·3; P·N = 7·8.
        // 0.5 * (3 + 6 + 3) / 56
        assert_close(tie_bound(&tied()), 0.5 * 12.0 / 56.0);
        assert_eq!(tie_bound(&[group(0.5, 3, 0)]), 0.0);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let groups = [group(0.2, u64::MAX, u64::MAX), group(0.9, u64::MAX, 1)];
        assert!(roc_auc(&groups).is_none_or(|auc| (0.0..=1.0).contains(&auc)));
        assert!((0.0..=0.5).contains(&tie_bound(&groups)));
        assert!(log_loss(&groups).is_none_or(f64::is_finite));
    }

    #[test]
    fn log_loss_clips_certain_wrong_answers() {
        // Scores of exactly 0 and 1 on the wrong class, clipped at f64::EPSILON.
        // y = [1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0]
        // p = [1., 1., 1., 0., 0., .35, .35, .35, .35, .35, .8, .8]
        // sklearn.metrics.log_loss(y, p, labels=[0, 1])
        let groups = [
            group(1.0, 2, 1),
            group(0.0, 0, 1),
            group(0.0, 1, 0),
            group(0.35, 2, 3),
            group(0.8, 1, 1),
        ];
        assert_close(log_loss(&groups).expect("rows"), 6.442656769938111);
    }

    #[test]
    fn log_loss_accepts_a_single_class() {
        // sklearn.metrics.log_loss([1, 1, 1], [0.9, 0.5, 0.2], labels=[0, 1])
        let groups = [group(0.9, 1, 0), group(0.5, 1, 0), group(0.2, 1, 0)];
        assert_close(log_loss(&groups).expect("rows"), 0.8026485362172906);
    }

    #[test]
    fn log_loss_refuses_empty_and_out_of_range_probabilities() {
        assert_eq!(log_loss(&[]), None);
        assert_eq!(log_loss(&[group(0.4, 0, 0)]), None);
        assert_eq!(log_loss(&[group(1.2, 1, 0)]), None);
        assert_eq!(log_loss(&[group(-0.1, 0, 1)]), None);
        assert_eq!(log_loss(&[group(f64::NAN, 1, 0)]), None);
    }
}
