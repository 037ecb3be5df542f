use std::collections::{HashMap, HashSet};

use chrono::{TimeDelta, Timelike};
use fleet_domain::Role;
use fleet_domain::registry::validate_plate;

use super::*;
use crate::car::PARK_SPREAD_M;
use crate::geo::LatLon;
use crate::places::{ZHOUSHAN_BBOX, graph};

fn end() -> DateTime<Utc> {
    // A fixed instant, so runs compare; in the past, so samples validate.
    "2025-11-20T12:00:00Z".parse().unwrap()
}

#[test]
fn every_demo_object_validates() {
    let d = demo_data();
    assert_eq!(d.units.len(), 26);
    for (i, u) in d.units.iter().enumerate() {
        u.validate().unwrap();
        assert_eq!(u.id.as_deref(), Some(format!("u{:02}", i + 1).as_str()));
        assert!((300.0..=2_000.0).contains(&u.monthly_energy_budget_kwh), "{}", u.name);
        assert!(u.name.starts_with("舟山市"));
    }
    assert!(d.units.iter().filter(|u| u.auto_approve).count() >= 3);
    let unit_ids: HashSet<_> = d.units.iter().filter_map(|u| u.id.clone()).collect();

    assert!((55..=65).contains(&d.vehicles.len()));
    for v in &d.vehicles {
        v.validate().unwrap();
        validate_plate(&v.plate).unwrap();
        assert!(v.plate.starts_with("浙LD"), "{}", v.plate);
        assert!(v.unit_id.as_ref().is_none_or(|u| unit_ids.contains(u)));
    }
    let pooled = d.vehicles.iter().filter(|v| v.unit_id.is_none()).count();
    assert!(pooled > 5 && pooled < d.vehicles.len() / 2, "{pooled} pooled");
    assert!(d.vehicles.iter().any(|v| v.seats == 7 && v.battery_kwh > 110.0), "a Zeekr 009 MPV");

    let vins: HashSet<_> = d.vehicles.iter().map(|v| v.vin.clone()).collect();
    assert_eq!(d.drivers.len(), d.vehicles.len());
    for (i, dr) in d.drivers.iter().enumerate() {
        dr.validate().unwrap();
        assert_eq!(dr.id.as_deref(), Some(format!("d{:02}", i + 1).as_str()));
        assert!(vins.contains(dr.vehicle_vin.as_ref().unwrap()));
        assert!(dr.phone.len() == 11 && dr.phone.starts_with('1'), "{}", dr.phone);
    }
    let names: HashSet<_> = d.drivers.iter().map(|d| d.name.clone()).collect();
    assert_eq!(names.len(), d.drivers.len());

    let driver_ids: HashSet<_> = d.drivers.iter().filter_map(|d| d.id.clone()).collect();
    let usernames: HashSet<_> = d.users.iter().map(|u| u.username.clone()).collect();
    assert_eq!(usernames.len(), d.users.len());
    for u in &d.users {
        // The documented demo password is shorter than the policy lets users choose.
        u.validate_account().unwrap();
        assert_eq!(u.password, "demo");
        assert!(u.unit_id.as_ref().is_none_or(|id| unit_ids.contains(id)));
        assert!(u.driver_id.as_ref().is_none_or(|id| driver_ids.contains(id)));
    }
    for name in ["admin", "dispatcher", "auditor", "unit01", "unit26", "driver01"] {
        assert!(usernames.contains(name), "{name}");
    }
    let role_of = |name: &str| d.users.iter().find(|u| u.username == name).unwrap().role;
    assert_eq!(role_of("admin"), Role::Admin);
    assert_eq!(role_of("unit05"), Role::Unit);
    assert_eq!(d.users.iter().filter(|u| u.role == Role::Driver).count(), d.drivers.len());

    assert!((6..=10).contains(&d.charging_stations.len()));
    for s in &d.charging_stations {
        assert!(ZHOUSHAN_BBOX.contains(LatLon::new(s.lat, s.lon)), "{s:?}");
        assert!(s.power_kw >= 7.0 && !s.name.is_empty());
    }
}

