//! A report as a [`Sample`]: whole-vehicle data and position become the same fields as the
//! JSON format. The other blocks stay in the frame, which the caller keeps with the sample
//! (`Sample::frame`); [`blocks_json`](crate::blocks_json) decodes them from it on demand.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use fleet_domain::{InvalidSample, Sample, Vin};

use super::gcj02;
use super::report::{CoordinateSystem, Position, Report};
use super::{Body, Edition, Frame};

/// Report times are Beijing time (GMT+8), whatever the vehicle's location.
const REPORT_UTC_OFFSET_HOURS: i64 = 8;

/// For a report frame: the Sample (source Gbt2016/Gbt2025): ts from report time (GMT+8 ->
/// UTC), whole-vehicle fields, position (GCJ-02 converted to WGS-84; an invalid fix gives
/// `position_valid = false`), heading and range absent, `battery_temp_c` the hottest probe,
/// `frame` absent (the caller holds the bytes and keeps them). Sentinel values are absent
/// fields. A report without a position (or with the coordinates flagged abnormal/invalid) is
/// an invalid sample, as is one that fails [`Sample::validate`].
///
/// Returns None for non-report frames. `vin` is the topic's VIN, which the caller has matched
/// against the frame's.
pub fn report_sample(frame: &Frame, vin: &Vin) -> Option<Result<Sample, InvalidSample>> {
    match &frame.body {
        Body::Report(report) => Some(sample(frame.edition, report, vin)),
        Body::Login(_) | Body::Logout(_) | Body::Empty => None,
    }
}

/// The UTC instant of a report time as sent (GMT+8).
pub(super) fn report_time_utc(time: NaiveDateTime) -> DateTime<Utc> {
    (time - Duration::hours(REPORT_UTC_OFFSET_HOURS)).and_utc()
}

fn sample(edition: Edition, report: &Report, vin: &Vin) -> Result<Sample, InvalidSample> {
    let position =
        report.position.as_ref().ok_or_else(|| InvalidSample::new("lat", "the report has no position block"))?;
    let (lat, lon) = wgs84(position)?;
    let mut sample = Sample::at(vin.clone(), report_time_utc(report.time), lat, lon, edition.source());
    sample.position_valid = position.fix_valid;
    if let Some(v) = &report.vehicle {
        sample.speed_kmh = v.speed_kmh;
        sample.odometer_km = v.odometer_km;
        sample.battery_voltage_v = v.voltage_v;
        sample.battery_current_a = v.current_a;
        sample.soc_pct = v.soc_pct.map(f64::from);
        sample.charging = v.charging_status.and_then(|s| match s {
            1 | 2 => Some(true),
            3 | 4 => Some(false),
            _ => None,
        });
        sample.ignition = v.vehicle_status.and_then(|s| match s {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        });
    }
    sample.battery_temp_c = hottest_probe(report).map(f64::from);
    sample.validate()?;
    Ok(sample)
}

/// Signed WGS-84 coordinates of a position block.
fn wgs84(position: &Position) -> Result<(f64, f64), InvalidSample> {
    let lat = position.latitude.ok_or_else(|| InvalidSample::new("lat", "latitude reported abnormal or invalid"))?;
    let lon = position.longitude.ok_or_else(|| InvalidSample::new("lon", "longitude reported abnormal or invalid"))?;
    let lat = if position.south { -lat } else { lat };
    let lon = if position.west { -lon } else { lon };
    Ok(match position.coordinate_system {
        Some(CoordinateSystem::Gcj02) => gcj02::to_wgs84(lat, lon),
        // 2016 states no datum and terminals send WGS-84; "other" datums we cannot convert.
        Some(CoordinateSystem::Wgs84 | CoordinateSystem::Other(_)) | None => (lat, lon),
    })
}

