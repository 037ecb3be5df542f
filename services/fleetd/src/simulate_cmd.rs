//! `fleetd simulate`: the simulator as a load generator for any broker, or for a TCP gateway
//! (GB/T 32960.3 or JT/T 808 terminals, one connection per car).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::{SimVia, SimulateArgs};
use crate::config::{ConfigError, MqttUrl};
use fleet_sim::{self as simulate, SimConfig, SimVehicle, TcpConfig, TcpProtocol, TcpStats, Via};

/// Battery and consumption of generated cars (a mid-size EV sedan).
const GENERATED_BATTERY_KWH: f64 = 60.0;
const GENERATED_CONSUMPTION: f64 = 14.0;

/// Where the cars report, as the arguments ask.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Mqtt,
    Tcp { protocol: TcpProtocol, gateway: String },
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let target = target(&args)?;
    if !(0.0..=1.0).contains(&args.gbt32960_share) {
        return Err(ConfigError::new("--gbt32960-share", "must be between 0 and 1").into());
    }
    if !(0.1..=3600.0).contains(&args.interval_s) {
        return Err(ConfigError::new("--interval-s", "must be 0.1 to 3600").into());
    }
    if args.vehicles == 0 || args.vehicles > 200_000 {
        return Err(ConfigError::new("--vehicles", "must be 1 to 200000").into());
    }
    let orders = orders(&args)?;
    let mut vehicles: Vec<SimVehicle> = match &args.database_url {
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
                    terminal_phone: v.terminal_phone,
                })
                .collect()
        }
        None => simulate::sim_vins(args.vehicles)
            .into_iter()
            .enumerate()
            .map(|(i, vin)| SimVehicle {
                vin,
                battery_kwh: GENERATED_BATTERY_KWH,
                consumption_kwh_per_100km: GENERATED_CONSUMPTION,
                terminal_phone: Some(simulate::sim_phone(i)),
            })
            .collect(),
    };
    if let Target::Tcp { protocol: TcpProtocol::Jt808 { .. }, .. } = target {
        let (kept, skipped) = with_phones(vehicles);
        if skipped > 0 {
            eprintln!("skipping {skipped} vehicles without a terminal phone (JT/T 808 terminals need one)");
        }
        anyhow::ensure!(!kept.is_empty(), "no vehicle of the registry has a terminal phone for --via jt808-tcp");
        vehicles = kept;
    }
    let mut cfg = SimConfig {
        via: Via::Mqtt,
        broker_host: String::new(),
        broker_port: 0,
        login: simulate::SimLogin::Anonymous,
        client_id_prefix: format!("fleet-sim-{}", std::process::id()),
        vehicles,
        interval: Duration::from_secs_f64(args.interval_s),
        gbt32960_share: args.gbt32960_share,
        seed: args.seed,
        tls: None,
        control: orders.as_ref().map(|_| simulate::Control::default()),
    };
    let mut tcp_stats: Option<Arc<TcpStats>> = None;
    match target {
        Target::Mqtt => {
            let url = MqttUrl::parse(args.mqtt_url.expose()).map_err(ConfigError::from)?;
            let tls = args.tls.load(url.tls)?;
            eprintln!(
                "simulating {} vehicles every {} s against {}:{}",
                cfg.vehicles.len(),
                args.interval_s,
                url.host,
                url.port
            );
            cfg.login = simulate::SimLogin::shared(url.username, url.password.map(|p| p.expose().to_owned()));
            cfg.broker_host = url.host;
            cfg.broker_port = url.port;
            cfg.tls = tls.as_ref().map(fleet_broker::MqttTls::client_config);
        }
        Target::Tcp { protocol, gateway } => {
            eprintln!(
                "simulating {} {} terminals every {} s against {gateway}",
                cfg.vehicles.len(),
                match protocol {
                    TcpProtocol::Gbt32960 => "GB/T 32960",
                    TcpProtocol::Jt808 { .. } => "JT/T 808",
                },
                args.interval_s
            );
            let tcp = TcpConfig::new(protocol, gateway);
            tcp_stats = Some(Arc::clone(&tcp.stats));
            cfg.via = Via::Tcp(tcp);
        }
    }
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
    let operator = match (orders, &cfg.control) {
        (Some(orders), Some(control)) => {
            eprintln!("placing {} orders a minute through {}", orders.orders_per_min, orders.api_base);
            Some(tokio::spawn(simulate::operator::run(orders, control.clone(), shutdown.clone())))
        }
        _ => None,
    };
    let stats = simulate::run(cfg, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(operator) = operator {
        let s = operator.await.context("the order simulator")?.context("the order simulator")?;
        eprintln!(
            "orders: {} placed ({} over budget), {} approved, {} accepted, {} declined, {} left to expire, {} picked up, {} completed; {} failed calls",
            s.created,
            s.over_budget,
            s.approved,
            s.accepted,
            s.declined,
            s.let_expire,
            s.picked_up,
            s.completed,
            s.errors
        );
    }
    let stats = stats?;
    match tcp_stats {
        None => eprintln!("published {} messages ({} errors)", stats.published, stats.errors),
        Some(tcp) => {
            let c = tcp.counts();
            let l = tcp.latencies();
            eprintln!(
                "reports: {} sent, {} acknowledged, {} sent again, {} refused, {} dropped, {} unanswered at the stop; \
                 {} reconnections, {} failed connections ({} refused logins); reply latency p50 {} ms, p99 {} ms",
                c.sent,
                c.acked,
                c.resent,
                c.refused,
                c.dropped + c.given_up,
                c.abandoned,
                c.reconnects,
                c.connect_failures,
                c.login_refused,
                l.p50.as_millis(),
                l.p99.as_millis()
            );
        }
    }
    Ok(())
}

