use chrono::Utc;
use fleet_domain::SampleSource;

use super::*;
use crate::car::{Car, CarSpec, Rhythm};
use crate::control::Driven;
use crate::sim_vins;

/// An operator over `n` cars on call (its API is never called here), with the cars.
fn operator(n: usize, private_per_hour: f64) -> (Operator, Vec<Driven>) {
    let control = Control::default();
    let cars = sim_vins(n)
        .into_iter()
        .enumerate()
        .map(|(i, vin)| {
            let spec = CarSpec { vin, battery_kwh: 60.0, consumption_kwh_per_100km: 15.0, source: SampleSource::Json };
            let mut car = Car::new(spec, Utc::now(), Rhythm::OnCall, i as u64);
            // Charged enough to be taken.
            while car.soc_pct() < PRIVATE_MIN_SOC + 1.0 {
                car = Car::new(car.spec().clone(), Utc::now(), Rhythm::OnCall, rand::random());
            }
            Driven::new(car, Some(&control))
        })
        .collect();
    let cfg = OperatorConfig {
        api_base: "http://127.0.0.1:9".into(),
        cast: Cast::One { username: "dispatcher".into(), password: "x".into() },
        orders_per_min: 0.0,
        by_hour: false,
        bursts_per_day: 0.0,
        private_trips_per_hour: private_per_hour,
        seed: 1,
    };
    let mut op = Operator::new(cfg, control).unwrap();
    // The first private trip is due at once.
    op.next_private = Instant::now();
    (op, cars)
}

#[tokio::test]
async fn private_trips_take_idle_cars_at_most_three_an_hour() {
    // Asked for sixty an hour: the floor between them still allows three.
    let (mut op, mut cars) = operator(5, 60.0);
    let busy = cars[0].vin().clone();
    op.rides.insert(
        "o-1".into(),
        Ride {
            vin: busy.clone(),
            pickup: LatLon::new(30.0, 122.1),
            dropoff: LatLon::new(30.0, 122.2),
            stage: Stage::ToPickup,
        },
    );
    let t0 = Instant::now();
    for s in 0..3600 {
        op.take_private_trip(t0 + Duration::from_secs(s));
        for car in &mut cars {
            car.step(Duration::from_secs(1));
        }
    }
    assert!((1..=3).contains(&op.stats.private_trips), "{} private trips in an hour", op.stats.private_trips);
    let serving = op.control.view(&busy).unwrap();
    assert!(serving.errand.is_none() && !op.control.pending(&busy), "a car serving an order is never taken");
}

#[tokio::test]
async fn no_private_trips_when_none_are_asked_for() {
    let (mut op, _cars) = operator(3, 0.0);
    let t0 = Instant::now();
    op.next_private = t0 + exp_gap(&mut op.rng, 0.0);
    for m in 0..120 {
        op.take_private_trip(t0 + Duration::from_secs(60 * m));
    }
    assert_eq!(op.stats.private_trips, 0);
}
