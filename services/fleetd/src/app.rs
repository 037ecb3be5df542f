//! Composition: one store, one bus, one broker connection, and the services around them.
//!
//! Start-up first does everything that can fail — opens and migrates the store, bootstraps,
//! binds every listener (the embedded broker's, HTTP, metrics) and starts the embedded
//! broker's internal server last — and only then spawns the services, each supervised
//! ([`crate::supervise`]). A failed start leaves nothing running: what was bound is dropped
//! and the database pool closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use fleet_broker::{self as broker, MqttTls};
use fleet_bus::Bus;
use fleet_domain::Secret;
use fleet_ingest::gateway::{GatewayKind, TcpGateway};
use fleet_sim as simulate;
use fleet_sim::demo::DEMO_GBT32960_SHARE;
use fleet_storage::Store;
use tokio_util::sync::CancellationToken;

use crate::bootstrap::{self, AdminBootstrap};
use crate::config::{MqttTarget, Settings};
use crate::supervise::{ServiceFailed, Services};
use crate::thread_runtime::ThreadRuntime;
use crate::{housekeeping, observability, relay, sessions};

/// Longest wait for the database pool to close at stop (a stuck task may hold a connection).
const STORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A running fleetd: every listener bound, every service spawned.
pub struct App {
    http_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    mqtt_addr: Option<SocketAddr>,
    gbt32960_addr: Option<SocketAddr>,
    jt808_addr: Option<SocketAddr>,
    embedded_broker: bool,
    store: Store,
    bus: Bus,
    admin: AdminBootstrap,
    services: Services,
    grace: Duration,
}

/// Why a running fleetd stopped otherwise than asked, or not in time.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    /// A service ended by itself (its error, a panic, or a return); the others were stopped.
    #[error(transparent)]
    ServiceFailed(#[from] ServiceFailed),
    /// Services were still running when the grace period ran out.
    #[error("services did not stop within the grace period ({} s)", .0.as_secs())]
    GraceExceeded(Duration),
}

/// The TCP gateways of this instance and the intake both hand what they read to (an ingest
/// pipeline of its own, batching as the broker's does), which runs on a runtime of its own
/// (see `thread_runtime`) with its own database pool.
struct Gateways {
    intake: fleet_ingest::intake::Intake,
    intake_runtime: ThreadRuntime,
    gbt32960: Option<TcpGateway>,
    jt808: Option<TcpGateway>,
}

/// PostgreSQL connections of the gateways' intake: its parallel commits, the state writer and
/// a registry lookup.
const INTAKE_CONNECTIONS: u32 = 4;

impl Gateways {
    async fn bind(
        settings: &Settings,
        ingest_cfg: &fleet_ingest::Config,
        store: &Store,
        bus: &Bus,
    ) -> anyhow::Result<Self> {
        let intake_runtime =
            ThreadRuntime::new("fleetd-intake").context("cannot start the gateway intake's runtime")?;
        let intake_store = {
            let store = store.clone();
            intake_runtime.run(async move { store.apart(INTAKE_CONNECTIONS).await }).await
        };
        let (intake, submitter) = fleet_ingest::intake::Intake::new(ingest_cfg.clone(), intake_store, bus.clone());
        let bind =
            |kind, addr, tls| TcpGateway::bind(kind, addr, settings.gateway, tls, store.clone(), submitter.clone());
        let gbt32960 = match settings.gbt32960_addr {
            Some(addr) => Some(bind(GatewayKind::Gbt32960, addr, settings.gbt32960_tls.clone()).await?),
            None => None,
        };
        let jt808 = match settings.jt808_addr {
            Some(addr) => Some(bind(GatewayKind::Jt808, addr, None).await?),
            None => None,
        };
        Ok(Self { intake, intake_runtime, gbt32960, jt808 })
    }
}

/// How this instance ingests.
enum Ingesting {
    /// One session of its own.
    Single(fleet_ingest::Ingest),
    /// One of several: sessions held by lock, a dead instance's drained (see `sessions`).
    Sessions(sessions::Keeper),
}

