//! fleet-web: the HTTP side of the platform. It owns the JSON API under `/api/v1` (login and
//! bearer tokens, the registry of units, vehicles, drivers and users, tracks, dead letters,
//! charging stations), its OpenAPI document, `/healthz`, `/metrics`, and the embedded pages
//! (`web/assets`), and the live WebSocket feed ([`live`]).
//!
//! Everything a request may be refused for is one [`error::ApiError`], rendered as the
//! `{"error": {"code", "message"}}` of docs/api.md. Who may see and do what is decided in
//! [`access`]; handlers ask it, they never compare roles themselves.

mod access;
mod api;
mod assets;
mod audit;
mod auth;
mod conn;
mod error;
mod extract;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod idempotency;
mod layers;
mod live;
mod map;
mod mqtt_account;
mod router;
mod serve;

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
pub use fleet_stats::Co2Factors;
pub use live::{DEFAULT_SEND_TIMEOUT as DEFAULT_LIVE_SEND_TIMEOUT, TICK as LIVE_TICK};
pub use map::{MapConfig, TileCrs, TileLayer};
pub use mqtt_account::{
    MOSQUITTO_PBKDF2_ITERATIONS, is_valid_mqtt_username, mosquitto_password_line, mosquitto_password_matches,
    new_vehicle_secret,
};
pub use serve::{
    ConnectionLimits, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};

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
    /// A live-feed connection whose socket takes no message for this long is dropped.
    pub live_send_timeout: Duration,
    /// Tile layers and alarm thresholds for the map page.
    pub map: MapConfig,
    /// Road factor and average speed (for an order's reservation window).
    pub dispatch: fleet_domain::DispatchParams,
    /// The petrol baseline and grid factor of the CO₂ figures.
    pub co2: Co2Factors,
    /// Serve the API, the pages and the live feed; false serves only `/healthz` and
    /// `/metrics` (an instance that runs ingest or dispatch alone).
    pub api: bool,
    /// Header, idle and body timeouts, and the cap on open connections.
    pub connections: ConnectionLimits,
    /// Take the client's address from the last `X-Forwarded-For` entry (behind a reverse
    /// proxy that appends it), for the login throttle.
    pub trust_forwarded_for: bool,
    /// Who reaches `/metrics`.
    pub metrics: MetricsAccess,
}

/// Shortest metrics token accepted.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

/// Who reaches `/metrics` (by default: on the HTTP port, open).
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// Serve `/metrics` on this address only (a listener of its own), not on the HTTP port.
    pub addr: Option<SocketAddr>,
    /// Require this bearer token on `/metrics`.
    pub token: Option<fleet_domain::Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: DEFAULT_HTTP_ADDR,
            token_ttl: DEFAULT_TOKEN_TTL,
            live_send_timeout: live::DEFAULT_SEND_TIMEOUT,
            map: MapConfig::default(),
            dispatch: fleet_domain::DispatchParams::default(),
            co2: Co2Factors::default(),
            api: true,
            connections: ConnectionLimits::default(),
            trust_forwarded_for: false,
            metrics: MetricsAccess::default(),
        }
    }
}

/// What `/healthz` checks: the database and the broker connection (kept by ingest).
#[derive(Clone)]
pub struct Health {
    /// Pinged (with a short timeout) on every check.
    pub store: Store,
    /// True while the MQTT client holds a connection to the broker; `None` on an instance
    /// that does not ingest (it needs no broker).
    pub mqtt_connected: Option<Arc<AtomicBool>>,
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
    pub bus: Bus,
    pub health: Health,
    pub metrics: MetricsRender,
    pub token_ttl: Duration,
    pub throttle: auth::LoginThrottle,
    /// See [`Config::trust_forwarded_for`].
    pub trust_forwarded_for: bool,
    pub metrics_access: MetricsAccess,
    pub live: Arc<live::Live>,
    pub map: MapConfig,
    pub dispatch: fleet_domain::DispatchParams,
    pub co2: Co2Factors,
    /// The Content-Security-Policy of every response (it names configured tile servers).
    pub csp: axum::http::HeaderValue,
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
            live: Arc::new(live::Live::new(cfg.live_send_timeout, deps.store.clone())),
            store: deps.store,
            bus: deps.bus,
            health: deps.health,
            metrics: deps.metrics,
            token_ttl: cfg.token_ttl,
            throttle: auth::LoginThrottle::default(),
            trust_forwarded_for: cfg.trust_forwarded_for,
            metrics_access: cfg.metrics.clone(),
            map: cfg.map.clone(),
            dispatch: cfg.dispatch,
            co2: cfg.co2,
            csp: layers::content_security_policy(&cfg.map.tiles),
        }))
    }
}

