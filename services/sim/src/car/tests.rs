use chrono::{Datelike, Timelike, Weekday};

use super::*;
use crate::places::ZHOUSHAN_BBOX;
use crate::sim_vins;

fn spec(i: usize, battery_kwh: f64, consumption: f64) -> CarSpec {
    CarSpec {
        vin: sim_vins(i + 1).pop().unwrap(),
        battery_kwh,
        consumption_kwh_per_100km: consumption,
        source: SampleSource::Json,
    }
}

/// 08:00 Beijing time on a Monday at least two weeks ago (samples must not lie in the future).
fn start() -> DateTime<Utc> {
    let mut day = (Utc::now() - TimeDelta::days(14)).date_naive();
    while day.weekday() != Weekday::Mon {
        day -= TimeDelta::days(1);
    }
    day.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

/// Steps a car and gives each sample with the car's activity at that time.
fn run(car: &mut Car, step_s: u64, steps: usize) -> Vec<(Sample, CarActivity)> {
    (0..steps)
        .map(|_| {
            let s = car.step(std::time::Duration::from_secs(step_s));
            (s, car.activity())
        })
        .collect()
}

#[test]
fn cars_stay_in_zhoushan_on_the_roads_or_the_ferry() {
    let g = graph();
    let mut activities = std::collections::HashSet::new();
    for i in 0..12 {
        let mut car = Car::new(spec(i, 60.0, 16.0), start(), Rhythm::AroundTheClock, i as u64);
        for (s, activity) in run(&mut car, 5, 17_280) {
            activities.insert(activity);
            let p = LatLon::new(s.lat, s.lon);
            assert!(ZHOUSHAN_BBOX.contains(p), "{s:?}");
            let off = match activity {
                CarActivity::Ferry => g.distance_to_ferry_m(p),
                CarActivity::Driving => g.distance_to_roads_m(p),
                CarActivity::Parked | CarActivity::Charging => g.distance_to_roads_m(p) - PARK_SPREAD_M,
            };
            assert!(off < 1.0, "{activity:?} {off} m off the network: {s:?}");
            s.validate().unwrap();
        }
    }
    for a in [CarActivity::Parked, CarActivity::Driving, CarActivity::Charging] {
        assert!(activities.contains(&a), "no car was ever {a:?}");
    }
}

#[test]
fn state_of_charge_falls_while_driving_and_rises_while_charging() {
    // A small battery, so that a day holds several charging stops.
    let mut car = Car::new(spec(0, 30.0, 18.0), start(), Rhythm::AroundTheClock, 11);
    let samples = run(&mut car, 10, 8_640 * 2);
    let (mut fell, mut rose) = (0.0, 0.0);
    for pair in samples.windows(2) {
        let ((a, before), (b, activity)) = (&pair[0], &pair[1]);
        let (soc_a, soc_b) = (a.soc_pct.unwrap(), b.soc_pct.unwrap());
        assert!((0.0..=100.0).contains(&soc_b));
        if before != activity {
            continue; // a step that arrived or left does some of both
        }
        match activity {
            CarActivity::Driving => {
                assert!(soc_b <= soc_a, "{a:?} -> {b:?}");
                fell += soc_a - soc_b;
            }
            CarActivity::Charging => {
                assert!(soc_b >= soc_a, "{a:?} -> {b:?}");
                assert_eq!((b.charging, b.ignition, b.speed_kmh), (Some(true), Some(false), Some(0.0)));
                assert!(b.battery_current_a.unwrap() < 0.0);
                rose += soc_b - soc_a;
            }
            CarActivity::Parked => assert_eq!(soc_b, soc_a),
            CarActivity::Ferry => assert_eq!(b.ignition, Some(false)),
        }
    }
    assert!(fell > 100.0 && rose > 50.0, "fell {fell}, rose {rose}");
    assert!(samples.iter().all(|(s, _)| s.soc_pct.unwrap() > 5.0), "cars charge before running flat");
}

#[test]
fn the_odometer_never_runs_back_and_speeds_fit_the_roads() {
    let mut car = Car::new(spec(3, 76.9, 15.5), start(), Rhythm::AroundTheClock, 3);
    let samples = run(&mut car, 5, 17_280);
    let mut moving = 0;
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0].0, &pair[1].0);
        assert!(b.odometer_km >= a.odometer_km);
        assert_eq!(b.ts - a.ts, TimeDelta::seconds(5));
    }
    for (s, activity) in &samples {
        let v = s.speed_kmh.unwrap();
        assert!((0.0..=80.0).contains(&v), "{v}");
        if *activity == CarActivity::Driving && v > 0.0 {
            moving += 1;
            assert!(v >= 20.0 && s.ignition == Some(true));
        }
        if *activity == CarActivity::Parked {
            assert_eq!((v, s.ignition, s.charging), (0.0, Some(false), Some(false)));
        }
    }
    assert!(moving > 1_000, "{moving}");
    let driven = samples.last().unwrap().0.odometer_km.unwrap() - samples[0].0.odometer_km.unwrap();
    assert!((100.0..1_500.0).contains(&driven), "{driven} km in a day");
}

