//! Samples stamped ahead of the receiving clock: flagged on receipt, counted, and reported
//! at most once per vehicle per [`WARN_EVERY`].
//!
//! A terminal whose clock is wrong can stamp a sample hours ahead. Taken as the vehicle's
//! present, it would become the state, and since the state never moves back every real
//! sample after it would be ignored until the clock caught up. Such a sample is stored with
//! its flag set (`Sample::clock_ahead`); storage, the live feed and trip derivation pass it by.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_domain::{Sample, Vin};
use tokio::time::Instant;

/// The warning about one vehicle's clock is repeated at most this often (the counter
/// `fleet_ingest_samples_from_future_total` counts every sample).
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10 * 60);

/// Flags samples from the future; remembers when each vehicle was last warned about.
pub(crate) struct ClockCheck {
    tolerance: Duration,
    warned: HashMap<Vin, Instant>,
}

impl ClockCheck {
    pub(crate) fn new(tolerance: Duration) -> Self {
        Self { tolerance, warned: HashMap::new() }
    }

    /// Flags every sample more than the tolerance ahead of `received`.
    pub(crate) fn check(&mut self, samples: &mut [Sample], received: DateTime<Utc>) {
        for s in samples.iter_mut() {
            if !s.flag_clock_ahead(received, self.tolerance) {
                continue;
            }
            metrics::counter!("fleet_ingest_samples_from_future_total").increment(1);
            let now = Instant::now();
            let due = self.warned.get(&s.vin).is_none_or(|last| now.duration_since(*last) >= WARN_EVERY);
            if due {
                self.warned.insert(s.vin.clone(), now);
                let ahead_s = (s.ts - received).num_seconds();
                tracing::warn!(vehicle.vin = %s.vin, sample.ts = %s.ts, ahead_s, "sample stamped ahead of this clock: stored, flagged, and kept from moving the vehicle's state");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_domain::SampleSource;

    use super::*;

    #[test]
    fn flags_only_the_samples_beyond_the_tolerance() {
        let received = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        let at = |secs: i64| {
            Sample::at(vin.clone(), received + chrono::Duration::seconds(secs), 30.0, 122.1, SampleSource::Json)
        };
        let mut samples = vec![at(-10), at(60), at(23 * 3600), at(301)];
        let mut check = ClockCheck::new(fleet_domain::MAX_CLOCK_AHEAD);
        check.check(&mut samples, received);
        assert_eq!(samples.iter().map(|s| s.clock_ahead).collect::<Vec<_>>(), [false, false, true, true]);
        assert_eq!(check.warned.len(), 1, "one vehicle, warned once");
    }
}
