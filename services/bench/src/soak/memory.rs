//! What the soak makes of fleetd's RSS samples.
//!
//! Growth is measured between two windows of equal length after the warm-up: the first
//! `w` seconds after it and the last `w` seconds of the run, `w` = 5 minutes or half of
//! what follows the warm-up if that is shorter (so the two never overlap). Each window's
//! figure is the median of its samples, so one allocator spike or one late burst does not
//! decide the verdict the way a single first and last reading would:
//! `growth = median(last window) / median(first window) − 1`.
//! Least-squares slopes are reported beside it: over everything after the warm-up, and over
//! the second half of that alone. A leak keeps the second slope up; memory that is still
//! settling (caches filling, the allocator's arenas growing to their working size) rises
//! early and shows a second slope near zero.

/// Longest comparison window.
pub(super) const WINDOW_S: f64 = 300.0;

/// One RSS reading, seconds after the load started.
#[derive(Debug, Clone, Copy)]
pub(super) struct RssPoint {
    pub t_s: f64,
    pub mib: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RssFigures {
    /// Median of the first window after the warm-up.
    pub after_warmup_mib: f64,
    /// Median of the last window.
    pub end_mib: f64,
    /// Highest reading of the whole run, warm-up included.
    pub max_mib: f64,
    pub growth_ratio: f64,
    /// Least-squares slope after the warm-up, MiB per hour.
    pub slope_mib_per_h: f64,
    /// The same over the second half of what follows the warm-up.
    pub slope_second_half_mib_per_h: f64,
    /// Length of each comparison window.
    pub window_s: f64,
}

/// The figures of a run whose warm-up ends at `warmup_s` and whose load ends at `end_s`;
/// None without a reading in either window.
pub(super) fn summarize(points: &[RssPoint], warmup_s: f64, end_s: f64) -> Option<RssFigures> {
    let span = end_s - warmup_s;
    if span <= 0.0 {
        return None;
    }
    let window_s = (span / 2.0).min(WINDOW_S);
    let within =
        |from: f64, to: f64| points.iter().filter(|p| p.t_s >= from && p.t_s <= to).map(|p| p.mib).collect::<Vec<_>>();
    let after_warmup_mib = median(within(warmup_s, warmup_s + window_s))?;
    let end_mib = median(within(end_s - window_s, end_s))?;
    let max_mib = points.iter().map(|p| p.mib).fold(f64::NAN, f64::max);
    let after: Vec<RssPoint> = points.iter().copied().filter(|p| p.t_s >= warmup_s && p.t_s <= end_s).collect();
    let second_half: Vec<RssPoint> = after.iter().copied().filter(|p| p.t_s >= warmup_s + span / 2.0).collect();
    Some(RssFigures {
        after_warmup_mib,
        end_mib,
        max_mib,
        growth_ratio: end_mib / after_warmup_mib - 1.0,
        slope_mib_per_h: slope(&after) * 3600.0,
        slope_second_half_mib_per_h: slope(&second_half) * 3600.0,
        window_s,
    })
}

/// The median (the mean of the middle two for an even count); None when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Least-squares slope of MiB over seconds; 0 with fewer than two distinct times.
fn slope(points: &[RssPoint]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mt, mm) = (points.iter().map(|p| p.t_s).sum::<f64>() / n, points.iter().map(|p| p.mib).sum::<f64>() / n);
    let (num, den) =
        points.iter().fold((0.0, 0.0), |(num, den), p| (num + (p.t_s - mt) * (p.mib - mm), den + (p.t_s - mt).powi(2)));
    if den > 0.0 { num / den } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading every 10 s for `minutes`, from `f(t_s)`.
    fn run(minutes: u32, f: impl Fn(f64) -> f64) -> Vec<RssPoint> {
        (0..=minutes * 6).map(|k| f64::from(k) * 10.0).map(|t_s| RssPoint { t_s, mib: f(t_s) }).collect()
    }

    #[test]
    fn a_flat_run_has_no_growth_whatever_the_warm_up_did() {
        let points = run(60, |t| if t < 360.0 { 20.0 + t / 10.0 } else { 60.0 });
        let f = summarize(&points, 360.0, 3600.0).unwrap();
        assert_eq!((f.after_warmup_mib, f.end_mib, f.growth_ratio, f.window_s), (60.0, 60.0, 0.0, 300.0));
        assert_eq!(f.max_mib, 60.0);
        assert!(f.slope_mib_per_h.abs() < 1e-9);
    }

    #[test]
    fn a_steady_leak_shows_in_growth_and_slope() {
        // 100 MiB after the warm-up, +20 MiB an hour.
        let points = run(60, |t| 100.0 + (t - 360.0) / 180.0);
        let f = summarize(&points, 360.0, 3600.0).unwrap();
        // Window medians at 360 + 150 s and 3600 − 150 s.
        let (a, e) = (100.0 + 150.0 / 180.0, 100.0 + 3090.0 / 180.0);
        assert!((f.after_warmup_mib - a).abs() < 1e-9 && (f.end_mib - e).abs() < 1e-9, "{f:?}");
        assert!((f.growth_ratio - (e / a - 1.0)).abs() < 1e-12);
        assert!((f.slope_mib_per_h - 20.0).abs() < 1e-9);
        assert!((f.slope_second_half_mib_per_h - 20.0).abs() < 1e-9);
    }

    #[test]
    fn memory_that_settles_shows_a_flat_second_half() {
        // Rises 30 MiB over the first 24 minutes after the warm-up, then stays.
        let points = run(60, |t| 220.0 + ((t - 360.0).max(0.0) / 1440.0).min(1.0) * 30.0);
        let f = summarize(&points, 360.0, 3600.0).unwrap();
        assert!(f.growth_ratio > 0.1 && f.slope_mib_per_h > 10.0, "{f:?}");
        assert!(f.slope_second_half_mib_per_h.abs() < 1e-9, "{f:?}");
    }

    #[test]
    fn one_spike_does_not_move_the_verdict() {
        let points = run(60, |t| if (t - 3550.0).abs() < 1.0 { 400.0 } else { 80.0 });
        let f = summarize(&points, 360.0, 3600.0).unwrap();
        assert_eq!((f.end_mib, f.growth_ratio, f.max_mib), (80.0, 0.0, 400.0));
    }

    #[test]
    fn a_short_run_splits_what_follows_the_warm_up_in_two() {
        // Three minutes: one of warm-up, two measured; windows of one minute each.
        let points = run(3, |t| if t < 120.0 { 50.0 } else { 55.0 });
        let f = summarize(&points, 60.0, 180.0).unwrap();
        assert_eq!(f.window_s, 60.0);
        // The reading at 120 s belongs to both windows' edges; the medians still differ.
        assert_eq!((f.after_warmup_mib, f.end_mib), (50.0, 55.0));
        assert!((f.growth_ratio - 0.1).abs() < 1e-12);
        assert!(summarize(&points, 180.0, 180.0).is_none());
        assert!(summarize(&[], 60.0, 180.0).is_none());
    }
}
