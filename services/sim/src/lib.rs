//! `fleet-sim`: a simulated fleet of electric cars in Zhoushan publishing telemetry to an
//! MQTT broker, as `fleetd simulate` and `fleetd run --demo` use it, and as a load generator
//! for the benches; and the demo data set built from the same car model ([`demo`]).
//!
//! Each car is a pure [`Car`] stepper ([`car`]) driving between real places of Zhoushan on a
//! hand-made road graph ([`places`]), and an [`uplink`] that speaks JSON or GB/T 32960 (2016 or
//! 2025 edition), loses coverage now and then and uploads its backlog on return. Cars share a
//! few MQTT connections ([`link`]: one per 250 cars, each with one polling task), or each its
//! own connection when each logs in with its own account ([`SimLogin`]); one tick
//! loop steps and publishes every car once per interval, the cars spread evenly across it.
//! Given the same seed the cars drive the same way; only what the broker does varies.
//!
//! Instead of a broker, the cars may report to a TCP gateway as real terminals do ([`tcp`]:
//! GB/T 32960.3 or JT/T 808, one connection and one task per car), chosen by [`Via`].

pub mod car;
pub mod control;
pub mod demo;
pub mod geo;
mod link;
pub mod operator;
pub mod payload;
mod phones;
pub mod places;
pub mod tcp;
pub mod terminal;
pub mod uplink;
mod vins;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use fleet_domain::Vin;
use fleet_gbt32960::Edition;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::car::{Car, CarActivity, CarSpec, Rhythm};
pub use self::control::Control;
use self::control::Driven;
use self::link::{CARS_PER_LINK, Link};
pub use self::phones::{is_terminal_phone, sim_phone};
pub use self::tcp::{TcpConfig, TcpProtocol, TcpStats, TcpTiming};
use self::uplink::{Protocol, Uplink};
pub use self::vins::{make_vin, sim_vins};

/// Length of one slot of the tick loop: the cars of a slot are stepped together, and the
/// interval holds as many slots as fit (at most one per car).
const SLOT: Duration = Duration::from_millis(20);
/// After the stop, how long to wait for the broker to acknowledge what was sent.
const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// After asking the connections to disconnect, how long to wait for them to do so.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// A car to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimVehicle {
    pub vin: Vin,
    pub battery_kwh: f64,
    pub consumption_kwh_per_100km: f64,
    /// The phone number of its JT/T 808 terminal (digits, no leading zeros), which the
    /// platform knows it by; needed only to report through [`TcpProtocol::Jt808`].
    pub terminal_phone: Option<String>,
}

/// What to simulate and where to publish it.
#[derive(Clone)]
pub struct SimConfig {
    /// The way in: the broker below, or a TCP gateway.
    pub via: Via,
    /// The broker (and the fields down to `client_id_prefix`, and `tls`): used only with
    /// [`Via::Mqtt`].
    pub broker_host: String,
    pub broker_port: u16,
    pub login: SimLogin,
    /// Connections are named `{prefix}-0`, `{prefix}-1`, …
    pub client_id_prefix: String,
    pub vehicles: Vec<SimVehicle>,
    /// Between two samples of one car.
    pub interval: Duration,
    /// Share of cars (0..=1) speaking GB/T 32960 instead of JSON; half of them use the 2016
    /// edition, half the 2025 one. Over MQTT only: over TCP the protocol says it.
    pub gbt32960_share: f64,
    pub seed: u64,
    /// TLS to an `mqtts://` broker (the server name checked is `broker_host`); `None`: plain MQTT.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// With a control, the cars are on call ([`Rhythm::OnCall`]: they go where they are sent
    /// through it, and otherwise only to charge); without, they drive around by themselves.
    pub control: Option<Control>,
}

impl SimConfig {
    /// A run whose cars are each a terminal of `tcp`'s protocol on a connection of its own to
    /// its gateway; the broker's fields, unused over TCP, are left empty.
    pub fn over_tcp(tcp: TcpConfig, vehicles: Vec<SimVehicle>, interval: Duration, seed: u64) -> Self {
        Self {
            via: Via::Tcp(tcp),
            broker_host: String::new(),
            broker_port: 0,
            login: SimLogin::Anonymous,
            client_id_prefix: String::new(),
            vehicles,
            interval,
            gbt32960_share: 0.0,
            seed,
            tls: None,
            control: None,
        }
    }

    /// How the cars of this run behave.
    fn rhythm(&self) -> Rhythm {
        if self.control.is_some() { Rhythm::OnCall } else { Rhythm::AroundTheClock }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("via", &self.via)
            .field("broker_host", &self.broker_host)
            .field("broker_port", &self.broker_port)
            .field("login", &self.login)
            .field("client_id_prefix", &self.client_id_prefix)
            .field("vehicles", &self.vehicles.len())
            .field("interval", &self.interval)
            .field("gbt32960_share", &self.gbt32960_share)
            .field("seed", &self.seed)
            .field("tls", &self.tls.is_some())
            .field("control", &self.control.is_some())
            .finish()
    }
}

