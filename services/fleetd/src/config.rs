//! Validated settings for `fleetd run`, built from flags and `FLEET_*` variables (see
//! `cli.rs`). Every problem is a `ConfigError` that names the setting: the binary prints it
//! on one line and exits with 64.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use fleet_domain::{Secret, SecretUrl};

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub use fleet_storage::DEFAULT_DATABASE_URL;
pub const DEFAULT_EMBEDDED_MQTT_ADDR: &str = "127.0.0.1:1884";
pub const DEFAULT_MQTT_CLIENT_ID: &str = "fleetd";
/// Where `run --demo` listens for GB/T 32960.3 terminals when `FLEET_GBT32960_ADDR` is unset.
pub const DEMO_GBT32960_ADDR: &str = "127.0.0.1:32960";
/// Where `run --demo` listens for JT/T 808 terminals when `FLEET_JT808_ADDR` is unset.
pub const DEMO_JT808_ADDR: &str = "127.0.0.1:6808";

/// A setting that cannot be used, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self { setting, problem: problem.into() }
    }
}

/// Which broker to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttTarget {
    /// Start an in-process broker listening here and connect to it.
    Embedded(SocketAddr),
    /// Connect to an existing broker.
    External(MqttUrl),
}

/// A parsed `mqtt://user:pass@host:port` URL (the broker crate's, shared with the simulator
/// and the benches); its errors become `FLEET_MQTT_URL` configuration errors here.
pub use fleet_broker::MqttUrl;

impl From<fleet_broker::MqttUrlError> for ConfigError {
    fn from(e: fleet_broker::MqttUrlError) -> Self {
        Self::new("FLEET_MQTT_URL", e.to_string())
    }
}

/// The configuration problem behind `e`, if that is what stopped a command: a
/// [`ConfigError`], or a broker URL that a subcommand outside this crate (`bench`) could not
/// read. The binary exits with 64 for these.
pub fn config_problem(e: &anyhow::Error) -> Option<ConfigError> {
    if let Some(c) = e.downcast_ref::<ConfigError>() {
        return Some(c.clone());
    }
    e.downcast_ref::<fleet_broker::MqttUrlError>().map(|u| u.clone().into())
}

/// Resolves `host:port` to one socket address.
pub fn socket_addr(setting: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.to_socket_addrs()
        .map_err(|e| ConfigError::new(setting, format!("{s:?} is not a host:port address ({e})")))?
        .next()
        .ok_or_else(|| ConfigError::new(setting, format!("{s:?} resolves to no address")))
}

/// The services one instance runs (`--services`): all three by default; a subset when
/// instances on one PostgreSQL split the work. Trip derivation and retention go with
/// `dispatch` (the background work), each led by one instance at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    pub ingest: bool,
    pub dispatch: bool,
    pub web: bool,
}

impl Services {
    pub const ALL: Self = Self { ingest: true, dispatch: true, web: true };

    /// A comma-separated list of `ingest`, `dispatch`, `web`.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError::new("FLEET_SERVICES", why);
        let mut s = Self { ingest: false, dispatch: false, web: false };
        for name in list.split(',').map(str::trim) {
            let slot = match name {
                "ingest" => &mut s.ingest,
                "dispatch" => &mut s.dispatch,
                "web" => &mut s.web,
                other => return Err(bad(format!("{other:?} is not a service (ingest, dispatch, web)"))),
            };
            if *slot {
                return Err(bad(format!("{name} is named twice")));
            }
            *slot = true;
        }
        Ok(s)
    }

    pub fn is_all(self) -> bool {
        self == Self::ALL
    }
}

