use serde_json::json;

use super::*;
use crate::alarm::AlarmKind;
use crate::{SampleSource, VehicleFile, Vin};

fn vin() -> Vin {
    Vin::parse("LSJA24U66NS000001").unwrap()
}

/// A square around 舟山市行政中心 about 220 m a side.
fn square() -> Value {
    json!({"type": "Polygon", "coordinates": [[[122.206, 29.985], [122.208, 29.985], [122.208, 29.987], [122.206, 29.987], [122.206, 29.985]]]})
}

fn fence(id: i64, kind: FenceKind, geometry: Value, radius_m: Option<f64>) -> (Geofence, Shape) {
    let shape = shape(&geometry, radius_m).unwrap();
    (Geofence { id, name: format!("f{id}"), kind, unit_id: None, vin: None, geometry, radius_m }, shape)
}

/// A sample at Beijing time `hh:mm` on Tuesday 2026-11-24.
fn at(hh: u32, mm: u32, lat: f64, lon: f64) -> Sample {
    let ts = DateTime::parse_from_rfc3339(&format!("2026-11-24T{hh:02}:{mm:02}:00+08:00")).unwrap().with_timezone(&Utc);
    Sample::at(vin(), ts, lat, lon, SampleSource::Json)
}

#[test]
fn geometry_must_be_a_closed_polygon_or_a_point_with_a_radius() {
    assert!(matches!(shape(&square(), None), Ok(Shape::Polygon(_))));
    assert!(matches!(
        shape(&json!({"type": "Point", "coordinates": [122.1, 30.0]}), Some(500.0)),
        Ok(Shape::Circle { .. })
    ));
    let open =
        json!({"type": "Polygon", "coordinates": [[[122.0, 30.0], [122.1, 30.0], [122.1, 30.1], [122.0, 30.1]]]});
    let cases = [
        (open, None, "not closed"),
        (
            json!({"type": "Polygon", "coordinates": [[[122.0, 30.0], [122.1, 30.0], [122.0, 30.0]]]}),
            None,
            "at least 4",
        ),
        (
            json!({"type": "Polygon", "coordinates": [[[190.0, 30.0], [122.1, 30.0], [122.1, 30.1], [190.0, 30.0]]]}),
            None,
            "outside",
        ),
        (json!({"type": "Polygon", "coordinates": []}), None, "outer ring"),
        (json!({"type": "Polygon", "coordinates": [[[122.0, "x"]]]}), None, "position"),
        (json!({"type": "Point", "coordinates": [122.1, 30.0]}), None, "radius_m"),
        (json!({"type": "Point", "coordinates": [122.1, 30.0]}), Some(0.0), "radius_m"),
        (square(), Some(10.0), "only a Point"),
        (json!({"type": "LineString", "coordinates": [[122.0, 30.0], [122.1, 30.0]]}), None, "LineString"),
        (json!({"coordinates": []}), None, "expected GeoJSON"),
        (json!("not geojson"), None, "expected GeoJSON"),
    ];
    for (g, r, says) in cases {
        let e = shape(&g, r).unwrap_err();
        assert!(e.to_string().contains(says), "{g}: {e}");
    }
}

#[test]
fn inside_and_how_far_outside() {
    let s = shape(&square(), None).unwrap();
    assert!(s.contains(GeoPoint::new(29.986, 122.207)));
    assert!(!s.contains(GeoPoint::new(29.9865, 122.2085)));
    assert_eq!(s.outside_m(GeoPoint::new(29.986, 122.207)), 0.0);
    // 0.0005° of longitude east of the edge at 29.986° N is about 48 m.
    let d = s.outside_m(GeoPoint::new(29.986, 122.2085));
    assert!((d - 48.2).abs() < 1.0, "{d}");
    // A hole is outside.
    let holed = shape(
        &json!({"type": "Polygon", "coordinates": [
            [[122.0, 30.0], [122.1, 30.0], [122.1, 30.1], [122.0, 30.1], [122.0, 30.0]],
            [[122.04, 30.04], [122.06, 30.04], [122.06, 30.06], [122.04, 30.06], [122.04, 30.04]]]}),
        None,
    )
    .unwrap();
    assert!(holed.contains(GeoPoint::new(30.02, 122.02)));
    assert!(!holed.contains(GeoPoint::new(30.05, 122.05)));
    let circle = shape(&json!({"type": "Point", "coordinates": [122.1, 30.0]}), Some(1000.0)).unwrap();
    assert!(circle.contains(GeoPoint::new(30.005, 122.1)));
    let d = circle.outside_m(GeoPoint::new(30.01, 122.1));
    assert!((d - 112.0).abs() < 2.0, "{d}");
}

