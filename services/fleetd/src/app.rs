//! Composition: one store, one bus, one broker connection, and the services around them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use fleet_broker as broker;
use fleet_bus::Bus;
use fleet_domain::Secret;
use fleet_sim as simulate;
use fleet_sim::demo::DEMO_GBT32960_SHARE;
use fleet_storage::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bootstrap::{self, AdminBootstrap};
use crate::config::{MqttTarget, Settings};
use crate::{housekeeping, observability, relay, sessions};

/// A running fleetd: every listener bound, every service spawned.
pub struct App {
    http_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    mqtt_addr: Option<SocketAddr>,
    embedded_broker: bool,
    store: Store,
    bus: Bus,
    admin: AdminBootstrap,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    grace: Duration,
}

impl App {
    /// Opens and migrates the database, bootstraps the admin (and demo data), starts the
    /// embedded broker when no external one is configured, binds HTTP, and spawns ingest,
    /// the web server and, in demo mode, the simulator.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        settings.check_embedded_broker()?;
        let store = Store::connect(settings.database_url.expose()).await.context("opening the database")?;
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
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        if let Some(outbox) = outbox {
            let origin = relay::instance_id(&settings.mqtt_client_id);
            tracing::info!(instance = %origin, ingest = services.ingest, dispatch = services.dispatch, web = services.web, "one of several instances");
            relay::spawn(&tasks, store.clone(), bus.clone(), outbox, origin, shutdown.child_token());
        }

        let mut mqtt_addr = None;
        let mut embedded = None;
        // The embedded broker's client connections end at shutdown, but after the demo's
        // simulator has logged its cars out (below), not under it.
        let gate_stop = CancellationToken::new();
        let mut gate_waits_for = None;
        let mut mqtt_connected = None;
        let mut ingest_cfg = None;
        if services.ingest {
            let mut cfg = match &settings.mqtt {
                MqttTarget::Embedded(addr) => {
                    let cfg = broker::EmbeddedConfig {
                        addr: *addr,
                        anonymous: settings.embedded_mqtt_anonymous,
                        reserved_client_id: settings.mqtt_client_id.clone(),
                        password_matches: fleet_web::mosquitto_password_matches,
                    };
                    let running = broker::start(cfg, store.clone(), &tasks, gate_stop.clone()).await?;
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
                    embedded = Some(running);
                    cfg
                }
                MqttTarget::External(url) => {
                    let mut cfg =
                        fleet_ingest::Config::new(url.host.clone(), url.port, settings.mqtt_client_id.clone());
                    cfg.username = url.username.clone();
                    cfg.password = url.password.clone();
                    mqtt_addr =
                        Some(crate::config::socket_addr("FLEET_MQTT_URL", &format!("{}:{}", url.host, url.port))?);
                    cfg
                }
            };
            cfg.max_batch = settings.ingest_max_batch;
            cfg.max_batch_delay = settings.ingest_max_batch_delay;
            cfg.max_clock_ahead = settings.ingest_max_clock_ahead;
            if let Some(group) = &settings.mqtt_share_group {
                cfg.subscription_prefix = format!("$share/{group}/");
            }
            match (&settings.mqtt_share_group, settings.relays_events()) {
                (Some(group), true) => {
                    // One of several: sessions are held by lock, and a dead instance's
                    // session is drained by another (see `sessions`).
                    let keeper = sessions::Keeper {
                        own: cfg.clone(),
                        group: group.clone(),
                        store: store.clone(),
                        bus: bus.clone(),
                        connected: Arc::new(AtomicBool::new(false)),
                    };
                    mqtt_connected = Some(keeper.connected.clone());
                    tasks.spawn(keeper.run(shutdown.child_token()));
                }
                _ => {
                    let ingest = fleet_ingest::Ingest::new(cfg.clone(), store.clone(), bus.clone());
                    mqtt_connected = Some(ingest.connected());
                    let token = shutdown.child_token();
                    tasks.spawn(async move {
                        if let Err(e) = ingest.run(token).await {
                            tracing::error!(error = %e, "ingest stopped");
                        }
                    });
                }
            }
            ingest_cfg = Some(cfg);
        }

