//! `fleet-broker`: the embedded MQTT broker, the quick start's default, and [`MqttUrl`], a
//! broker's address as every client of this workspace names it, with [`MqttTls`], how a
//! client reaches an `mqtts://` one. rumqttd does the broker's work on a
//! loopback port of its own that only takes a random per-process account; clients reach it
//! through a gate of ours on the public address ([`gate`]), which authenticates as the
//! shipped Mosquitto set-up does (vehicles by VIN and issued secret, each publishing only
//! under its own VIN and reading no other's topics, fleetd's session reserved to fleetd) —
//! rumqttd alone has static passwords but no ACL. fleetd's own ingest connects to the
//! internal port directly. The embedded broker speaks no TLS, and sessions live in memory only: a real
//! deployment uses an external broker (`deploy/mosquitto/`).

mod acl;
mod address;
mod gate;
mod internal;
mod splice;
mod tls;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use fleet_storage::Store;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::acl::{may_publish, may_subscribe};
pub use self::address::{MqttUrl, MqttUrlError};
pub use self::gate::{CONNECT_TIMEOUT, MAX_CLIENT_CONNECTIONS};
pub use self::tls::{MqttTls, MqttTlsError, TlsFile, pem_certificates, pem_private_key};

/// Largest message the embedded broker passes on. Above ingest's own 256 KiB limit, so that a
/// too-large message reaches ingest and is dead-lettered with its reason.
pub const EMBEDDED_MAX_PAYLOAD: usize = 1024 * 1024;
/// rumqttd's `max_inflight_count`: packets read from one client at a time. (The window of
/// unacknowledged messages to a subscriber is rumqttd's own, a fixed 100.)
pub const EMBEDDED_MAX_INFLIGHT: usize = 10_000;
/// The internal broker's user (its password is drawn afresh by each process).
const INTERNAL_USER: &str = "fleetd-internal";

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr} for the embedded MQTT broker: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("a broker without accounts listens on a loopback address only, not {0}")]
    NotLoopback(SocketAddr),
    #[error("cannot start the embedded broker thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot start the embedded MQTT broker on {addr}: {why}")]
    NotStarted { addr: SocketAddr, why: String },
    #[error("the internal MQTT broker stopped: {0}")]
    Stopped(String),
    #[error("this build has no embedded broker (feature `embedded-broker`); set FLEET_MQTT_URL")]
    NotBuilt,
}

/// The internal broker's only account.
#[derive(Clone, PartialEq, Eq)]
pub struct InternalLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for InternalLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalLogin").field("username", &self.username).finish_non_exhaustive()
    }
}

/// How the embedded broker is set up.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The public address clients connect to (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Let clients without an account in (development, on loopback only).
    pub anonymous: bool,
    /// fleetd's own client id, which no client may use.
    pub reserved_client_id: String,
    /// Whether a password is the one a vehicle's stored `$7$` password-file line stands for
    /// (`fleet_web::mosquitto_password_matches`: the API issues the lines, so it owns the
    /// format, and the broker does not depend on the web service for it).
    pub password_matches: fn(&str, &str) -> bool,
}

/// A running embedded broker.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// Where clients connect.
    pub public: SocketAddr,
    /// Where fleetd's ingest connects, with `login`.
    pub internal: SocketAddr,
    pub login: InternalLogin,
}

impl Embedded {
    /// A loopback address of the public listener, for clients in this process (the demo's
    /// simulator) when it listens on every interface.
    pub fn local_public(&self) -> SocketAddr {
        let ip = match self.public.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.public.port())
    }
}

/// The embedded broker with its public listener bound and its internal address chosen;
/// nothing runs yet, and dropping it frees the port.
pub struct Bound {
    listener: TcpListener,
    embedded: Embedded,
    cfg: EmbeddedConfig,
}

/// Binds the public address and picks a free loopback port for the internal broker.
pub async fn bind(cfg: EmbeddedConfig) -> Result<Bound, BrokerError> {
    let listen = |source| BrokerError::Listen { addr: cfg.addr, source };
    let listener = TcpListener::bind(cfg.addr).await.map_err(listen)?;
    let public = listener.local_addr().map_err(listen)?;
    let internal = internal::free_loopback_addr().map_err(|source| BrokerError::Listen { addr: cfg.addr, source })?;
    let login = InternalLogin { username: INTERNAL_USER.to_owned(), password: internal_password() };
    Ok(Bound { listener, embedded: Embedded { public, internal, login }, cfg })
}