impl App {
    /// Opens and migrates the database, bootstraps the admin (and demo data), binds every
    /// listener (the embedded broker's when no external one is configured, HTTP, metrics),
    /// starts the embedded broker, and then spawns ingest, the web server, the background
    /// services and, in demo mode, the simulator. On an error nothing is left running.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        settings.check_embedded_broker()?;
        let store = Store::connect(settings.database_url.expose()).await.context("opening the database")?;
        match Self::compose(settings, store.clone()).await {
            Ok(app) => Ok(app),
            Err(e) => {
                let _ = tokio::time::timeout(STORE_CLOSE_TIMEOUT, store.close()).await;
                Err(e)
            }
        }
    }

    async fn compose(settings: Settings, store: Store) -> anyhow::Result<Self> {
        store.migrate().await.context("migrating the database")?;
        let admin =
            bootstrap::ensure_admin(&store, settings.admin_password.as_ref().map(Secret::expose), settings.demo)
                .await?;
        if settings.demo {
            bootstrap::seed_demo(&store).await.context("loading the demo data")?;
        }

        let services = settings.services;
        let (bus, outbox) = if settings.relays_events() {
            let (bus, outbox) = Bus::with_outbox();
            (bus, Some(outbox))
        } else {
            (Bus::new(), None)
        };

        // Every listener is bound, and every fallible step done, before anything is spawned.
        let mut mqtt_addr = None;
        let mut embedded = None;
        let mut mqtt_connected = None;
        let mut ingest = None;
        let mut gateways = None;
        let mut sim = Vec::new();
        let mut demo_control = None;
        if services.ingest {
            let mut cfg = match &settings.mqtt {
                MqttTarget::Embedded(addr) => {
                    let bound = broker::bind(broker::EmbeddedConfig {
                        addr: *addr,
                        anonymous: settings.embedded_mqtt_anonymous,
                        reserved_client_id: settings.mqtt_client_id.clone(),
                        password_matches: fleet_web::mosquitto_password_matches,
                    })
                    .await?;
                    let running = bound.embedded();
                    if !running.public.ip().is_loopback() {
                        tracing::warn!(
                            mqtt.addr = %running.public,
                            "the embedded MQTT broker listens beyond this machine without TLS: vehicles' secrets and telemetry cross the network in clear; production uses deploy/mosquitto (or EMQX) with TLS"
                        );
                    }
                    mqtt_addr = Some(running.public);
                    // fleetd's own session goes to the internal broker directly, past the gate.
                    let mut cfg = fleet_ingest::Config::new(
                        running.internal.ip().to_string(),
                        running.internal.port(),
                        settings.mqtt_client_id.clone(),
                    );
                    cfg.username = Some(running.login.username.clone());
                    cfg.password = Some(Secret::new(running.login.password.clone()));
                    embedded = Some(bound);
                    cfg
                }
                MqttTarget::External(url) => {
                    let mut cfg =
                        fleet_ingest::Config::new(url.host.clone(), url.port, settings.mqtt_client_id.clone());
                    cfg.username = url.username.clone();
                    cfg.password = url.password.clone();
                    cfg.tls = settings.mqtt_tls.as_ref().map(MqttTls::client_config);
                    mqtt_addr =
                        Some(crate::config::socket_addr("FLEET_MQTT_URL", &format!("{}:{}", url.host, url.port))?);
                    cfg
                }
            };
            cfg.max_batch = settings.ingest_max_batch;
            cfg.max_batch_delay = settings.ingest_max_batch_delay;
            cfg.max_clock_ahead = settings.ingest_max_clock_ahead;
            cfg.emqx_gateways = settings.emqx_gateways;
            if let Some(group) = &settings.mqtt_share_group {
                cfg.subscription_prefix = format!("$share/{group}/");
            }
            if settings.gbt32960_addr.is_some() || settings.jt808_addr.is_some() {
                gateways = Some(Gateways::bind(&settings, &cfg, &store, &bus).await?);
            }
            if settings.demo {
                let gateway_addrs = (
                    gateways.as_ref().and_then(|g| g.gbt32960.as_ref()).map(|g| g.local_addr()),
                    gateways.as_ref().and_then(|g| g.jt808.as_ref()).map(|g| g.local_addr()),
                );
                let control = simulate::Control::default();
                sim =
                    Self::demo_simulators(&settings, &store, &cfg, embedded.as_ref(), gateway_addrs, &control).await?;
                demo_control = Some(control);
            }
            ingest = Some(match (&settings.mqtt_share_group, settings.relays_events()) {
                (Some(group), true) => {
                    let keeper = sessions::Keeper {
                        own: cfg,
                        group: group.clone(),
                        store: store.clone(),
                        bus: bus.clone(),
                        connected: Arc::new(AtomicBool::new(false)),
                    };
                    mqtt_connected = Some(keeper.connected.clone());
                    Ingesting::Sessions(keeper)
                }
                _ => {
                    let ingest = fleet_ingest::Ingest::new(cfg, store.clone(), bus.clone());
                    mqtt_connected = Some(ingest.connected());
                    Ingesting::Single(ingest)
                }
            });
        }

        let prometheus = observability::prometheus();
        let metrics = prometheus.clone();
        let web = fleet_web::WebServer::bind(
            fleet_web::Config {
                addr: settings.http_addr,
                token_ttl: settings.token_ttl,
                live_send_timeout: settings.live_send_timeout,
                map: fleet_web::MapConfig {
                    accept_timeout_s: settings.dispatch.accept_timeout.as_secs(),
                    ..settings.map.clone()
                },
                dispatch: settings.dispatch.params,
                co2: settings.co2,
                api: services.web,
                connections: settings.http_connections,
                trust_forwarded_for: settings.trust_forwarded_for,
                metrics: settings.metrics.clone(),
            },
            fleet_web::Deps {
                store: store.clone(),
                bus: bus.clone(),
                health: fleet_web::Health { store: store.clone(), mqtt_connected },
                metrics: Arc::new(move || metrics.render()),
            },
        )
        .await?;
        if (settings.gbt32960_addr.is_some() || settings.jt808_addr.is_some()) && !services.ingest {
            tracing::warn!("a TCP gateway address is set but this instance does not ingest: no gateway");
        }
        let gbt32960_addr = gateways.as_ref().and_then(|g| g.gbt32960.as_ref()).map(|g| g.local_addr());
        let jt808_addr = gateways.as_ref().and_then(|g| g.jt808.as_ref()).map(|g| g.local_addr());
        let http_addr = web.local_addr();
        let metrics_addr = web.metrics_addr();
        // Last: the internal broker's router thread cannot be stopped once started.
        let embedded_broker = embedded.is_some();
        let broker = match embedded {
            Some(bound) => Some(bound.start(store.clone()).await?),
            None => None,
        };

        // Nothing below can fail: the services are spawned.
        let shutdown = CancellationToken::new();
        let supervised = Services::new(shutdown.clone());
        if let Some(outbox) = outbox {
            let origin = relay::instance_id(&settings.mqtt_client_id);
            tracing::info!(instance = %origin, ingest = services.ingest, dispatch = services.dispatch, web = services.web, "one of several instances");
            relay::spawn(&supervised, store.clone(), bus.clone(), outbox, origin);
        }
        // The embedded broker stops last: its gate once the demo's simulator has logged its
        // cars out, its internal server once ingest has acknowledged its last batch.
        let ingest_done = CancellationToken::new();
        let sim_done = CancellationToken::new();
        match ingest {
            Some(Ingesting::Single(ingest)) => {
                let (token, done) = (shutdown.child_token(), ingest_done.clone());
                supervised.spawn("ingest", async move {
                    let _done = done.drop_guard();
                    ingest.run(token).await
                });
            }
            Some(Ingesting::Sessions(keeper)) => {
                supervised.spawn("session keeper", keeper.run(supervised.tasks().clone(), shutdown.child_token()));
                ingest_done.cancel();
            }
            None => ingest_done.cancel(),
        }
        if let Some(gateways) = gateways {
            // Connections stop reading at shutdown; the intake commits what they handed over.
            let (intake, runtime, token) = (gateways.intake, gateways.intake_runtime, shutdown.child_token());
            supervised.spawn("gateway intake", async move { runtime.run(intake.run(token)).await });
            if let Some(gateway) = gateways.gbt32960 {
                supervised.spawn("gbt32960 gateway", gateway.run(shutdown.child_token()));
            }
            if let Some(gateway) = gateways.jt808 {
                supervised.spawn("jt808 gateway", gateway.run(shutdown.child_token()));
            }
        }
        supervised.spawn("metrics upkeep", observability::metrics_upkeep(prometheus, shutdown.child_token()));
        supervised.spawn("web server", web.run(shutdown.child_token()));
        if services.dispatch {
            Self::spawn_background(&settings, &store, &bus, &supervised);
        }
        // The broker's gate waits for every demo simulator (its MQTT cars log out first).
        let sims_left = Arc::new(std::sync::atomic::AtomicUsize::new(sim.len()));
        if sim.is_empty() {
            sim_done.cancel();
        }
        for (name, sim) in sim {
            let (token, done, left) = (shutdown.child_token(), sim_done.clone(), sims_left.clone());
            supervised.spawn(name, async move {
                let result = simulate::run(sim, token).await;
                if left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                    done.cancel();
                }
                result
            });
        }
        if let Some(control) = demo_control {
            // The demo's people place orders and drive the cars to them, through the API
            // this process serves.
            let ip =
                if http_addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { http_addr.ip() };
            let cfg = simulate::operator::OperatorConfig {
                api_base: format!("http://{}", SocketAddr::new(ip, http_addr.port())),
                cast: simulate::demo::operator_cast(),
                orders_per_min: settings.demo_orders_per_min,
                by_hour: true,
                bursts_per_day: simulate::demo::DEMO_BURSTS_PER_DAY,
                private_trips_per_hour: simulate::demo::DEMO_PRIVATE_TRIPS_PER_HOUR,
                seed: 2026,
            };
            supervised.spawn("demo order simulator", simulate::operator::run(cfg, control, shutdown.child_token()));
        }
        if let Some(broker) = broker {
            let stop = shutdown.clone();
            supervised.spawn(
                "embedded broker",
                broker.run(
                    supervised.tasks().clone(),
                    async move {
                        stop.cancelled().await;
                        sim_done.cancelled().await;
                    },
                    async move { ingest_done.cancelled().await },
                ),
            );
        }
        supervised.tasks().close();
        Ok(Self {
            http_addr,
            metrics_addr,
            mqtt_addr,
            gbt32960_addr,
            jt808_addr,
            embedded_broker,
            store,
            bus,
            admin,
            services: supervised,
            grace: settings.shutdown_grace,
        })
    }

    /// The demo's simulators: most cars publish to the broker, logging in as vehicles do; with
    /// the gateways on, a share of them are GB/T 32960 terminals on the TCP gateway and a
    /// share (those with a terminal phone) Beidou JT/T 808 terminals, so the demo goes through
    /// every way in.
    async fn demo_simulators(
        settings: &Settings,
        store: &Store,
        ingest_cfg: &fleet_ingest::Config,
        embedded: Option<&broker::Bound>,
        (gbt32960, jt808): (Option<SocketAddr>, Option<SocketAddr>),
        control: &simulate::Control,
    ) -> anyhow::Result<Vec<(&'static str, simulate::SimConfig)>> {
        let vehicles: Vec<simulate::SimVehicle> = store
            .vehicles()
            .list(None)
            .await?
            .into_iter()
            .map(|v| simulate::SimVehicle {
                vin: v.vin,
                battery_kwh: v.battery_kwh,
                consumption_kwh_per_100km: v.consumption_kwh_per_100km,
                terminal_phone: v.terminal_phone,
            })
            .collect();
        let ways = fleet_sim::demo::ways_in(vehicles, gbt32960.is_some(), jt808.is_some());
        let (broker_addr, login, tls) = match embedded {
            // The demo's cars log in as vehicles do, each with a secret of its own,
            // issued afresh at every start (the secret is known only to this process).
            Some(bound) => {
                let vins: Vec<_> = ways.mqtt.iter().map(|v| v.vin.clone()).collect();
                let secrets =
                    bootstrap::issue_mqtt_secrets(store, &vins).await.context("issuing the demo cars' MQTT secrets")?;
                let addr = bound.embedded().local_public();
                ((addr.ip().to_string(), addr.port()), simulate::SimLogin::PerVehicle(secrets), None)
            }
            None => (
                (ingest_cfg.host.clone(), ingest_cfg.port),
                simulate::SimLogin::shared(
                    ingest_cfg.username.clone(),
                    ingest_cfg.password.as_ref().map(|p| p.expose().to_owned()),
                ),
                ingest_cfg.tls.clone(),
            ),
        };
        let base = simulate::SimConfig {
            via: simulate::Via::Mqtt,
            broker_host: broker_addr.0,
            broker_port: broker_addr.1,
            login,
            client_id_prefix: format!("{}-demo-sim", settings.mqtt_client_id),
            vehicles: ways.mqtt,
            interval: settings.demo_interval,
            gbt32960_share: DEMO_GBT32960_SHARE,
            seed: 2026,
            tls,
            // On call: the demo's order simulator sends them to their orders.
            control: Some(control.clone()),
        };
        let tcp = |protocol, addr: SocketAddr, vehicles| simulate::SimConfig {
            via: simulate::Via::Tcp(simulate::TcpConfig::new(protocol, addr.to_string())),
            vehicles,
            ..base.clone()
        };
        let mut sims = Vec::with_capacity(3);
        if let Some(addr) = gbt32960.filter(|_| !ways.gbt32960.is_empty()) {
            sims.push((
                "demo simulator (gbt32960 over tcp)",
                tcp(simulate::TcpProtocol::Gbt32960, addr, ways.gbt32960),
            ));
        }
        if let Some(addr) = jt808.filter(|_| !ways.jt808.is_empty()) {
            let protocol = simulate::TcpProtocol::Jt808 { v2019_share: 0.5 };
            sims.push(("demo simulator (jt808 over tcp)", tcp(protocol, addr, ways.jt808)));
        }
        sims.push(("demo simulator", base));
        Ok(sims)
    }

    /// Dispatch batches, trip derivation, retention and housekeeping (each led by one
    /// instance at a time).
    fn spawn_background(settings: &Settings, store: &Store, bus: &Bus, services: &Services) {
        let shutdown = services.shutdown();
        let dispatcher = fleet_dispatch::Dispatcher::new(
            fleet_dispatch::Config {
                params: settings.dispatch.params,
                batch_interval: settings.dispatch.batch_interval,
                accept_timeout: settings.dispatch.accept_timeout,
                lead: settings.dispatch.lead,
            },
            store.clone(),
            bus.clone(),
        );
        services.spawn("dispatcher", dispatcher.run(shutdown.child_token()));
        let deriver = fleet_stats::Deriver::new(settings.stats.clone(), store.clone(), bus.clone());
        services.spawn("deriver", deriver.run(shutdown.child_token()));
        match fleet_notify::Notifier::new(store.clone(), fleet_notify::DEFAULT_POLL) {
            Ok(notifier) => services.spawn("webhook notifier", notifier.run(shutdown.child_token())),
            Err(e) => tracing::error!(error = %e, "the webhook notifier cannot start; alarms are not sent"),
        }
        services.spawn(
            "alarm sweep",
            fleet_stats::sweep::run(store.clone(), settings.stats.sweep_every, shutdown.child_token()),
        );
        services.spawn("housekeeping", housekeeping::run(store.clone(), shutdown.child_token()));
        if let Some(keep) = settings.stats.retention {
            services.spawn("retention", fleet_stats::Deriver::retain(store.clone(), keep, shutdown.child_token()));
        }
    }

    /// The in-process event bus (services announce committed telemetry and order changes on it).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where `/metrics` is served when it has a listener of its own (`FLEET_METRICS_ADDR`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The broker fleetd talks to (the embedded one's bound address when embedded); none
    /// when this instance does not ingest.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// Where the GB/T 32960 gateway listens, when it runs (`FLEET_GBT32960_ADDR`).
    pub fn gbt32960_addr(&self) -> Option<SocketAddr> {
        self.gbt32960_addr
    }

    /// Where the JT/T 808 gateway listens, when it runs (`FLEET_JT808_ADDR`).
    pub fn jt808_addr(&self) -> Option<SocketAddr> {
        self.jt808_addr
    }

    pub fn embedded_broker(&self) -> bool {
        self.embedded_broker
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn admin_bootstrap(&self) -> &AdminBootstrap {
        &self.admin
    }

    /// A token that stops the app when cancelled (the binary wires signals to it).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.services.shutdown().clone()
    }

    /// Stops taking work, lets in-flight writes finish (bounded by the grace period), and
    /// closes the database. An error when a service had failed meanwhile or the grace
    /// period ran out.
    pub async fn stop(self) -> Result<(), Stopped> {
        self.services.shutdown().cancel();
        self.wait().await
    }

    /// Runs until the shutdown token is cancelled (by a signal, [`App::stop`], or a service
    /// that failed), then waits for the services to finish within the grace period and
    /// closes the database. `Ok` only for a shutdown that was asked for and finished in time.
    pub async fn wait(self) -> Result<(), Stopped> {
        self.services.shutdown().cancelled().await;
        let finished = tokio::time::timeout(self.grace, self.services.tasks().wait()).await.is_ok();
        if !finished {
            tracing::warn!(grace_s = self.grace.as_secs(), "services did not stop within the grace period");
        }
        // Connections still held by a stuck task would make `close` wait forever.
        let _ = tokio::time::timeout(STORE_CLOSE_TIMEOUT, self.store.close()).await;
        if let Some(failed) = self.services.failure() {
            return Err(failed.clone().into());
        }
        if finished { Ok(()) } else { Err(Stopped::GraceExceeded(self.grace)) }
    }
}
