//! Command line: subcommands, flags and their `FLEET_*` variables.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use fleet_domain::{Secret, SecretUrl};

use crate::config::{self, ConfigError, MqttTarget, MqttUrl, Settings};
use crate::mqtt_tls::MqttTlsArgs;

/// fleetd: telematics ingest, dispatch and live map for an official EV fleet.
#[derive(Debug, Parser)]
#[command(name = "fleetd", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in one process (HTTP API and pages, MQTT ingest).
    Run(Box<RunArgs>),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Publish simulated Zhoushan fleet telemetry to a broker, or report it to a TCP gateway.
    Simulate(SimulateArgs),
    /// Measure throughput and latency against a baseline from the same run (prints JSON last).
    Bench(fleet_bench::BenchArgs),
    /// Write a Mosquitto password file from the registry: every vehicle issued a secret
    /// (username = VIN) and fleetd's own account (the user and password of FLEET_MQTT_URL).
    #[command(
        name = "mqtt-passwd",
        after_help = "The file is replaced atomically (mode 0600; the owner and group of the file it replaces are kept, \
                      so a file chowned to the broker's user stays readable by it). Then reload the broker: \
                      `systemctl reload mosquitto` or `kill -HUP <pid>`. See deploy/mosquitto/README.md."
    )]
    MqttPasswd(MqttPasswdArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Database URL: sqlite://path (created if missing) or postgres://user@host/db.
    #[arg(long, env = "FLEET_DATABASE_URL", hide_env_values = true, default_value = config::DEFAULT_DATABASE_URL)]
    pub database_url: SecretUrl,
}

#[derive(Debug, Clone, Args)]
pub struct MqttPasswdArgs {
    /// The password file to write, e.g. /etc/mosquitto/fleet/passwd.
    #[arg(long, value_name = "FILE")]
    pub output: std::path::PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// fleetd's broker URL, mqtt://user:pass@host[:port] (mqtts:// too): its user and password
    /// become fleetd's account in the file.
    #[arg(long, env = "FLEET_MQTT_URL", hide_env_values = true)]
    pub mqtt_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MqttArgs {
    /// External broker, mqtt://[user:pass@]host[:port] (mqtts:// over TLS). Unset: start the
    /// embedded broker.
    #[arg(long, env = "FLEET_MQTT_URL")]
    pub mqtt_url: Option<String>,
    #[command(flatten)]
    pub tls: MqttTlsArgs,
    /// Where the embedded broker listens when no FLEET_MQTT_URL is given.
    #[arg(long, env = "FLEET_EMBEDDED_MQTT_ADDR", default_value = config::DEFAULT_EMBEDDED_MQTT_ADDR)]
    pub embedded_mqtt_addr: String,
    /// Let MQTT clients without an account into the embedded broker (development only;
    /// refused unless FLEET_EMBEDDED_MQTT_ADDR is a loopback address).
    #[arg(long, env = "FLEET_EMBEDDED_MQTT_ANONYMOUS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub embedded_mqtt_anonymous: bool,
}

impl MqttArgs {
    pub fn target(&self) -> Result<MqttTarget, ConfigError> {
        match &self.mqtt_url {
            Some(url) => Ok(MqttTarget::External(MqttUrl::parse(url)?)),
            None => {
                Ok(MqttTarget::Embedded(config::socket_addr("FLEET_EMBEDDED_MQTT_ADDR", &self.embedded_mqtt_addr)?))
            }
        }
    }