/// The battery's temperature: its hottest probe, or failing that the extremes block's maximum.
fn hottest_probe(report: &Report) -> Option<i16> {
    report
        .temperatures
        .iter()
        .flat_map(|t| t.probes_c.iter().flatten().copied())
        .max()
        .or_else(|| report.extremes.as_ref().and_then(|e| e.max_temp_c))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use fleet_domain::SampleSource;

    use super::super::gcj02::distance_m;
    use super::super::tests::*;
    use super::super::{decode_frame, encode_heartbeat};
    use super::*;

    fn sample_of(frame: &[u8]) -> Result<Sample, InvalidSample> {
        report_sample(&decode_frame(frame).expect("frame decodes"), &vin()).expect("a report")
    }

    #[test]
    fn turns_a_2016_report_into_a_sample() {
        let s = sample_of(&report_2016(&[
            VEHICLE_2016,
            MOTORS_2016,
            POSITION_2016,
            EXTREMES_2016,
            ALARM_2016,
            CELLS_2016,
            TEMPS_2016,
            VENDOR,
        ]))
        .unwrap();
        assert_eq!(s.vin, vin());
        assert_eq!(s.source, SampleSource::Gbt2016);
        // 08:30:15 Beijing time is 00:30:15 UTC.
        assert_eq!(s.ts, Utc.with_ymd_and_hms(2025, 3, 1, 0, 30, 15).unwrap());
        assert_eq!((s.lat, s.lon, s.position_valid), (30.0165, 122.1068, true));
        assert_eq!((s.speed_kmh, s.odometer_km, s.soc_pct), (Some(42.5), Some(12345.6), Some(77.0)));
        assert_eq!((s.battery_voltage_v, s.battery_current_a), (Some(355.2), Some(10.0)));
        assert_eq!((s.charging, s.ignition), (Some(false), Some(true)));
        assert_eq!((s.heading_deg, s.range_km), (None, None));
        assert_eq!(s.battery_temp_c, Some(28.0));
        assert_eq!(s.frame, None, "the caller, who holds the bytes, keeps the frame");
    }

    #[test]
    fn turns_a_2025_report_into_a_sample() {
        let position = position_2025(0x01, 122_106_800, 30_016_500);
        let s = sample_of(&report_2025(&[VEHICLE_2025, &position, ALARM_2025, TEMPS_2025, SIGNATURE_2025])).unwrap();
        assert_eq!(s.source, SampleSource::Gbt2025);
        assert_eq!(s.ts, Utc.with_ymd_and_hms(2025, 11, 2, 6, 0, 0).unwrap());
        assert_eq!((s.lat, s.lon), (30.0165, 122.1068));
        assert_eq!((s.battery_current_a, s.charging, s.ignition), (Some(-50.5), Some(true), Some(true)));
        assert_eq!(s.battery_temp_c, Some(22.0));
    }

    #[test]
    fn converts_a_gcj02_position_to_wgs84() {
        let wgs = (30.016_5, 122.106_8);
        let (gcj_lat, gcj_lon) = gcj02::from_wgs84(wgs.0, wgs.1);
        let micro = |deg: f64| (deg * 1e6).round() as u32;
        let position = position_2025(0x02, micro(gcj_lon), micro(gcj_lat));
        let s = sample_of(&report_2025(&[&position])).unwrap();
        assert!(distance_m(wgs, (s.lat, s.lon)) < 1.0, "{:?}", (s.lat, s.lon));
        // The same bytes declared WGS-84 are taken as they are, a few hundred metres away.
        let position = position_2025(0x01, micro(gcj_lon), micro(gcj_lat));
        let s = sample_of(&report_2025(&[&position])).unwrap();
        assert!(distance_m(wgs, (s.lat, s.lon)) > 100.0);
    }

    #[test]
    fn signs_southern_and_western_coordinates() {
        // Status 0b110: south and west; 70.5°, 33.25° (Santiago de Chile's neighbourhood).
        let position = [0x05, 0x06, 0x04, 0x33, 0xBE, 0xA0, 0x01, 0xFB, 0x5A, 0xD0];
        let s = sample_of(&report_2016(&[&position])).unwrap();
        assert_eq!((s.lat, s.lon), (-33.25, -70.5));
        let s =
            sample_of(&report_2025(&[&[0x05, 0x04, 0x01, 0x04, 0x33, 0xBE, 0xA0, 0x01, 0xFB, 0x5A, 0xD0]])).unwrap();
        assert_eq!((s.lat, s.lon), (33.25, -70.5));
    }

    #[test]
    fn keeps_an_invalid_fix_but_marks_it() {
        let mut position = POSITION_2016.to_vec();
        position[1] = 0x01;
        let s = sample_of(&report_2016(&[&position])).unwrap();
        assert!(!s.position_valid);
        assert_eq!((s.lat, s.lon), (30.0165, 122.1068));
    }

    #[test]
    fn rejects_a_report_without_a_usable_position() {
        assert_eq!(sample_of(&report_2016(&[VEHICLE_2016])).unwrap_err().field, "lat");
        let position = [0x05, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE];
        assert_eq!(sample_of(&report_2016(&[&position])).unwrap_err().field, "lat");
    }

    #[test]
    fn rejects_a_sample_with_a_value_out_of_range() {
        let mut vehicle = VEHICLE_2016.to_vec();
        vehicle[4..6].copy_from_slice(&5000u16.to_be_bytes()); // 500.0 km/h
        assert_eq!(sample_of(&report_2016(&[&vehicle, POSITION_2016])).unwrap_err().field, "speed_kmh");
    }

    #[test]
    fn gives_no_sample_for_session_frames() {
        let login = decode_frame(&encode_login(Edition::V2016, &vin(), at(2025, 3, 1, 8, 0, 0), 1)).unwrap();
        assert_eq!(report_sample(&login, &vin()), None);
        let heartbeat = decode_frame(&encode_heartbeat(Edition::V2025, &vin())).unwrap();
        assert_eq!(report_sample(&heartbeat, &vin()), None);
    }
}
