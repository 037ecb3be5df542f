//! How a simulated car gets its samples to the broker: its protocol (JSON, or GB/T 32960 of
//! one edition), the dead spots where it loses coverage for a few minutes and keeps its
//! samples, and the upload of that backlog when it is back. No I/O: messages are offered
//! to an [`Outbox`] the caller provides, which may refuse them when full.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_domain::{Sample, SampleSource, Vin};
use fleet_gbt32960::{Edition, encode_heartbeat, encode_logout};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::payload::{beijing_naive, gbt_topic, json_batch, json_object, json_topic};
use super::terminal::{LoginSerials, encode_login, encode_sample};

/// How often a car loses coverage, per hour of driving around.
pub const DEAD_SPOTS_PER_HOUR: f64 = 0.03;
/// How long a dead spot lasts, in minutes.
const DEAD_SPOT_MIN: std::ops::Range<f64> = 2.0..10.0;
/// Samples a car keeps while it cannot send; beyond this the oldest are lost (and counted).
pub const MAX_BACKLOG: usize = 20_000;
/// Backlog JSON batches sent per sample, so that a returning car catches up within a few
/// intervals without flooding its connection.
const BATCHES_PER_TICK: usize = 2;
/// Backlog GB/T re-issued frames (one sample each) sent per sample.
const REISSUES_PER_TICK: usize = 30;
/// Between GB/T heartbeats.
const HEARTBEAT_EVERY: TimeDelta = TimeDelta::seconds(60);

/// How a car reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Gbt32960(Edition),
}

impl Protocol {
    pub fn source(self) -> SampleSource {
        match self {
            Protocol::Json => SampleSource::Json,
            Protocol::Gbt32960(e) => e.source(),
        }
    }
}

/// Whether an outbox took a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Taken,
    /// Not now: try again later.
    Full,
    /// Never again: the connection is gone.
    Closed,
}

/// Where a car's messages go (an MQTT client's request queue, or a test's vector).
pub trait Outbox {
    fn offer(&mut self, topic: &str, payload: Vec<u8>) -> Offer;
}

/// What happened to a car's messages on one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Samples lost because the backlog was full.
    pub dropped: u64,
    /// Messages the outbox refused for good.
    pub refused: u64,
}

/// A car's connection to the platform. See the module documentation.
#[derive(Debug)]
pub struct Uplink {
    vin: Vin,
    protocol: Protocol,
    topic: String,
    rng: StdRng,
    offline_until: Option<DateTime<Utc>>,
    /// Samples not yet sent, oldest first.
    backlog: VecDeque<Sample>,
    /// The connection epoch this car last logged in on (GB/T only).
    session: Option<u64>,
    login_serials: LoginSerials,
    next_heartbeat: Option<DateTime<Utc>>,
}

