//! The order simulator (`fleetd simulate --orders-per-min`) against a real fleetd, both
//! databases: it places orders through the HTTP API as one dispatcher, approves them, and
//! answers the assignments of its own cars on their drivers' behalf, which sets the cars off
//! to the pickup.

use std::time::Duration;

use fleet_sim::operator::{Cast, OperatorConfig};
use fleet_sim::{Control, SimConfig, SimLogin, SimVehicle, Via};
use fleet_tests::{MQTT_HOST, MQTT_PORT, Settings, both_with};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::orders::{get, world};

/// Generated orders, approvals (up to a minute), a batch and the driver's answer (up to 20 s).
const ACCEPTED_WITHIN: Duration = Duration::from_secs(120);

fn fast(s: &mut Settings) {
    s.dispatch.batch_interval = Duration::from_millis(200);
}

both_with!(the_order_simulator_places_orders_and_its_drivers_accept_them, fast, |app: TestApp| async move {
    let w = world(&app, 4).await?;
    let control = Control::default();
    let vehicles = w
        .cars
        .iter()
        .map(|(vin, _, _)| SimVehicle {
            vin: fleet_domain::Vin::parse(vin).expect("a valid VIN"),
            battery_kwh: 71.7,
            consumption_kwh_per_100km: 17.0,
            terminal_phone: None,
        })
        .collect();
    let sim = SimConfig {
        via: Via::Mqtt,
        broker_host: MQTT_HOST.into(),
        broker_port: MQTT_PORT,
        login: SimLogin::Anonymous,
        client_id_prefix: format!("sim-orders-{}", rand::random::<u32>()),
        vehicles,
        interval: Duration::from_secs(1),
        gbt32960_share: 0.0,
        seed: 5,
        tls: None,
        control: Some(control.clone()),
    };
    let operator = OperatorConfig {
        api_base: app.base.clone(),
        cast: Cast::One { username: "disp".into(), password: "disp-pass".into() },
        orders_per_min: 20.0,
        by_hour: false,
        bursts_per_day: 0.0,
        private_trips_per_hour: 0.0,
        seed: 9,
    };
    let stop = CancellationToken::new();
    let sim = tokio::spawn(fleet_sim::run(sim, stop.clone()));
    let people = tokio::spawn(fleet_sim::operator::run(operator, control.clone(), stop.clone()));

    let deadline = Instant::now() + ACCEPTED_WITHIN;
    let accepted = loop {
        let (_, v) = get(&app, &w.dispatcher, "/api/v1/orders?status=accepted,picked_up,completed").await?;
        if let Some(o) = v["orders"].as_array().and_then(|a| a.first()) {
            break o.clone();
        }
        anyhow::ensure!(Instant::now() < deadline, "no generated order accepted within {ACCEPTED_WITHIN:?}: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let id = accepted["id"].as_str().unwrap_or_default();
    let (_, detail) = get(&app, &w.dispatcher, &format!("/api/v1/orders/{id}")).await?;
    let events = detail["events"].as_array().cloned().unwrap_or_default();
    let accept = events.iter().find(|e| e["to"] == "accepted").cloned().unwrap_or(Value::Null);
    anyhow::ensure!(accept["actor"] == "disp", "the dispatcher accepted for the driver: {detail}");
    // The car was sent off to the pickup.
    let vin = fleet_domain::Vin::parse(accepted["vin"].as_str().unwrap_or_default())?;
    let view = control.view(&vin).ok_or_else(|| anyhow::anyhow!("the accepted car {vin} is not the simulator's"))?;
    anyhow::ensure!(view.errand.is_some() || control.pending(&vin), "the car was not sent anywhere: {view:?}");

    stop.cancel();
    let stats = people.await??;
    sim.await??;
    anyhow::ensure!(stats.created >= 1 && stats.accepted >= 1, "{stats:?}");
    anyhow::ensure!(stats.errors == 0, "no call failed: {stats:?}");
    Ok(())
});
