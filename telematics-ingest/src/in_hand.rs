//! Messages in hand: received from the broker and not yet committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One ingest run's count of messages in hand, and the process's total on the bus
/// ([`fleet_bus::Bus::ingest_in_hand`]). The run's connection pauses reading on its own count;
/// trip derivation gives way on the total. A process may run several ingests at once (a
/// cluster member holding the sessions of members that are down), each with its own count.
#[derive(Clone)]
pub(crate) struct InHand {
    own: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl InHand {
    pub(crate) fn new(total: Arc<AtomicU64>) -> Self {
        Self { own: Arc::default(), total }
    }

    /// This run's count.
    pub(crate) fn get(&self) -> u64 {
        self.own.load(Ordering::Relaxed)
    }

    /// One more message received; answers the process's total.
    pub(crate) fn received(&self) -> u64 {
        self.own.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `n` messages committed; answers the process's total.
    pub(crate) fn committed(&self, n: u64) -> u64 {
        take(&self.own, n);
        take(&self.total, n)
    }

    /// The run ends: what it still holds is the broker's again (redelivered later), and
    /// leaves the total.
    pub(crate) fn release(&self) {
        take(&self.total, self.own.swap(0, Ordering::Relaxed));
    }
}

/// Subtracts `n`, stopping at zero; answers what is left.
fn take(count: &AtomicU64, n: u64) -> u64 {
    let before = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c.saturating_sub(n))).unwrap_or(0);
    before.saturating_sub(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_count_their_own_messages_and_the_total_holds_them_all() {
        let total = Arc::new(AtomicU64::new(0));
        let (a, b) = (InHand::new(total.clone()), InHand::new(total.clone()));
        for _ in 0..5 {
            a.received();
        }
        assert_eq!(b.received(), 6);
        assert_eq!((a.get(), b.get()), (5, 1));
        assert_eq!(a.committed(2), 4);
        // A run that ends takes only what it still holds out of the total.
        a.release();
        assert_eq!((a.get(), b.get(), total.load(Ordering::Relaxed)), (0, 1, 1));
        assert_eq!(b.committed(1), 0);
        // Never below zero.
        assert_eq!(b.committed(3), 0);
        assert_eq!(total.load(Ordering::Relaxed), 0);
    }
}
