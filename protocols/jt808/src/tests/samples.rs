//! Location reports as samples.

use chrono::{TimeZone, Utc};
use fleet_domain::{SampleSource, Vin};

use super::super::*;
use super::*;

fn vin() -> Vin {
    Vin::parse("LSJA24U66NS000001").unwrap()
}

fn location(body: &[u8]) -> Location {
    match decode_message(&frame_2013(id::LOCATION, 1, body)).expect("decodes").body {
        Body::Location(l) => l,
        other => panic!("not a location: {other:?}"),
    }
}

#[test]
fn turns_a_location_report_into_a_sample() {
    let s = location_sample(&location(LOCATION), &vin()).unwrap();
    assert_eq!((s.vin.clone(), s.source), (vin(), SampleSource::Jt808));
    // 08:30:15 Beijing time is 00:30:15 UTC.
    assert_eq!(s.ts, Utc.with_ymd_and_hms(2025, 3, 1, 0, 30, 15).unwrap());
    assert_eq!((s.lat, s.lon, s.position_valid), (30.0165, 122.1068, true));
    assert_eq!((s.speed_kmh, s.heading_deg, s.odometer_km), (Some(42.5), Some(90.0), Some(12_345.6)));
    assert_eq!(s.ignition, Some(true));
    assert_eq!((s.soc_pct, s.charging, s.battery_voltage_v, s.range_km), (None, None, None, None));
    // The report's body is kept whole (its additional items included) and reads back the same.
    assert_eq!(s.frame.as_deref(), Some(LOCATION));
    assert_eq!(Location::from_body(s.frame.as_deref().unwrap()).unwrap(), location(LOCATION));
}

#[test]
fn keeps_a_location_without_a_fix_but_marks_its_position_invalid() {
    let s = location_sample(&location(&location_with_status(0b0001)), &vin()).unwrap();
    assert!(!s.position_valid);
    assert_eq!((s.lat, s.lon, s.ignition), (30.0165, 122.1068, Some(true)));
}

#[test]
fn signs_a_southern_western_position() {
    let s = location_sample(&location(&location_with_status(0b1110)), &vin()).unwrap();
    assert_eq!((s.lat, s.lon, s.position_valid, s.ignition), (-30.0165, -122.1068, true, Some(false)));
}

#[test]
fn refuses_a_latitude_beyond_90_or_a_longitude_beyond_180() {
    let mut body = LOCATION.to_vec();
    body[8..12].copy_from_slice(&91_000_000u32.to_be_bytes());
    assert_eq!(location_sample(&location(&body), &vin()).unwrap_err().field, "lat");
    let mut body = LOCATION.to_vec();
    body[12..16].copy_from_slice(&181_000_000u32.to_be_bytes());
    assert_eq!(location_sample(&location(&body), &vin()).unwrap_err().field, "lon");
}

#[test]
fn refuses_a_sample_with_a_value_out_of_range() {
    let mut body = LOCATION.to_vec();
    body[18..20].copy_from_slice(&4000u16.to_be_bytes()); // 400.0 km/h
    assert_eq!(location_sample(&location(&body), &vin()).unwrap_err().field, "speed_kmh");
}

#[test]
fn gives_a_sample_for_every_location_of_a_batch() {
    let mut body = vec![0x00, 0x02, 0x01];
    for item in [LOCATION.to_vec(), location_with_status(0b0000)] {
        body.extend_from_slice(&(item.len() as u16).to_be_bytes());
        body.extend_from_slice(&item);
    }
    let Body::LocationBatch(batch) = decode_message(&frame_2019(id::LOCATION_BATCH, 1, &body)).unwrap().body else {
        panic!("a batch")
    };
    let samples: Vec<_> = batch.locations.iter().map(|l| location_sample(l, &vin()).unwrap()).collect();
    assert_eq!(samples.iter().map(|s| s.position_valid).collect::<Vec<_>>(), [true, false]);
}

#[test]
fn writes_a_sample_as_the_location_it_came_from() {
    let sent = location(LOCATION);
    let s = location_sample(&sent, &vin()).unwrap();
    let mut back = sample_location(&s);
    assert_eq!(back.status, sent.status);
    assert_eq!((back.latitude_e6, back.longitude_e6, back.speed, back.direction), (30_016_500, 122_106_800, 425, 90));
    assert_eq!((back.time, back.mileage), (sent.time, sent.mileage));
    // What a sample does not carry: altitude and the other items.
    back.altitude_m = sent.altitude_m;
    back.extras = sent.extras.clone();
    assert_eq!(back, sent);
}