    /// The TLS of an `mqtts://` external broker's connection.
    pub fn tls(&self, target: &MqttTarget) -> Result<Option<fleet_broker::MqttTls>, ConfigError> {
        self.tls.load(matches!(target, MqttTarget::External(url) if url.tls))
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// HTTP listen address for the API and pages (port 0 picks a free one).
    #[arg(long, env = "FLEET_HTTP_ADDR", default_value = config::DEFAULT_HTTP_ADDR)]
    pub http_addr: String,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// Client id of fleetd's persistent MQTT session (each instance on a broker needs its own).
    #[arg(long, env = "FLEET_MQTT_CLIENT_ID", default_value = config::DEFAULT_MQTT_CLIENT_ID)]
    pub mqtt_client_id: String,
    /// Split the telemetry stream with other instances through the shared subscription
    /// group `$share/<group>/`.
    #[arg(long, env = "FLEET_MQTT_SHARE_GROUP")]
    pub mqtt_share_group: Option<String>,
    /// Also read what EMQX's GB/T 32960 and JT/T 808 gateways publish on the broker:
    /// `gbt32960`, `jt808` or both, comma-separated; empty: neither.
    #[arg(long, env = "FLEET_EMQX_GATEWAYS", default_value = "")]
    pub emqx_gateways: String,
    /// Services this instance runs, comma-separated: ingest, dispatch (with trip derivation
    /// and retention), web (API, pages, live feed). A subset needs PostgreSQL and implies
    /// --cluster.
    #[arg(long, env = "FLEET_SERVICES", default_value = "ingest,dispatch,web")]
    pub services: String,
    /// This instance is one of several on one PostgreSQL database and one broker: events go
    /// between instances (LISTEN/NOTIFY), ingest joins the shared subscription group
    /// (FLEET_MQTT_SHARE_GROUP, default `fleetd`), one instance leads dispatch and derivation.
    #[arg(long, env = "FLEET_CLUSTER")]
    pub cluster: bool,
    /// Password of the `admin` user created on first start (generated and printed if unset).
    #[arg(long, env = "FLEET_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// Load the Zhoushan demo data into an empty database and drive the cars with the simulator.
    #[arg(long)]
    pub demo: bool,
    /// Reporting interval of the demo simulator, seconds.
    #[arg(long, env = "FLEET_DEMO_INTERVAL_S", default_value_t = 5)]
    pub demo_interval_s: u64,
    /// Orders the demo's units place a minute in working hours (fewer in the evening and at
    /// night; 0: none).
    #[arg(long, env = "FLEET_DEMO_ORDERS_PER_MIN", default_value_t = fleet_sim::demo::DEMO_ORDERS_PER_MIN)]
    pub demo_orders_per_min: f64,
    /// Lifetime of a login token, hours.
    #[arg(long, env = "FLEET_TOKEN_TTL_HOURS", default_value_t = 12)]
    pub token_ttl_hours: u64,
    /// Most MQTT messages committed in one ingest transaction [default: 16000 on SQLite,
    /// 4000 on PostgreSQL].
    #[arg(long, env = "FLEET_INGEST_MAX_BATCH")]
    pub ingest_max_batch: Option<usize>,
    /// Longest a message waits for its ingest batch to fill, milliseconds.
    #[arg(long, env = "FLEET_INGEST_MAX_DELAY_MS", default_value_t = 25)]
    pub ingest_max_delay_ms: u64,
    /// Seconds to finish in-flight work after SIGINT/SIGTERM.
    #[arg(long, env = "FLEET_SHUTDOWN_GRACE_S", default_value_t = 10)]
    pub shutdown_grace_s: u64,
    #[command(flatten)]
    pub map: MapArgs,
    #[command(flatten)]
    pub dispatch: DispatchArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub gateways: GatewayArgs,
    /// Petrol a comparable car would burn, L/100 km (the baseline of CO₂ avoided).
    #[arg(long, env = "FLEET_CO2_PETROL_L_PER_100KM", default_value_t = fleet_web::Co2Factors::default().petrol_l_per_100km)]
    pub co2_petrol_l_per_100km: f64,
    /// CO₂ per litre of petrol, kg.
    #[arg(long, env = "FLEET_CO2_PETROL_KG_PER_L", default_value_t = fleet_web::Co2Factors::default().petrol_kg_co2_per_l)]
    pub co2_petrol_kg_per_l: f64,
    /// Days raw telemetry samples are kept (derived trips stay); 0 keeps them for good.
    #[arg(long, env = "FLEET_RETENTION_DAYS", default_value_t = 400)]
    pub retention_days: u64,
    /// CO₂ per kWh of grid electricity, kg.
    #[arg(long, env = "FLEET_CO2_GRID_KG_PER_KWH", default_value_t = fleet_web::Co2Factors::default().grid_kg_co2_per_kwh)]
    pub co2_grid_kg_per_kwh: f64,
}

/// Dispatch rules (docs/dispatch.md).
#[derive(Debug, Clone, Args)]
pub struct DispatchArgs {
    /// Road distance = great-circle distance × this factor.
    #[arg(long, env = "FLEET_DISPATCH_ROAD_FACTOR", default_value_t = fleet_domain::feasibility::DEFAULT_ROAD_FACTOR)]
    pub dispatch_road_factor: f64,
    /// Average speed for ETAs and reservation windows, km/h.
    #[arg(long, env = "FLEET_DISPATCH_AVG_SPEED_KMH", default_value_t = fleet_domain::feasibility::DEFAULT_AVG_SPEED_KMH)]
    pub dispatch_avg_speed_kmh: f64,
    /// Battery share a car must keep after pickup and trip, percent.
    #[arg(long, env = "FLEET_DISPATCH_RESERVE_PCT", default_value_t = fleet_domain::feasibility::DEFAULT_RESERVE_PCT)]
    pub dispatch_reserve_pct: f64,
    /// How often due orders are matched in one batch, milliseconds.
    #[arg(long, env = "FLEET_DISPATCH_BATCH_INTERVAL_MS", default_value_t = 2000)]
    pub dispatch_batch_interval_ms: u64,
    /// Time a driver has to accept an assignment, seconds.
    #[arg(long, env = "FLEET_DISPATCH_ACCEPT_TIMEOUT_S", default_value_t = 30)]
    pub dispatch_accept_timeout_s: u64,
    /// How long before pickup a booked order is matched and its car reserved, minutes.
    #[arg(long, env = "FLEET_DISPATCH_LEAD_MIN", default_value_t = 30)]
    pub dispatch_lead_min: u64,
}

impl DispatchArgs {
    fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        let params = fleet_domain::DispatchParams {
            road_factor: self.dispatch_road_factor,
            avg_speed_kmh: self.dispatch_avg_speed_kmh,
            reserve_pct: self.dispatch_reserve_pct,
            ..fleet_domain::DispatchParams::default()
        };
        params.validate().map_err(|e| {
            let setting = match e.field {
                "road_factor" => "FLEET_DISPATCH_ROAD_FACTOR",
                "avg_speed_kmh" => "FLEET_DISPATCH_AVG_SPEED_KMH",
                _ => "FLEET_DISPATCH_RESERVE_PCT",
            };
            ConfigError::new(setting, e.problem)
        })?;
        if !(100..=600_000).contains(&self.dispatch_batch_interval_ms) {
            return Err(ConfigError::new("FLEET_DISPATCH_BATCH_INTERVAL_MS", "must be 100 to 600000"));
        }
        if !(5..=3600).contains(&self.dispatch_accept_timeout_s) {
            return Err(ConfigError::new("FLEET_DISPATCH_ACCEPT_TIMEOUT_S", "must be 5 to 3600"));
        }
        if !(1..=24 * 60).contains(&self.dispatch_lead_min) {
            return Err(ConfigError::new("FLEET_DISPATCH_LEAD_MIN", "must be 1 to 1440"));
        }
        s.dispatch.params = params;
        s.dispatch.batch_interval = Duration::from_millis(self.dispatch_batch_interval_ms);
        s.dispatch.accept_timeout = Duration::from_secs(self.dispatch_accept_timeout_s);
        s.dispatch.lead = Duration::from_secs(self.dispatch_lead_min * 60);
        Ok(())
    }
}

/// How long HTTP clients may take and how many may be connected; how far ahead of this
/// clock a sample may be stamped.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Seconds a client has to send a request's head, from its first byte (from the
    /// connection, for the first request).
    #[arg(long, env = "FLEET_HTTP_HEADER_TIMEOUT_S", default_value_t = fleet_web::DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub http_header_timeout_s: u64,
    /// Seconds a keep-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "FLEET_HTTP_IDLE_TIMEOUT_S", default_value_t = fleet_web::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub http_idle_timeout_s: u64,
    /// Seconds a request body has to arrive in full (408 otherwise).
    #[arg(long, env = "FLEET_HTTP_BODY_TIMEOUT_S", default_value_t = fleet_web::DEFAULT_BODY_TIMEOUT.as_secs())]
    pub http_body_timeout_s: u64,
    /// Most HTTP connections open at once, live-feed WebSockets included; further ones are
    /// closed on arrival.
    #[arg(long, env = "FLEET_HTTP_MAX_CONNECTIONS", default_value_t = fleet_web::DEFAULT_MAX_CONNECTIONS)]
    pub http_max_connections: usize,
    /// Seconds a sample may be stamped ahead of this clock and still move its vehicle's
    /// state; further ahead, it is stored flagged `clock_ahead`.
    #[arg(long, env = "FLEET_INGEST_MAX_FUTURE_S", default_value_t = fleet_domain::MAX_CLOCK_AHEAD.as_secs())]
    pub ingest_max_future_s: u64,
}