/// How the simulated cars reach the platform.
#[derive(Debug, Clone, Default)]
pub enum Via {
    /// Publishing to an MQTT broker (JSON and GB/T 32960 frames), sharing connections.
    #[default]
    Mqtt,
    /// Each car a terminal on its own TCP connection to a gateway.
    Tcp(TcpConfig),
}

/// How the simulated cars log in to the broker.
#[derive(Clone, Default)]
pub enum SimLogin {
    /// No account (a development broker that lets anyone in). Cars share connections.
    #[default]
    Anonymous,
    /// One account for every connection. Cars share connections.
    Shared { username: String, password: Option<String> },
    /// Each car logs in as itself (username = VIN) with its own secret, on a connection of
    /// its own, as real cars do on a broker with vehicle accounts (the embedded one,
    /// `deploy/mosquitto`). Every car of the run needs a secret here.
    PerVehicle(HashMap<Vin, String>),
}

impl SimLogin {
    /// `Shared` with `username`, or `Anonymous` without one.
    pub fn shared(username: Option<String>, password: Option<String>) -> Self {
        match username {
            Some(username) => Self::Shared { username, password },
            None => Self::Anonymous,
        }
    }

    /// Cars on one connection.
    fn cars_per_link(&self) -> usize {
        if let Self::PerVehicle(_) = self { 1 } else { CARS_PER_LINK }
    }
}

impl fmt::Debug for SimLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Shared { username, .. } => {
                f.debug_struct("Shared").field("username", username).finish_non_exhaustive()
            }
            Self::PerVehicle(secrets) => write!(f, "PerVehicle({} accounts)", secrets.len()),
        }
    }
}

/// What a simulator run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Messages the broker acknowledged (telemetry, batches, GB/T session frames); over TCP,
    /// samples the gateway acknowledged.
    pub published: u64,
    /// Failed broker connections, samples lost from a full backlog, and messages the
    /// connection refused for good; over TCP, failed connections and logins, and samples
    /// refused, dropped, given up or unanswered at the stop.
    pub errors: u64,
}

/// Why the simulator cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the simulator's interval must be at least 1 ms")]
    Interval,
    #[error("the GB/T 32960 share must be between 0 and 1")]
    Gbt32960Share,
    #[error("no MQTT secret for the simulated car {0}")]
    NoSecret(Vin),
    #[error("the share of JT/T 808 terminals with 2019 headers must be between 0 and 1")]
    Jt808Share,
    #[error("the car {0} has no terminal phone, which a JT/T 808 terminal needs")]
    NoTerminalPhone(Vin),
    #[error("the terminal phone {1:?} of the car {0} is not 1 to 20 digits")]
    BadTerminalPhone(Vin, String),
}

/// One car of the running fleet.
struct SimCar {
    car: Driven,
    uplink: Uplink,
    link: usize,
}

/// Runs until `shutdown` is cancelled; returns counts.
pub async fn run(cfg: SimConfig, shutdown: CancellationToken) -> Result<SimStats, SimError> {
    if cfg.interval < Duration::from_millis(1) {
        return Err(SimError::Interval);
    }
    if !(0.0..=1.0).contains(&cfg.gbt32960_share) {
        return Err(SimError::Gbt32960Share);
    }
    if cfg.vehicles.is_empty() {
        tracing::warn!("simulator has no vehicles; idle until stopped");
        shutdown.cancelled().await;
        return Ok(SimStats::default());
    }
    match &cfg.via {
        Via::Mqtt => run_mqtt(&cfg, shutdown).await,
        Via::Tcp(tcp) => tcp::run(&cfg, tcp, shutdown).await,
    }
}