/// The HTTP server: bound on construction, serving on [`WebServer::run`].
pub struct WebServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    /// `/metrics` on an address of its own, when configured.
    metrics: Option<(TcpListener, SocketAddr, axum::Router)>,
    state: AppState,
    api: bool,
    connections: ConnectionLimits,
}

/// Which listener could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {0} for HTTP: {1}")]
    Http(SocketAddr, std::io::Error),
    #[error("cannot listen on {0} for metrics (FLEET_METRICS_ADDR): {1}")]
    Metrics(SocketAddr, std::io::Error),
}

impl WebServer {
    /// Binds the listeners (port 0 = any free port) and builds the routers.
    pub async fn bind(cfg: Config, deps: Deps) -> Result<Self, BindError> {
        let listener = TcpListener::bind(cfg.addr).await.map_err(|e| BindError::Http(cfg.addr, e))?;
        let local_addr = listener.local_addr().map_err(|e| BindError::Http(cfg.addr, e))?;
        let state = AppState::new(&cfg, deps);
        let metrics = match cfg.metrics.addr {
            Some(addr) => {
                let l = TcpListener::bind(addr).await.map_err(|e| BindError::Metrics(addr, e))?;
                let bound = l.local_addr().map_err(|e| BindError::Metrics(addr, e))?;
                Some((l, bound, router::metrics_router(state.clone())))
            }
            None => None,
        };
        let router = router::router(state.clone(), cfg.api);
        Ok(Self { listener, local_addr, router, metrics, state, api: cfg.api, connections: cfg.connections })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` is served on when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.1)
    }

    /// Serves until `shutdown` is cancelled, then closes the live feed's connections and
    /// finishes in-flight requests (the caller bounds the wait with its grace period). Fails
    /// when the live feed's hub ends by itself (after the server has stopped likewise).
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let limits = self.connections;
        tracing::info!(
            http.addr = %self.local_addr,
            http.header_timeout_s = limits.header_timeout.as_secs(),
            http.idle_timeout_s = limits.idle_timeout.as_secs(),
            http.max_connections = limits.max_connections,
            "http server started"
        );
        let live = self.state.live.clone();
        // Stops serving: at shutdown, or when the live feed's hub has ended by itself.
        let stop = shutdown.child_token();
        let hub = self
            .api
            .then(|| live.tasks.spawn(live::run_hub(live.clone(), self.state.store.clone(), self.state.bus.clone())));
        let stop_live = async {
            stop.cancelled().await;
            live.stop.cancel();
        };
        let metrics = async {
            if let Some((listener, addr, router)) = self.metrics {
                tracing::info!(metrics.addr = %addr, "metrics server started");
                serve::serve(listener, router, limits, stop.clone()).await;
            }
        };
        let serving = async {
            tokio::join!(serve::serve(self.listener, self.router, limits, stop.clone()), stop_live, metrics);
        };
        let hub_ended = async {
            match hub {
                Some(hub) => hub.await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(serving, hub_ended);
        let hub_failed = tokio::select! {
            () = &mut serving => None,
            ended = &mut hub_ended => {
                // The hub ends at shutdown too, before the connections have drained.
                let failed = (!shutdown.is_cancelled()).then(|| match ended {
                    Ok(()) => "the live feed's hub stopped".to_owned(),
                    Err(e) => format!("the live feed's hub failed: {e}"),
                });
                if failed.is_some() {
                    stop.cancel();
                }
                serving.await;
                failed
            }
        };
        live.stop.cancel();
        live.tasks.close();
        live.tasks.wait().await;
        tracing::info!(http.addr = %self.local_addr, "http server stopped");
        match hub_failed {
            Some(why) => Err(std::io::Error::other(why)),
            None => Ok(()),
        }
    }
}