impl LimitArgs {
    fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        for (setting, value, max) in [
            ("FLEET_HTTP_HEADER_TIMEOUT_S", self.http_header_timeout_s, 3600),
            ("FLEET_HTTP_IDLE_TIMEOUT_S", self.http_idle_timeout_s, 24 * 3600),
            ("FLEET_HTTP_BODY_TIMEOUT_S", self.http_body_timeout_s, 24 * 3600),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError::new(setting, format!("must be 1 to {max}")));
            }
        }
        if !(1..=1_000_000).contains(&self.http_max_connections) {
            return Err(ConfigError::new("FLEET_HTTP_MAX_CONNECTIONS", "must be 1 to 1000000"));
        }
        if self.ingest_max_future_s > 7 * 24 * 3600 {
            return Err(ConfigError::new("FLEET_INGEST_MAX_FUTURE_S", "must be 0 to 604800"));
        }
        s.http_connections = fleet_web::ConnectionLimits {
            header_timeout: Duration::from_secs(self.http_header_timeout_s),
            idle_timeout: Duration::from_secs(self.http_idle_timeout_s),
            body_timeout: Duration::from_secs(self.http_body_timeout_s),
            max_connections: self.http_max_connections,
        };
        s.ingest_max_clock_ahead = Duration::from_secs(self.ingest_max_future_s);
        Ok(())
    }
}