#[test]
fn the_heading_is_the_bearing_of_the_segment_driven() {
    let mut car = Car::new(spec(5, 60.0, 15.0), start(), Rhythm::AroundTheClock, 5);
    let samples = run(&mut car, 1, 20_000);
    let driving: Vec<&Sample> =
        samples.iter().filter(|(s, a)| *a == CarActivity::Driving && s.speed_kmh > Some(0.0)).map(|(s, _)| s).collect();
    let mut checked = 0;
    for pair in driving.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (pa, pb) = (LatLon::new(a.lat, a.lon), LatLon::new(b.lat, b.lon));
        // Within one segment, the motion between two samples points along the heading.
        if b.ts - a.ts == TimeDelta::seconds(1) && a.heading_deg == b.heading_deg && pa.distance_m(pb) > 5.0 {
            let diff = (pa.bearing_deg(pb) - b.heading_deg.unwrap()).rem_euclid(360.0);
            assert!(diff.min(360.0 - diff) < 3.0, "{a:?} -> {b:?}");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn the_same_seed_drives_the_same_way() {
    let trace = |seed| {
        let mut car = Car::new(spec(1, 60.0, 15.0), start(), Rhythm::AroundTheClock, seed);
        run(&mut car, 5, 5_000).into_iter().map(|(s, _)| s).collect::<Vec<_>>()
    };
    assert_eq!(trace(42), trace(42));
    assert_ne!(trace(42), trace(43));
}

#[test]
fn a_working_day_car_spends_nights_and_weekends_at_home() {
    for i in 0..6 {
        let mut car = Car::new(spec(i, 57.6, 13.0), start(), Rhythm::WorkingDays, i as u64);
        let home = PLACES[home_place(car.vin())].pos();
        let samples = run(&mut car, 60, 7 * 1_440);
        let mut weekday_trips = 0;
        for (s, activity) in &samples {
            let local = s.ts + TimeDelta::hours(8);
            let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
            if weekend && (10..16).contains(&local.hour()) {
                assert_eq!(*activity, CarActivity::Parked, "{s:?}");
                assert!(LatLon::new(s.lat, s.lon).distance_m(home) <= PARK_SPREAD_M + 1.0);
            }
            if !weekend && *activity == CarActivity::Driving {
                weekday_trips += 1;
            }
        }
        assert!(weekday_trips > 60, "car {i} hardly drove on weekdays: {weekday_trips} samples");
    }
}

#[test]
fn a_car_on_call_waits_until_sent_then_drives_there_and_parks_at_the_kerb() {
    let g = graph();
    let mut car = Car::new(spec(3, 60.0, 16.0), start(), Rhythm::OnCall, 11);
    let parked_at = car.position();
    for (s, activity) in run(&mut car, 5, 720) {
        assert_eq!(activity, CarActivity::Parked, "an hour on call without a word: it stays");
        assert!(LatLon::new(s.lat, s.lon).distance_m(parked_at) < 1.0);
    }
    assert_eq!(car.errand(), None);
    let home = g.nearest_stop(parked_at);
    let target = *g.destinations().iter().find(|&&d| d != home && g.travel_s(home, d) > 300.0).unwrap();
    car.go_to(PLACES[target].pos());
    assert_eq!(car.errand(), Some(Errand::EnRoute { to: target }));
    let odometer = car.sample().odometer_km.unwrap();
    let mut arrived = false;
    for _ in 0..2000 {
        car.step(std::time::Duration::from_secs(5));
        if car.errand() == Some(Errand::Arrived { at: target }) {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "the car reaches where it was sent");
    assert_eq!(car.activity(), CarActivity::Parked);
    assert!(car.position().distance_m(PLACES[target].pos()) <= KERB_SPREAD_M + 1.0);
    assert!(car.sample().odometer_km.unwrap() > odometer, "it drove there");
}

#[test]
fn a_car_sent_where_it_stands_has_arrived_at_once() {
    let mut car = Car::new(spec(4, 60.0, 16.0), start(), Rhythm::OnCall, 12);
    let here = graph().nearest_stop(car.position());
    car.go_to(PLACES[here].pos());
    car.step(std::time::Duration::from_secs(5));
    assert_eq!(car.errand(), Some(Errand::Arrived { at: here }));
}

#[test]
fn a_car_sent_elsewhere_mid_trip_turns_at_its_next_waypoint() {
    let g = graph();
    let mut car = Car::new(spec(5, 60.0, 16.0), start(), Rhythm::OnCall, 13);
    let home = g.nearest_stop(car.position());
    let far: Vec<usize> = g.destinations().iter().copied().filter(|&d| g.travel_s(home, d) > 900.0).collect();
    car.go_to(PLACES[far[0]].pos());
    run(&mut car, 5, 30);
    assert_eq!(car.activity(), CarActivity::Driving);
    let before = car.position();
    car.go_to(PLACES[far[1]].pos());
    let after = car.step(std::time::Duration::from_secs(1));
    assert!(LatLon::new(after.lat, after.lon).distance_m(before) < 60.0, "no jump when the destination changes");
    let mut arrived = false;
    for _ in 0..4000 {
        car.step(std::time::Duration::from_secs(5));
        arrived |= car.errand() == Some(Errand::Arrived { at: far[1] });
    }
    assert!(arrived);
}

#[test]
fn a_car_on_call_goes_to_charge_by_itself_when_low() {
    let mut car = Car::new(spec(6, 60.0, 16.0), start(), Rhythm::OnCall, 14);
    car.soc_pct = CHARGE_BELOW_PCT - 5.0;
    let activities: std::collections::HashSet<_> = run(&mut car, 10, 1500).into_iter().map(|(_, a)| a).collect();
    assert!(activities.contains(&CarActivity::Charging), "{activities:?}");
    assert!(car.soc_pct() > CHARGE_BELOW_PCT);
}
