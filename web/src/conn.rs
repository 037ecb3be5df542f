//! Guards for accepted TCP connections, whatever protocol they speak: the cap on how many are
//! open at once is `fleet_bus::ConnectionLimit` (shared with ingest's TCP gateway), and a
//! [`Watchdog`] that closes a connection left idle
//! too long or too slow to send a request's head (slowloris: a header byte every few
//! seconds holds a descriptor for as long as the server lets it).
//!
//! Nothing here knows HTTP. The HTTP server (`serve.rs`) tells the watchdog when a request
//! starts and when its answer is done; [`Tracked`] tells it when bytes arrive. A TCP gateway
//! would use the same pieces with its frames in place of requests.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use fleet_bus::Admission;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a connection may take over each part of its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// From the first byte of a request (for a new connection: from the accept) to its
    /// complete head.
    pub(crate) head: Duration,
    /// Between the end of one answer and the first byte of the next request.
    pub(crate) idle: Duration,
}

/// Why the watchdog closed a connection (the `reason` label of
/// `fleet_connections_timed_out_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A request's head did not arrive complete in time.
    Head,
    /// No request came in time after the last answer.
    Idle,
}

impl Expiry {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's head since this instant.
    Head(Instant),
    /// Nothing in flight and no byte of a next request since this instant.
    Idle(Instant),
}

#[derive(Debug)]
struct State {
    /// Requests started and not yet answered in full: while any is, the watchdog waits
    /// (reading a body and writing an answer have their own limits).
    in_flight: usize,
    phase: Phase,
}

struct Shared {
    timeouts: Timeouts,
    state: Mutex<State>,
    changed: Notify,
}

/// Watches one connection; cheap to clone (the IO wrapper, the request guards and the
/// connection's task share it).
#[derive(Clone)]
pub(crate) struct Watchdog(Arc<Shared>);

impl Watchdog {
    /// A watchdog for a connection accepted now: its first request's head is due within
    /// the head timeout (a client that connects and sends nothing is cut off as soon as one
    /// that sends slowly).
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        let state = State { in_flight: 0, phase: Phase::Head(Instant::now()) };
        Self(Arc::new(Shared { timeouts, state: Mutex::new(state), changed: Notify::new() }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: on an idle connection they start the next request's head.
    pub(crate) fn bytes_arrived(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && matches!(s.phase, Phase::Idle(_)) {
            s.phase = Phase::Head(Instant::now());
            drop(s);
            self.0.changed.notify_one();
        }
    }

    /// A request's head is complete; the returned guard ends the request when dropped
    /// (when its answer has been written, or abandoned).
    pub(crate) fn request_started(&self) -> InFlight {
        self.lock().in_flight += 1;
        self.0.changed.notify_one();
        InFlight(self.clone())
    }

    /// When the connection is due to be closed, and why; None while a request is in flight.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        Some(match s.phase {
            Phase::Head(since) => (since + self.0.timeouts.head, Expiry::Head),
            Phase::Idle(since) => (since + self.0.timeouts.idle, Expiry::Idle),
        })
    }

    /// Resolves when the connection has outstayed its current phase.
    pub(crate) async fn expired(&self) -> Expiry {
        loop {
            // Registered before the state is read, so a change in between is not missed.
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.deadline() {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// One request in flight on a watched connection (see [`Watchdog::request_started`]).
pub(crate) struct InFlight(Watchdog);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.phase = Phase::Idle(Instant::now());
        }
        drop(s);
        self.0.0.changed.notify_one();
    }
}

/// A connection's stream with its place under the cap and its watchdog: reads report
/// arriving bytes to the watchdog, and the place is given back when the stream is dropped,
/// wherever it went (an upgraded WebSocket keeps it).
pub(crate) struct Tracked<IO> {
    io: IO,
    watchdog: Watchdog,
    _admission: Admission,
}

impl<IO> Tracked<IO> {
    pub(crate) fn new(io: IO, watchdog: Watchdog, admission: Admission) -> Self {
        Self { io, watchdog, _admission: admission }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watchdog.bytes_arrived();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(20);
    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_new_connection_is_due_to_send_its_head_even_if_bytes_came() {
        let w = Watchdog::new(Timeouts { head: SHORT, idle: LONG });
        // Bytes on a connection waiting for its first head do not turn it idle.
        w.bytes_arrived();
        assert_eq!(w.expired().await, Expiry::Head);
    }

    #[tokio::test]
    async fn after_an_answer_the_idle_timeout_runs_until_the_next_byte_then_the_head_timeout() {
        let w = Watchdog::new(Timeouts { head: LONG, idle: SHORT });
        drop(w.request_started());
        assert_eq!(w.expired().await, Expiry::Idle);

        let w = Watchdog::new(Timeouts { head: SHORT, idle: LONG });
        drop(w.request_started());
        assert!(matches!(w.deadline(), Some((_, Expiry::Idle))));
        w.bytes_arrived();
        assert_eq!(w.expired().await, Expiry::Head);
    }

    #[tokio::test]
    async fn nothing_expires_while_a_request_is_in_flight() {
        let w = Watchdog::new(Timeouts { head: SHORT, idle: SHORT });
        let req = w.request_started();
        assert_eq!(w.deadline(), None);
        assert!(tokio::time::timeout(SHORT * 5, w.expired()).await.is_err(), "expired with a request in flight");
        drop(req);
        assert_eq!(w.expired().await, Expiry::Idle);
    }
}