/// Who reaches `/metrics`, and where client addresses come from.
#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9100`, for the scraper), not on
    /// the HTTP address.
    #[arg(long, env = "FLEET_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Require `Authorization: Bearer <this>` on `/metrics` (at least 16 characters).
    #[arg(long, env = "FLEET_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// fleetd is behind a reverse proxy that appends the client's address to
    /// `X-Forwarded-For`: take it from there (the login throttle counts by address).
    #[arg(long, env = "FLEET_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
}

impl AccessArgs {
    fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        s.metrics.addr =
            self.metrics_addr.as_deref().map(|a| config::socket_addr("FLEET_METRICS_ADDR", a)).transpose()?;
        if let Some(token) = self.metrics_token.as_ref().map(Secret::expose)
            && (token.chars().count() < fleet_web::MIN_METRICS_TOKEN_LEN
                || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::new(
                "FLEET_METRICS_TOKEN",
                format!("at least {} visible ASCII characters", fleet_web::MIN_METRICS_TOKEN_LEN),
            ));
        }
        s.metrics.token = self.metrics_token.clone();
        s.trust_forwarded_for = self.trust_forwarded_for;
        Ok(())
    }
}

/// The TCP gateways through which terminals that do not speak MQTT report.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Accept GB/T 32960.3 terminals and platforms over TCP on this address (e.g.
    /// `0.0.0.0:32960`); unset: no gateway.
    #[arg(long, env = "FLEET_GBT32960_ADDR")]
    pub gbt32960_addr: Option<String>,
    /// Server certificate chain (PEM) of the GB/T 32960.3 gateway: terminals then connect
    /// over TLS. Needs FLEET_GBT32960_TLS_KEY.
    #[arg(long, env = "FLEET_GBT32960_TLS_CERT", value_name = "FILE")]
    pub gbt32960_tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of FLEET_GBT32960_TLS_CERT.
    #[arg(long, env = "FLEET_GBT32960_TLS_KEY", value_name = "FILE")]
    pub gbt32960_tls_key: Option<std::path::PathBuf>,
    /// Accept JT/T 808 (Beidou) terminals over TCP on this address (e.g. `0.0.0.0:6808`);
    /// unset: no gateway.
    #[arg(long, env = "FLEET_JT808_ADDR")]
    pub jt808_addr: Option<String>,
    /// Seconds a gateway connection may stay silent before it is closed.
    #[arg(long, env = "FLEET_GATEWAY_IDLE_S", default_value_t = fleet_ingest::gateway::GatewayConfig::DEFAULT_IDLE.as_secs())]
    pub gateway_idle_s: u64,
}

