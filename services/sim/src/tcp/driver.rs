//! One simulated terminal: a car and its connection to a gateway, in one task. The car is
//! stepped every interval whatever the connection does; its samples wait in its
//! [`Unanswered`] queue until the gateway acknowledges them.
//!
//! The task connects and opens a session (the [`Dialect`]'s handshake), writes the queue's
//! samples as report frames, at most [`MAX_FRAMES_IN_FLIGHT`] unanswered at a time, reads
//! the answers, and sends a heartbeat when it has written nothing for a while. When the
//! connection drops, a write fails or an answer is overdue, it backs off and connects again;
//! what was not answered goes again on the new connection, as re-issued data, in order. On
//! stop it finishes writing, waits a moment for the last answers, logs out and closes.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::TcpTiming;
use super::backoff::Backoff;
use super::dialect::{Dialect, Handshake, Reply};
use super::stats::TcpStats;
use super::unanswered::Unanswered;
use crate::control::Driven;

/// Report frames written and not answered yet, per connection; more wait in the queue.
pub(super) const MAX_FRAMES_IN_FLIGHT: usize = 32;
/// A sample written this many times without an answer is given up (a gateway that never
/// answers it, say because it dead-letters it, would otherwise be sent it forever).
pub(super) const MAX_SENDS: u8 = 5;
/// Bytes read from the socket at once: the gateway's answers are a few dozen bytes.
const READ_BUF: usize = 512;
/// Longest wait for one write to the socket.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning of each kind per this long, for the whole run (ten thousand
/// terminals losing one gateway would otherwise log ten thousand lines).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What every terminal of a run shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub gateway: String,
    pub timing: TcpTiming,
    pub interval: Duration,
    /// How far a car's clock moves per interval.
    pub sample_step: Duration,
    pub max_unanswered: usize,
    pub stats: Arc<TcpStats>,
    pub warnings: Warnings,
}

/// Rate limits for the warnings terminals log; finer detail goes to debug.
#[derive(Debug)]
pub(super) struct Warnings {
    start: Instant,
    /// Milliseconds since `start` of the last warning, per kind (connection, refusal).
    last_ms: [AtomicU64; 2],
}

#[derive(Debug, Clone, Copy)]
enum Warning {
    Connection = 0,
    Refusal = 1,
}

impl Warnings {
    pub(super) fn new() -> Self {
        Self { start: Instant::now(), last_ms: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)] }
    }

    /// Whether a warning of `kind` may be logged now.
    fn allow(&self, kind: Warning) -> bool {
        let now = self.start.elapsed().as_millis() as u64;
        let every = WARN_EVERY.as_millis() as u64;
        let slot = &self.last_ms[kind as usize];
        let last = slot.load(Ordering::Relaxed);
        (last == u64::MAX || now.saturating_sub(last) >= every)
            && slot.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// Why a connection attempt or a session ended.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("connecting: {0}")]
    Connect(io::Error),
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("no answer within {0:?}")]
    Overdue(Duration),
    #[error("the gateway closed the connection")]
    Closed,
    #[error("{0}")]
    Io(io::Error),
    #[error("writing took over {WRITE_TIMEOUT:?}")]
    WriteTimeout,
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Encode(String),
}

/// How a session ended.
enum End {
    Stopped,
    Lost(Failure),
}

/// One terminal. See the module documentation.
pub(super) struct Terminal<D> {
    car: Driven,
    dialect: D,
    queue: Unanswered,
    backoff: Backoff,
    rng: SmallRng,
    shared: Arc<Shared>,
}

impl<D: Dialect> Terminal<D> {
    pub(super) fn new(car: Driven, dialect: D, seed: u64, shared: Arc<Shared>) -> Self {
        Self {
            car,
            dialect,
            queue: Unanswered::new(shared.max_unanswered),
            backoff: Backoff::new(shared.timing.backoff_min, shared.timing.backoff_max),
            rng: SmallRng::seed_from_u64(seed),
            shared,
        }
    }

