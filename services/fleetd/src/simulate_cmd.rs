//! `fleetd simulate`: the simulator as a load generator for any broker.

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::SimulateArgs;
use crate::config::{ConfigError, MqttUrl};
use fleet_sim::{self as simulate, SimConfig, SimVehicle};

/// Battery and consumption of generated cars (a mid-size EV sedan).
const GENERATED_BATTERY_KWH: f64 = 60.0;
const GENERATED_CONSUMPTION: f64 = 14.0;

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let url = MqttUrl::parse(args.mqtt_url.expose()).map_err(ConfigError::from)?;
    let tls = args.tls.load(url.tls)?;
    if !(0.0..=1.0).contains(&args.gbt32960_share) {
        return Err(ConfigError::new("--gbt32960-share", "must be between 0 and 1").into());
    }
    if !(0.1..=3600.0).contains(&args.interval_s) {
        return Err(ConfigError::new("--interval-s", "must be 0.1 to 3600").into());
    }
    if args.vehicles == 0 || args.vehicles > 200_000 {
        return Err(ConfigError::new("--vehicles", "must be 1 to 200000").into());
    }
    let vehicles: Vec<SimVehicle> = match &args.database_url {
        Some(db) => {
            let store = fleet_storage::Store::connect(db.expose()).await.context("opening the registry database")?;
            let list = store.vehicles().list(None).await?;
            anyhow::ensure!(!list.is_empty(), "the registry at {db} holds no vehicles");
            list.into_iter()
                .take(args.vehicles)
                .map(|v| SimVehicle {
                    vin: v.vin,
                    battery_kwh: v.battery_kwh,
                    consumption_kwh_per_100km: v.consumption_kwh_per_100km,
                })
                .collect()
        }
        None => simulate::sim_vins(args.vehicles)
            .into_iter()
            .map(|vin| SimVehicle {
                vin,
                battery_kwh: GENERATED_BATTERY_KWH,
                consumption_kwh_per_100km: GENERATED_CONSUMPTION,
            })
            .collect(),
    };
    eprintln!("simulating {} vehicles every {} s against {}:{}", vehicles.len(), args.interval_s, url.host, url.port);
    let cfg = SimConfig {
        broker_host: url.host,
        broker_port: url.port,
        login: simulate::SimLogin::shared(url.username, url.password.map(|p| p.expose().to_owned())),
        client_id_prefix: format!("fleet-sim-{}", std::process::id()),
        vehicles,
        interval: Duration::from_secs_f64(args.interval_s),
        gbt32960_share: args.gbt32960_share,
        seed: args.seed,
        tls: tls.as_ref().map(fleet_broker::MqttTls::client_config),
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let duration = args.duration_s.map(Duration::from_secs);
    tokio::spawn(async move {
        match duration {
            Some(d) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    () = tokio::time::sleep(d) => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        stop.cancel();
    });
    let stats = simulate::run(cfg, shutdown).await?;
    eprintln!("published {} messages ({} errors)", stats.published, stats.errors);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use fleet_domain::SecretUrl;

    use crate::cli::{Cli, Command};

    #[test]
    fn the_simulate_arguments_never_show_their_passwords_in_debug() {
        let cli = Cli::try_parse_from([
            "fleetd",
            "simulate",
            "--mqtt-url",
            "mqtt://sim:mq-pass-2@broker:1883",
            "--database-url",
            "postgres://fleet:db-pass-1@db/fleet",
        ])
        .expect("the arguments parse");
        let Command::Simulate(args) = cli.command else { panic!("not the simulate command") };
        let shown = format!("{args:?}");
        assert!(!shown.contains("db-pass-1") && !shown.contains("mq-pass-2"), "{shown}");
        assert!(shown.contains("db/fleet") && shown.contains("broker:1883"), "{shown}");
        assert_eq!(args.mqtt_url.expose(), "mqtt://sim:mq-pass-2@broker:1883");
        assert_eq!(args.database_url.as_ref().map(SecretUrl::expose), Some("postgres://fleet:db-pass-1@db/fleet"));
    }
}
