//! A latency histogram in milliseconds: exact below [`EXACT_BELOW`] ms, then log-linear
//! buckets of 512 per power of two (each at most 0.2 % wide), so a client's whole run fits
//! in about 50 KB however many receipts it counts.

/// Values below this are counted each in its own bucket.
const EXACT_BELOW: u64 = 1024;
/// Buckets per power of two above [`EXACT_BELOW`].
const SUB_BUCKETS: u64 = 512;
/// log2 of [`EXACT_BELOW`].
const EXACT_BITS: u32 = 10;
/// Bucket count: exact ones, then 512 for each power of two from 2^10 up to 2^32 (larger
/// values are clamped; no latency gets near 49 days).
const BUCKETS: usize = (EXACT_BELOW + (32 - EXACT_BITS as u64) * SUB_BUCKETS) as usize;
/// The largest value counted as itself.
const CLAMP: u64 = (1 << 32) - 1;

#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u32>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0, max: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < EXACT_BELOW {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // ≥ EXACT_BITS
    let shift = exp - (EXACT_BITS - 1);
    (EXACT_BELOW + u64::from(exp - EXACT_BITS) * SUB_BUCKETS + ((v >> shift) - SUB_BUCKETS)) as usize
}

/// The largest value that falls into bucket `b`.
fn bucket_high(b: usize) -> u64 {
    let b = b as u64;
    if b < EXACT_BELOW {
        return b;
    }
    let exp = (b - EXACT_BELOW) / SUB_BUCKETS + u64::from(EXACT_BITS);
    let sub = (b - EXACT_BELOW) % SUB_BUCKETS + SUB_BUCKETS;
    let shift = exp - u64::from(EXACT_BITS - 1);
    ((sub + 1) << shift) - 1
}

impl Histogram {
    pub(crate) fn record(&mut self, v: u64) {
        let v = v.min(CLAMP);
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The `q` quantile (0 < q ≤ 1) by nearest rank: the smallest value at or below which
    /// at least `q` of the values lie (above 1,024 ms, the top of its bucket, at most the
    /// maximum). None when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(bucket_high(b).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// The median of some values (the lower one of an even count's middle two); None when empty.
pub(crate) fn median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[(values.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest-rank quantile of a list, the definition the histogram follows.
    fn exact(values: &[u64], q: f64) -> u64 {
        let mut v = values.to_vec();
        v.sort_unstable();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    #[test]
    fn small_values_give_exact_nearest_rank_quantiles() {
        let values: Vec<u64> = (1..=100).collect();
        let mut h = Histogram::default();
        values.iter().for_each(|&v| h.record(v));
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.001), Some(1));
        assert_eq!((h.count(), h.max()), (100, 100));
        let skewed: Vec<u64> = (0..1000).map(|i| if i % 100 == 0 { 900 } else { i % 7 }).collect();
        let mut h = Histogram::default();
        skewed.iter().for_each(|&v| h.record(v));
        for q in [0.5, 0.9, 0.98, 0.99, 0.995, 1.0] {
            assert_eq!(h.quantile(q), Some(exact(&skewed, q)), "q = {q}");
        }
    }

    #[test]
    fn large_values_land_within_a_fifth_of_a_percent_above_the_truth() {
        let values: Vec<u64> = (0..5000u64).map(|i| 1000 + i * i * 37 % 3_000_000).collect();
        let mut h = Histogram::default();
        values.iter().for_each(|&v| h.record(v));
        for q in [0.5, 0.9, 0.99, 0.999] {
            let truth = exact(&values, q);
            let got = h.quantile(q).unwrap();
            assert!(got >= truth && (got - truth) as f64 <= truth as f64 * 0.002, "q {q}: {got} vs {truth}");
        }
        assert_eq!(h.quantile(1.0), Some(*values.iter().max().unwrap()));
    }

    #[test]
    fn every_value_falls_in_a_bucket_whose_top_is_not_below_it() {
        for v in (0..5000).chain([1023, 1024, 1025, 2047, 2048, 65_535, 65_536, 1 << 31, CLAMP]) {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v}");
            assert!(bucket_high(b) >= v, "{v}");
            assert!(b == 0 || bucket_high(b - 1) < v, "{v}");
        }
    }

    #[test]
    fn merged_histograms_count_like_one() {
        let (mut a, mut b, mut all) = (Histogram::default(), Histogram::default(), Histogram::default());
        for v in 0..300 {
            if v % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            all.record(v);
        }
        a.merge(&b);
        assert_eq!((a.count(), a.max(), a.quantile(0.99)), (all.count(), all.max(), all.quantile(0.99)));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn the_median_of_client_figures_is_the_middle_one() {
        assert_eq!(median(&mut [5, 1, 9]), Some(5));
        assert_eq!(median(&mut [4, 1, 9, 7]), Some(4));
        assert_eq!(median(&mut []), None);
    }
}
