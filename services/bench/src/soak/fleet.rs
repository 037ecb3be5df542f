//! The soak's fleet: units of cars registered straight through storage (before fleetd
//! starts, so its live hub loads them all), drivers bound to some of the cars, the two
//! simulators that drive them (one for the JSON cars, one for the GB/T 32960 cars, so the
//! bench knows which is which), and the live clients' filters.

use std::time::Duration;

use anyhow::Context;
use fleet_domain::{NewDriver, NewUnit};
use fleet_storage::Store;

use crate::bench_vin;
use crate::db::{BenchCar, register_cars};
use crate::load::Broker;
use fleet_broker::MqttUrl;
use fleet_sim::{SimConfig, SimVehicle};

/// Cars per unit: a department of the city with its own budget and its own view.
const CARS_PER_UNIT: usize = 100;
/// Battery and consumption of every soak car (a mid-size EV sedan, as `fleetd simulate`).
const BATTERY_KWH: f64 = 60.0;
const CONSUMPTION_KWH_PER_100KM: f64 = 14.0;
/// Areas of the bbox-filtered clients (minLon,minLat,maxLon,maxLat): Dinghai, and Lincheng
/// with Shenjiamen.
const BBOXES: [&str; 2] = ["122.00,29.95,122.16,30.07", "122.16,29.90,122.36,30.02"];

/// The unit of car `i`.
pub(super) fn unit_of(i: usize) -> String {
    unit_id(i / CARS_PER_UNIT)
}

fn unit_id(k: usize) -> String {
    format!("soak{k:03}")
}

/// Whether car `i` speaks GB/T 32960: `share` of the fleet, spread evenly through it.
pub(super) fn is_gbt(i: usize, share: f64) -> bool {
    ((i + 1) as f64 * share).floor() > (i as f64 * share).floor()
}

/// What was registered.
pub(super) struct Registered {
    pub units: Vec<String>,
    pub drivers: Vec<String>,
}

/// Registers `vehicles` cars in units of [`CARS_PER_UNIT`] (auto-approving, with budgets no
/// soak exhausts) and `drivers` drivers, each bound to a car spread through the fleet.
pub(super) async fn register(store: &Store, vehicles: usize, drivers: usize) -> anyhow::Result<Registered> {
    let units: Vec<String> = (0..vehicles.div_ceil(CARS_PER_UNIT)).map(unit_id).collect();
    for u in &units {
        let unit = NewUnit {
            id: Some(u.clone()),
            name: format!("Soak unit {u}"),
            monthly_energy_budget_kwh: 1e9,
            auto_approve: true,
            ..Default::default()
        };
        store.units().create(u, &unit).await.with_context(|| format!("registering unit {u}"))?;
    }
    register_cars(store, vehicles, |i| BenchCar {
        model: "Soak EV",
        battery_kwh: BATTERY_KWH,
        consumption_kwh_per_100km: CONSUMPTION_KWH_PER_100KM,
        unit_id: Some(unit_of(i)),
        terminal_phone: None,
    })
    .await?;
    let mut ids = Vec::with_capacity(drivers);
    for d in 0..drivers {
        let vin = bench_vin(d * vehicles / drivers);
        let id = format!("soakdriver{d:04}");
        let driver = NewDriver {
            id: Some(id.clone()),
            name: format!("Soak driver {d}"),
            phone: "13800000000".into(),
            vehicle_vin: Some(vin.to_string()),
        };
        store.drivers().create(&id, &driver, Some(&vin)).await.with_context(|| format!("registering driver {id}"))?;
        ids.push(id);
    }
    Ok(Registered { units, drivers: ids })
}

/// The two simulators' configurations: the JSON cars and the GB/T 32960 cars (half of them
/// on each edition), publishing QoS 1 to `broker`.
pub(super) fn simulators(
    broker: &Broker,
    vehicles: usize,
    share: f64,
    interval: Duration,
    seed: u64,
) -> anyhow::Result<[SimConfig; 2]> {
    let url = MqttUrl::parse(&broker.url)?;
    let car = |i: usize| SimVehicle {
        vin: bench_vin(i),
        battery_kwh: BATTERY_KWH,
        consumption_kwh_per_100km: CONSUMPTION_KWH_PER_100KM,
        terminal_phone: None,
    };
    let config = |name: &str, gbt: bool| SimConfig {
        via: fleet_sim::Via::Mqtt,
        broker_host: broker.host.clone(),
        broker_port: broker.port,
        login: fleet_sim::SimLogin::shared(url.username.clone(), url.password.as_ref().map(|p| p.expose().to_owned())),
        client_id_prefix: format!("bench-soak-{name}-{}", std::process::id()),
        vehicles: (0..vehicles).filter(|&i| is_gbt(i, share) == gbt).map(car).collect(),
        interval,
        gbt32960_share: if gbt { 1.0 } else { 0.0 },
        seed,
        tls: None,
        control: None,
    };
    Ok([config("json", false), config("gbt", true)])
}

/// Query strings of the live clients: of every ten, one filters on a unit and one on an
/// area; the rest have the full view.
pub(super) fn client_queries(clients: usize, units: &[String]) -> Vec<String> {
    (0..clients)
        .map(|c| match c % 10 {
            4 if !units.is_empty() => format!("&unit_id={}", units[(c / 10) % units.len()]),
            9 => format!("&bbox={}", BBOXES[(c / 10) % BBOXES.len()]),
            _ => String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gbt_share_is_spread_evenly_and_exact() {
        for (n, share, want) in [(2000, 0.3, 600), (10, 0.0, 0), (10, 1.0, 10), (7, 0.5, 3)] {
            assert_eq!((0..n).filter(|&i| is_gbt(i, share)).count(), want, "{n} × {share}");
        }
        assert_eq!((0..10).filter(|&i| is_gbt(i, 0.3)).count(), 3);
    }

    #[test]
    fn a_few_clients_filter_and_the_rest_see_everything() {
        let units = vec![unit_id(0), unit_id(1)];
        let q = client_queries(20, &units);
        assert_eq!(q.iter().filter(|q| q.is_empty()).count(), 16);
        assert_eq!(q[4], "&unit_id=soak000");
        assert_eq!(q[14], "&unit_id=soak001");
        assert_eq!(q[9], format!("&bbox={}", BBOXES[0]));
        assert_eq!(unit_of(199), "soak001");
    }
}