    /// Connects first at `connect_at`, steps the car every interval from one interval
    /// later, until `stop`.
    pub(super) async fn run(mut self, connect_at: Instant, stop: CancellationToken) {
        let interval = self.shared.interval;
        let mut ticks = tokio::time::interval_at(connect_at + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut retry_at = connect_at;
        let mut had_session = false;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = ticks.tick() => {
                    self.take_sample(true);
                    continue;
                }
                () = tokio::time::sleep_until(retry_at) => {}
            }
            let connected = {
                let attempt = connect(&self.shared, &mut self.dialect);
                tokio::pin!(attempt);
                loop {
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => break None,
                        _ = ticks.tick() => keep(&mut self.car, &mut self.queue, &self.shared, true),
                        attempt = &mut attempt => break Some(attempt),
                    }
                }
            };
            let stream = match connected {
                None => break,
                Some(Ok(stream)) => stream,
                Some(Err(failure)) => {
                    let refused = matches!(failure, Failure::Refused(_));
                    self.shared.stats.connect_failed(refused);
                    self.warn(if refused { Warning::Refusal } else { Warning::Connection }, &failure);
                    retry_at = Instant::now() + self.backoff.next_delay(&mut self.rng);
                    continue;
                }
            };
            self.shared.stats.session_opened(had_session);
            had_session = true;
            self.backoff.reset();
            let end = self.session(stream, &mut ticks, &stop).await;
            self.shared.stats.session_closed();
            let End::Lost(failure) = end else { break };
            let given_up = self.queue.connection_lost(MAX_SENDS);
            self.shared.stats.given_up(given_up);
            self.warn(Warning::Connection, &failure);
            retry_at = Instant::now() + self.backoff.next_delay(&mut self.rng);
        }
        self.shared.stats.abandoned(self.queue.len() as u64);
    }

    /// Steps the car and queues its sample.
    fn take_sample(&mut self, reissue: bool) {
        keep(&mut self.car, &mut self.queue, &self.shared, reissue);
    }

    fn warn(&self, kind: Warning, failure: &Failure) {
        let vin = self.car.vin();
        if self.shared.warnings.allow(kind) {
            tracing::warn!(
                vehicle.vin = %vin,
                gateway = %self.shared.gateway,
                error = %failure,
                "simulated terminal cannot report; it retries (similar lines held back for {}s)",
                WARN_EVERY.as_secs()
            );
        } else {
            tracing::debug!(vehicle.vin = %vin, gateway = %self.shared.gateway, error = %failure, "simulated terminal cannot report; retrying");
        }
    }

    /// An open session, until the connection is lost or the terminal has stopped.
    async fn session(&mut self, mut stream: TcpStream, ticks: &mut Interval, stop: &CancellationToken) -> End {
        let timing = self.shared.timing;
        let mut buf = [0u8; READ_BUF];
        let mut last_write = Instant::now();
        let mut heartbeat_sent: Option<Instant> = None;
        let mut drain_until: Option<Instant> = None;
        // One cancellation wait and three timers for the session, moved rather than made
        // anew on every turn: with 10,000 terminals in one process, registering and dropping
        // timers on every read and write was a visible share of the load generator's CPU.
        // The overdue and heartbeat timers are set no later than due and set again when they
        // fire early (their due times only move later while the session lasts).
        let cancelled = stop.cancelled();
        let far = Instant::now() + Duration::from_secs(86_400);
        let drain = tokio::time::sleep_until(far);
        let overdue = tokio::time::sleep_until(far);
        let heartbeat = tokio::time::sleep_until(far);
        tokio::pin!(cancelled, drain, overdue, heartbeat);
        loop {
            while let Some(frame) = self.dialect.next_frame() {
                match self.dialect.reply(&frame) {
                    Reply::Report { key, ok } => self.answered(key, ok),
                    Reply::Heartbeat => heartbeat_sent = None,
                    Reply::Other => {}
                }
            }
            let reports = self.reports();
            if !reports.is_empty() {
                match write(&mut stream, &reports).await {
                    Ok(()) => last_write = Instant::now(),
                    Err(failure) => return End::Lost(failure),
                }
            }
            if let Some(until) = drain_until
                && (self.queue.is_empty() || Instant::now() >= until)
            {
                self.logout(&mut stream).await;
                return End::Stopped;
            }
            let waiting_since = match (self.queue.oldest_sent_at(), heartbeat_sent) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let overdue_at = waiting_since.map(|t| t + timing.reply_timeout);
            let heartbeat_at =
                (heartbeat_sent.is_none() && drain_until.is_none()).then(|| last_write + timing.heartbeat_every);
            if let Some(at) = overdue_at {
                no_later_than(overdue.as_mut(), at);
            }
            if let Some(at) = heartbeat_at {
                no_later_than(heartbeat.as_mut(), at);
            }
            tokio::select! {
                biased;
                () = &mut cancelled, if drain_until.is_none() => {
                    let until = Instant::now() + timing.drain_grace;
                    drain_until = Some(until);
                    drain.as_mut().reset(until);
                }
                () = &mut drain, if drain_until.is_some() => {}
                read = stream.read(&mut buf) => match read {
                    Ok(0) => return End::Lost(Failure::Closed),
                    Ok(n) => self.dialect.push(&buf[..n]),
                    Err(e) => return End::Lost(Failure::Io(e)),
                },
                _ = ticks.tick(), if drain_until.is_none() => self.take_sample(false),
                () = &mut overdue, if overdue_at.is_some() => {
                    let at = overdue_at.unwrap_or(far);
                    if at > Instant::now() {
                        overdue.as_mut().reset(at);
                        continue;
                    }
                    return End::Lost(Failure::Overdue(timing.reply_timeout));
                }
                () = &mut heartbeat, if heartbeat_at.is_some() => {
                    let at = heartbeat_at.unwrap_or(far);
                    if at > Instant::now() {
                        heartbeat.as_mut().reset(at);
                        continue;
                    }
                    heartbeat.as_mut().reset(far);
                    let frame = self.dialect.heartbeat();
                    if let Err(failure) = write(&mut stream, &frame).await {
                        return End::Lost(failure);
                    }
                    self.shared.stats.heartbeat();
                    last_write = Instant::now();
                    heartbeat_sent = Some(last_write);
                }
            }
        }
    }

    /// The report frames the window lets out now, written into one buffer; the queue marks
    /// their samples as sent.
    fn reports(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let now = Instant::now();
        while self.queue.frames_in_flight() < MAX_FRAMES_IN_FLIGHT {
            let Some(reissue) = self.queue.next_is_reissue() else { break };
            let (samples, _) = self.queue.next_unsent(self.dialect.max_batch(reissue));
            let n = samples.len();
            let encoded = match self.dialect.report(&samples, reissue) {
                Ok(encoded) => encoded,
                Err(why) => {
                    // Samples that cannot be written never will be: they go, counted.
                    tracing::warn!(vehicle.vin = %self.car.vin(), error = %why, "simulated terminal drops samples it cannot encode");
                    self.shared.stats.given_up(self.queue.discard_unsent(n));
                    continue;
                }
            };
            bytes.extend_from_slice(&encoded.frame);
            let (first, again) = self.queue.mark_sent(n, encoded.key, now);
            self.shared.stats.sent(first, again);
        }
        bytes
    }

    fn answered(&mut self, key: u64, ok: bool) {
        let Some(answered) = self.queue.answer(key) else { return };
        let n = answered.samples as u64;
        if ok {
            self.shared.stats.acked(n);
            self.shared.stats.record_latency(answered.sent_at.elapsed());
        } else {
            self.shared.stats.refused(n);
            tracing::debug!(vehicle.vin = %self.car.vin(), samples = n, "the gateway refused a report");
        }
    }

    /// Best effort: the terminal is going anyway.
    async fn logout(&mut self, stream: &mut TcpStream) {
        if let Some(frame) = self.dialect.logout() {
            let _ = write(stream, &frame).await;
        }
        let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
    }
}