        let prometheus = observability::prometheus();
        tasks.spawn(observability::metrics_upkeep(prometheus.clone(), shutdown.child_token()));
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
                metrics: Arc::new(move || prometheus.render()),
            },
        )
        .await?;
        let http_addr = web.local_addr();
        let metrics_addr = web.metrics_addr();
        let token = shutdown.child_token();
        tasks.spawn(async move {
            if let Err(e) = web.run(token).await {
                tracing::error!(error = %e, "web server stopped");
            }
        });

        if services.dispatch {
            Self::spawn_background(&settings, &store, &bus, &tasks, &shutdown);
        }

        if let (true, Some(ingest_cfg)) = (settings.demo, &ingest_cfg) {
            let vehicles: Vec<simulate::SimVehicle> = store
                .vehicles()
                .list(None)
                .await?
                .into_iter()
                .map(|v| simulate::SimVehicle {
                    vin: v.vin,
                    battery_kwh: v.battery_kwh,
                    consumption_kwh_per_100km: v.consumption_kwh_per_100km,
                })
                .collect();
            let (broker_addr, login) = match &embedded {
                // The demo's cars log in as vehicles do, each with a secret of its own,
                // issued afresh at every start (the secret is known only to this process).
                Some(running) => {
                    let vins: Vec<_> = vehicles.iter().map(|v| v.vin.clone()).collect();
                    let secrets = bootstrap::issue_mqtt_secrets(&store, &vins)
                        .await
                        .context("issuing the demo cars' MQTT secrets")?;
                    let addr = running.local_public();
                    ((addr.ip().to_string(), addr.port()), simulate::SimLogin::PerVehicle(secrets))
                }
                None => (
                    (ingest_cfg.host.clone(), ingest_cfg.port),
                    simulate::SimLogin::shared(
                        ingest_cfg.username.clone(),
                        ingest_cfg.password.as_ref().map(|p| p.expose().to_owned()),
                    ),
                ),
            };
            let sim = simulate::SimConfig {
                broker_host: broker_addr.0,
                broker_port: broker_addr.1,
                login,
                client_id_prefix: format!("{}-demo-sim", settings.mqtt_client_id),
                vehicles,
                interval: settings.demo_interval,
                gbt32960_share: DEMO_GBT32960_SHARE,
                seed: 2026,
            };
            let token = shutdown.child_token();
            let done = CancellationToken::new();
            gate_waits_for = Some(done.clone());
            tasks.spawn(async move {
                let _done = done.drop_guard();
                if let Err(e) = simulate::run(sim, token).await {
                    tracing::error!(error = %e, "demo simulator stopped");
                }
            });
        }
        let stop = shutdown.clone();
        tasks.spawn(async move {
            stop.cancelled().await;
            if let Some(sim) = gate_waits_for {
                sim.cancelled().await;
            }
            gate_stop.cancel();
        });
        tasks.close();
        Ok(Self {
            http_addr,
            metrics_addr,
            mqtt_addr,
            embedded_broker: embedded.is_some(),
            store,
            bus,
            admin,
            shutdown,
            tasks,
            grace: settings.shutdown_grace,
        })
    }

    /// Dispatch batches, trip derivation, retention and housekeeping (each led by one
    /// instance at a time).
    fn spawn_background(
        settings: &Settings,
        store: &Store,
        bus: &Bus,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
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
        tasks.spawn(dispatcher.run(shutdown.child_token()));
        let deriver = fleet_stats::Deriver::new(settings.stats.clone(), store.clone(), bus.clone());
        tasks.spawn(deriver.run(shutdown.child_token()));
        tasks.spawn(housekeeping::run(store.clone(), shutdown.child_token()));
        if let Some(keep) = settings.stats.retention {
            tasks.spawn(fleet_stats::Deriver::retain(store.clone(), keep, shutdown.child_token()));
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
        self.shutdown.clone()
    }

    /// Stops taking work, lets in-flight writes finish (bounded by the grace period), and
    /// closes the database. False when the grace period ran out.
    pub async fn stop(self) -> bool {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits for the services to finish after the shutdown token was cancelled.
    pub async fn wait(self) -> bool {
        self.shutdown.cancelled().await;
        let finished = tokio::time::timeout(self.grace, self.tasks.wait()).await.is_ok();
        if !finished {
            tracing::warn!(grace_s = self.grace.as_secs(), "services did not stop within the grace period");
        }
        // Connections still held by a stuck task would make `close` wait forever.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.store.close()).await;
        finished
    }
}
