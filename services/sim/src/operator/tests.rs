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
            // Charged enough to be taken, even out of the service area.
            while car.soc_pct() < AWAY_MIN_SOC + 1.0 {
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

#[tokio::test]
async fn a_car_taken_out_of_the_service_area_stays_a_while_and_is_driven_back() {
    use fleet_domain::trips::{DeriveParams, MisuseReason, MisuseRules, TripPurpose, derive, misuse_reasons};

    let (mut op, mut cars) = operator(3, 0.0);
    let t0 = Instant::now();
    // No other private trip comes due unless the test says so.
    op.next_private = t0 + Duration::from_secs(365 * 86_400);
    op.start_private_trip(true);
    let (vin, home) = match op.private.iter().next() {
        Some((v, Private::Away { home, .. })) => (v.clone(), *home),
        other => panic!("one car away expected, got {other:?}"),
    };
    let at = |cars: &[Driven]| cars.iter().find(|c| c.vin() == &vin).map(|c| c.position()).unwrap();
    let rules = MisuseRules::default();
    let inside = |p: LatLon| {
        let (x0, y0, x1, y1) = rules.area;
        (x0..=x1).contains(&p.lon) && (y0..=y1).contains(&p.lat)
    };
    assert!(inside(home));

    let mut samples = Vec::new();
    let (mut sent_back, mut back_home) = (None, None);
    for s in 1..=(8 * 3600) {
        let now = t0 + Duration::from_secs(s);
        for car in &mut cars {
            let sample = car.step(Duration::from_secs(1));
            if car.vin() == &vin && s % 5 == 0 {
                samples.push(sample);
            }
        }
        op.take_private_trip(now);
        let arrived = matches!(op.private.get(&vin), Some(Private::Away { arrived: Some(_), .. }));
        if arrived && sent_back.is_none() {
            assert!(!inside(at(&cars)), "it stopped outside the service area");
            // A private trip's turn before its stay is over takes another car...
            op.next_private = now + AWAY_STAY - Duration::from_secs(60);
            sent_back = Some(now);
        }
        if sent_back.is_some_and(|a| now == a + AWAY_STAY - Duration::from_secs(60)) {
            assert_eq!(op.stats.private_trips, 2);
            assert!(matches!(op.private.get(&vin), Some(Private::Away { .. })), "it stays {AWAY_STAY:?}");
            // ...the first after it brings this one back.
            op.next_private = now + Duration::from_secs(120);
        }
        if sent_back.is_some() && !op.private.contains_key(&vin) {
            back_home = Some(now);
            break;
        }
    }
    let (arrived, back_home) = (sent_back.expect("it got to Yuyao"), back_home.expect("it came back"));
    assert!(back_home.duration_since(arrived) > AWAY_STAY);
    assert!(at(&cars).distance_m(home) < 3_000.0, "back where it was taken from");
    assert_eq!(op.stats.private_trips, 3, "the way out, another car's, the way back");

    // As the statistics will see it: no order, and out of the service area, both ways.
    let derived = derive(&samples, cars[0].spec().battery_kwh, &DeriveParams::default());
    let out: Vec<_> = derived
        .trips
        .iter()
        .filter(|t| misuse_reasons(t, TripPurpose::Unexplained, &rules, &[]).contains(&MisuseReason::OutsideArea))
        .collect();
    assert_eq!(out.len(), 2, "{:?}", derived.trips);
    assert!(
        inside(LatLon::new(out[0].start.lat, out[0].start.lon)) && !inside(LatLon::new(out[0].end.lat, out[0].end.lon))
    );
    assert!(
        !inside(LatLon::new(out[1].start.lat, out[1].start.lon)) && inside(LatLon::new(out[1].end.lat, out[1].end.lon))
    );
}