#[test]
fn a_fence_applies_to_its_car_its_units_cars_or_the_fleet() {
    let car = |unit: Option<&str>| Vehicle {
        vin: vin(),
        plate: "浙LD12345".into(),
        model: "m".into(),
        seats: 5,
        battery_kwh: 60.0,
        consumption_kwh_per_100km: 15.0,
        unit_id: unit.map(str::to_owned),
        terminal_phone: None,
        file: VehicleFile::default(),
        retired: false,
    };
    let (mut f, _) = fence(1, FenceKind::Zone, square(), None);
    assert!(f.applies_to(&car(None)));
    f.unit_id = Some("u1".into());
    assert!(f.applies_to(&car(Some("u1"))) && !f.applies_to(&car(Some("u2"))) && !f.applies_to(&car(None)));
    f.vin = Some("LSJA24U66NS000009".into());
    assert!(!f.applies_to(&car(Some("u1"))), "a fence naming another car");
    f.vin = Some(vin().to_string());
    assert!(f.applies_to(&car(Some("u2"))));
}

#[test]
fn working_hours_follow_weekdays_holidays_and_make_up_days() {
    let h = WorkingHours::default();
    h.validate().unwrap();
    assert!(h.is_working(at(7, 0, 0.0, 0.0).ts) && h.is_working(at(19, 59, 0.0, 0.0).ts));
    assert!(!h.is_working(at(6, 59, 0.0, 0.0).ts) && !h.is_working(at(20, 0, 0.0, 0.0).ts));
    let saturday = DateTime::parse_from_rfc3339("2026-11-28T10:00:00+08:00").unwrap().with_timezone(&Utc);
    assert!(!h.is_working(saturday));
    let mut h2 = h.clone();
    h2.holidays.push("2026-11-24".parse().unwrap());
    h2.workdays.push("2026-11-28".parse().unwrap());
    assert!(!h2.is_working(at(10, 0, 0.0, 0.0).ts) && h2.is_working(saturday));
    for bad in [
        WorkingHours { weekdays: vec![0], ..h.clone() },
        WorkingHours { start: "7:00".into(), ..h.clone() },
        WorkingHours { start: "20:00".into(), end: "07:00".into(), ..h.clone() },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn crossings_raise_once_per_change_and_parking_only_after_hours() {
    let fences = vec![
        fence(1, FenceKind::Parking, square(), None),
        fence(2, FenceKind::Zone, json!({"type": "Point", "coordinates": [122.30, 29.95]}), Some(500.0)),
        fence(3, FenceKind::ServiceArea, json!({"type": "Point", "coordinates": [122.2, 30.0]}), Some(20_000.0)),
    ];
    let hours = WorkingHours::default();
    let home = (29.986, 122.207);
    let just_out = (29.986, 122.2084); // ~38 m outside: still parked
    let away = (29.99, 122.22);
    let zone = (29.95, 122.30);
    let far = (30.3, 122.2); // beyond the service area
    let samples = vec![
        at(6, 0, home.0, home.1),
        at(6, 5, just_out.0, just_out.1),
        at(6, 10, away.0, away.1), // left after hours: alarm
        at(6, 20, zone.0, zone.1), // zone entered
        at(6, 30, away.0, away.1), // zone exited
        at(6, 40, home.0, home.1), // back: nothing
        at(9, 0, away.0, away.1),  // left in working hours: nothing
        at(10, 0, far.0, far.1),   // left the service area
        at(10, 5, far.0, far.1),   // still out: nothing more
        at(11, 0, home.0, home.1),
        at(21, 0, away.0, away.1), // after hours again: a second departure
    ];
    let got: Vec<(AlarmKind, i64, u32)> = crossings(&samples, &fences, &hours)
        .iter()
        .map(|c| (c.alarm, c.fence_id, c.ts.with_timezone(&china_offset()).hour()))
        .collect();
    assert_eq!(
        got,
        vec![
            (AlarmKind::LeftParkingOffHours, 1, 6),
            (AlarmKind::ZoneEntered, 2, 6),
            (AlarmKind::ZoneExited, 2, 6),
            (AlarmKind::LeftServiceArea, 3, 10),
            (AlarmKind::LeftParkingOffHours, 1, 21),
        ]
    );
    // The first sample only sets the state: starting outside raises nothing.
    assert!(crossings(&samples[7..9], &fences, &hours).is_empty());
    // A sample without a valid fix is passed over.
    let mut blind = samples[..3].to_vec();
    blind[2].position_valid = false;
    assert!(crossings(&blind, &fences, &hours).is_empty());
}