/// Everything `fleetd run` needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub database_url: SecretUrl,
    pub mqtt: MqttTarget,
    /// TLS to an `mqtts://` external broker (its roots and client certificate, read at start).
    pub mqtt_tls: Option<fleet_broker::MqttTls>,
    /// The embedded broker lets clients without an account in (development only; refused
    /// unless it listens on a loopback address).
    pub embedded_mqtt_anonymous: bool,
    pub mqtt_client_id: String,
    /// `$share/<group>/` prefix for the subscriptions when instances split the stream.
    pub mqtt_share_group: Option<String>,
    /// The EMQX gateways whose topics ingest reads besides fleetd's own.
    pub emqx_gateways: fleet_ingest::EmqxGateways,
    /// The services this instance runs.
    pub services: Services,
    /// This instance is one of several on one PostgreSQL database: events travel between
    /// them (live feed, trip derivation). Implied by a subset of services.
    pub cluster: bool,
    pub admin_password: Option<Secret>,
    pub demo: bool,
    /// The demo simulator's reporting interval.
    pub demo_interval: Duration,
    /// Orders a minute the demo's units place in working hours.
    pub demo_orders_per_min: f64,
    pub token_ttl: Duration,
    pub ingest_max_batch: usize,
    pub ingest_max_batch_delay: Duration,
    pub shutdown_grace: Duration,
    /// The map page's tile layer and alarm thresholds.
    pub map: fleet_web::MapConfig,
    /// A live-feed connection whose socket takes no message for this long is dropped.
    pub live_send_timeout: Duration,
    pub dispatch: DispatchSettings,
    /// Trip and charging-session derivation.
    pub stats: fleet_stats::Config,
    /// The CO₂ comparison's factors.
    pub co2: fleet_web::Co2Factors,
    /// The HTTP server's header, idle and body timeouts and its connection cap.
    pub http_connections: fleet_web::ConnectionLimits,
    /// A sample stamped further ahead of this clock is stored flagged and moves no state.
    pub ingest_max_clock_ahead: Duration,
    /// Who reaches `/metrics`: its own address, a token.
    pub metrics: fleet_web::MetricsAccess,
    /// Client addresses from `X-Forwarded-For` (behind a reverse proxy).
    pub trust_forwarded_for: bool,
    /// Where the GB/T 32960.3 TCP gateway listens; none: no gateway.
    pub gbt32960_addr: Option<SocketAddr>,
    /// TLS on the GB/T 32960.3 gateway; none: plain TCP.
    pub gbt32960_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Where the JT/T 808 TCP gateway listens; none: no gateway.
    pub jt808_addr: Option<SocketAddr>,
    /// The TCP gateways' idle timeout and connection cap.
    pub gateway: fleet_ingest::gateway::GatewayConfig,
}

/// Dispatch's rules and rhythm.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub params: fleet_domain::DispatchParams,
    /// Due orders are matched this often.
    pub batch_interval: Duration,
    /// A driver's time to accept an assignment.
    pub accept_timeout: Duration,
    /// How long before pickup an order is matched and its car reserved.
    pub lead: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            params: fleet_domain::DispatchParams::default(),
            batch_interval: Duration::from_secs(2),
            accept_timeout: Duration::from_secs(30),
            lead: fleet_domain::order::DEFAULT_DISPATCH_LEAD.to_std().unwrap_or(Duration::from_secs(1800)),
        }
    }
}

/// The share group instances of a cluster split the telemetry stream in, unless configured.
pub const DEFAULT_CLUSTER_SHARE_GROUP: &str = "fleetd";

impl Settings {
    /// Whether events travel between instances.
    pub fn relays_events(&self) -> bool {
        self.cluster || !self.services.is_all()
    }

    /// Checks the settings that only make sense together.
    pub fn check_cluster(&self) -> Result<(), ConfigError> {
        let setting = if self.cluster { "FLEET_CLUSTER" } else { "FLEET_SERVICES" };
        if !self.relays_events() {
            if self.mqtt_share_group.is_some() {
                // Sharing the stream without sharing events would leave each live feed with
                // only the cars this instance happened to ingest.
                return Err(ConfigError::new(
                    "FLEET_MQTT_SHARE_GROUP",
                    "instances that split the stream run with --cluster (or --services)",
                ));
            }
            return Ok(());
        }
        if !self.database_url.expose().starts_with("postgres") {
            return Err(ConfigError::new(
                setting,
                "instances that share the work share one PostgreSQL database: set FLEET_DATABASE_URL to postgres://…",
            ));
        }
        if self.services.ingest && matches!(self.mqtt, MqttTarget::Embedded(_)) {
            return Err(ConfigError::new(setting, "instances that share ingest share one broker: set FLEET_MQTT_URL"));
        }
        if self.demo {
            return Err(ConfigError::new(setting, "--demo runs one instance with every service"));
        }
        Ok(())
    }