#[test]
fn plates_and_vins_are_unique_and_stable() {
    let d = demo_data();
    let plates: HashSet<_> = d.vehicles.iter().map(|v| &v.plate).collect();
    let vins: HashSet<_> = d.vehicles.iter().map(|v| &v.vin).collect();
    assert_eq!(plates.len(), d.vehicles.len());
    assert_eq!(vins.len(), d.vehicles.len());
    let again = demo_data();
    assert!(d.vehicles.iter().zip(&again.vehicles).all(|(a, b)| a.vin == b.vin && a.plate == b.plate));
}

#[test]
fn history_is_in_time_order_per_car_and_deterministic() {
    let vehicles = demo_data().vehicles[..6].to_vec();
    let step = Duration::from_secs(60);
    let a: Vec<Sample> = history(&vehicles, end(), 10, step, 1).collect();
    let b: Vec<Sample> = history(&vehicles, end(), 10, step, 1).collect();
    assert_eq!(a, b);
    let c: Vec<Sample> = history(&vehicles, end(), 10, step, 2).collect();
    assert_ne!(a, c);

    let mut last: HashMap<&str, &Sample> = HashMap::new();
    for s in &a {
        s.validate().unwrap();
        assert!(s.ts > end() - TimeDelta::days(10) && s.ts <= end());
        if let Some(prev) = last.insert(s.vin.as_str(), s) {
            assert!(s.ts > prev.ts, "{} out of order", s.vin);
            assert!(s.odometer_km >= prev.odometer_km);
        }
    }
    assert_eq!(last.len(), 6);
}

#[test]
fn history_drives_on_working_days_charges_and_parks_overnight() {
    let vehicles = demo_data().vehicles;
    let samples: Vec<Sample> = history(&vehicles[..10], end(), 30, Duration::from_secs(30), 9).collect();
    let g = graph();
    let (mut night, mut night_parked, mut charging) = (0, 0, 0);
    for s in &samples {
        let p = LatLon::new(s.lat, s.lon);
        assert!(ZHOUSHAN_BBOX.contains(p));
        let off = g.distance_to_roads_m(p).min(g.distance_to_ferry_m(p));
        assert!(off <= PARK_SPREAD_M + 1.0, "{s:?}");
        assert!((0.0..=100.0).contains(&s.soc_pct.unwrap()));
        let local_hour = (s.ts + TimeDelta::hours(8)).hour();
        if (1..5).contains(&local_hour) {
            night += 1;
            night_parked += usize::from(s.ignition == Some(false) && s.speed_kmh == Some(0.0));
        }
        charging += usize::from(s.charging == Some(true));
    }
    assert!(night > 10 * 20, "parked cars report through the night: {night}");
    assert!(night_parked * 100 >= night * 98, "{night_parked} of {night} night samples parked");
    assert!(charging > 100, "{charging} charging samples");
}

#[test]
fn a_demo_month_is_a_few_hundred_thousand_samples() {
    let vehicles = demo_data().vehicles;
    let n = history(&vehicles, end(), 30, Duration::from_secs(30), 1).count();
    assert!((100_000..1_000_000).contains(&n), "{n} samples");
}

#[test]
fn the_history_comes_with_the_orders_its_working_hours_trips_served() {
    let d = demo_data();
    let cast = Cast::new(&d.units, &d.vehicles, &d.drivers, &d.users);
    let car = &d.vehicles[0];
    let samples: Vec<Sample> = history(std::slice::from_ref(car), end(), 7, Duration::from_secs(30), 7).collect();
    let mut seq = 0;
    let orders = orders_for(&cast, &samples, car.battery_kwh, &mut seq);
    assert!(orders.len() >= 5, "a week of driving serves orders: {}", orders.len());
    for o in &orders {
        let (r, events) = (&o.record, &o.events);
        assert_eq!(r.order.status, fleet_domain::OrderStatus::Completed);
        assert_eq!(r.order.vin.as_ref().map(|v| v.as_str()), Some(car.vin.as_str()));
        let actions: Vec<_> = events.iter().map(|(e, _)| e.action.as_str()).collect();
        assert_eq!(actions, ["create", "assign", "accept", "pickup", "complete"]);
        assert!(events.windows(2).all(|w| w[0].0.ts <= w[1].0.ts), "history in time order");
        assert_eq!(events[3].0.ts, r.order.pickup_at, "picked up when the trip starts");
        assert!(!r.order.pickup.name.is_empty() && !r.order.dropoff.name.is_empty());
        let local = r.order.pickup_at.with_timezone(&fleet_domain::trips::china_offset());
        assert!((7..20).contains(&local.hour()), "orders only in working hours");
    }
}

