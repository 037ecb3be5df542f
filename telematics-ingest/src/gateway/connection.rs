//! The life of one gateway connection, whatever its protocol: read bytes and hand them to the
//! protocol, write its answers in the order of the frames they answer (each once it is due,
//! e.g. once a report is durable), stop reading while too many answers wait, close when the
//! terminal is silent too long, and at shutdown write what is in hand before closing.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{GatewayConfig, Stream};
use crate::intake::IntakeClosed;

/// Answers waiting for their turn: past this many the connection stops reading until the
/// oldest are written (a platform forwarding many vehicles keeps commits in flight).
pub(crate) const MAX_PENDING: usize = 256;
/// Longest wait for one answer to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown begins, longest wait for the answers in hand.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 4096;

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

    /// Takes the next bytes of the stream (any split of it), queueing answers. An error means
    /// the intake is closed (shutting down): the connection stops reading.
    fn read(&mut self, bytes: &[u8], answers: &mut Answers) -> impl Future<Output = Result<(), IntakeClosed>> + Send;
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
    let mut buf = vec![0u8; READ_CHUNK];
    let mut last_heard = Instant::now();
    let mut drain_by: Option<Instant> = None;
    loop {
        if answers.closing && answers.pending.is_empty() {
            break;
        }
        let reading = !answers.closing && answers.pending.len() < MAX_PENDING;
        if !reading && !answers.pending.is_empty() {
            // Waiting on our own answers is not the terminal's silence.
            last_heard = Instant::now();
        }
        let idle_at = last_heard + cfg.idle;
        let drain_at = drain_by.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            biased;
            Some(answer) = answers.pending.next(), if !answers.pending.is_empty() => {
                if let Some(bytes) = answer
                    && !matches!(tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await, Ok(Ok(())))
                {
                    break;
                }
            }
            () = shutdown.cancelled(), if drain_by.is_none() => {
                answers.closing = true;
                drain_by = Some(Instant::now() + DRAIN_TIMEOUT);
            }
            () = tokio::time::sleep_until(drain_at), if drain_by.is_some() => break,
            read = stream.read(&mut buf), if reading => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                last_heard = Instant::now();
                if protocol.read(&buf[..n], &mut answers).await.is_err() {
                    answers.closing = true;
                }
            }
            () = tokio::time::sleep_until(idle_at), if reading => {
                metrics::counter!("fleet_connections_timed_out_total", "listener" => P::NAME, "reason" => "idle").increment(1);
                tracing::debug!(listener = P::NAME, peer = %peer, "gateway connection idle; closed");
                break;
            }
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
}