impl Uplink {
    pub fn new(vin: Vin, protocol: Protocol, seed: u64) -> Self {
        let topic = match protocol {
            Protocol::Json => json_topic(&vin),
            Protocol::Gbt32960(_) => gbt_topic(&vin),
        };
        Self {
            vin,
            protocol,
            topic,
            rng: StdRng::seed_from_u64(seed),
            offline_until: None,
            backlog: VecDeque::new(),
            session: None,
            login_serials: LoginSerials::default(),
            next_heartbeat: None,
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether the car is in a dead spot.
    pub fn is_offline(&self) -> bool {
        self.offline_until.is_some()
    }

    /// Samples waiting to be sent.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Handles the car's newest sample, taken `dt` after the previous one. `link` is the
    /// epoch of the connection when it is up (a new epoch means a new session, so GB/T cars
    /// log in again), `None` while it is down.
    pub fn handle(&mut self, sample: Sample, dt: Duration, link: Option<u64>, out: &mut impl Outbox) -> Delivery {
        let now = sample.ts;
        let mut delivery = Delivery::default();
        let epoch = match (self.coverage(now, dt), link) {
            (true, Some(epoch)) => epoch,
            _ => {
                delivery.dropped += self.keep(sample);
                return delivery;
            }
        };
        if let Protocol::Gbt32960(edition) = self.protocol
            && self.session != Some(epoch)
        {
            let serial = self.login_serials.next(now);
            let login = encode_login(edition, &self.vin, beijing_naive(now), serial);
            match self.offer(out, login, &mut delivery) {
                Offer::Taken => self.session = Some(epoch),
                Offer::Full | Offer::Closed => {
                    delivery.dropped += self.keep(sample);
                    return delivery;
                }
            }
        }
        let live = match self.protocol {
            Protocol::Json => json_object(&sample),
            Protocol::Gbt32960(edition) => encode_sample(edition, false, &sample),
        };
        if self.offer(out, live, &mut delivery) != Offer::Taken {
            delivery.dropped += self.keep(sample);
            return delivery;
        }
        self.upload_backlog(out, &mut delivery);
        if let Protocol::Gbt32960(edition) = self.protocol
            && self.next_heartbeat.is_none_or(|t| now >= t)
        {
            self.offer(out, encode_heartbeat(edition, &self.vin), &mut delivery);
            self.next_heartbeat = Some(now + HEARTBEAT_EVERY);
        }
        delivery
    }

    /// A GB/T car logs out of its session at `now` (when the simulator stops).
    pub fn logout(&mut self, now: DateTime<Utc>, link: Option<u64>, out: &mut impl Outbox) -> Delivery {
        let mut delivery = Delivery::default();
        if let Protocol::Gbt32960(edition) = self.protocol
            && link.is_some()
            && self.session == link
            && !self.is_offline()
        {
            let frame = encode_logout(edition, &self.vin, beijing_naive(now), self.login_serials.current());
            self.offer(out, frame, &mut delivery);
            self.session = None;
        }
        delivery
    }

    /// Rolls for a dead spot: whether the car has coverage at `now`.
    fn coverage(&mut self, now: DateTime<Utc>, dt: Duration) -> bool {
        if let Some(until) = self.offline_until {
            if now < until {
                return false;
            }
            self.offline_until = None;
        }
        let p = 1.0 - (-DEAD_SPOTS_PER_HOUR * dt.as_secs_f64() / 3_600.0).exp();
        if self.rng.random_bool(p.clamp(0.0, 1.0)) {
            let minutes = self.rng.random_range(DEAD_SPOT_MIN);
            self.offline_until = Some(now + TimeDelta::milliseconds((minutes * 60_000.0) as i64));
            // The terminal's session ends with its connection: it logs in again on return.
            self.session = None;
            return false;
        }
        true
    }

    /// Keeps a sample for later; gives how many old ones were lost to make room.
    fn keep(&mut self, sample: Sample) -> u64 {
        let mut dropped = 0;
        while self.backlog.len() >= MAX_BACKLOG {
            self.backlog.pop_front();
            dropped += 1;
        }
        self.backlog.push_back(sample);
        dropped
    }

    /// Sends a bounded part of the backlog: JSON cars as array batches, GB/T cars as
    /// re-issued reports (command 0x03), one frame per message.
    fn upload_backlog(&mut self, out: &mut impl Outbox, delivery: &mut Delivery) {
        match self.protocol {
            Protocol::Json => {
                for _ in 0..BATCHES_PER_TICK {
                    if self.backlog.is_empty() {
                        break;
                    }
                    let (n, payload) = json_batch(self.backlog.make_contiguous());
                    if self.offer(out, payload, delivery) != Offer::Taken {
                        break;
                    }
                    self.backlog.drain(..n);
                }
            }
            Protocol::Gbt32960(edition) => {
                for _ in 0..REISSUES_PER_TICK {
                    let Some(oldest) = self.backlog.front() else { break };
                    let frame = encode_sample(edition, true, oldest);
                    if self.offer(out, frame, delivery) != Offer::Taken {
                        break;
                    }
                    self.backlog.pop_front();
                }
            }
        }
    }

    fn offer(&self, out: &mut impl Outbox, payload: Vec<u8>, delivery: &mut Delivery) -> Offer {
        let offer = out.offer(&self.topic, payload);
        if offer == Offer::Closed {
            delivery.refused += 1;
        }
        offer
    }
}

#[cfg(test)]
mod tests;
