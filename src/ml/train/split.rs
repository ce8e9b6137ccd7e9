//! The train/test split: a deterministic shuffle from the seed, then the last rows are the test.
//!
//! The generator is SplitMix64 (Steele, Lea and Flood, 2014; the seeder of Java's
//! `SplittableRandom` and of the xoshiro family): 64 bits of state, a Weyl increment and a
//! mixing function. It is not cryptographic and need not be; it is tiny, has no bad seeds, and
//! written out here it gives the same split on every platform and in every version, which a
//! library generator would not promise.

/// SplitMix64: each call adds the golden-ratio increment to the state and mixes it.
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), by Lemire's multiply-shift: the high word of a
    /// 64×64-bit product. Its bias, at most `bound / 2^64`, is far below anything a row count
    /// could show.
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        let product = u128::from(self.next_u64()) * bound as u128;
        (product >> 64) as usize
    }
}

/// Splits positions `0..n` into (train, test), each sorted ascending.
///
/// The positions are shuffled (Fisher–Yates) with [`SplitMix64`] seeded by `seed`; the last
/// `round(test_fraction · n)` of the shuffled order are the test split, capped so at least one
/// row trains. With few rows the test split may be empty. Sorting each side afterwards keeps
/// the report in the data's order; which rows land where is decided by the shuffle alone.
pub(crate) fn split(n: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    let wanted = (test_fraction * n as f64).round();
    let n_test = if wanted.is_finite() && wanted > 0.0 {
        (wanted as usize).min(n.saturating_sub(1))
    } else {
        0
    };
    let mut test = order.split_off(n - n_test);
    order.sort_unstable();
    test.sort_unstable();
    (order, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_gives_the_reference_sequence() {
        // The first outputs for seed 1234567 of the reference algorithm
        // (https://prng.di.unimi.it/splitmix64.c), recomputed with Python's big integers.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn the_test_split_is_the_rounded_fraction_and_partitions_the_rows() {
        let (train, test) = split(10, 0.25, 42);
        assert_eq!(test.len(), 3, "round(2.5) is 3");
        assert_eq!(train.len(), 7);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn the_same_seed_gives_the_same_split_and_another_seed_another() {
        assert_eq!(split(50, 0.2, 7), split(50, 0.2, 7));
        assert_ne!(split(50, 0.2, 7).1, split(50, 0.2, 8).1);
    }

    #[test]
    fn at_least_one_row_trains_and_tiny_data_may_have_no_test() {
        assert_eq!(split(1, 0.9, 42), (vec![0], vec![]));
        let (train, test) = split(2, 0.9, 42);
        assert_eq!((train.len(), test.len()), (1, 1));
        assert_eq!(split(2, 0.2, 42).1, Vec::<usize>::new());
        assert_eq!(split(0, 0.2, 42), (vec![], vec![]));
    }
}