impl Bound {
    /// Where clients and fleetd's ingest will connect.
    pub fn embedded(&self) -> &Embedded {
        &self.embedded
    }

    /// Starts the internal broker and waits until it holds its port. Its router thread is
    /// rumqttd's and cannot be stopped (rumqttd has no way to), so this is the last step of
    /// start-up that can fail: once it is done, nothing else may.
    pub async fn start(self, store: Store) -> Result<Broker, BrokerError> {
        let Bound { listener, embedded, cfg } = self;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let internal = internal::spawn(embedded.internal, Some(embedded.login.clone()), move |r| {
            let _ = ready_tx.send(r);
        })?;
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BrokerError::NotStarted { addr: embedded.internal, why: e }),
            Err(_) => {
                return Err(BrokerError::NotStarted {
                    addr: embedded.internal,
                    why: "its thread ended while starting".to_owned(),
                });
            }
        }
        let gate = gate::Gate {
            store,
            internal: embedded.internal,
            login: embedded.login,
            reserved_client_id: cfg.reserved_client_id,
            anonymous: cfg.anonymous,
            password_matches: cfg.password_matches,
        };
        Ok(Broker { gate, listener, internal })
    }
}

/// A started embedded broker, to be run as a service ([`Broker::run`]).
pub struct Broker {
    gate: gate::Gate,
    listener: TcpListener,
    internal: internal::Running,
}

impl Broker {
    /// Serves clients through the gate (each connection a task on `tasks`) until
    /// `stop_gate`, then keeps the internal broker up until `stop_internal` (fleetd's own
    /// ingest acknowledges its last batch through it) and stops it, its connections closed
    /// and its thread ended. Fails if the internal broker stops by itself.
    pub async fn run(
        self,
        tasks: TaskTracker,
        stop_gate: impl Future<Output = ()>,
        stop_internal: impl Future<Output = ()>,
    ) -> Result<(), BrokerError> {
        let Broker { gate, listener, mut internal } = self;
        let gate_stop = CancellationToken::new();
        // Whatever way this ends, the gate's connections end with it.
        let _gate_stopped = gate_stop.clone().drop_guard();
        let serving = async {
            tokio::join!(gate.run(listener, tasks, gate_stop.clone()), async {
                stop_gate.await;
                gate_stop.cancel();
            });
            stop_internal.await;
        };
        tokio::select! {
            () = serving => {}
            why = internal.ended() => return Err(BrokerError::Stopped(why)),
        }
        internal.stop().await;
        Ok(())
    }
}

/// A bare broker on `addr` that takes anyone, with no accounts and no rules: for benches
/// and tests on this machine only (a development set-up), so `addr` must be a loopback
/// address. It runs as long as the process. Returns the bound address.
pub fn start_open(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    if !addr.ip().is_loopback() {
        return Err(BrokerError::NotLoopback(addr));
    }
    // Port 0: resolved here, since rumqttd cannot report the port it bound.
    let addr = if addr.port() == 0 {
        let listen = |source| BrokerError::Listen { addr, source };
        let probe = std::net::TcpListener::bind(addr).map_err(listen)?;
        probe.local_addr().map_err(listen)?
    } else {
        addr
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let running = internal::spawn(addr, None, move |r| {
        let _ = ready_tx.send(r);
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return Err(BrokerError::NotStarted { addr, why }),
        Err(_) => return Err(BrokerError::NotStarted { addr, why: "its thread ended while starting".to_owned() }),
    }
    running.detach();
    Ok(addr)
}

/// A fresh random password for the internal account: 192 bits, hex.
fn internal_password() -> String {
    let mut bytes = [0u8; 24];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts a refused connection, publish or subscription (`fleet_mqtt_refused_total`).
fn refused(reason: &'static str) {
    metrics::counter!("fleet_mqtt_refused_total", "reason" => reason).increment(1);
}