/// The order simulator the arguments ask for, checked.
fn orders(args: &SimulateArgs) -> Result<Option<simulate::operator::OperatorConfig>, ConfigError> {
    if args.orders_per_min == 0.0 {
        return Ok(None);
    }
    if !(0.0..=10_000.0).contains(&args.orders_per_min) {
        return Err(ConfigError::new("--orders-per-min", "must be 0 to 10000"));
    }
    if args.database_url.is_none() {
        return Err(ConfigError::new("--orders-per-min", "needs --database-url: the cars must be the registry's"));
    }
    if !args.api_url.starts_with("http://") {
        return Err(ConfigError::new("--api-url", "must be an http:// address"));
    }
    let password = args.api_password.as_ref().ok_or_else(|| {
        ConfigError::new("--api-password", "is needed with --orders-per-min (the password of --api-user)")
    })?;
    Ok(Some(simulate::operator::OperatorConfig {
        api_base: args.api_url.clone(),
        cast: simulate::operator::Cast::One { username: args.api_user.clone(), password: password.expose().to_owned() },
        orders_per_min: args.orders_per_min,
        by_hour: false,
        bursts_per_day: 0.0,
        private_trips_per_hour: 0.0,
        seed: args.seed,
    }))
}

/// The way in the arguments ask for, checked.
fn target(args: &SimulateArgs) -> Result<Target, ConfigError> {
    let protocol = match args.via {
        SimVia::Mqtt => {
            if args.gateway_addr.is_some() {
                return Err(ConfigError::new("--gateway-addr", "only used with --via gbt32960-tcp or jt808-tcp"));
            }
            return Ok(Target::Mqtt);
        }
        SimVia::Gbt32960Tcp => TcpProtocol::Gbt32960,
        SimVia::Jt808Tcp => {
            if !(0.0..=1.0).contains(&args.jt808_2019_share) {
                return Err(ConfigError::new("--jt808-2019-share", "must be between 0 and 1"));
            }
            TcpProtocol::Jt808 { v2019_share: args.jt808_2019_share }
        }
    };
    let gateway = args
        .gateway_addr
        .as_deref()
        .ok_or_else(|| ConfigError::new("--gateway-addr", "required with --via gbt32960-tcp or jt808-tcp"))?;
    Ok(Target::Tcp { protocol, gateway: gateway_addr(gateway)? })
}

/// A gateway's `HOST:PORT` (a name, an IPv4 address or a bracketed IPv6 one, and a port
/// other than 0).
fn gateway_addr(text: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::new("--gateway-addr", format!("{text:?} is not HOST:PORT"));
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(text.to_owned()),
        _ => Err(bad()),
    }
}

