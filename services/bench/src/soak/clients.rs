//! Live-feed clients for the soak: WebSocket connections to `/api/v1/live`, most with the
//! full view, some with a bbox or unit filter, each timing every car it receives (receipt
//! time − sample time, first receipt of each sample) into per-minute histograms shared by
//! all clients. A client the feed closes reconnects, so the load stays the same all run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};
use tokio_util::sync::CancellationToken;

use crate::bench_index;
use crate::live::histogram::Histogram;
use crate::live::scan::{self, Ts};

/// A connection must have its snapshot within this time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Wait before reconnecting a client the feed closed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Feed latency per minute of the run, by the minute of the sample's time.
pub(super) type Minutes = Arc<Mutex<Vec<Histogram>>>;

/// Totals of every client.
#[derive(Debug, Default)]
pub(super) struct FeedCounts {
    /// Snapshots after a connection's first: the feed resynchronised a client that lagged.
    pub resyncs: AtomicU64,
    /// Connections the feed closed (or that failed) and were made again.
    pub reconnects: AtomicU64,
    /// `order` messages received (order status changes reach the full-view clients).
    pub order_events: AtomicU64,
    /// Cars whose `ts` could not be read (should be none).
    pub unreadable: AtomicU64,
}

/// What the clients need to know about the run.
#[derive(Clone)]
pub(super) struct Timing {
    /// Epoch ms at which minute 0 starts (`i64::MAX` until the fleet starts: nothing is
    /// timed before).
    pub start_ms: Arc<AtomicI64>,
    /// Which cars are timed, by bench car number: those with millisecond times (JSON). A
    /// GB/T 32960 time has whole seconds, which would add up to a second to the latency.
    pub timed: Arc<Vec<bool>>,
    pub minutes: Minutes,
}

/// Connects `queries.len()` clients (each with its extra query string, e.g. `&bbox=…`) and
/// reads until `stop`.
pub(super) async fn spawn(
    http: SocketAddr,
    token: &str,
    queries: Vec<String>,
    timing: Timing,
    counts: Arc<FeedCounts>,
    stop: CancellationToken,
) -> anyhow::Result<JoinSet<()>> {
    let mut set = JoinSet::new();
    for q in queries {
        let url = format!("ws://{http}/api/v1/live?token={token}{q}");
        // Connected here, one after the other, so a bad URL fails the bench at once.
        let (ws, snapshot) = connect(http, &url).await.with_context(|| format!("live client {q:?}"))?;
        set.spawn(run(http, url, ws, snapshot, timing.clone(), counts.clone(), stop.clone()));
    }
    Ok(set)
}

async fn connect(http: SocketAddr, url: &str) -> anyhow::Result<(WebSocketStream<TcpStream>, String)> {
    let run = async {
        let tcp = TcpStream::connect(http).await.context("connecting to fleetd")?;
        tcp.set_nodelay(true)?;
        let (mut ws, _) = client_async(url, tcp).await.context("live feed handshake")?;
        loop {
            match ws.next().await.context("live feed closed before its snapshot")?? {
                Message::Text(t) if t.starts_with("{\"type\":\"snapshot\"") => return Ok((ws, t.as_str().to_owned())),
                Message::Close(c) => anyhow::bail!("live feed closed before its snapshot: {c:?}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, run).await.context("no live snapshot within 60 s")?
}

async fn run(
    http: SocketAddr,
    url: String,
    mut ws: WebSocketStream<TcpStream>,
    snapshot: String,
    timing: Timing,
    counts: Arc<FeedCounts>,
    stop: CancellationToken,
) {
    // Newest sample time seen per car: a car sent again without a new sample (a status
    // change) is not a new receipt.
    let mut newest = vec![i64::MIN; timing.timed.len()];
    note(&snapshot, &mut newest);
    loop {
        read(&mut ws, &timing, &counts, &mut newest, &stop).await;
        let _ = ws.close(None).await;
        if stop.is_cancelled() {
            return;
        }
        counts.reconnects.fetch_add(1, Ordering::Relaxed);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RECONNECT_AFTER) => {}
            }
            if let Ok((again, snapshot)) = connect(http, &url).await {
                // What came in while away is not timed: the snapshot only says where cars are.
                note(&snapshot, &mut newest);
                ws = again;
                break;
            }
        }
    }
}

/// Records the cars of a message as seen, without timing them.
fn note(msg: &str, newest: &mut [i64]) {
    for (vin, ts) in scan::cars(msg) {
        if let (Some(i), Ts::Ms(ts)) = (bench_index(vin), ts)
            && let Some(n) = newest.get_mut(i)
        {
            *n = (*n).max(ts);
        }
    }
}

/// Reads until `stop` or until the connection ends.
async fn read(
    ws: &mut WebSocketStream<TcpStream>,
    timing: &Timing,
    counts: &FeedCounts,
    newest: &mut [i64],
    stop: &CancellationToken,
) {
    let mut batch: Vec<(usize, u64)> = Vec::new();
    loop {
        let msg = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_)) | Err(_)) | None => return,
            Some(Ok(_)) => continue,
        };
        let now = super::now_ms();
        if text.starts_with("{\"type\":\"snapshot\"") {
            counts.resyncs.fetch_add(1, Ordering::Relaxed);
        } else if !text.starts_with("{\"type\":\"positions\"") {
            // An order message's keys come sorted (`{"order":{…},"type":"order"}`).
            if text.contains("\"type\":\"order\"") {
                counts.order_events.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        batch.clear();
        let start_ms = timing.start_ms.load(Ordering::Relaxed);
        for (vin, ts) in scan::cars(&text) {
            let Some(i) = bench_index(vin).filter(|&i| i < newest.len()) else { continue };
            match ts {
                Ts::Ms(ts) if ts > newest[i] => {
                    newest[i] = ts;
                    let minute = ts.saturating_sub(start_ms).div_euclid(60_000);
                    if timing.timed[i] && minute >= 0 {
                        batch.push((minute as usize, (now - ts).max(0) as u64));
                    }
                }
                Ts::Bad => {
                    counts.unreadable.fetch_add(1, Ordering::Relaxed);
                }
                Ts::Ms(_) | Ts::Null => {}
            }
        }
        if !batch.is_empty() {
            // One lock per message, not per car.
            let mut minutes = timing.minutes.lock().unwrap_or_else(|e| e.into_inner());
            for &(m, latency) in &batch {
                if let Some(h) = minutes.get_mut(m) {
                    h.record(latency);
                }
            }
        }
    }
}
