//! Live-feed clients: WebSocket connections to `/api/v1/live` as a full-view user, each
//! timing every car it receives against the car's sample time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};
use tokio_util::sync::CancellationToken;

use super::histogram::Histogram;
use super::scan::{self, Ts};
use super::{Window, now_ms};
use crate::bench_index;

/// A connection must have its snapshot within this time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// What one client saw.
#[derive(Debug, Default)]
pub(crate) struct ClientReport {
    /// Receipt time − sample time of each sample from the window, first receipt only.
    pub latency: Histogram,
    /// Per `positions` message, the latency of its newest sample from the window: the time
    /// from the hub's flush to receipt plus that sample's ingest, i.e. everything but the
    /// wait for the feed's next tick.
    pub freshest: Histogram,
    /// Snapshots after the first: the feed resynchronised this client (it fell behind).
    pub resyncs: u64,
    /// Cars whose `ts` the scanner could not read (should be none).
    pub unreadable: u64,
    /// The feed closed the connection before the bench was done.
    pub closed_early: bool,
}

/// One connected client, its snapshot received, not yet reading.
pub(crate) struct FeedClient {
    ws: WebSocketStream<TcpStream>,
}

impl FeedClient {
    /// Connects to the live feed with `token` and waits for the snapshot.
    pub(crate) async fn connect(http: SocketAddr, token: &str) -> anyhow::Result<Self> {
        let run = async {
            let tcp = TcpStream::connect(http).await.context("connecting to fleetd")?;
            tcp.set_nodelay(true)?;
            let url = format!("ws://{http}/api/v1/live?token={token}");
            let (mut ws, _) = client_async(url, tcp).await.context("live feed handshake")?;
            loop {
                match ws.next().await.context("live feed closed before its snapshot")?? {
                    Message::Text(t) if t.starts_with("{\"type\":\"snapshot\"") => return Ok(Self { ws }),
                    Message::Close(c) => anyhow::bail!("live feed closed before its snapshot: {c:?}"),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, run).await.context("no live snapshot within 60 s")?
    }

    /// Reads until `stop`, timing every car from the window. `received` counts those samples
    /// across all clients, so the bench sees when the feed has delivered everything.
    pub(crate) fn spawn(
        self,
        window: Window,
        vehicles: usize,
        received: Arc<AtomicU64>,
        stop: CancellationToken,
    ) -> JoinHandle<ClientReport> {
        tokio::spawn(read(self.ws, window, vehicles, received, stop))
    }
}

async fn read(
    mut ws: WebSocketStream<TcpStream>,
    window: Window,
    vehicles: usize,
    received: Arc<AtomicU64>,
    stop: CancellationToken,
) -> ClientReport {
    let mut report = ClientReport::default();
    // Newest sample time seen per car: a car re-sent without a new sample (a status change)
    // is not a new receipt.
    let mut newest = vec![i64::MIN; vehicles];
    loop {
        let msg = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                report.closed_early = true;
                break;
            }
            Some(Ok(_)) => continue,
        };
        let now = now_ms();
        if text.starts_with("{\"type\":\"snapshot\"") {
            report.resyncs += 1;
        } else if !text.starts_with("{\"type\":\"positions\"") {
            continue;
        }
        let mut counted = 0;
        let mut freshest = u64::MAX;
        for (vin, ts) in scan::cars(&text) {
            let Some(i) = bench_index(vin).filter(|&i| i < vehicles) else { continue };
            match ts {
                Ts::Ms(ts) if ts > newest[i] => {
                    newest[i] = ts;
                    if window.contains(ts) {
                        let latency = (now - ts).max(0) as u64;
                        report.latency.record(latency);
                        freshest = freshest.min(latency);
                        counted += 1;
                    }
                }
                Ts::Bad => report.unreadable += 1,
                Ts::Ms(_) | Ts::Null => {}
            }
        }
        if counted > 0 {
            received.fetch_add(counted, Ordering::Relaxed);
            report.freshest.record(freshest);
        }
    }
    let _ = ws.close(None).await;
    report
}
