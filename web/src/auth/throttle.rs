//! Failed-login throttling, per process, by client address and username together.
//!
//! - A pair (address, username) that fails [`PAIR_FREE_FAILURES`] times within [`WINDOW`] waits
//!   before its next attempt: [`FIRST_WAIT`] after that failure, doubling with each further
//!   failure up to [`MAX_WAIT`] (a slow guesser gets ever fewer tries, a mistyping owner a few
//!   seconds' pause).
//! - An address that fails [`ADDRESS_FREE_FAILURES`] times within the window, over any usernames,
//!   waits the same way for every username: spraying one password over many accounts stops.
//! - A correct password from an address that has not been failing goes through, whatever other
//!   addresses did to the account: nobody can lock an owner out by failing on purpose.
//!
//! Counts live in memory (an instance's own; a cluster multiplies the allowance by its
//! instances, which the waits keep small). Both maps are bounded: past [`MAX_TRACKED`] keys,
//! expired ones are swept, then the stalest dropped.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures of one (address, username) pair within [`WINDOW`] before it must wait.
pub const PAIR_FREE_FAILURES: usize = 5;
/// Failures from one address, over all usernames, within [`WINDOW`] before it must wait.
pub const ADDRESS_FREE_FAILURES: usize = 20;
/// The sliding window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// The wait after the failure that used up the free ones; each further failure doubles it.
pub const FIRST_WAIT: Duration = Duration::from_secs(30);
/// Longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Keys tracked per map at once.
pub const MAX_TRACKED: usize = 50_000;

/// Counts failed logins per (address, username) and per address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    pairs: Failures<(IpAddr, String)>,
    addresses: Failures<IpAddr>,
}

impl LoginThrottle {
    /// `Err(wait)` while `address` must wait before trying `username` again.
    pub fn check(&self, address: IpAddr, username: &str, now: Instant) -> Result<(), Duration> {
        let pair = self.pairs.wait(&(address, username.to_owned()), PAIR_FREE_FAILURES, now);
        let addr = self.addresses.wait(&address, ADDRESS_FREE_FAILURES, now);
        match pair.max(addr) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt of `address` on `username`.
    pub fn record_failure(&self, address: IpAddr, username: &str, now: Instant) {
        self.pairs.record(&(address, username.to_owned()), now);
        self.addresses.record(&address, now);
    }

    /// Forgets the pair's failures after a successful login (the address's count stays: a
    /// sprayer who guesses one account right does not get a fresh allowance for the rest).
    pub fn clear(&self, address: IpAddr, username: &str) {
        self.pairs.forget(&(address, username.to_owned()));
    }
}

/// Failure times per key, newest last, those within the window only.
#[derive(Debug)]
struct Failures<K> {
    map: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Self { map: Mutex::new(HashMap::new()) }
    }
}

/// How long to wait after `failures` failures when `free` are allowed (the last one at
/// `last`): nothing up to `free`, then [`FIRST_WAIT`] doubling per further failure.
fn wait_after(failures: usize, free: usize, last: Instant, now: Instant) -> Option<Duration> {
    let over = failures.checked_sub(free)?;
    let wait = FIRST_WAIT.saturating_mul(1u32 << over.min(16)).min(MAX_WAIT);
    Some((last + wait).saturating_duration_since(now))
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn wait(&self, key: &K, free: usize, now: Instant) -> Option<Duration> {
        let mut map = self.lock();
        let times = map.get_mut(key)?;
        expire(times, now);
        let last = *times.back()?;
        wait_after(times.len(), free, last, now)
    }

    fn record(&self, key: &K, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(key) {
            sweep(&mut map, now);
        }
        let times = map.entry(key.clone()).or_default();
        expire(times, now);
        times.push_back(now);
        // The count never needs to exceed what reaches MAX_WAIT.
        while times.len() > ADDRESS_FREE_FAILURES.max(PAIR_FREE_FAILURES) + 16 {
            times.pop_front();
        }
    }

    fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, VecDeque<Instant>>> {
        // A panic while holding the lock leaves only counters behind: still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn expire(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
        times.pop_front();
    }
}

fn sweep<K: Hash + Eq + Clone>(map: &mut HashMap<K, VecDeque<Instant>>, now: Instant) {
    map.retain(|_, times| {
        expire(times, now);
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn five_failures_of_a_pair_make_it_wait_and_each_further_one_doubles_the_wait() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..4 {
            t.record_failure(ip(1), "alice", t0 + i * S);
            assert_eq!(t.check(ip(1), "alice", t0 + i * S), Ok(()), "failure {i} is free");
        }
        t.record_failure(ip(1), "alice", t0 + 4 * S);
        assert_eq!(t.check(ip(1), "alice", t0 + 4 * S), Err(FIRST_WAIT));
        assert_eq!(t.check(ip(1), "alice", t0 + 4 * S + FIRST_WAIT), Ok(()), "the wait is over");
        let t1 = t0 + 4 * S + FIRST_WAIT;
        t.record_failure(ip(1), "alice", t1);
        assert_eq!(t.check(ip(1), "alice", t1), Err(2 * FIRST_WAIT));
    }

    #[test]
    fn the_owner_from_another_address_is_not_locked_out() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..30 {
            t.record_failure(ip(1), "alice", t0 + i * S);
        }
        assert!(t.check(ip(1), "alice", t0 + 30 * S).is_err());
        assert_eq!(t.check(ip(2), "alice", t0 + 30 * S), Ok(()), "a clean address goes through");
        assert!(t.check(ip(1), "bob", t0 + 30 * S).is_err(), "the failing address is held for every username");
    }

    #[test]
    fn spraying_many_usernames_from_one_address_stops() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..ADDRESS_FREE_FAILURES as u32 {
            assert_eq!(t.check(ip(1), &format!("user{i}"), t0), Ok(()), "attempt {i}");
            t.record_failure(ip(1), &format!("user{i}"), t0);
        }
        assert_eq!(t.check(ip(1), "someone-else", t0), Err(FIRST_WAIT));
        assert_eq!(t.check(ip(2), "someone-else", t0), Ok(()));
    }

    #[test]
    fn waits_are_capped_and_failures_leave_the_window() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..40 {
            t.record_failure(ip(1), "alice", t0);
        }
        assert_eq!(t.check(ip(1), "alice", t0), Err(MAX_WAIT));
        assert_eq!(t.check(ip(1), "alice", t0 + MAX_WAIT), Ok(()));
        assert_eq!(t.check(ip(1), "alice", t0 + WINDOW + S), Ok(()));
    }

    #[test]
    fn a_successful_login_clears_the_pair_but_not_the_address() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..19 {
            t.record_failure(ip(1), &format!("u{i}"), t0);
        }
        for _ in 0..4 {
            t.record_failure(ip(1), "alice", t0);
        }
        t.clear(ip(1), "alice");
        t.record_failure(ip(1), "alice", t0);
        assert!(t.check(ip(1), "alice", t0).is_err(), "the address has failed 24 times");
        let t2 = LoginThrottle::default();
        for _ in 0..4 {
            t2.record_failure(ip(1), "alice", t0);
        }
        t2.clear(ip(1), "alice");
        t2.record_failure(ip(1), "alice", t0);
        assert_eq!(t2.check(ip(1), "alice", t0), Ok(()));
    }
}