#[test]
fn a_share_of_the_cars_reports_through_each_gateway_that_runs() {
    let data = demo_data();
    let cars: Vec<crate::SimVehicle> = data
        .vehicles
        .iter()
        .map(|v| crate::SimVehicle {
            vin: fleet_domain::Vin::parse(&v.vin).unwrap(),
            battery_kwh: v.battery_kwh,
            consumption_kwh_per_100km: v.consumption_kwh_per_100km,
            terminal_phone: v.terminal_phone.clone(),
        })
        .collect();
    let phones: std::collections::HashSet<_> = cars.iter().filter_map(|c| c.terminal_phone.clone()).collect();
    assert_eq!(phones.len(), cars.len(), "every car has a terminal phone of its own");

    let ways = ways_in(cars.clone(), true, true);
    let n = cars.len();
    assert_eq!(ways.gbt32960.len(), n.div_ceil(DEMO_TCP_EVERY));
    assert_eq!(ways.jt808.len(), (n - 1).div_ceil(DEMO_TCP_EVERY));
    assert_eq!(ways.mqtt.len() + ways.gbt32960.len() + ways.jt808.len(), n, "every car one way");
    assert!(ways.mqtt.len() > n / 2, "most cars still publish to the broker");

    // Without the gateways everyone publishes; without phones nobody speaks JT/T 808.
    assert_eq!(ways_in(cars.clone(), false, false).mqtt.len(), n);
    let no_phones = cars.into_iter().map(|c| crate::SimVehicle { terminal_phone: None, ..c }).collect();
    let ways = ways_in(no_phones, true, true);
    assert!(ways.jt808.is_empty());
    assert_eq!(ways.mqtt.len() + ways.gbt32960.len(), n);
}

#[test]
fn the_demo_tariff_files_and_costs_validate_and_something_falls_due() {
    tariff().validate().expect("the demo tariff tiles the day");
    let d = demo_data();
    let today: chrono::NaiveDate = "2026-12-08".parse().unwrap();
    let costs = costs(&d.vehicles, today);
    assert!(costs.len() >= d.vehicles.len() / 2, "{} costs", costs.len());
    for c in &costs {
        c.validate(today).unwrap();
        assert!(c.on <= today && c.on > today - TimeDelta::days(30));
    }
    assert_eq!(costs, super::costs(&d.vehicles, today), "deterministic");
    let mut due = 0;
    let mut in_shop = 0;
    for (i, v) in d.vehicles.iter().enumerate() {
        let mut v = v.clone();
        v.file = vehicle_file(i, today);
        v.validate().unwrap();
        let car = fleet_domain::Vehicle {
            vin: fleet_domain::Vin::parse(&v.vin).unwrap(),
            plate: v.plate.clone(),
            model: v.model.clone(),
            seats: v.seats,
            battery_kwh: v.battery_kwh,
            consumption_kwh_per_100km: v.consumption_kwh_per_100km,
            unit_id: v.unit_id.clone(),
            terminal_phone: None,
            file: v.file.clone(),
            retired: false,
        };
        due += usize::from(!fleet_domain::upkeep::reminders(&car, Some(40_000.0), today).is_empty());
        in_shop += usize::from(v.file.in_maintenance);
    }
    assert!((2..=20).contains(&due), "{due} of {} cars have something due", d.vehicles.len());
    assert_eq!(in_shop, 1);
}
