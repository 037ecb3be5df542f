//! fleet-web: the HTTP side of the platform. It owns the JSON API under `/api/v1` (login and
//! bearer tokens, the registry of units, vehicles, drivers and users, tracks, dead letters,
//! charging stations), its OpenAPI document, `/healthz`, `/metrics`, and the embedded pages
//! (`web/assets`). The live WebSocket feed will join it.
//!
//! Everything a request may be refused for is one [`error::ApiError`], rendered as the
//! contract's `{"error": {"code", "message"}}`. Who may see and do what is decided in
//! [`access`]; handlers ask it, they never compare roles themselves.

mod access;
mod api;
mod assets;
mod auth;
mod error;
mod extract;
mod health;
mod layers;
mod router;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use fleet_bus::Bus;
use fleet_storage::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::hash_password;

/// Where the HTTP server listens when nothing else is configured.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// How long a bearer token from a login stays valid.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind; port 0 picks any free port (see [`WebServer::local_addr`]).
    pub addr: SocketAddr,
    /// Lifetime of a token handed out by a login.
    pub token_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { addr: DEFAULT_HTTP_ADDR, token_ttl: DEFAULT_TOKEN_TTL }
    }
}

/// What `/healthz` checks: the database and the broker connection (kept by ingest).
#[derive(Clone)]
pub struct Health {
    /// Pinged (with a short timeout) on every check.
    pub store: Store,
    /// True while the MQTT client holds a connection to the broker.
    pub mqtt_connected: Arc<AtomicBool>,
}

/// Renders the Prometheus text served at `/metrics` (the exporter's handle lives in fleetd).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// The services the web side talks to.
pub struct Deps {
    /// The registry, users, tokens, telemetry and dead letters.
    pub store: Store,
    /// Committed telemetry and order changes, for the live feed.
    pub bus: Bus,
    /// What `/healthz` checks.
    pub health: Health,
    /// What `/metrics` serves.
    pub metrics: MetricsRender,
}

/// State shared by every handler: cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub store: Store,
    #[expect(dead_code, reason = "the live feed subscribes to it; it comes with the next issue")]
    pub bus: Bus,
    pub health: Health,
    pub metrics: MetricsRender,
    pub token_ttl: Duration,
    pub throttle: auth::LoginThrottle,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub(crate) fn new(cfg: &Config, deps: Deps) -> Self {
        Self(Arc::new(Shared {
            store: deps.store,
            bus: deps.bus,
            health: deps.health,
            metrics: deps.metrics,
            token_ttl: cfg.token_ttl,
            throttle: auth::LoginThrottle::default(),
        }))
    }
}

/// The HTTP server: bound on construction, serving on [`WebServer::run`].
pub struct WebServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
}

impl WebServer {
    /// Binds the listener (port 0 = any free port) and builds the router.
    pub async fn bind(cfg: Config, deps: Deps) -> std::io::Result<Self> {
        let listener = TcpListener::bind(cfg.addr).await?;
        let local_addr = listener.local_addr()?;
        let router = router::router(AppState::new(&cfg, deps));
        Ok(Self { listener, local_addr, router })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests (axum graceful shutdown).
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        tracing::info!(http.addr = %self.local_addr, "http server started");
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
        tracing::info!(http.addr = %self.local_addr, "http server stopped");
        Ok(())
    }
}
