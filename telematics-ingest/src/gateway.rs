//! The TCP gateways: how connections are accepted, capped, optionally wrapped in TLS, and
//! tracked until they end, whichever standard their terminals speak (`gbt32960_gateway`,
//! `jt808_gateway` hold each standard's side of a connection).
//!
//! A gateway holds no state beyond its connections: several instances can sit behind a TCP
//! load balancer, and a killed one loses nothing (a terminal sends again what was not
//! answered; storage keeps a report once, by VIN and time).

mod connection;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use connection::{Answers, Protocol, reject};
use fleet_storage::Store;

use crate::gbt32960_gateway::Gbt32960;
use crate::intake::Submitter;
use crate::jt808_gateway::Jt808;

/// The standard a gateway's terminals speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    /// GB/T 32960.3, both editions: vehicle terminals and forwarding platforms. Reports are
    /// handed to ingest as the frames a vehicle would have published on its topic.
    Gbt32960,
    /// JT/T 808, 2013 and 2019 headers: Beidou terminals known by their vehicle's
    /// `terminal_phone`; locations are decoded at the gateway and handed over as samples.
    Jt808,
}

impl GatewayKind {
    /// The listener's name in metrics, logs and the line printed at start.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gbt32960 => Gbt32960::NAME,
            Self::Jt808 => Jt808::NAME,
        }
    }
}

/// A bound TCP gateway, ready to run. Each connection is a task of its own; what it reads
/// goes to ingest in process ([`crate::intake`]), and each report is answered only once it
/// is durable.
pub struct TcpGateway {
    kind: GatewayKind,
    listener: Listener,
    store: Store,
    intake: Submitter,
}

impl TcpGateway {
    /// Binds the listener (start-up binds everything before it spawns anything). With `tls`,
    /// terminals must connect over TLS.
    pub async fn bind(
        kind: GatewayKind,
        addr: SocketAddr,
        cfg: GatewayConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        store: Store,
        intake: Submitter,
    ) -> Result<Self, BindError> {
        let listener = Listener::bind(kind.name(), addr, cfg, tls).await?;
        Ok(Self { kind, listener, store, intake })
    }

    /// The bound address (the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown`, then lets each finish answering what it has in
    /// hand and waits for them.
    pub async fn run(self, shutdown: CancellationToken) {
        match self.kind {
            GatewayKind::Gbt32960 => self.serve::<Gbt32960>(shutdown).await,
            GatewayKind::Jt808 => self.serve::<Jt808>(shutdown).await,
        }
    }

    async fn serve<P: Protocol + 'static>(self, shutdown: CancellationToken) {
        let Self { listener, store, intake, .. } = self;
        let cfg = listener.config();
        listener
            .run(shutdown, move |stream, peer, token| {
                let protocol = P::new(peer, store.clone(), intake.clone());
                connection::serve(stream, peer, cfg, protocol, token)
            })
            .await;
    }
}

/// How connections are kept.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    /// A connection that sends nothing for this long is closed.
    pub idle: Duration,
    /// Connections open at once, per gateway; more are closed on accept.
    pub max_connections: usize,
}

impl GatewayConfig {
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(180);
    pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self { idle: Self::DEFAULT_IDLE, max_connections: Self::DEFAULT_MAX_CONNECTIONS }
    }
}

