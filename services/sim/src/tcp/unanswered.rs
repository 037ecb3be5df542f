//! A terminal's samples that the gateway has not acknowledged yet, oldest first: those
//! written on the current connection and waiting for their answer (a prefix of the queue,
//! since frames go out in order), then those not written yet. Bounded: past the cap the
//! oldest is dropped and counted.
//!
//! A sample is re-issued data once it could not go out live: taken while the terminal had no
//! session, or left unanswered (or unsent) when a connection ended. After a reconnect those
//! are sent again in order, ahead of newer samples.

use std::collections::VecDeque;

use fleet_domain::Sample;
use tokio::time::Instant;

/// One sample waiting for its answer.
#[derive(Debug)]
struct Entry {
    sample: Sample,
    reissue: bool,
    /// Times written to a gateway.
    sends: u8,
    /// On the current connection: written in this frame, waiting for this answer.
    sent: Option<Sent>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    /// What the answer names the frame by (a GB/T 32960 report's time, a JT/T 808 serial).
    key: u64,
    /// The frame's number on this terminal: one frame may carry several samples.
    frame: u32,
    at: Instant,
}

/// The samples answered by one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answered {
    pub samples: usize,
    /// When their frame was written.
    pub sent_at: Instant,
}

/// A terminal's unanswered samples. See the module documentation.
#[derive(Debug)]
pub(super) struct Unanswered {
    entries: VecDeque<Entry>,
    cap: usize,
    /// Entries at the front written on this connection.
    sent_len: usize,
    /// Frames among them.
    frames_in_flight: usize,
    next_frame: u32,
}