/// Steps `car` and queues its sample, counting what the bound drops.
fn keep(car: &mut Driven, queue: &mut Unanswered, shared: &Shared, reissue: bool) {
    let sample = car.step(shared.sample_step);
    let dropped = queue.keep(sample, reissue);
    shared.stats.dropped(dropped);
}

/// Connects to the gateway and opens a session.
async fn connect<D: Dialect>(shared: &Shared, dialect: &mut D) -> Result<TcpStream, Failure> {
    let timing = shared.timing;
    let mut stream =
        match tokio::time::timeout(timing.connect_timeout, TcpStream::connect(shared.gateway.as_str())).await {
            Err(_) => return Err(Failure::ConnectTimeout(timing.connect_timeout)),
            Ok(Err(e)) => return Err(Failure::Connect(e)),
            Ok(Ok(stream)) => stream,
        };
    // Small frames, and the reply latency is measured: no Nagle delay.
    let _ = stream.set_nodelay(true);
    dialect.reset_stream();
    let deadline = Instant::now() + timing.reply_timeout;
    let hello = dialect.open().map_err(Failure::Encode)?;
    write(&mut stream, &hello).await?;
    let mut buf = [0u8; READ_BUF];
    loop {
        while let Some(frame) = dialect.next_frame() {
            match dialect.handshake(&frame) {
                Handshake::Ignore => {}
                Handshake::Send(next) => write(&mut stream, &next).await?,
                Handshake::Ready => return Ok(stream),
                Handshake::Refused(why) => return Err(Failure::Refused(why)),
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(Failure::Overdue(timing.reply_timeout)),
            Ok(Ok(0)) => return Err(Failure::Closed),
            Ok(Ok(n)) => dialect.push(&buf[..n]),
            Ok(Err(e)) => return Err(Failure::Io(e)),
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), Failure> {
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::Io(e)),
        Err(_) => Err(Failure::WriteTimeout),
    }
}

/// Moves `timer` earlier to `at` if it would fire later; a timer that fires early is set
/// again by its branch.
fn no_later_than(timer: std::pin::Pin<&mut tokio::time::Sleep>, at: Instant) {
    if timer.deadline() > at {
        timer.reset(at);
    }
}
