//! What the TCP gateways (`gbt32960_gateway`, `jt808_gateway`) share: how connections are
//! accepted, capped, optionally wrapped in TLS, and tracked until they end.
//!
//! A gateway holds no state beyond its connections: several instances can sit behind a TCP
//! load balancer, and a killed one loses nothing (a terminal sends again what was not
//! answered; storage keeps a report once, by VIN and time).

mod connection;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use connection::{Answers, Protocol, serve};

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

/// A connection's byte stream, plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection as a gateway's protocol code sees it.
pub(crate) type Stream = Box<dyn Io>;

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
pub(crate) struct Listener {
    name: &'static str,
    listener: TcpListener,
    cfg: GatewayConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listener {
    /// Binds `addr` (start-up binds everything before it spawns anything). With `tls`, every
    /// connection must complete a TLS handshake first.
    pub(crate) async fn bind(
        name: &'static str,
        addr: SocketAddr,
        cfg: GatewayConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, BindError> {
        let listener = listen(addr).map_err(|source| BindError { name, addr, source })?;
        Ok(Self { name, listener, cfg, tls: tls.map(tokio_rustls::TlsAcceptor::from) })
    }

    /// The bound address (the port chosen when 0 was asked for).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub(crate) fn config(&self) -> GatewayConfig {
        self.cfg
    }

    /// Accepts connections until `shutdown` and serves each with `serve` on a task of its
    /// own (after its TLS handshake, when TLS is on); then waits for them (each finishes
    /// answering what it has in hand).
    pub(crate) async fn run<F, Fut>(self, shutdown: CancellationToken, serve: F)
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
                let stream: Stream = match tls {
                    None => Box::new(tcp),
                    // The handshake runs on the connection's own task: a slow client holds up
                    // nobody else.
                    Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => Box::new(stream),
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
