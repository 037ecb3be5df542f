//! What the TCP terminals of a run did, counted as they go. One [`TcpStats`] is shared by
//! every terminal task (atomics on the counting path; one short lock per answered report for
//! the latency reservoir) and read by whoever else holds its `Arc`: the simulator's final
//! report, or a benchmark while the run goes on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Reply latencies kept for the percentiles: a uniform sample of all of them (reservoir
/// sampling) once more have come, so the memory stays fixed however long the run.
pub const LATENCY_RESERVOIR: usize = 100_000;

/// The counters of a run's TCP terminals. See the module documentation.
#[derive(Debug)]
pub struct TcpStats {
    sent: AtomicU64,
    resent: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    given_up: AtomicU64,
    abandoned: AtomicU64,
    sessions: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: AtomicU64,
    login_refused: AtomicU64,
    heartbeats: AtomicU64,
    connected: AtomicU64,
    latencies: Mutex<Reservoir>,
}

/// A snapshot of [`TcpStats`]' counters. Reports count samples (a JT/T 808 batch upload
/// carries several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounts {
    /// Samples written to a gateway for the first time.
    pub sent: u64,
    /// Samples written again, on a later connection, after going unanswered.
    pub resent: u64,
    /// Samples the gateway acknowledged as stored.
    pub acked: u64,
    /// Samples the gateway answered with an error.
    pub refused: u64,
    /// Unanswered samples dropped, oldest first, to keep a terminal's queue bounded.
    pub dropped: u64,
    /// Samples dropped after being sent the most times a terminal tries.
    pub given_up: u64,
    /// Samples still unanswered (or unsent) when the run stopped.
    pub abandoned: u64,
    /// Sessions opened (connected and logged in).
    pub sessions: u64,
    /// Sessions opened by a terminal that had had one before: reconnections.
    pub reconnects: u64,
    /// Attempts to connect and log in that failed (refused logins included).
    pub connect_failures: u64,
    /// Logins (GB/T 32960) or registrations and authentications (JT/T 808) the gateway refused.
    pub login_refused: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Terminals logged in right now.
    pub connected: u64,
}

/// Reply latencies: how many were recorded, and quantiles of the kept sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Replies timed since the start (or the last [`TcpStats::reset_latencies`]).
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    /// The slowest of all, not just of the kept sample.
    pub max: Duration,
}

impl Default for TcpStats {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpStats {
    pub fn new() -> Self {
        Self {
            sent: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            given_up: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            login_refused: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            latencies: Mutex::new(Reservoir::new()),
        }
    }

    /// The counters now.
    pub fn counts(&self) -> TcpCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TcpCounts {
            sent: get(&self.sent),
            resent: get(&self.resent),
            acked: get(&self.acked),
            refused: get(&self.refused),
            dropped: get(&self.dropped),
            given_up: get(&self.given_up),
            abandoned: get(&self.abandoned),
            sessions: get(&self.sessions),
            reconnects: get(&self.reconnects),
            connect_failures: get(&self.connect_failures),
            login_refused: get(&self.login_refused),
            heartbeats: get(&self.heartbeats),
            connected: get(&self.connected),
        }
    }

    /// Reply latencies from handing a report frame to the socket to reading its answer.
    pub fn latencies(&self) -> LatencySummary {
        self.reservoir().summary()
    }

    /// Forgets the latencies recorded so far (a benchmark measuring one phase of a run).
    pub fn reset_latencies(&self) {
        *self.reservoir() = Reservoir::new();
    }

    pub(super) fn record_latency(&self, latency: Duration) {
        self.reservoir().record(latency);
    }

    fn reservoir(&self) -> std::sync::MutexGuard<'_, Reservoir> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn sent(&self, first: u64, again: u64) {
        self.sent.fetch_add(first, Ordering::Relaxed);
        self.resent.fetch_add(again, Ordering::Relaxed);
    }

    pub(super) fn acked(&self, n: u64) {
        self.acked.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn refused(&self, n: u64) {
        self.refused.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn given_up(&self, n: u64) {
        self.given_up.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn abandoned(&self, n: u64) {
        self.abandoned.fetch_add(n, Ordering::Relaxed);
    }

    /// A session opened; `again` when the terminal had one before.
    pub(super) fn session_opened(&self, again: bool) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        if again {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn session_closed(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn connect_failed(&self, refused: bool) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        if refused {
            self.login_refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }
}

/// A uniform random sample of at most [`LATENCY_RESERVOIR`] latencies (Vitter's algorithm
/// R), in microseconds, and the exact count and maximum.
#[derive(Debug)]
struct Reservoir {
    kept: Vec<u32>,
    seen: u64,
    max_us: u64,
    rng: SmallRng,
}

impl Reservoir {
    fn new() -> Self {
        Self { kept: Vec::new(), seen: 0, max_us: 0, rng: SmallRng::seed_from_u64(0x1A7E_0C1E) }
    }

    fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.max_us = self.max_us.max(us);
        self.seen += 1;
        let value = u32::try_from(us).unwrap_or(u32::MAX);
        if self.kept.len() < LATENCY_RESERVOIR {
            self.kept.push(value);
        } else {
            let slot = self.rng.random_range(0..self.seen);
            if let Some(kept) = usize::try_from(slot).ok().and_then(|s| self.kept.get_mut(s)) {
                *kept = value;
            }
        }
    }

    fn summary(&self) -> LatencySummary {
        let mut sorted = self.kept.clone();
        sorted.sort_unstable();
        let quantile = |q: f64| {
            let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
            Duration::from_micros(sorted.get(at).copied().map_or(0, u64::from))
        };
        LatencySummary {
            count: self.seen,
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
            max: Duration::from_micros(self.max_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_are_of_what_was_recorded() {
        let stats = TcpStats::new();
        assert_eq!(stats.latencies(), LatencySummary::default());
        for ms in 1..=100 {
            stats.record_latency(Duration::from_millis(ms));
        }
        let l = stats.latencies();
        assert_eq!(l.count, 100);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (ms(50), ms(90), ms(99), ms(100)));
        stats.reset_latencies();
        assert_eq!(stats.latencies().count, 0);
    }

    #[test]
    fn the_reservoir_stays_bounded_and_keeps_a_fair_sample() {
        let mut r = Reservoir::new();
        // Ten times the reservoir, half 1 ms and half 3 ms, interleaved.
        for i in 0..LATENCY_RESERVOIR as u64 * 10 {
            r.record(ms(if i % 2 == 0 { 1 } else { 3 }));
        }
        assert_eq!(r.kept.len(), LATENCY_RESERVOIR);
        let ones = r.kept.iter().filter(|&&us| us == 1_000).count() as f64;
        let share = ones / LATENCY_RESERVOIR as f64;
        assert!((0.47..0.53).contains(&share), "{share}");
        assert_eq!(r.summary().max, ms(3));
    }

    #[test]
    fn counts_sessions_reconnects_and_the_connected_gauge() {
        let stats = TcpStats::new();
        stats.session_opened(false);
        stats.session_closed();
        stats.session_opened(true);
        stats.connect_failed(true);
        stats.sent(3, 2);
        let c = stats.counts();
        assert_eq!((c.sessions, c.reconnects, c.connected), (2, 1, 1));
        assert_eq!((c.connect_failures, c.login_refused), (1, 1));
        assert_eq!((c.sent, c.resent), (3, 2));
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