/// The cars publishing to the broker, stepped by one tick loop.
async fn run_mqtt(cfg: &SimConfig, shutdown: CancellationToken) -> Result<SimStats, SimError> {
    let n = cfg.vehicles.len();
    let slots = (cfg.interval.as_nanos() / SLOT.as_nanos()).clamp(1, n as u128) as usize;
    let slot_offset =
        |slot: usize| Duration::from_nanos((cfg.interval.as_nanos() * slot as u128 / slots as u128) as u64);
    let start = Utc::now();
    let t0 = Instant::now();

    let mut fleet = fleet(cfg, |i| {
        // Each car's clock starts one interval before its first tick, so its first sample
        // is stamped when it is sent.
        start + TimeDelta::from_std(slot_offset(i % slots)).unwrap_or_default()
            - TimeDelta::from_std(cfg.interval).unwrap_or_default()
    });
    let per_link = cfg.login.cars_per_link();
    let credentials = |k: usize| -> Result<Option<(String, String)>, SimError> {
        Ok(match &cfg.login {
            SimLogin::Anonymous => None,
            SimLogin::Shared { username, password } => Some((username.clone(), password.clone().unwrap_or_default())),
            SimLogin::PerVehicle(secrets) => {
                let vin = &cfg.vehicles[k].vin;
                let secret = secrets.get(vin).ok_or_else(|| SimError::NoSecret(vin.clone()))?;
                Some((vin.to_string(), secret.clone()))
            }
        })
    };
    let logins = (0..n.div_ceil(per_link)).map(credentials).collect::<Result<Vec<_>, _>>()?;
    let tracker = TaskTracker::new();
    let stop_links = CancellationToken::new();
    let links: Vec<Link> = logins
        .into_iter()
        .enumerate()
        .map(|(k, login)| Link::open(cfg, k, login, &tracker, stop_links.clone()))
        .collect();
    tracing::info!(
        sim.vehicles = n,
        sim.connections = links.len(),
        sim.interval_ms = cfg.interval.as_millis() as u64,
        mqtt.broker = %format!("{}:{}", cfg.broker_host, cfg.broker_port),
        "simulator started"
    );

    let mut lost = 0u64;
    for k in 0u64.. {
        let due = t0 + Duration::from_nanos((cfg.interval.as_nanos() * u128::from(k) / slots as u128) as u64);
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        let slot = (k % slots as u64) as usize;
        for sim in fleet.iter_mut().skip(slot).step_by(slots) {
            let sample = sim.car.step(cfg.interval);
            let link = &links[sim.link];
            let delivery = sim.uplink.handle(sample, cfg.interval, link.status().epoch(), &mut link.outbox());
            lost += delivery.dropped + delivery.refused;
        }
    }

    // Stop: GB/T cars log out, the broker gets a moment to acknowledge, then disconnect.
    for sim in &mut fleet {
        let link = &links[sim.link];
        let delivery = sim.uplink.logout(sim.car.now(), link.status().epoch(), &mut link.outbox());
        lost += delivery.refused;
    }
    let deadline = Instant::now() + DRAIN_GRACE;
    while Instant::now() < deadline && links.iter().any(|l| l.status().is_up() && l.status().unacked() > 0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    links.iter().for_each(Link::disconnect);
    tracker.close();
    if tokio::time::timeout(DISCONNECT_GRACE, tracker.wait()).await.is_err() {
        stop_links.cancel();
        tracker.wait().await;
    }
    let stats = SimStats {
        published: links.iter().map(|l| l.status().acked()).sum(),
        errors: lost + links.iter().map(|l| l.status().errors()).sum::<u64>(),
    };
    tracing::info!(sim.published = stats.published, sim.errors = stats.errors, "simulator stopped");
    Ok(stats)
}

/// The cars of `cfg`, each with its protocol and seeds; `start(i)` is car `i`'s clock.
fn fleet(cfg: &SimConfig, start: impl Fn(usize) -> chrono::DateTime<Utc>) -> Vec<SimCar> {
    let mut gbt_cars = 0usize;
    cfg.vehicles
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let protocol = if picks(i, cfg.gbt32960_share) {
                gbt_cars += 1;
                Protocol::Gbt32960(if gbt_cars % 2 == 1 { Edition::V2016 } else { Edition::V2025 })
            } else {
                Protocol::Json
            };
            let seed = car_seed(cfg.seed, &v.vin);
            let spec = CarSpec {
                vin: v.vin.clone(),
                battery_kwh: v.battery_kwh,
                consumption_kwh_per_100km: v.consumption_kwh_per_100km,
                source: protocol.source(),
            };
            SimCar {
                car: Driven::new(Car::new(spec, start(i), cfg.rhythm(), seed), cfg.control.as_ref()),
                uplink: Uplink::new(v.vin.clone(), protocol, seed ^ 0x5EED_0FC0_FFEE),
                link: i / cfg.login.cars_per_link(),
            }
        })
        .collect()
}

/// Whether car `i` is one of a `share` of the fleet (GB/T 32960 speakers over MQTT, 2019
/// headers over JT/T 808): spread evenly through the fleet, `share` of it in all.
fn picks(i: usize, share: f64) -> bool {
    ((i + 1) as f64 * share).floor() > (i as f64 * share).floor()
}

/// A car's own seed from the run's seed and its VIN (SplitMix64 finaliser over both).
pub fn car_seed(seed: u64, vin: &Vin) -> u64 {
    let mut z = vin
        .as_str()
        .bytes()
        .fold(seed ^ 0x9E37_79B9_7F4A_7C15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
