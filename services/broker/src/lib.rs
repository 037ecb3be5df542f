//! `fleet-broker`: the embedded MQTT broker, the quick start's default, and [`MqttUrl`], a
//! broker's address as every client of this workspace names it. rumqttd does the broker's work on a
//! loopback port of its own that only takes a random per-process account; clients reach it
//! through a gate of ours on the public address ([`gate`]), which authenticates as the
//! shipped Mosquitto set-up does (vehicles by VIN and issued secret, each publishing only
//! under its own VIN and reading no other's topics, fleetd's session reserved to fleetd) —
//! rumqttd alone has static passwords but no ACL. fleetd's own ingest connects to the
//! internal port directly. There is no TLS, and sessions live in memory only: a real
//! deployment uses an external broker (`deploy/mosquitto/`).

mod acl;
mod address;
mod gate;
mod splice;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use fleet_storage::Store;
use rand::RngCore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::acl::{may_publish, may_subscribe};
pub use self::address::{MqttUrl, MqttUrlError};
pub use self::gate::{CONNECT_TIMEOUT, MAX_CLIENT_CONNECTIONS};

/// Largest message the embedded broker passes on. Above ingest's own 256 KiB limit, so that a
/// too-large message reaches ingest and is dead-lettered with its reason.
pub const EMBEDDED_MAX_PAYLOAD: usize = 1024 * 1024;
/// Unacknowledged QoS 1 messages in flight to one client.
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
    #[error("the embedded MQTT broker did not start listening on {0}")]
    NotListening(SocketAddr),
    #[error("starting the embedded broker: {0}")]
    Join(#[from] tokio::task::JoinError),
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

/// Starts the broker: binds the public address, starts the internal broker on a free
/// loopback port, and spawns the gate on `tasks` until `shutdown`. The internal broker's
/// threads live as long as the process.
pub async fn start(
    cfg: EmbeddedConfig,
    store: Store,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Embedded, BrokerError> {
    let listen = |source| BrokerError::Listen { addr: cfg.addr, source };
    let listener = tokio::net::TcpListener::bind(cfg.addr).await.map_err(listen)?;
    let public = listener.local_addr().map_err(listen)?;
    let login = InternalLogin { username: INTERNAL_USER.to_owned(), password: internal_password() };
    let internal = {
        let login = login.clone();
        tokio::task::spawn_blocking(move || start_rumqttd(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), Some(login)))
            .await??
    };
    let gate = gate::Gate {
        store,
        internal,
        login: login.clone(),
        reserved_client_id: cfg.reserved_client_id,
        anonymous: cfg.anonymous,
        password_matches: cfg.password_matches,
    };
    tasks.spawn(gate.run(listener, tasks.clone(), shutdown));
    Ok(Embedded { public, internal, login })
}

/// A bare broker on `addr` that takes anyone, with no accounts and no rules: for benches
/// and tests on this machine only (a development set-up), so `addr` must be a loopback
/// address. Returns the bound address.
pub fn start_open(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    if !addr.ip().is_loopback() {
        return Err(BrokerError::NotLoopback(addr));
    }
    start_rumqttd(addr, None)
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

/// Starts rumqttd on `addr` (port 0 picks a free port) in its own threads, taking only
/// `login` when given, and waits until it accepts connections. Returns the bound address.
#[cfg(feature = "embedded")]
fn start_rumqttd(addr: SocketAddr, login: Option<InternalLogin>) -> Result<SocketAddr, BrokerError> {
    use std::collections::HashMap;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    // rumqttd binds inside its own thread and cannot report the port, so check the address
    // here first (a clear error when it is taken) and resolve port 0.
    let addr = {
        let listen = |source| BrokerError::Listen { addr, source };
        let probe = TcpListener::bind(addr).map_err(listen)?;
        probe.local_addr().map_err(listen)?
    };
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: EMBEDDED_MAX_PAYLOAD,
        max_inflight_count: EMBEDDED_MAX_INFLIGHT,
        auth: login.map(|l| HashMap::from([(l.username, l.password)])),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "v4".to_owned(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: MAX_CLIENT_CONNECTIONS + 10,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;
    // Wait until the broker holds the port (binding it ourselves then fails). A test
    // connection would do too, but the broker logs every half-open connection as an error.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpListener::bind(addr).is_ok() {
        if Instant::now() > deadline {
            return Err(BrokerError::NotListening(addr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(addr)
}

#[cfg(not(feature = "embedded"))]
fn start_rumqttd(_addr: SocketAddr, _login: Option<InternalLogin>) -> Result<SocketAddr, BrokerError> {
    Err(BrokerError::NotBuilt)
}
