//! The HTTP server's accept loop and connections: HTTP/1.1 by hyper, each connection under
//! the cap and the watchdog of [`crate::conn`], each request body under a deadline, and a
//! graceful shutdown (no new connections, in-flight requests finish).
//!
//! Why not `axum::serve`: it has no header-read or idle timeout and no connection cap, so a
//! client sending a header byte every few seconds kept its connection for as long as it
//! liked, and hundreds of them held as many descriptors. hyper's own `header_read_timeout`
//! runs from the end of one answer to the end of the next head, one clock for both idle and
//! head: it cannot give a keep-alive connection a minute of idleness and a slow head ten
//! seconds, so it is off and the watchdog keeps both clocks.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use fleet_bus::ConnectionLimit;

use crate::conn::{Timeouts, Tracked, Watchdog};
use crate::error::ApiError;

/// A request's head must arrive complete within this long of its first byte (of the accept,
/// for a connection's first request). Browsers send a head in one packet; only a broken or
/// hostile client needs more than a second.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection with no request in flight is closed after this long: long enough
/// for a page's follow-up requests and a phone's polling to reuse it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A request body must arrive in full within this long of the head (408 otherwise): the
/// largest (a 10 MiB order import) needs about 1.4 Mbit/s for it.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many connections (the live feed's WebSockets included) are open at once. At
/// the cap a new connection is accepted and closed at once, and counted in
/// `fleet_connections_refused_total`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// After a failed accept (out of descriptors, most likely), the loop waits this long before
/// accepting again rather than spinning on the error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The warning that the cap refused connections is repeated at most this often.
const CAP_WARN_EVERY: Duration = Duration::from_secs(60);

/// How long a connection may take over each part of its life, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// See [`DEFAULT_BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then stops accepting and waits for the
/// open connections to finish their requests (each is told to close after its current one;
/// the caller bounds the wait with its grace period).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    // Refusing at the cap rather than leaving connections in the listen backlog: a client
    // learns at once that it should retry, a flood cannot fill the backlog ahead of real
    // clients, and a refused connection holds no descriptor past its accept.
    let cap = ConnectionLimit::new("http", limits.max_connections);
    let timeouts = Timeouts { head: limits.header_timeout, idle: limits.idle_timeout };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(None::<Duration>);
    let connections = TaskTracker::new();
    let mut last_cap_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Some(admission) = cap.admit() else {
            if last_cap_warning.is_none_or(|t| t.elapsed() >= CAP_WARN_EVERY) {
                last_cap_warning = Some(Instant::now());
                tracing::warn!(
                    http.max_connections = limits.max_connections,
                    "HTTP connection cap reached: closing new connections until some close"
                );
            }
            drop(stream);
            continue;
        };
        let watchdog = Watchdog::new(timeouts);
        let io = TokioIo::new(Tracked::new(stream, watchdog.clone(), admission));
        let service = hyper::service::service_fn({
            let router = router.clone();
            let watchdog = watchdog.clone();
            move |req: hyper::Request<Incoming>| {
                let in_flight = watchdog.request_started();
                let timed_out = BodyTimedOut::default();
                let mut req = req.map(|body| Body::new(Deadline::new(body, limits.body_timeout, timed_out.clone())));
                req.extensions_mut().insert(ConnectInfo(remote));
                req.extensions_mut().insert(timed_out);
                let answer = router.clone().oneshot(req);
                async move {
                    let response = answer.await.unwrap_or_else(|never: Infallible| match never {});
                    // The request stays in flight until its answer is written (or dropped).
                    Ok::<_, Infallible>(response.map(|body| Body::new(Answer { body, _in_flight: in_flight })))
                }
            }
        });
        let conn = http.serve_connection(io, service).with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let mut closing = false;
            loop {
                tokio::select! {
                    // Errors here are the client's (reset, malformed request): hyper has
                    // answered what it could.
                    _ = conn.as_mut() => break,
                    why = watchdog.expired() => {
                        metrics::counter!("fleet_connections_timed_out_total", "listener" => "http", "reason" => why.as_str()).increment(1);
                        tracing::debug!(http.remote = %remote, reason = why.as_str(), "closing a slow or idle HTTP connection");
                        break;
                    }
                    () = shutdown.cancelled(), if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Set when a request's body missed its deadline: [`body_timeout`] answers 408 then,
/// whatever the handler made of the broken body.
#[derive(Clone, Default)]
pub(crate) struct BodyTimedOut(Arc<AtomicBool>);

/// A request body that fails once its deadline has passed.
struct Deadline {
    body: Incoming,
    at: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: BodyTimedOut,
}

impl Deadline {
    fn new(body: Incoming, timeout: Duration, timed_out: BodyTimedOut) -> Self {
        Self { body, at: Instant::now() + timeout, sleep: None, timed_out }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        // The timer only for a body that makes the reader wait (most arrive with the head).
        let at = this.at;
        let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.timed_out.0.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err("the request body did not arrive in time".into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body holding its request in flight until it is written in full or dropped.
struct Answer {
    body: Body,
    _in_flight: crate::conn::InFlight,
}

impl HttpBody for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Answers 408 (and closes the connection: the rest of the body is still on its way) when
/// the request's body missed its deadline, whatever the handler answered to the broken body.
pub(crate) async fn body_timeout(req: Request, next: Next) -> Response {
    let timed_out = req.extensions().get::<BodyTimedOut>().cloned();
    let response = next.run(req).await;
    match timed_out {
        Some(t) if t.0.load(Ordering::Relaxed) => {
            let mut response = ApiError::RequestTimeout.into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => response,
    }
}
