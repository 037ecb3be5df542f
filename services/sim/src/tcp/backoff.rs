//! How long a terminal waits before connecting again: doubling from a minimum up to a cap,
//! each wait drawn between half and all of its step so that terminals that lost their
//! gateway together do not all come back in the same instant.

use std::time::Duration;

use rand::Rng;

/// A terminal's reconnection backoff. See the module documentation.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Waits from `min` doubling up to `max` (`max` below `min` counts as `min`).
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        Self { min, max: max.max(min), step: min }
    }

    /// After a success: the next failure waits the least again.
    pub(super) fn reset(&mut self) {
        self.step = self.min;
    }

    /// The wait before the next attempt; the one after is up to twice as long.
    pub(super) fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        let half = step / 2;
        half + step.saturating_sub(half).mul_f64(rng.random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_starts_over_after_a_reset() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let steps = [1, 2, 4, 8, 10, 10];
        let waits: Vec<Duration> = steps.iter().map(|_| b.next_delay(&mut rng)).collect();
        for (wait, step) in waits.iter().zip(steps) {
            let step = Duration::from_secs(step);
            assert!(*wait >= step / 2 && *wait <= step, "{wait:?} for a step of {step:?}");
        }
        b.reset();
        assert!(b.next_delay(&mut rng) <= Duration::from_secs(1));
    }

    #[test]
    fn terminals_with_the_same_step_wait_different_times() {
        let mut rng = SmallRng::seed_from_u64(2);
        let waits: std::collections::HashSet<Duration> = (0..20)
            .map(|_| Backoff::new(Duration::from_secs(4), Duration::from_secs(60)).next_delay(&mut rng))
            .collect();
        assert!(waits.len() > 15, "{waits:?}");
    }
}