impl GatewayArgs {
    fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        s.gbt32960_addr =
            self.gbt32960_addr.as_deref().map(|a| config::socket_addr("FLEET_GBT32960_ADDR", a)).transpose()?;
        s.gbt32960_tls = crate::gateway_tls::load(self.gbt32960_tls_cert.as_deref(), self.gbt32960_tls_key.as_deref())?;
        if s.gbt32960_tls.is_some() && s.gbt32960_addr.is_none() {
            return Err(ConfigError::new("FLEET_GBT32960_TLS_CERT", "only used with FLEET_GBT32960_ADDR"));
        }
        s.jt808_addr = self.jt808_addr.as_deref().map(|a| config::socket_addr("FLEET_JT808_ADDR", a)).transpose()?;
        if !(1..=24 * 3600).contains(&self.gateway_idle_s) {
            return Err(ConfigError::new("FLEET_GATEWAY_IDLE_S", "must be 1 to 86400"));
        }
        s.gateway.idle = Duration::from_secs(self.gateway_idle_s);
        Ok(())
    }
}

/// The map page: an optional online tile layer and the alarm thresholds.
#[derive(Debug, Clone, Args)]
pub struct MapArgs {
    /// Tile URL template of an online base map (`https://…/{z}/{x}/{y}…`, `{s}` for a
    /// subdomain); unset: the embedded offline land map only.
    #[arg(long, env = "FLEET_MAP_TILE_URL")]
    pub map_tile_url: Option<String>,
    /// Coordinate system of the tile layer: `wgs84` (Tianditu `_w`, OpenStreetMap) or
    /// `gcj02` (AMap, Tencent; positions are shifted for display only).
    #[arg(long, env = "FLEET_MAP_TILE_CRS", default_value = "wgs84")]
    pub map_tile_crs: String,
    /// Attribution shown for the tile layer.
    #[arg(long, env = "FLEET_MAP_TILE_ATTRIBUTION", default_value = "")]
    pub map_tile_attribution: String,
    /// Subdomains substituted for `{s}` (e.g. `01234567`).
    #[arg(long, env = "FLEET_MAP_TILE_SUBDOMAINS")]
    pub map_tile_subdomains: Option<String>,
    /// Speed above which the map raises a speeding alarm, km/h.
    #[arg(long, env = "FLEET_SPEED_LIMIT_KMH", default_value_t = fleet_web::MapConfig::default().speed_limit_kmh)]
    pub speed_limit_kmh: f64,
    /// State of charge below which the map raises a low-charge alarm, percent.
    #[arg(long, env = "FLEET_LOW_SOC_PCT", default_value_t = fleet_web::MapConfig::default().low_soc_pct)]
    pub low_soc_pct: f64,
}

impl MapArgs {
    fn map_config(&self) -> Result<fleet_web::MapConfig, ConfigError> {
        let mut map = fleet_web::MapConfig::default();
        if let Some(url) = &self.map_tile_url {
            let crs = match self.map_tile_crs.as_str() {
                "wgs84" => fleet_web::TileCrs::Wgs84,
                "gcj02" => fleet_web::TileCrs::Gcj02,
                other => {
                    return Err(ConfigError::new("FLEET_MAP_TILE_CRS", format!("{other:?} must be wgs84 or gcj02")));
                }
            };
            let layer = fleet_web::TileLayer {
                name: "tiles".to_owned(),
                url: url.clone(),
                crs,
                attribution: self.map_tile_attribution.clone(),
                subdomains: self.map_tile_subdomains.clone().filter(|s| !s.is_empty()),
                max_zoom: 18,
            };
            layer.validate().map_err(|e| ConfigError::new("FLEET_MAP_TILE_URL", e))?;
            map.tiles.push(layer);
        }
        if !(1.0..=300.0).contains(&self.speed_limit_kmh) {
            return Err(ConfigError::new("FLEET_SPEED_LIMIT_KMH", "must be 1 to 300"));
        }
        if !(0.0..=100.0).contains(&self.low_soc_pct) {
            return Err(ConfigError::new("FLEET_LOW_SOC_PCT", "must be 0 to 100"));
        }
        map.speed_limit_kmh = self.speed_limit_kmh;
        map.low_soc_pct = self.low_soc_pct;
        Ok(map)
    }
}

