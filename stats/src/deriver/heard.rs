//! What the deriver heard from the bus and has not derived yet: the cars waiting, each with
//! the span its new samples cover, and whether events were missed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_bus::Event;
use fleet_domain::Vin;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// What the deriver heard from the bus and has not derived yet.
pub(super) struct Heard {
    pub(super) dirty: Dirty,
    /// Events were missed: every car is derived from its newest trip at the next pass.
    pub(super) need_catch_up: bool,
}

impl Heard {
    /// Takes in one event; false once the bus is closed.
    pub(super) fn apply(&mut self, event: Result<Event, RecvError>) -> bool {
        match event {
            Ok(Event::SamplesCommitted(samples)) => {
                // A sample whose clock was ahead is left out of derivation: nothing to redo.
                for s in samples.iter().filter(|s| s.moves_state()) {
                    self.dirty.mark(&s.vin, s.ts, s.ts);
                }
            }
            Ok(Event::Resync) => {
                tracing::warn!("events from another instance may be missing; catching up from storage");
                self.need_catch_up = true;
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(events.missed = missed, "trip derivation fell behind the bus; catching up from storage");
                metrics::counter!("fleet_stats_bus_lagged_total").increment(1);
                self.need_catch_up = true;
            }
            Err(RecvError::Closed) => return false,
        }
        true
    }

    /// Takes in every event already waiting, without waiting for more.
    pub(super) fn drain(&mut self, events: &mut broadcast::Receiver<Event>) {
        loop {
            let event = match events.try_recv() {
                Ok(e) => Ok(e),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            };
            self.apply(event);
        }
    }
}

/// Cars waiting for a derivation, first come first served, each with the time span its new
/// samples cover.
#[derive(Default)]
pub(super) struct Dirty {
    pub(super) queue: std::collections::VecDeque<Vin>,
    spans: HashMap<Vin, Span>,
}

/// The time span new samples of a car cover.
pub(super) type Span = (DateTime<Utc>, DateTime<Utc>);

impl Dirty {
    pub(super) fn mark(&mut self, vin: &Vin, from: DateTime<Utc>, to: DateTime<Utc>) {
        match self.spans.get_mut(vin) {
            Some((a, b)) => {
                *a = (*a).min(from);
                *b = (*b).max(to);
            }
            None => {
                self.spans.insert(vin.clone(), (from, to));
                self.queue.push_back(vin.clone());
            }
        }
    }

    pub(super) fn take(&mut self, n: usize) -> Vec<(Vin, Span)> {
        let n = n.min(self.queue.len());
        self.queue.drain(..n).filter_map(|vin| self.spans.remove(&vin).map(|span| (vin, span))).collect()
    }

    /// Returns cars taken for a pass that was cut short to the front of the queue, in their
    /// order; a car marked again meanwhile keeps its place and gets the union of both spans.
    pub(super) fn put_back(&mut self, cars: impl Iterator<Item = (Vin, Span)>) {
        let cars: Vec<_> = cars.collect();
        for (vin, (from, to)) in cars.into_iter().rev() {
            match self.spans.get_mut(&vin) {
                Some((a, b)) => {
                    *a = (*a).min(from);
                    *b = (*b).max(to);
                }
                None => {
                    self.spans.insert(vin.clone(), (from, to));
                    self.queue.push_front(vin);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vin(i: u8) -> Vin {
        Vin::parse(&format!("LSJA24U66NS00000{i}")).expect("a valid VIN")
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).expect("a valid time")
    }

    fn committed(i: u8, s: i64) -> Event {
        let sample = fleet_domain::Sample::at(vin(i), t(s), 30.0, 122.0, fleet_domain::SampleSource::Json);
        Event::SamplesCommitted(std::sync::Arc::from(vec![sample]))
    }

    #[test]
    fn draining_between_cars_takes_in_what_the_bus_brought_and_notices_a_lag() {
        let (tx, mut rx) = broadcast::channel(4);
        let mut heard = Heard { dirty: Dirty::default(), need_catch_up: false };
        for (i, s) in [(1, 10), (2, 20), (1, 30)] {
            tx.send(committed(i, s)).unwrap();
        }
        heard.drain(&mut rx);
        assert!(!heard.need_catch_up);
        assert_eq!(heard.dirty.take(10), [(vin(1), (t(10), t(30))), (vin(2), (t(20), t(20)))]);
        heard.drain(&mut rx);
        assert!(heard.dirty.take(10).is_empty(), "nothing new, nothing marked");
        // More than the bus keeps: the missed ones can only be found in storage.
        for s in 0..6 {
            tx.send(committed(3, s)).unwrap();
        }
        heard.drain(&mut rx);
        assert!(heard.need_catch_up);
        assert_eq!(heard.dirty.take(10), [(vin(3), (t(2), t(5)))], "the events still kept are marked too");
    }

    #[test]
    fn a_pass_cut_short_puts_its_untried_cars_back_in_front_in_order() {
        let mut dirty = Dirty::default();
        for i in 1..=4 {
            dirty.mark(&vin(i), t(i.into()), t(i.into()));
        }
        let taken = dirty.take(3);
        // Car 1 was derived; the database went away at car 2.
        dirty.put_back(taken.into_iter().skip(1));
        let next = dirty.take(10);
        assert_eq!(next, [(vin(2), (t(2), t(2))), (vin(3), (t(3), t(3))), (vin(4), (t(4), t(4)))]);
    }

    #[test]
    fn a_car_marked_again_meanwhile_keeps_one_place_with_both_spans() {
        let mut dirty = Dirty::default();
        dirty.mark(&vin(1), t(10), t(20));
        dirty.mark(&vin(2), t(10), t(20));
        let taken = dirty.take(2);
        dirty.mark(&vin(2), t(50), t(60));
        dirty.put_back(taken.into_iter());
        assert_eq!(dirty.take(10), [(vin(1), (t(10), t(20))), (vin(2), (t(10), t(60)))]);
    }
}
