use super::*;

const DINGHAI: GeoPoint = GeoPoint { lat: 30.0197, lon: 122.1067 };
const SHENJIAMEN: GeoPoint = GeoPoint { lat: 29.9530, lon: 122.2985 };

fn car() -> CarFacts {
    CarFacts {
        position: DINGHAI,
        seats: 5,
        soc_pct: Some(80.0),
        battery_kwh: 60.0,
        consumption_kwh_per_100km: 15.0,
        online: true,
        idle: true,
        reserved: false,
    }
}

fn order() -> OrderFacts {
    OrderFacts { pickup: GeoPoint::new(30.0100, 122.1100), dropoff: SHENJIAMEN, passengers: 2 }
}

/// The textbook haversine formula, to check the chord form against.
fn textbook_haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let (dp, dl) = (p2 - p1, (b.lon - a.lon).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

#[test]
fn haversine_agrees_with_the_textbook_formula_from_metres_to_antipodes() {
    let cases = [
        (DINGHAI, SHENJIAMEN),
        (DINGHAI, GeoPoint::new(30.0197, 122.1068)),
        (DINGHAI, GeoPoint::new(30.72, 122.45)),
        (GeoPoint::new(0.0, 0.0), GeoPoint::new(0.0, 180.0)),
        (GeoPoint::new(-33.9, 18.4), GeoPoint::new(35.7, 139.7)),
    ];
    for (a, b) in cases {
        let (ours, book) = (haversine_m(a, b), textbook_haversine_m(a, b));
        assert!((ours - book).abs() <= 1e-6 * book.max(1.0), "{a:?} {b:?}: {ours} vs {book}");
    }
    assert_eq!(haversine_m(DINGHAI, DINGHAI), 0.0);
    let d = haversine_m(DINGHAI, SHENJIAMEN);
    assert!((19_800.0..20_100.0).contains(&d), "Dinghai–Shenjiamen is about 19.9 km, got {d}");
}

#[test]
fn the_short_range_asin_matches_libm() {
    for i in 0..=20_000 {
        let x = f64::from(i) * 1e-6;
        assert!((asin(x) - x.asin()).abs() <= 2.0 * f64::EPSILON * x, "{x}");
    }
    assert_eq!(asin(0.5), 0.5f64.asin());
}

#[test]
fn road_distance_and_eta_follow_the_defaults() {
    let p = DispatchParams::default();
    assert_eq!(p.road_m(1000.0), 1300.0);
    assert_eq!(p.eta(30_000.0), Duration::from_secs(3600));
    assert_eq!(p.eta(500.0), Duration::from_secs(60));
    assert!(p.validate().is_ok());
    assert!(DispatchParams { road_factor: 0.5, ..p }.validate().is_err());
    assert!(DispatchParams { reserve_pct: f64::NAN, ..p }.validate().is_err());
}

#[test]
fn a_free_charged_car_is_feasible_with_its_figures() {
    let p = DispatchParams::default();
    let f = check(&p, &car(), &order()).unwrap();
    let pickup = haversine_m(DINGHAI, order().pickup) * 1.3;
    let trip = haversine_m(order().pickup, SHENJIAMEN) * 1.3;
    assert_eq!((f.pickup_m, f.trip_m), (pickup, trip));
    assert!((f.needed_kwh - (pickup + trip) / 1000.0 * 0.15 * 1.15).abs() < 1e-9);
    assert!((f.left_kwh - (48.0 - f.needed_kwh)).abs() < 1e-9);
    assert_eq!(f.pickup_eta, p.eta(pickup));
}

#[test]
fn a_five_seat_car_carries_four_passengers_not_five() {
    let p = DispatchParams::default();
    let four = OrderFacts { passengers: 4, ..order() };
    let five = OrderFacts { passengers: 5, ..order() };
    assert!(check(&p, &car(), &four).is_ok());
    assert_eq!(check(&p, &car(), &five), Err(Infeasible::Seats));
    assert_eq!(check(&p, &CarFacts { seats: 0, ..car() }, &OrderFacts { passengers: 0, ..order() }).err(), None);
    assert_eq!(
        check(&p, &CarFacts { seats: 0, ..car() }, &OrderFacts { passengers: 1, ..order() }),
        Err(Infeasible::Seats)
    );
}

#[test]
fn offline_busy_and_reserved_cars_are_infeasible() {
    let p = DispatchParams::default();
    assert_eq!(check(&p, &CarFacts { online: false, ..car() }, &order()), Err(Infeasible::Offline));
    assert_eq!(check(&p, &CarFacts { idle: false, ..car() }, &order()), Err(Infeasible::NotIdle));
    assert_eq!(check(&p, &CarFacts { reserved: true, ..car() }, &order()), Err(Infeasible::Reserved));
}

#[test]
fn rules_apply_in_order_from_seats_to_charge() {
    let p = DispatchParams::default();
    let hopeless = CarFacts { seats: 2, online: false, idle: false, reserved: true, soc_pct: Some(0.0), ..car() };
    assert_eq!(check(&p, &hopeless, &order()), Err(Infeasible::Seats));
    assert_eq!(check(&p, &CarFacts { seats: 5, ..hopeless }, &order()), Err(Infeasible::Offline));
    assert_eq!(check(&p, &CarFacts { seats: 5, online: true, ..hopeless }, &order()), Err(Infeasible::NotIdle));
    let reserved = CarFacts { seats: 5, online: true, idle: true, ..hopeless };
    assert_eq!(check(&p, &reserved, &order()), Err(Infeasible::Reserved));
    assert_eq!(check(&p, &CarFacts { reserved: false, ..reserved }, &order()), Err(Infeasible::Charge));
}

#[test]
fn charge_rule_holds_exactly_at_its_boundary() {
    // 50 km at 20 kWh/100 km × 1.25 = 12.5 kWh; 50 kWh battery, 20 % reserve = 10 kWh:
    // 45 % (22.5 kWh) leaves exactly the reserve. These numbers are exact in binary.
    let p = DispatchParams { energy_margin: 1.25, ..DispatchParams::default() };
    let c = CarFacts { battery_kwh: 50.0, consumption_kwh_per_100km: 20.0, soc_pct: Some(45.0), ..car() };
    let f = check_charge(&p, &c, 20_000.0, 30_000.0).unwrap();
    assert_eq!((f.needed_kwh, f.left_kwh), (12.5, 10.0));
    let just_below = CarFacts { soc_pct: Some(44.999_999), ..c };
    assert_eq!(check_charge(&p, &just_below, 20_000.0, 30_000.0), Err(Infeasible::Charge));
    assert_eq!(check_charge(&p, &c, 20_000.0, 30_000.001), Err(Infeasible::Charge));
    assert!(check_charge(&p, &c, 20_000.0, 29_999.999).is_ok());
}

#[test]
fn charge_rule_uses_the_documented_margin_and_reserve_by_default() {
    // 100 km at 15 kWh/100 km × 1.15 = 17.25 kWh; 60 kWh battery with 20 % reserve = 12 kWh:
    // 29.25 kWh = 48.75 % is the least that works.
    let p = DispatchParams::default();
    let c = CarFacts { battery_kwh: 60.0, consumption_kwh_per_100km: 15.0, ..car() };
    assert!(check_charge(&p, &CarFacts { soc_pct: Some(48.76), ..c }, 40_000.0, 60_000.0).is_ok());
    assert_eq!(check_charge(&p, &CarFacts { soc_pct: Some(48.74), ..c }, 40_000.0, 60_000.0), Err(Infeasible::Charge));
}

#[test]
fn the_budget_shortcut_gives_the_exact_rule_answer() {
    let p = DispatchParams::default();
    let mut seed = 7u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..20_000 {
        let c = CarFacts {
            soc_pct: Some(100.0 * rnd()),
            battery_kwh: 20.0 + 80.0 * rnd(),
            consumption_kwh_per_100km: 10.0 + 15.0 * rnd(),
            ..car()
        };
        let b = ChargeBudget::new(&p, &c).unwrap();
        let range = (b.sure_m + b.never_m) / 2.0;
        // Around the boundary and anywhere.
        for pickup in [range / 2.0, range * rnd(), 1e5 * rnd(), range / 2.0 * (1.0 + 1e-12)] {
            let trip = range - pickup;
            for t in [trip, trip + 1e-9, trip - 1e-9, trip * (1.0 + 1e-15), trip * rnd() * 2.0] {
                assert_eq!(b.covers(&p, pickup, t), charge_left_kwh(&p, &c, pickup, t).is_some(), "{c:?} {pickup} {t}");
            }
        }
    }
    let c = CarFacts { battery_kwh: 50.0, consumption_kwh_per_100km: 20.0, soc_pct: Some(45.0), ..car() };
    let p = DispatchParams { energy_margin: 1.25, ..p };
    let b = ChargeBudget::new(&p, &c).unwrap();
    assert!(b.covers(&p, 20_000.0, 30_000.0));
    assert!(!b.covers(&p, 20_000.0, 30_000.001));
    let nan = CarFacts { battery_kwh: f64::NAN, ..c };
    assert!(!ChargeBudget::new(&p, &nan).unwrap().covers(&p, 1.0, 1.0));
    let free = CarFacts { consumption_kwh_per_100km: 0.0, ..c };
    assert!(ChargeBudget::new(&p, &free).unwrap().covers(&p, 1e9, 1.0));
}

#[test]
fn unknown_or_nonsense_charge_never_passes() {
    let p = DispatchParams::default();
    assert_eq!(check(&p, &CarFacts { soc_pct: None, ..car() }, &order()), Err(Infeasible::Charge));
    assert_eq!(check(&p, &CarFacts { soc_pct: Some(f64::NAN), ..car() }, &order()), Err(Infeasible::Charge));
    assert_eq!(check(&p, &CarFacts { battery_kwh: f64::NAN, ..car() }, &order()), Err(Infeasible::Charge));
}

#[test]
fn windows_overlap_only_when_they_share_an_instant() {
    let t = |h: i64| DateTime::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap();
    let a = TimeWindow::new(t(0), t(2));
    assert!(a.overlaps(&TimeWindow::new(t(1), t(3))));
    assert!(a.overlaps(&TimeWindow::new(t(-1), t(5))));
    assert!(!a.overlaps(&TimeWindow::new(t(2), t(3))), "back to back is no overlap");
    assert!(!a.overlaps(&TimeWindow::new(t(-2), t(0))));
}

#[test]
fn codes_are_stable_snake_case() {
    assert_eq!(Infeasible::NotIdle.code(), "not_idle");
    assert_eq!(WaitReason::NoCarWithEnoughCharge.code(), "no_car_with_enough_charge");
    for r in [WaitReason::NoCarOnline, WaitReason::AllCarsReserved, WaitReason::ExcludedCarsOnly] {
        assert_eq!(WaitReason::parse(r.code()), Some(r));
    }
    assert_eq!(WaitReason::parse("nope"), None);
}

#[test]
fn the_wait_reason_comes_from_the_car_that_got_furthest() {
    let mut t = WaitTally::new();
    assert_eq!(t.reason(), WaitReason::NoCarOnline);
    t.failed(Infeasible::Seats);
    assert_eq!(t.reason(), WaitReason::NoCarWithEnoughSeats);
    t.failed(Infeasible::Offline);
    assert_eq!(t.reason(), WaitReason::NoCarOnline);
    t.failed(Infeasible::Charge);
    t.failed(Infeasible::Reserved);
    assert_eq!(t.reason(), WaitReason::NoCarWithEnoughCharge);
    assert!(!t.any_feasible());
    t.record(&Ok::<(), _>(()), true);
    assert_eq!(t.reason(), WaitReason::ExcludedCarsOnly);
    t.record(&Err::<(), _>(Infeasible::Seats), false);
    t.record(&Ok::<(), _>(()), false);
    assert!(t.any_feasible());
    assert_eq!(t.reason(), WaitReason::TakenByOtherOrders);
}