impl RunArgs {
    /// Validates every setting, naming the first bad one.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let http_addr = config::socket_addr("FLEET_HTTP_ADDR", &self.http_addr)?;
        config::check_database_url(self.db.database_url.expose())?;
        config::check_client_id(&self.mqtt_client_id)?;
        let mut s = Settings::new(http_addr, self.db.database_url.clone(), self.mqtt.target()?);
        s.mqtt_tls = self.mqtt.tls(&s.mqtt)?;
        s.mqtt_client_id = self.mqtt_client_id.clone();
        s.embedded_mqtt_anonymous = self.mqtt.embedded_mqtt_anonymous;
        s.check_embedded_broker()?;
        if let Some(g) = &self.mqtt_share_group {
            let ok = !g.is_empty() && g.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
            if !ok {
                return Err(ConfigError::new("FLEET_MQTT_SHARE_GROUP", "letters, digits, '-' and '_' only"));
            }
            s.mqtt_share_group = Some(g.clone());
        }
        s.emqx_gateways = fleet_ingest::EmqxGateways::parse(&self.emqx_gateways)
            .map_err(|e| ConfigError::new("FLEET_EMQX_GATEWAYS", e.to_string()))?;
        s.check_emqx_gateways()?;
        s.services = config::Services::parse(&self.services)?;
        s.cluster = self.cluster;
        if let Some(p) = &self.admin_password {
            fleet_domain::user::validate_new_password(p.expose(), "admin", None)
                .map_err(|e| ConfigError::new("FLEET_ADMIN_PASSWORD", e.problem))?;
        }
        s.admin_password = self.admin_password.clone();
        s.demo = self.demo;
        if !(1..=3600).contains(&self.demo_interval_s) {
            return Err(ConfigError::new("FLEET_DEMO_INTERVAL_S", "must be 1 to 3600"));
        }
        s.demo_interval = Duration::from_secs(self.demo_interval_s);
        if !(0.0..=1000.0).contains(&self.demo_orders_per_min) {
            return Err(ConfigError::new("FLEET_DEMO_ORDERS_PER_MIN", "must be 0 to 1000"));
        }
        s.demo_orders_per_min = self.demo_orders_per_min;
        if !(1..=24 * 30).contains(&self.token_ttl_hours) {
            return Err(ConfigError::new("FLEET_TOKEN_TTL_HOURS", "must be 1 to 720"));
        }
        s.token_ttl = Duration::from_secs(self.token_ttl_hours * 3600);
        if let Some(n) = self.ingest_max_batch {
            if !(1..=100_000).contains(&n) {
                return Err(ConfigError::new("FLEET_INGEST_MAX_BATCH", "must be 1 to 100000"));
            }
            s.ingest_max_batch = n;
        }
        if !(1..=10_000).contains(&self.ingest_max_delay_ms) {
            return Err(ConfigError::new("FLEET_INGEST_MAX_DELAY_MS", "must be 1 to 10000"));
        }
        s.ingest_max_batch_delay = Duration::from_millis(self.ingest_max_delay_ms);
        s.shutdown_grace = Duration::from_secs(self.shutdown_grace_s);
        s.map = self.map.map_config()?;
        self.dispatch.apply(&mut s)?;
        self.limits.apply(&mut s)?;
        self.access.apply(&mut s)?;
        self.gateways.apply(&mut s)?;
        if s.demo {
            // The demo shows every way in: its gateways listen on loopback unless told where.
            if s.gbt32960_addr.is_none() {
                s.gbt32960_addr = Some(config::socket_addr("FLEET_GBT32960_ADDR", config::DEMO_GBT32960_ADDR)?);
            }
            if s.jt808_addr.is_none() {
                s.jt808_addr = Some(config::socket_addr("FLEET_JT808_ADDR", config::DEMO_JT808_ADDR)?);
            }
        }
        for (setting, value, max) in [
            ("FLEET_CO2_PETROL_L_PER_100KM", self.co2_petrol_l_per_100km, 50.0),
            ("FLEET_CO2_PETROL_KG_PER_L", self.co2_petrol_kg_per_l, 10.0),
            ("FLEET_CO2_GRID_KG_PER_KWH", self.co2_grid_kg_per_kwh, 5.0),
        ] {
            if !(value.is_finite() && (0.0..=max).contains(&value)) {
                return Err(ConfigError::new(setting, format!("must be 0 to {max}")));
            }
        }
        if self.retention_days > 100 * 365 {
            return Err(ConfigError::new("FLEET_RETENTION_DAYS", "must be 0 (keep) to 36500"));
        }
        s.stats.retention = (self.retention_days > 0).then(|| Duration::from_secs(self.retention_days * 86_400));
        s.co2 = fleet_web::Co2Factors {
            petrol_l_per_100km: self.co2_petrol_l_per_100km,
            petrol_kg_co2_per_l: self.co2_petrol_kg_per_l,
            grid_kg_co2_per_kwh: self.co2_grid_kg_per_kwh,
        };
        s.check_cluster()?;
        if s.relays_events() && s.mqtt_share_group.is_none() {
            s.mqtt_share_group = Some(config::DEFAULT_CLUSTER_SHARE_GROUP.to_owned());
        }
        Ok(s)
    }
}