impl Unanswered {
    /// An empty queue keeping at most `cap` samples (at least 1).
    pub(super) fn new(cap: usize) -> Self {
        Self { entries: VecDeque::new(), cap: cap.max(1), sent_len: 0, frames_in_flight: 0, next_frame: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Frames written on this connection and not answered yet.
    pub(super) fn frames_in_flight(&self) -> usize {
        self.frames_in_flight
    }

    /// When the oldest frame still waiting for its answer was written.
    pub(super) fn oldest_sent_at(&self) -> Option<Instant> {
        self.entries.front().and_then(|e| e.sent).map(|s| s.at)
    }

    /// Queues a new sample (`reissue`: taken without a session); answers how many old ones
    /// were dropped to make room.
    pub(super) fn keep(&mut self, sample: Sample, reissue: bool) -> u64 {
        let mut dropped = 0;
        while self.entries.len() >= self.cap {
            self.drop_oldest();
            dropped += 1;
        }
        self.entries.push_back(Entry { sample, reissue, sends: 0, sent: None });
        dropped
    }

    fn drop_oldest(&mut self) {
        let Some(oldest) = self.entries.pop_front() else { return };
        if let Some(sent) = oldest.sent {
            self.sent_len -= 1;
            let frame_goes_on = self.entries.front().and_then(|e| e.sent).is_some_and(|s| s.frame == sent.frame);
            if !frame_goes_on {
                self.frames_in_flight -= 1;
            }
        }
    }

    /// Whether the next sample to write is re-issued data; `None` when all are written.
    pub(super) fn next_is_reissue(&self) -> Option<bool> {
        self.entries.get(self.sent_len).map(|e| e.reissue)
    }

    /// The next samples to write, oldest first: at most `max`, all live or all re-issued
    /// (whichever the first is), with that kind.
    pub(super) fn next_unsent(&self, max: usize) -> (Vec<&Sample>, bool) {
        let Some(first) = self.entries.get(self.sent_len) else { return (Vec::new(), false) };
        let reissue = first.reissue;
        let run = self.entries.range(self.sent_len..).take_while(|e| e.reissue == reissue).take(max.max(1));
        (run.map(|e| &e.sample).collect(), reissue)
    }

    /// The first `n` unsent samples went out in one frame named `key`, at `at`. Answers how
    /// many of them were written for the first time and how many again.
    pub(super) fn mark_sent(&mut self, n: usize, key: u64, at: Instant) -> (u64, u64) {
        let frame = self.next_frame;
        self.next_frame = self.next_frame.wrapping_add(1);
        let (mut first, mut again) = (0, 0);
        for e in self.entries.range_mut(self.sent_len..).take(n) {
            if e.sends == 0 {
                first += 1
            } else {
                again += 1
            }
            e.sends = e.sends.saturating_add(1);
            e.sent = Some(Sent { key, frame, at });
        }
        let marked = (first + again) as usize;
        if marked > 0 {
            self.sent_len += marked;
            self.frames_in_flight += 1;
        }
        (first, again)
    }

    /// Removes the first `n` unsent samples (they cannot be written); answers how many went.
    pub(super) fn discard_unsent(&mut self, n: usize) -> u64 {
        let end = (self.sent_len + n).min(self.entries.len());
        self.entries.drain(self.sent_len..end);
        (end - self.sent_len) as u64
    }

    /// A reply named `key` arrived: the oldest frame in flight of that name is answered and
    /// its samples leave the queue.
    pub(super) fn answer(&mut self, key: u64) -> Option<Answered> {
        let at = self.entries.range(..self.sent_len).position(|e| e.sent.is_some_and(|s| s.key == key))?;
        let sent = self.entries[at].sent?;
        let len =
            self.entries.range(at..self.sent_len).take_while(|e| e.sent.is_some_and(|s| s.frame == sent.frame)).count();
        self.entries.drain(at..at + len);
        self.sent_len -= len;
        self.frames_in_flight -= 1;
        Some(Answered { samples: len, sent_at: sent.at })
    }

    /// The connection ended: everything left is re-issued data for the next one, except the
    /// samples already written `max_sends` times, which are given up (answered: how many).
    pub(super) fn connection_lost(&mut self, max_sends: u8) -> u64 {
        let before = self.entries.len();
        self.entries.retain(|e| e.sends < max_sends);
        for e in &mut self.entries {
            e.sent = None;
            e.reissue = true;
        }
        self.sent_len = 0;
        self.frames_in_flight = 0;
        (before - self.entries.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};
    use fleet_domain::{SampleSource, Vin};

    use super::*;

    fn sample(i: i64) -> Sample {
        let vin = Vin::parse("LZSEVS1M0SZ000001").unwrap();
        let ts = DateTime::from_timestamp(1_764_122_400, 0).unwrap() + TimeDelta::seconds(i);
        Sample::at(vin, ts, 30.0, 122.1, SampleSource::Jt808)
    }

    fn secs(s: &[&Sample]) -> Vec<i64> {
        s.iter().map(|s| s.ts.timestamp() - 1_764_122_400).collect()
    }

    #[test]
    fn answers_take_their_frames_samples_out_in_any_order() {
        let now = Instant::now();
        let mut q = Unanswered::new(10);
        for i in 0..4 {
            q.keep(sample(i), false);
        }
        // One frame of one sample, one of two (a batch), one of one.
        assert_eq!(q.mark_sent(1, 100, now), (1, 0));
        assert_eq!(q.mark_sent(2, 101, now), (2, 0));
        assert_eq!(q.mark_sent(1, 102, now), (1, 0));
        assert_eq!(q.frames_in_flight(), 3);
        assert_eq!(q.answer(101).map(|a| a.samples), Some(2));
        assert_eq!(q.answer(101), None, "answered once");
        assert_eq!(q.answer(999), None);
        assert_eq!(q.answer(100).map(|a| a.samples), Some(1));
        assert_eq!((q.len(), q.frames_in_flight()), (1, 1));
        assert_eq!(q.answer(102).map(|a| a.sent_at), Some(now));
        assert!(q.is_empty() && q.oldest_sent_at().is_none());
    }

    #[test]
    fn frames_of_the_same_name_are_answered_oldest_first() {
        let now = Instant::now();
        let mut q = Unanswered::new(10);
        q.keep(sample(0), false);
        q.keep(sample(1), false);
        q.mark_sent(1, 7, now);
        q.mark_sent(1, 7, now);
        assert_eq!(q.answer(7).map(|a| a.samples), Some(1));
        assert_eq!(q.len(), 1);
        assert_eq!(q.frames_in_flight(), 1);
    }

    #[test]
    fn after_a_lost_connection_everything_left_is_reissued_in_order() {
        let now = Instant::now();
        let mut q = Unanswered::new(10);
        for i in 0..3 {
            q.keep(sample(i), false);
        }
        q.mark_sent(1, 0, now);
        q.mark_sent(1, 1, now);
        assert_eq!(q.connection_lost(5), 0);
        q.keep(sample(3), false);
        let (next, reissue) = q.next_unsent(10);
        assert!(reissue);
        assert_eq!(secs(&next), [0, 1, 2], "the new live sample waits behind the re-issued ones");
        assert_eq!(q.mark_sent(3, 9, now), (1, 2), "sample 2 was never written before");
        let (next, reissue) = q.next_unsent(10);
        assert!(!reissue);
        assert_eq!(secs(&next), [3]);
    }

    #[test]
    fn discards_unsent_samples_only() {
        let now = Instant::now();
        let mut q = Unanswered::new(10);
        for i in 0..4 {
            q.keep(sample(i), false);
        }
        q.mark_sent(1, 0, now);
        assert_eq!(q.discard_unsent(2), 2);
        assert_eq!(secs(&q.next_unsent(10).0), [3]);
        assert_eq!(q.discard_unsent(5), 1);
        assert_eq!((q.len(), q.frames_in_flight()), (1, 1));
    }

    #[test]
    fn gives_up_samples_sent_too_often() {
        let now = Instant::now();
        let mut q = Unanswered::new(10);
        q.keep(sample(0), false);
        q.keep(sample(1), false);
        q.mark_sent(1, 0, now);
        q.connection_lost(2);
        q.mark_sent(2, 1, now);
        assert_eq!(q.connection_lost(2), 1, "sample 0 went out twice");
        assert_eq!(secs(&q.next_unsent(10).0), [1]);
    }

    #[test]
    fn drops_the_oldest_past_the_cap_even_when_in_flight() {
        let now = Instant::now();
        let mut q = Unanswered::new(3);
        for i in 0..3 {
            q.keep(sample(i), false);
        }
        q.mark_sent(2, 0, now);
        assert_eq!(q.keep(sample(3), false), 1);
        assert_eq!(q.frames_in_flight(), 1, "half of the batch is still in flight");
        assert_eq!(q.keep(sample(4), false), 1);
        assert_eq!(q.frames_in_flight(), 0);
        assert_eq!(q.answer(0), None, "the dropped frame's answer finds nothing");
        assert_eq!(secs(&q.next_unsent(10).0), [2, 3, 4]);
    }
}
