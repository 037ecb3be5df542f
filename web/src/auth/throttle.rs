//! Failed-login throttling, per username and per process: after `MAX_FAILURES` failures
//! within `WINDOW`, further attempts are refused until the oldest failure leaves the window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed for one username within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The sliding window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Usernames tracked at once. Past it, expired entries are swept, then the stalest dropped:
/// someone cycling through made-up usernames cannot grow the map without bound.
pub const MAX_TRACKED: usize = 50_000;

/// Counts failed logins per username.
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW)
    }
}

impl LoginThrottle {
    /// A throttle allowing `max_failures` failures per username within `window`.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(wait)` while `username` has used up its failures in the window.
    pub fn check(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.lock();
        let Some(times) = map.get_mut(username) else { return Ok(()) };
        self.expire(times, now);
        if times.len() < self.max_failures {
            if times.is_empty() {
                map.remove(username);
            }
            return Ok(());
        }
        // The attempt becomes possible when the oldest failure counted leaves the window.
        let oldest = times[times.len() - self.max_failures];
        Err((oldest + self.window).saturating_duration_since(now))
    }

    /// Records a failed attempt.
    pub fn record_failure(&self, username: &str, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(username) {
            self.sweep(&mut map, now);
        }
        let times = map.entry(username.to_owned()).or_default();
        self.expire(times, now);
        times.push_back(now);
        // Only the newest `max_failures` ever matter.
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// Forgets the failures of a username (after a successful login).
    pub fn clear(&self, username: &str) {
        self.lock().remove(username);
    }

    fn expire(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            times.pop_front();
        }
    }

    fn sweep(&self, map: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
        map.retain(|_, times| {
            self.expire(times, now);
            !times.is_empty()
        });
        while map.len() >= MAX_TRACKED {
            let stalest = map.iter().min_by_key(|(_, t)| t.back().copied()).map(|(k, _)| k.clone());
            match stalest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock leaves only counters behind: still usable.
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn five_failures_within_the_window_block_the_sixth_attempt() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(t.check("alice", t0 + i * S), Ok(()));
            t.record_failure("alice", t0 + i * S);
        }
        // Blocked until the first failure (at t0) is 5 minutes old.
        assert_eq!(t.check("alice", t0 + 10 * S), Err(WINDOW - 10 * S));
        assert_eq!(t.check("bob", t0 + 10 * S), Ok(()), "other usernames are not affected");
    }

    #[test]
    fn failures_older_than_the_window_no_longer_count() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..5 {
            t.record_failure("alice", t0 + i * S);
        }
        assert_eq!(t.check("alice", t0 + WINDOW - S), Err(S));
        assert_eq!(t.check("alice", t0 + WINDOW), Ok(()), "the oldest failure has left the window");
    }

    #[test]
    fn a_successful_login_clears_the_count() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            t.record_failure("alice", t0);
        }
        t.clear("alice");
        t.record_failure("alice", t0);
        assert_eq!(t.check("alice", t0), Ok(()));
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_block() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..20 {
            let now = t0 + i * 61 * S;
            assert_eq!(t.check("alice", now), Ok(()), "attempt {i}");
            t.record_failure("alice", now);
        }
    }
}