/// How `fleetd simulate`'s cars report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimVia {
    Mqtt,
    #[value(name = "gbt32960-tcp")]
    Gbt32960Tcp,
    #[value(name = "jt808-tcp")]
    Jt808Tcp,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Broker to publish to, mqtt://[user:pass@]host[:port] or mqtts:// (every car on this one
    /// account, or none: fleetd's embedded broker takes it only with
    /// FLEET_EMBEDDED_MQTT_ANONYMOUS=1).
    #[arg(long, env = "FLEET_MQTT_URL", hide_env_values = true, default_value = "mqtt://127.0.0.1:1884")]
    pub mqtt_url: SecretUrl,
    #[command(flatten)]
    pub tls: MqttTlsArgs,
    /// Number of simulated cars.
    #[arg(long, default_value_t = 60)]
    pub vehicles: usize,
    /// Seconds between two reports of one car.
    #[arg(long, default_value_t = 5.0)]
    pub interval_s: f64,
    /// Share (0..1) of cars that speak GB/T 32960 instead of JSON (with --via mqtt).
    #[arg(long, default_value_t = 0.3)]
    pub gbt32960_share: f64,
    /// How the cars report: mqtt (to the broker of --mqtt-url, JSON and GB/T 32960),
    /// gbt32960-tcp (each car a GB/T 32960 terminal on its own connection to --gateway-addr,
    /// half of them of each edition) or jt808-tcp (each car a JT/T 808 terminal; cars of a
    /// --database-url registry without a terminal phone are skipped and counted, generated
    /// cars get the phones 13900000000, 13900000001, …). The TCP ways ignore the MQTT settings.
    #[arg(long, env = "FLEET_SIM_VIA", value_enum, default_value_t = SimVia::Mqtt)]
    pub via: SimVia,
    /// The gateway the TCP ways report to, HOST:PORT (fleetd's FLEET_GBT32960_ADDR or
    /// FLEET_JT808_ADDR); required with --via gbt32960-tcp or jt808-tcp, refused with mqtt.
    #[arg(long, env = "FLEET_SIM_GATEWAY_ADDR")]
    pub gateway_addr: Option<String>,
    /// Share (0..1) of JT/T 808 terminals with 2019 headers; the rest use 2013 headers.
    #[arg(long, default_value_t = 0.5)]
    pub jt808_2019_share: f64,
    /// Take the cars (VINs, batteries) from this database's registry instead of generating VINs.
    #[arg(long, env = "FLEET_SIM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretUrl>,
    /// Random seed (the same seed drives the same fleet).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration_s: Option<u64>,
    /// Also place this many orders a minute through fleetd's HTTP API and drive the cars to
    /// them as their drivers (0: none; the cars then drive about by themselves). Needs
    /// `--database-url` (the cars must be the registry's) and `--api-password`.
    #[arg(long, env = "FLEET_SIM_ORDERS_PER_MIN", default_value_t = 0.0)]
    pub orders_per_min: f64,
    /// fleetd's HTTP address for the orders.
    #[arg(long, env = "FLEET_SIM_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// The account that places the orders and acts for the drivers (a dispatcher or admin).
    #[arg(long, env = "FLEET_SIM_API_USER", default_value = "dispatcher")]
    pub api_user: String,
    #[arg(long, env = "FLEET_SIM_API_PASSWORD", hide_env_values = true)]
    pub api_password: Option<fleet_domain::Secret>,
}