/// Longest a TLS handshake may take before the connection is dropped: a client that opens a
/// socket and never speaks TLS must not hold a connection place.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
#[error("binding the {name} gateway to {addr}: {source}")]
pub struct BindError {
    name: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

/// Most bytes taken from a connection in one read: a few frames. Under overload every
/// connection waits for the intake holding what it read, so this is also what 10,000 waiting
/// connections hold (4 KiB → 2 KiB took ~20 MiB off fleetd's heap in `fleetd bench gateway`).
const READ_CHUNK: usize = 2048;

/// A connection's byte stream: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// The next bytes the peer sent, at most [`READ_CHUNK`]; empty at the end of the stream.
    /// Cancel-safe: dropped before it completes, it has taken nothing.
    ///
    /// A plain connection waits for readiness holding no buffer, and the buffer lives only
    /// while its bytes are handled: a gateway keeps thousands of mostly quiet connections, and
    /// a read buffer each held across the wait cost 40 MiB per 10,000 of them at 4 KiB. (A TLS
    /// connection's library keeps buffers of its own anyway.)
    pub(crate) async fn read_some(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Plain(tcp) => loop {
                tcp.readable().await?;
                let mut bytes = Vec::with_capacity(READ_CHUNK);
                match tcp.try_read_buf(&mut bytes) {
                    Ok(_) => return Ok(bytes),
                    // Readiness was stale: wait again.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            },
            Self::Tls(tls) => {
                let mut bytes = Vec::with_capacity(READ_CHUNK);
                tls.read_buf(&mut bytes).await?;
                Ok(bytes)
            }
        }
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.write_all(bytes).await,
            Self::Tls(tls) => tls.write_all(bytes).await,
        }
    }

    pub(crate) async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.shutdown().await,
            Self::Tls(tls) => tls.shutdown().await,
        }
    }
}

/// Connections the kernel may hold for us before we accept them. A fleet's terminals come
/// back together after a network or fleetd outage; at the usual 1,024 the rest of a burst of
/// thousands would have its SYNs dropped and retry only after a second or more. The kernel
/// caps it at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 8192;

/// A listening socket on `addr` with [`ACCEPT_BACKLOG`] (and `SO_REUSEADDR`, so a restarted
/// instance takes its port back at once).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// A bound listener of one gateway.
struct Listener {
    name: &'static str,
    listener: TcpListener,
    cfg: GatewayConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listener {
    /// Binds `addr` (start-up binds everything before it spawns anything). With `tls`, every
    /// connection must complete a TLS handshake first.
    async fn bind(
        name: &'static str,
        addr: SocketAddr,
        cfg: GatewayConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, BindError> {
        let listener = listen(addr).map_err(|source| BindError { name, addr, source })?;
        Ok(Self { name, listener, cfg, tls: tls.map(tokio_rustls::TlsAcceptor::from) })
    }

    /// The bound address (the port chosen when 0 was asked for).
    fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn config(&self) -> GatewayConfig {
        self.cfg
    }

    /// Accepts connections until `shutdown` and serves each with `serve` on a task of its
    /// own (after its TLS handshake, when TLS is on); then waits for them (each finishes
    /// answering what it has in hand).
    async fn run<F, Fut>(self, shutdown: CancellationToken, serve: F)
    where
        F: Fn(Stream, SocketAddr, CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = self.name;
        let serve = Arc::new(serve);
        let cap = fleet_bus::ConnectionLimit::new(name, self.cfg.max_connections);
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(listener = name, error = %e, "gateway accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // At the cap the connection is dropped, which closes it.
            let Some(admission) = cap.admit() else { continue };
            let _ = tcp.set_nodelay(true);
            let token = shutdown.child_token();
            let serve = serve.clone();
            let tls = self.tls.clone();
            tasks.spawn(async move {
                let _admission = admission;
                let stream = match tls {
                    None => Stream::Plain(tcp),
                    // The handshake runs on the connection's own task: a slow client holds up
                    // nobody else.
                    Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => Stream::Tls(Box::new(stream)),
                        Ok(Err(e)) => {
                            metrics::counter!("fleet_gateway_tls_failures_total", "listener" => name).increment(1);
                            tracing::debug!(listener = name, peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            metrics::counter!("fleet_connections_timed_out_total", "listener" => name, "reason" => "tls_handshake")
                                .increment(1);
                            return;
                        }
                    },
                };
                serve(stream, peer, token).await;
            });
        }
        tasks.close();
        tasks.wait().await;
    }
}
