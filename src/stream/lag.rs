//! Judging a consumer group over time, as Burrow does: from a window of samples of its
//! committed offsets and the partitions' high watermarks, not from one lag threshold. A lag of
//! 10,000 that shrinks is fine; a lag of 5 that never moves is not.
//!
//! Rules, per partition, over the samples in order:
//! - the lag was zero at some sample, or it shrank over the window → ok;
//! - the committed offset never moved while messages waited → stalled when the group has
//!   active members, stopped when it has none;
//! - the offset moved but the lag never shrank in any interval → lagging;
//! - one sample only → ok if caught up, stopped if nobody is a member, else unknown.
//!
//! The group's verdict is its worst partition's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::source::{PartitionLag, Verdict};

/// Samples kept per (group, topic) between calls.
const KEPT_SAMPLES: usize = 24;
/// (group, topic) pairs kept; the oldest is forgotten first.
const KEPT_PAIRS: usize = 256;
/// Samples older than this are not used: a verdict is about now.
const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// One look at a group on a topic.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Committed offset per partition (`None`: the group committed none).
    pub committed: BTreeMap<i32, Option<i64>>,
    /// High watermark per partition.
    pub high: BTreeMap<i32, i64>,
}

/// The samples the server keeps for groups it was asked about, bounded.
#[derive(Default)]
pub struct LagHistory {
    pairs: Mutex<HashMap<(String, String), VecDeque<Sample>>>,
}

impl LagHistory {
    /// Adds this call's samples to the history of (`group`, `topic`) and returns every recent
    /// sample, oldest first.
    pub fn record(&self, group: &str, topic: &str, samples: Vec<Sample>) -> Vec<Sample> {
        let Ok(mut pairs) = self.pairs.lock() else {
            return samples;
        };
        let key = (group.to_owned(), topic.to_owned());
        if !pairs.contains_key(&key) && pairs.len() >= KEPT_PAIRS {
            // Forget the pair whose newest sample is oldest.
            if let Some(oldest) = pairs
                .iter()
                .min_by_key(|(_, s)| s.back().map(|s| s.at))
                .map(|(k, _)| k.clone())
            {
                pairs.remove(&oldest);
            }
        }
        let kept = pairs.entry(key).or_default();
        kept.extend(samples);
        while kept.len() > KEPT_SAMPLES {
            kept.pop_front();
        }
        while kept.front().is_some_and(|s| s.at.elapsed() > MAX_AGE) {
            kept.pop_front();
        }
        kept.iter().cloned().collect()
    }
}

/// The verdict on a group with `members` active members, from `samples` (oldest first).
pub fn judge(samples: &[Sample], members: Option<u32>) -> (Verdict, String, Vec<PartitionLag>) {
    let Some(last) = samples.last() else {
        return (
            Verdict::Unknown,
            "no sample could be taken".into(),
            Vec::new(),
        );
    };
    let mut partitions = Vec::new();
    let mut worst = (
        Verdict::Ok,
        String::from("every partition is caught up or catching up"),
    );
    for (&partition, &committed) in &last.committed {
        let high = last.high.get(&partition).copied().unwrap_or(0);
        let lag = committed.map_or(high, |c| (high - c).max(0));
        let history: Vec<(i64, i64)> = samples
            .iter()
            .filter_map(|s| {
                let committed = s.committed.get(&partition).copied().flatten()?;
                let high = *s.high.get(&partition)?;
                Some((committed, (high - committed).max(0)))
            })
            .collect();
        let (verdict, reason) = judge_partition(&history, committed.is_some(), members);
        if verdict > worst.0 {
            worst = (verdict, format!("partition {partition}: {reason}"));
        }
        partitions.push(PartitionLag {
            partition,
            committed,
            high,
            lag,
            verdict,
        });
    }
    (worst.0, worst.1, partitions)
}

