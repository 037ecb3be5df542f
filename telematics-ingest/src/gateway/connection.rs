//! The life of one gateway connection, whatever its protocol: read bytes and hand them to the
//! protocol, write its answers in the order of the frames they answer (each once it is due,
//! e.g. once a report is durable), stop reading while too many answers wait, close when the
//! terminal is silent too long, and at shutdown write what is in hand before closing.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use fleet_domain::DeadLetter;
use fleet_storage::Store;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{GatewayConfig, Stream};
use crate::intake::{IntakeClosed, Submitter};

/// Answers waiting for their turn: past this many the connection stops reading until the
/// oldest are written (a platform forwarding many vehicles keeps commits in flight).
pub(crate) const MAX_PENDING: usize = 256;
/// Longest wait for one answer to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of answers gathered into one write.
const COALESCE_MAX: usize = 16 * 1024;
/// After shutdown begins, longest wait for the answers in hand.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer in the making: its bytes once due, or nothing to send.
type Pending = Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send>>;

/// The answers of one connection, in the order of the frames they answer.
pub(crate) struct Answers {
    pending: FuturesOrdered<Pending>,
    closing: bool,
}

impl Answers {
    /// Sends `bytes` once the answers before it are sent.
    pub(crate) fn now(&mut self, bytes: Vec<u8>) {
        self.pending.push_back(Box::pin(std::future::ready(Some(bytes))));
    }

    /// Sends what `answer` gives, once it gives it and the answers before it are sent
    /// (nothing, if it gives nothing).
    pub(crate) fn later(&mut self, answer: impl Future<Output = Option<Vec<u8>>> + Send + 'static) {
        self.pending.push_back(Box::pin(answer));
    }

    /// Closes the connection once the answers in hand are sent; nothing more is read.
    pub(crate) fn close(&mut self) {
        self.closing = true;
    }

    pub(crate) fn closing(&self) -> bool {
        self.closing
    }
}

/// What a protocol does with the bytes a connection reads.
pub(crate) trait Protocol: Send {
    /// The listener's name in metrics and logs.
    const NAME: &'static str;

    /// The protocol's side of a new connection from `peer`.
    fn new(peer: SocketAddr, store: Store, intake: Submitter) -> Self;

    /// Takes the next bytes of the stream (any split of it), queueing answers. An error means
    /// the intake is closed (shutting down): the connection stops reading.
    ///
    /// The bytes come by value so that the read buffer can be dropped once they are in the
    /// protocol's own framing buffer, before the first wait for the intake: under load
    /// thousands of connections wait there at once.
    fn read(&mut self, bytes: Vec<u8>, answers: &mut Answers) -> impl Future<Output = Result<(), IntakeClosed>> + Send;
}

/// Serves one connection with `protocol` until the terminal closes it, it is idle for
/// `cfg.idle`, the protocol closes it, or shutdown (then answers in hand are written first).
pub(crate) async fn serve<P: Protocol>(
    mut stream: Stream,
    peer: SocketAddr,
    cfg: GatewayConfig,
    mut protocol: P,
    shutdown: CancellationToken,
) {
    let mut answers = Answers { pending: FuturesOrdered::new(), closing: false };
    let mut last_heard = Instant::now();
    // One timer and one cancellation wait for the connection's whole life, not one of each
    // per turn of the loop (registering and dropping them on every read and write was a
    // visible share of the CPU with thousands of busy connections). The idle timer is moved
    // lazily: when it fires early because the terminal spoke meanwhile, it is set again.
    let idle = tokio::time::sleep(cfg.idle);
    let drain = tokio::time::sleep(DRAIN_TIMEOUT);
    let cancelled = shutdown.cancelled();
    tokio::pin!(idle, drain, cancelled);
    let mut draining = false;
    loop {
        if answers.closing && answers.pending.is_empty() {
            break;
        }
        let reading = !answers.closing && answers.pending.len() < MAX_PENDING;
        if !reading && !answers.pending.is_empty() {
            // Waiting on our own answers is not the terminal's silence.
            last_heard = Instant::now();
        }
        tokio::select! {
            biased;
            Some(answer) = answers.pending.next(), if !answers.pending.is_empty() => {
                let mut out = answer.unwrap_or_default();
                // Answers due at the same moment (one commit settles many of a busy
                // connection's reports) go out in one write: a write per answer was a fifth
                // of fleetd's CPU under load (`fleetd bench gateway`). Polling without a
                // waker is harmless: the next turn of the loop polls with the task's own.
                while out.len() < COALESCE_MAX {
                    match answers.pending.next().now_or_never() {
                        Some(Some(Some(bytes))) => out.extend_from_slice(&bytes),
                        Some(Some(None)) => {}
                        Some(None) | None => break,
                    }
                }
                if !out.is_empty()
                    && !matches!(tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&out)).await, Ok(Ok(())))
                {
                    break;
                }
            }
            () = &mut cancelled, if !draining => {
                answers.closing = true;
                draining = true;
                drain.as_mut().reset(Instant::now() + DRAIN_TIMEOUT);
            }
            () = &mut drain, if draining => break,
            read = stream.read_some(), if reading => {
                let bytes = match read {
                    Ok(bytes) if !bytes.is_empty() => bytes,
                    Ok(_) | Err(_) => break,
                };
                last_heard = Instant::now();
                if protocol.read(bytes, &mut answers).await.is_err() {
                    answers.closing = true;
                }
            }
            () = &mut idle, if reading => {
                let due = last_heard + cfg.idle;
                if due > Instant::now() {
                    idle.as_mut().reset(due);
                    continue;
                }
                metrics::counter!("fleet_connections_timed_out_total", "listener" => P::NAME, "reason" => "idle").increment(1);
                tracing::debug!(listener = P::NAME, peer = %peer, "gateway connection idle; closed");
                break;
            }
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
}

/// Stores a dead letter of what a connection refused, counted by listener and reason. It is
/// stored in the background of the connection: nothing waits for it.
pub(crate) async fn reject(intake: &Submitter, listener: &'static str, dead: DeadLetter) -> Result<(), IntakeClosed> {
    metrics::counter!("fleet_gateway_rejected_total", "listener" => listener, "reason" => dead.reason.as_str())
        .increment(1);
    let _settled = intake.dead_letter(dead).await?;
    Ok(())
}