/// The cars that have a terminal phone, and how many had none.
fn with_phones(vehicles: Vec<SimVehicle>) -> (Vec<SimVehicle>, usize) {
    let all = vehicles.len();
    let kept: Vec<SimVehicle> = vehicles.into_iter().filter(|v| v.terminal_phone.is_some()).collect();
    let skipped = all - kept.len();
    (kept, skipped)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use fleet_domain::SecretUrl;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> SimulateArgs {
        let cli = Cli::try_parse_from([&["fleetd", "simulate"][..], args].concat()).expect("the arguments parse");
        let Command::Simulate(args) = cli.command else { panic!("not the simulate command") };
        args
    }

    #[test]
    fn the_simulate_arguments_never_show_their_passwords_in_debug() {
        let args = parse(&[
            "--mqtt-url",
            "mqtt://sim:mq-pass-2@broker:1883",
            "--database-url",
            "postgres://fleet:db-pass-1@db/fleet",
        ]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("db-pass-1") && !shown.contains("mq-pass-2"), "{shown}");
        assert!(shown.contains("db/fleet") && shown.contains("broker:1883"), "{shown}");
        assert_eq!(args.mqtt_url.expose(), "mqtt://sim:mq-pass-2@broker:1883");
        assert_eq!(args.database_url.as_ref().map(SecretUrl::expose), Some("postgres://fleet:db-pass-1@db/fleet"));
    }

    #[test]
    fn reports_to_the_broker_unless_told_otherwise() {
        assert_eq!(target(&parse(&[])).unwrap(), Target::Mqtt);
    }

    #[test]
    fn the_tcp_ways_name_their_protocol_and_gateway() {
        let args = parse(&["--via", "gbt32960-tcp", "--gateway-addr", "127.0.0.1:32960"]);
        assert_eq!(
            target(&args).unwrap(),
            Target::Tcp { protocol: TcpProtocol::Gbt32960, gateway: "127.0.0.1:32960".to_owned() }
        );
        let args =
            parse(&["--via", "jt808-tcp", "--gateway-addr", "gw.fleet.example:6808", "--jt808-2019-share", "0.2"]);
        assert_eq!(
            target(&args).unwrap(),
            Target::Tcp {
                protocol: TcpProtocol::Jt808 { v2019_share: 0.2 },
                gateway: "gw.fleet.example:6808".to_owned()
            }
        );
        assert!(target(&parse(&["--via", "jt808-tcp", "--gateway-addr", "[::1]:6808"])).is_ok());
    }

    #[test]
    fn bad_way_settings_name_the_flag() {
        for (args, setting) in [
            (&["--via", "gbt32960-tcp"][..], "--gateway-addr"),
            (&["--via", "jt808-tcp"][..], "--gateway-addr"),
            (&["--gateway-addr", "127.0.0.1:32960"][..], "--gateway-addr"),
            (&["--via", "gbt32960-tcp", "--gateway-addr", "127.0.0.1"][..], "--gateway-addr"),
            (&["--via", "gbt32960-tcp", "--gateway-addr", "127.0.0.1:0"][..], "--gateway-addr"),
            (&["--via", "gbt32960-tcp", "--gateway-addr", ":32960"][..], "--gateway-addr"),
            (&["--via", "gbt32960-tcp", "--gateway-addr", "host name:32960"][..], "--gateway-addr"),
            (&["--via", "jt808-tcp", "--gateway-addr", "[nope]:6808"][..], "--gateway-addr"),
            (
                &["--via", "jt808-tcp", "--gateway-addr", "127.0.0.1:6808", "--jt808-2019-share", "1.5"][..],
                "--jt808-2019-share",
            ),
        ] {
            let e = target(&parse(args)).expect_err(&format!("{args:?} is refused"));
            assert_eq!(e.setting, setting, "{args:?}: {}", e.problem);
        }
        assert!(Cli::try_parse_from(["fleetd", "simulate", "--via", "carrier-pigeon"]).is_err());
    }

    #[test]
    fn cars_without_a_terminal_phone_are_skipped_and_counted() {
        let car = |i: usize, phone: Option<String>| SimVehicle {
            vin: simulate::sim_vins(i + 1).remove(i),
            battery_kwh: 60.0,
            consumption_kwh_per_100km: 15.0,
            terminal_phone: phone,
        };
        let (kept, skipped) = with_phones(vec![car(0, None), car(1, Some(simulate::sim_phone(1))), car(2, None)]);
        assert_eq!((kept.len(), skipped), (1, 2));
        assert_eq!(kept[0].terminal_phone.as_deref(), Some("13900000001"));
    }
}