    /// Anonymous access to the embedded broker is for development on this machine: refused
    /// when the broker listens beyond loopback, where anyone on the network could publish
    /// any car's telemetry.
    pub fn check_embedded_broker(&self) -> Result<(), ConfigError> {
        match &self.mqtt {
            MqttTarget::Embedded(addr) if self.embedded_mqtt_anonymous && !addr.ip().is_loopback() => {
                Err(ConfigError::new(
                    "FLEET_EMBEDDED_MQTT_ANONYMOUS",
                    format!(
                        "anonymous access is for development on a loopback address, and the embedded broker would listen on {addr} (FLEET_EMBEDDED_MQTT_ADDR)"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// EMQX's gateways publish on the EMQX broker itself: reading them needs that broker
    /// (`FLEET_MQTT_URL`), never the embedded one, where their topics cannot appear.
    pub fn check_emqx_gateways(&self) -> Result<(), ConfigError> {
        let reads_any = self.emqx_gateways != fleet_ingest::EmqxGateways::default();
        if reads_any && matches!(self.mqtt, MqttTarget::Embedded(_)) {
            return Err(ConfigError::new(
                "FLEET_EMQX_GATEWAYS",
                "EMQX's gateways publish on the EMQX broker: set FLEET_MQTT_URL to it",
            ));
        }
        Ok(())
    }

    /// Settings for tests and embedding: the given addresses, everything else default.
    pub fn new(http_addr: SocketAddr, database_url: impl Into<SecretUrl>, mqtt: MqttTarget) -> Self {
        let database_url: SecretUrl = database_url.into();
        let ingest_max_batch = fleet_ingest::Config::default_max_batch(database_url.expose().starts_with("sqlite:"));
        Self {
            http_addr,
            database_url,
            mqtt,
            mqtt_tls: None,
            embedded_mqtt_anonymous: false,
            mqtt_client_id: DEFAULT_MQTT_CLIENT_ID.to_owned(),
            mqtt_share_group: None,
            emqx_gateways: fleet_ingest::EmqxGateways::default(),
            services: Services::ALL,
            cluster: false,
            admin_password: None,
            demo: false,
            demo_interval: Duration::from_secs(5),
            demo_orders_per_min: fleet_sim::demo::DEMO_ORDERS_PER_MIN,
            token_ttl: Duration::from_secs(12 * 3600),
            ingest_max_batch,
            ingest_max_batch_delay: fleet_ingest::Config::DEFAULT_MAX_BATCH_DELAY,
            shutdown_grace: Duration::from_secs(10),
            map: fleet_web::MapConfig::default(),
            live_send_timeout: fleet_web::DEFAULT_LIVE_SEND_TIMEOUT,
            dispatch: DispatchSettings::default(),
            stats: fleet_stats::Config::default(),
            co2: fleet_web::Co2Factors::default(),
            http_connections: fleet_web::ConnectionLimits::default(),
            ingest_max_clock_ahead: fleet_domain::MAX_CLOCK_AHEAD,
            metrics: fleet_web::MetricsAccess::default(),
            trust_forwarded_for: false,
            gbt32960_addr: None,
            gbt32960_tls: None,
            jt808_addr: None,
            gateway: fleet_ingest::gateway::GatewayConfig::default(),
        }
    }
}

/// Checks a database URL's form (connecting is the app's job).
pub fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let ok = ["sqlite:", "postgres://", "postgresql://"].iter().any(|p| url.starts_with(p));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new("FLEET_DATABASE_URL", format!("{url:?} must start with sqlite:// or postgres://")))
    }
}

/// Checks an MQTT client id: the broker's persistent session is keyed by it.
pub fn check_client_id(id: &str) -> Result<(), ConfigError> {
    let ok = (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok { Ok(()) } else { Err(ConfigError::new("FLEET_MQTT_CLIENT_ID", "1 to 64 of a-z, A-Z, 0-9, '-', '_', '.'")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_mqtt_urls_naming_the_setting() {
        for bad in ["http://x", "127.0.0.1:1883", "mqtt://", "mqtts://"] {
            let e = ConfigError::from(MqttUrl::parse(bad).unwrap_err());
            assert_eq!(e.setting, "FLEET_MQTT_URL", "{bad}");
        }
    }

    #[test]
    fn parses_service_lists() {
        assert_eq!(Services::parse("ingest,dispatch,web").unwrap(), Services::ALL);
        assert_eq!(Services::parse("web").unwrap(), Services { ingest: false, dispatch: false, web: true });
        assert_eq!(
            Services::parse(" ingest , dispatch").unwrap(),
            Services { ingest: true, dispatch: true, web: false }
        );
        for bad in ["", "web,web", "stats", "ingest,,web"] {
            assert_eq!(Services::parse(bad).unwrap_err().setting, "FLEET_SERVICES", "{bad:?}");
        }
    }

    #[test]
    fn a_cluster_needs_postgresql_and_an_external_broker() {
        let embedded = MqttTarget::Embedded("127.0.0.1:1884".parse().unwrap());
        let mut s = Settings::new("127.0.0.1:0".parse().unwrap(), "sqlite://x.db", embedded.clone());
        assert!(s.check_cluster().is_ok(), "one instance with everything needs nothing more");
        s.services = Services::parse("web").unwrap();
        assert_eq!(s.check_cluster().unwrap_err().setting, "FLEET_SERVICES");
        s.database_url = "postgres://db/fleet".into();
        assert!(s.check_cluster().is_ok(), "web alone needs no broker");
        s.services = Services::ALL;
        s.cluster = true;
        assert_eq!(s.check_cluster().unwrap_err().setting, "FLEET_CLUSTER");
        s.mqtt = MqttTarget::External(MqttUrl::parse("mqtt://broker:1883").unwrap());
        assert!(s.check_cluster().is_ok());
        s.cluster = false;
        s.mqtt_share_group = Some("fleetd".into());
        assert_eq!(
            s.check_cluster().unwrap_err().setting,
            "FLEET_MQTT_SHARE_GROUP",
            "a share group alone is a half-made cluster"
        );
    }

    #[test]
    fn no_secret_shows_in_the_settings_debug_output() {
        let mut s = Settings::new(
            "127.0.0.1:0".parse().unwrap(),
            "postgres://fleet:db-pass-1@db:5432/fleet",
            MqttTarget::External(MqttUrl::parse("mqtt://fleetd:broker-pass-2@broker:1883").unwrap()),
        );
        s.admin_password = Some("admin-pass-3".into());
        s.metrics.token = Some("metrics-token-4-long-enough".into());
        let shown = format!("{s:?} {s:#?}");
        for secret in ["db-pass-1", "broker-pass-2", "admin-pass-3", "metrics-token-4"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("db:5432"), "the database server is still named: {shown}");
    }

    #[test]
    fn anonymous_access_to_the_embedded_broker_only_on_loopback() {
        let at = |addr: &str, anonymous: bool| {
            let mut s = Settings::new(
                "127.0.0.1:0".parse().unwrap(),
                "sqlite://x.db",
                MqttTarget::Embedded(addr.parse().unwrap()),
            );
            s.embedded_mqtt_anonymous = anonymous;
            s.check_embedded_broker()
        };
        assert!(at("127.0.0.1:0", true).is_ok());
        assert!(at("[::1]:1884", true).is_ok());
        assert!(at("0.0.0.0:1884", false).is_ok(), "accounts only: allowed anywhere (with a warning)");
        for bad in ["0.0.0.0:0", "192.0.2.10:1884", "[::]:1884"] {
            assert_eq!(at(bad, true).unwrap_err().setting, "FLEET_EMBEDDED_MQTT_ANONYMOUS", "{bad}");
        }
    }

    #[test]
    fn emqx_gateways_are_read_only_from_an_external_broker() {
        let embedded = MqttTarget::Embedded("127.0.0.1:1884".parse().unwrap());
        let mut s = Settings::new("127.0.0.1:0".parse().unwrap(), "sqlite://x.db", embedded);
        assert!(s.check_emqx_gateways().is_ok(), "none read: nothing to check");
        s.emqx_gateways = fleet_ingest::EmqxGateways::ALL;
        assert_eq!(s.check_emqx_gateways().unwrap_err().setting, "FLEET_EMQX_GATEWAYS");
        s.mqtt = MqttTarget::External(MqttUrl::parse("mqtt://emqx:1883").unwrap());
        assert!(s.check_emqx_gateways().is_ok());
    }

    #[test]
    fn batches_default_larger_on_sqlite() {
        let embedded = MqttTarget::Embedded("127.0.0.1:1884".parse().unwrap());
        let sqlite = Settings::new("127.0.0.1:0".parse().unwrap(), "sqlite://x.db", embedded.clone());
        let postgres = Settings::new("127.0.0.1:0".parse().unwrap(), "postgres://db/fleet", embedded);
        assert_eq!((sqlite.ingest_max_batch, postgres.ingest_max_batch), (16_000, 4_000));
    }

    #[test]
    fn rejects_bad_addresses_and_database_urls() {
        assert!(socket_addr("FLEET_HTTP_ADDR", "127.0.0.1:0").is_ok());
        assert!(socket_addr("FLEET_HTTP_ADDR", "nonsense").is_err());
        assert!(check_database_url("mysql://x").is_err());
        assert!(check_database_url("sqlite://./x.db").is_ok());
        assert!(check_client_id("fleetd-1").is_ok());
        assert!(check_client_id("a b").is_err());
    }
}
