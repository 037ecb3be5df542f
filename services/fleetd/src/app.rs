//! Composition: one store, one bus, one broker connection, and the services around them.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use fleet_bus::Bus;
use fleet_storage::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bootstrap::{self, AdminBootstrap};
use crate::config::{MqttTarget, Settings};
use crate::{broker, observability, simulate};

/// Share of demo cars that speak GB/T 32960 instead of JSON.
pub const DEMO_GBT32960_SHARE: f64 = 0.3;

/// A running fleetd: every listener bound, every service spawned.
pub struct App {
    http_addr: SocketAddr,
    mqtt_addr: SocketAddr,
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
        let store = Store::connect(&settings.database_url).await.context("opening the database")?;
        store.migrate().await.context("migrating the database")?;
        let admin = bootstrap::ensure_admin(&store, settings.admin_password.as_deref(), settings.demo).await?;
        if settings.demo {
            bootstrap::seed_demo(&store).await.context("loading the demo data")?;
        }

        let (mqtt_addr, embedded_broker, mut ingest_cfg) = match &settings.mqtt {
            MqttTarget::Embedded(addr) => {
                let bound = broker::start(*addr)?;
                let cfg = fleet_ingest::Config::new(bound.ip().to_string(), bound.port(), settings.mqtt_client_id.clone());
                (bound, true, cfg)
            }
            MqttTarget::External(url) => {
                let mut cfg = fleet_ingest::Config::new(url.host.clone(), url.port, settings.mqtt_client_id.clone());
                cfg.username = url.username.clone();
                cfg.password = url.password.clone();
                let addr = crate::config::socket_addr("FLEET_MQTT_URL", &format!("{}:{}", url.host, url.port))?;
                (addr, false, cfg)
            }
        };
        ingest_cfg.max_batch = settings.ingest_max_batch;
        ingest_cfg.max_batch_delay = settings.ingest_max_batch_delay;
        if let Some(group) = &settings.mqtt_share_group {
            ingest_cfg.subscription_prefix = format!("$share/{group}/");
        }

        let bus = Bus::new();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();

        let ingest = fleet_ingest::Ingest::new(ingest_cfg.clone(), store.clone(), bus.clone());
        let mqtt_connected = ingest.connected();
        let token = shutdown.child_token();
        tasks.spawn(async move {
            if let Err(e) = ingest.run(token).await {
                tracing::error!(error = %e, "ingest stopped");
            }
        });

        let prometheus = observability::prometheus();
        let web = fleet_web::WebServer::bind(
            fleet_web::Config {
                addr: settings.http_addr,
                token_ttl: settings.token_ttl,
                live_send_timeout: settings.live_send_timeout,
                map: fleet_web::MapConfig { accept_timeout_s: settings.dispatch.accept_timeout.as_secs(), ..settings.map.clone() },
                dispatch: settings.dispatch.params,
                co2: settings.co2,
            },
            fleet_web::Deps {
                store: store.clone(),
                bus: bus.clone(),
                health: fleet_web::Health { store: store.clone(), mqtt_connected },
                metrics: std::sync::Arc::new(move || prometheus.render()),
            },
        )
        .await
        .with_context(|| format!("cannot listen on {} for HTTP", settings.http_addr))?;
        let http_addr = web.local_addr();
        let token = shutdown.child_token();
        tasks.spawn(async move {
            if let Err(e) = web.run(token).await {
                tracing::error!(error = %e, "web server stopped");
            }
        });

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
        if let Some(keep) = settings.stats.retention {
            tasks.spawn(fleet_stats::Deriver::retain(store.clone(), keep, shutdown.child_token()));
        }

        if settings.demo {
            let vehicles = store
                .vehicles()
                .list(None)
                .await?
                .into_iter()
                .map(|v| simulate::SimVehicle { vin: v.vin, battery_kwh: v.battery_kwh, consumption_kwh_per_100km: v.consumption_kwh_per_100km })
                .collect();
            let sim = simulate::SimConfig {
                broker_host: ingest_cfg.host.clone(),
                broker_port: ingest_cfg.port,
                username: ingest_cfg.username.clone(),
                password: ingest_cfg.password.clone(),
                client_id_prefix: format!("{}-demo-sim", settings.mqtt_client_id),
                vehicles,
                interval: settings.demo_interval,
                gbt32960_share: DEMO_GBT32960_SHARE,
                seed: 2026,
            };
            let token = shutdown.child_token();
            tasks.spawn(async move {
                if let Err(e) = simulate::run(sim, token).await {
                    tracing::error!(error = %e, "demo simulator stopped");
                }
            });
        }
        tasks.close();
        Ok(Self { http_addr, mqtt_addr, embedded_broker, store, bus, admin, shutdown, tasks, grace: settings.shutdown_grace })
    }

    /// The in-process event bus (services announce committed telemetry and order changes on it).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The broker fleetd talks to (the embedded one's bound address when embedded).
    pub fn mqtt_addr(&self) -> SocketAddr {
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