/// One partition: `history` is (committed offset, lag) per sample, oldest first.
fn judge_partition(
    history: &[(i64, i64)],
    committed: bool,
    members: Option<u32>,
) -> (Verdict, String) {
    if !committed {
        return (
            Verdict::Unknown,
            "the group has committed no offset for it".into(),
        );
    }
    if history.iter().any(|&(_, lag)| lag == 0) {
        return (Verdict::Ok, "caught up".into());
    }
    let lag_now = history.last().map_or(0, |&(_, lag)| lag);
    if history.len() < 2 {
        return if members == Some(0) {
            (
                Verdict::Stopped,
                format!("{lag_now} messages wait and the group has no active member"),
            )
        } else {
            (
                Verdict::Unknown,
                format!(
                    "{lag_now} behind at one sample; sample over a window (lag_window_ms) to judge"
                ),
            )
        };
    }
    let (first, last) = (history[0], history[history.len() - 1]);
    if first.0 == last.0 && history.iter().all(|&(offset, _)| offset == first.0) {
        let offset = first.0;
        return match members {
            Some(0) => (
                Verdict::Stopped,
                format!(
                    "no active member and the committed offset stayed at {offset} while {lag_now} messages wait"
                ),
            ),
            Some(members) => (
                Verdict::Stalled,
                format!(
                    "{members} member(s) active but the committed offset stayed at {offset} while {lag_now} messages wait"
                ),
            ),
            // Burrow's rule: an offset that does not move while messages wait is an error,
            // whether or not anyone is connected.
            None => (
                Verdict::Stalled,
                format!(
                    "the committed offset stayed at {offset} while {lag_now} messages wait (the cluster does not say whether the group has members)"
                ),
            ),
        };
    }
    let never_shrank = history.windows(2).all(|w| w[1].1 >= w[0].1);
    if never_shrank {
        return (
            Verdict::Lagging,
            format!(
                "committing, but the lag grew or held in every interval ({} → {})",
                first.1, last.1
            ),
        );
    }
    (
        Verdict::Ok,
        format!("catching up ({} → {} behind)", first.1, last.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(i64, i64)]) -> Vec<Sample> {
        let start = Instant::now();
        points
            .iter()
            .enumerate()
            .map(|(i, &(committed, high))| Sample {
                at: start + Duration::from_millis(i as u64 * 100),
                committed: BTreeMap::from([(0, Some(committed))]),
                high: BTreeMap::from([(0, high)]),
            })
            .collect()
    }

    #[test]
    fn verdicts_follow_the_window_not_a_threshold() {
        // A big lag that shrinks is fine.
        assert_eq!(
            judge(
                &samples(&[(0, 10_000), (2_000, 10_500), (6_000, 11_000)]),
                Some(1)
            )
            .0,
            Verdict::Ok
        );
        // A lag that reached zero is fine.
        assert_eq!(
            judge(&samples(&[(5, 10), (10, 10), (10, 12)]), Some(1)).0,
            Verdict::Ok
        );
        // Committing but never gaining.
        assert_eq!(
            judge(&samples(&[(0, 10), (5, 20), (10, 30)]), Some(1)).0,
            Verdict::Lagging
        );
        // Members, no movement, messages waiting: stalled. No members: stopped.
        assert_eq!(
            judge(&samples(&[(5, 10), (5, 10), (5, 12)]), Some(2)).0,
            Verdict::Stalled
        );
        assert_eq!(
            judge(&samples(&[(5, 10), (5, 10)]), Some(0)).0,
            Verdict::Stopped
        );
        // Unknown membership never makes a group stopped.
        assert_eq!(
            judge(&samples(&[(5, 10), (5, 10)]), None).0,
            Verdict::Stalled
        );
        assert_eq!(judge(&samples(&[(5, 10)]), None).0, Verdict::Unknown);
        // One sample judges only the clear cases.
        assert_eq!(judge(&samples(&[(5, 10)]), Some(0)).0, Verdict::Stopped);
        assert_eq!(judge(&samples(&[(5, 10)]), Some(1)).0, Verdict::Unknown);
        assert_eq!(judge(&samples(&[(10, 10)]), Some(1)).0, Verdict::Ok);
    }

    #[test]
    fn the_group_takes_its_worst_partition_and_history_is_bounded() {
        let mut two = samples(&[(5, 10), (5, 10)]);
        for s in &mut two {
            s.committed.insert(1, Some(20));
            s.high.insert(1, 20);
        }
        let (verdict, reason, partitions) = judge(&two, Some(1));
        assert_eq!(verdict, Verdict::Stalled);
        assert!(reason.starts_with("partition 0"), "{reason}");
        assert_eq!(partitions.len(), 2);

        let history = LagHistory::default();
        for _ in 0..10 {
            history.record("g", "t", samples(&[(1, 2), (1, 2), (1, 2)]));
        }
        assert_eq!(history.record("g", "t", Vec::new()).len(), KEPT_SAMPLES);
    }
}
