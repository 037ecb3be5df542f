//! Reports built byte by byte from the standard's tables (not with our encoder), and the
//! helpers the other modules' tests share.

use chrono::{NaiveDate, NaiveDateTime};
use fleet_domain::{DeadLetterReason, Sample, Vin};

use super::*;

pub(super) const VIN: &[u8; 17] = b"LSJA24U66NS000001";

pub(super) fn vin() -> Vin {
    Vin::from_bytes(VIN).unwrap()
}

pub(super) fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, s).unwrap()
}

/// The readings the encoder's tests send with `sample`: two cells sharing the pack voltage,
/// the battery temperature at the one probe, the motor off.
pub(super) fn readings(sample: &Sample) -> Readings {
    let cell = sample.battery_voltage_v.map(|v| (v * 500.0).round()).filter(|mv| (0.0..=65_000.0).contains(mv));
    let cell = cell.map(|mv| mv as u16);
    Readings {
        cell_mv: vec![cell, cell],
        probe_c: vec![sample.battery_temp_c.map(|t| t.round() as i16)],
        motor: MotorReadings { status: 3, controller_temp_c: 40.0, speed_rpm: 0.0, torque_nm: 0.0, temp_c: 40.0 },
        gear: 15,
        insulation_kohm: 5_000,
        accelerator_pct: 0,
        brake_pct: 0,
    }
}

/// A report frame of `sample` with [`readings`].
pub(super) fn encode_sample(edition: Edition, reissue: bool, sample: &Sample) -> Vec<u8> {
    encode_report(edition, reissue, sample, &readings(sample))
}

/// A login frame with one subsystem of one 24-character code.
pub(super) fn encode_login(edition: Edition, vin: &Vin, time: NaiveDateTime, serial: u16) -> Vec<u8> {
    let login = Login {
        time,
        serial,
        iccid: "89860012345678901234".to_owned(),
        subsystems: vec![vec![format!("BAT{vin}0001")]],
    };
    super::encode_login(edition, vin, &login)
}

/// A frame written out field by field: marker twice, command, response flag, VIN,
/// encryption, WORD length, data unit, then the XOR of everything after the marker.
pub(super) fn hand_frame(marker: u8, command: u8, response: u8, encryption: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![marker, marker, command, response];
    f.extend_from_slice(VIN);
    f.push(encryption);
    f.extend_from_slice(&(data.len() as u16).to_be_bytes());
    f.extend_from_slice(data);
    let bcc = f[2..].iter().fold(0u8, |acc, b| acc ^ b);
    f.push(bcc);
    f
}

/// A 2016 real-time report frame (command 0x02) from a time and blocks.
pub(super) fn report_2016(blocks: &[&[u8]]) -> Vec<u8> {
    hand_frame(b'#', 0x02, 0xFE, 0x01, &[&TIME_2016[..], &blocks.concat()].concat())
}

/// A 2025 real-time report frame (command 0x02) from a time and blocks.
pub(super) fn report_2025(blocks: &[&[u8]]) -> Vec<u8> {
    hand_frame(b'$', 0x02, 0xFE, 0x01, &[&TIME_2025[..], &blocks.concat()].concat())
}

/// 2025-03-01 08:30:15 GMT+8.
pub(super) const TIME_2016: [u8; 6] = [25, 3, 1, 8, 30, 15];
/// 2025-11-02 14:00:00 GMT+8.
pub(super) const TIME_2025: [u8; 6] = [25, 11, 2, 14, 0, 0];

/// Started, not charging, EV, 42.5 km/h, 12345.6 km, 355.2 V, +10.0 A, 77 %, DC-DC on,
/// gear D with driving force, 5000 kΩ, accelerator 18 %, brake 0 %.
pub(super) const VEHICLE_2016: &[u8] = &[
    0x01, 0x01, 0x03, 0x01, 0x01, 0xA9, 0x00, 0x01, 0xE2, 0x40, 0x0D, 0xE0, 0x27, 0x74, 0x4D, 0x01, 0x2E, 0x13, 0x88,
    0x12, 0x00,
];
/// One motor: consuming, controller 45 °C, 3400 rpm, 120.5 N·m, 55 °C, 355.0 V, 9.0 A.
pub(super) const MOTORS_2016: &[u8] =
    &[0x02, 0x01, 0x01, 0x01, 0x55, 0x5B, 0x68, 0x52, 0xD5, 0x5F, 0x0D, 0xDE, 0x27, 0x6A];
/// Valid fix, N/E, 122.106800°E 30.016500°N (Dinghai, Zhoushan).
pub(super) const POSITION_2016: &[u8] = &[0x05, 0x00, 0x07, 0x47, 0x33, 0xB0, 0x01, 0xCA, 0x03, 0xF4];
/// Max cell 3.800 V (1/5), min 3.790 V (1/1), max 28 °C (1/1), min 26 °C (1/3).
pub(super) const EXTREMES_2016: &[u8] =
    &[0x06, 0x01, 0x05, 0x0E, 0xD8, 0x01, 0x01, 0x0E, 0xCE, 0x01, 0x01, 0x44, 0x01, 0x03, 0x42];
/// Level 1, "SOC low" (bit 4), one RESS fault code 0x00001234.
pub(super) const ALARM_2016: &[u8] =
    &[0x07, 0x01, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 0x12, 0x34, 0x00, 0x00, 0x00];
/// Subsystem 1: 355.2 V, 10.0 A, 4 cells from cell 1: 3.800, 3.795, invalid, 3.790 V.
pub(super) const CELLS_2016: &[u8] = &[
    0x08, 0x01, 0x01, 0x0D, 0xE0, 0x27, 0x74, 0x00, 0x04, 0x00, 0x01, 0x04, 0x0E, 0xD8, 0x0E, 0xD3, 0xFF, 0xFF, 0x0E,
    0xCE,
];
/// Subsystem 1: probes at 28 °C, 27 °C and abnormal.
pub(super) const TEMPS_2016: &[u8] = &[0x09, 0x01, 0x01, 0x00, 0x03, 0x44, 0x43, 0xFE];
/// A vendor block 0x80 of 3 bytes.
pub(super) const VENDOR: &[u8] = &[0x80, 0x00, 0x03, 0xAA, 0xBB, 0xCC];

/// Started, charging while parked, EV, 0 km/h, 1234.5 km, 400.0 V, −50.5 A (offset −3000 A),
/// 50 %, DC-DC on, gear P, insulation invalid.
pub(super) const VEHICLE_2025: &[u8] =
    &[0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x30, 0x39, 0x0F, 0xA0, 0x73, 0x37, 0x32, 0x01, 0x0F, 0xFF, 0xFF];
/// One motor: off, controller 25 °C, 0 rpm (offset −32000), 0 N·m (DWORD, offset −20000), 24 °C.
pub(super) const MOTORS_2025: &[u8] = &[0x02, 0x01, 0x01, 0x03, 0x41, 0x7D, 0x00, 0x00, 0x03, 0x0D, 0x40, 0x40];
/// Level 3, battery thermal event (bit 23), no fault codes, list: alarm 23 at level 3.
pub(super) const ALARM_2025: &[u8] = &[0x06, 0x03, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 23, 3];
/// Subsystem 1: 400.0 V, −50.5 A, 2 cells (WORD count): 3.333, 3.334 V.
pub(super) const CELLS_2025: &[u8] = &[0x07, 0x01, 0x01, 0x0F, 0xA0, 0x73, 0x37, 0x00, 0x02, 0x0D, 0x05, 0x0D, 0x06];
/// Subsystem 1: probes at 20 °C and 22 °C.
pub(super) const TEMPS_2025: &[u8] = &[0x08, 0x01, 0x01, 0x00, 0x02, 0x3C, 0x3E];
/// SM2, R = ab cd, S = ef.
pub(super) const SIGNATURE_2025: &[u8] = &[0xFF, 0x01, 0x00, 0x02, 0xAB, 0xCD, 0x00, 0x01, 0xEF];

/// A 2025 position block: valid fix, GCJ-02, at the given magnitudes in micro-degrees.
pub(super) fn position_2025(coordinate_system: u8, lon_micro: u32, lat_micro: u32) -> Vec<u8> {
    [&[0x05, 0x00, coordinate_system][..], &lon_micro.to_be_bytes(), &lat_micro.to_be_bytes()].concat()
}

fn report(frame: Result<Frame, FrameError>) -> Report {
    match frame.expect("frame decodes").body {
        Body::Report(report) => report,
        other => panic!("expected a report, got {other:?}"),
    }
}

#[test]
fn decodes_a_hand_built_2016_report_block_by_block() {
    let frame = decode_frame(&report_2016(&[
        VEHICLE_2016,
        MOTORS_2016,
        POSITION_2016,
        EXTREMES_2016,
        ALARM_2016,
        CELLS_2016,
        TEMPS_2016,
    ]))
    .unwrap();
    assert_eq!(frame.edition, Edition::V2016);
    assert_eq!(frame.command, Command::RealtimeReport);
    assert_eq!(frame.response, RESPONSE_COMMAND);
    assert_eq!(frame.vin, "LSJA24U66NS000001");
    let r = report(Ok(frame));
    assert_eq!(r.time, at(2025, 3, 1, 8, 30, 15));

    let v = r.vehicle.unwrap();
    assert_eq!((v.vehicle_status, v.charging_status, v.run_mode), (Some(1), Some(3), Some(1)));
    assert_eq!(v.speed_kmh, Some(42.5));
    assert_eq!(v.odometer_km, Some(12345.6));
    assert_eq!(v.voltage_v, Some(355.2));
    assert_eq!(v.current_a, Some(10.0));
    assert_eq!(v.soc_pct, Some(77));
    assert_eq!((v.dcdc_status, v.gear, v.insulation_kohm), (Some(1), 0x2E, Some(5000)));
    assert_eq!((v.accelerator_pct, v.brake_pct), (Some(18), Some(0)));

    let m = &r.motors[0];
    assert_eq!((m.seq, m.status, m.controller_temp_c, m.speed_rpm), (1, Some(1), Some(45), Some(3400)));
    assert_eq!((m.torque_nm, m.temp_c), (Some(120.5), Some(55)));
    assert_eq!((m.controller_voltage_v, m.controller_current_a), (Some(355.0), Some(9.0)));

    let p = r.position.unwrap();
    assert!(p.fix_valid && !p.south && !p.west);
    assert_eq!(p.coordinate_system, None);
    assert_eq!((p.longitude, p.latitude), (Some(122.1068), Some(30.0165)));

    let e = r.extremes.unwrap();
    assert_eq!((e.max_voltage_cell, e.max_cell_voltage_v, e.min_cell_voltage_v), (Some(5), Some(3.8), Some(3.79)));
    assert_eq!((e.max_temp_c, e.min_temp_probe, e.min_temp_c), (Some(28), Some(3), Some(26)));

    let a = r.alarm.unwrap();
    assert_eq!((a.max_level, a.flags, a.ress_faults), (Some(1), 1 << 4, vec![0x1234]));
    assert!(a.motor_faults.is_empty() && a.other_faults.is_empty() && a.warnings.is_empty());

    let c = &r.cell_voltages[0];
    assert_eq!((c.subsystem, c.voltage_v, c.current_a), (1, Some(355.2), Some(10.0)));
    assert_eq!((c.total_cells, c.first_cell), (Some(4), Some(1)));
    assert_eq!(c.cells_v, vec![Some(3.8), Some(3.795), None, Some(3.79)]);

    assert_eq!(r.temperatures[0].probes_c, vec![Some(28), Some(27), None]);
    assert_eq!(r.signature, None);
    assert!(r.skipped_vendor_blocks.is_empty());
}

#[test]
fn decodes_a_hand_built_2025_report_with_its_shifted_block_numbers() {
    let position = position_2025(0x01, 122_106_800, 30_016_500);
    let frame = decode_frame(&report_2025(&[
        VEHICLE_2025,
        MOTORS_2025,
        &position,
        ALARM_2025,
        CELLS_2025,
        TEMPS_2025,
        SIGNATURE_2025,
    ]))
    .unwrap();
    assert_eq!(frame.edition, Edition::V2025);
    let r = report(Ok(frame));
    assert_eq!(r.time, at(2025, 11, 2, 14, 0, 0));

    let v = r.vehicle.unwrap();
    assert_eq!((v.vehicle_status, v.charging_status, v.speed_kmh), (Some(1), Some(1), Some(0.0)));
    assert_eq!((v.odometer_km, v.voltage_v, v.current_a), (Some(1234.5), Some(400.0), Some(-50.5)));
    assert_eq!((v.soc_pct, v.gear, v.insulation_kohm), (Some(50), 0x0F, None));
    assert_eq!((v.accelerator_pct, v.brake_pct), (None, None));

    let m = &r.motors[0];
    assert_eq!(
        (m.status, m.controller_temp_c, m.speed_rpm, m.torque_nm, m.temp_c),
        (Some(3), Some(25), Some(0), Some(0.0), Some(24))
    );
    assert_eq!((m.controller_voltage_v, m.controller_current_a), (None, None));

    assert_eq!(r.position.unwrap().coordinate_system, Some(CoordinateSystem::Wgs84));
    assert_eq!(r.extremes, None);
    let a = r.alarm.unwrap();
    assert_eq!((a.max_level, a.flags), (Some(3), 1 << 23));
    assert_eq!(a.warnings, vec![Warning { id: 23, level: 3 }]);
    let c = &r.cell_voltages[0];
    assert_eq!((c.voltage_v, c.current_a, c.total_cells), (Some(400.0), Some(-50.5), None));
    assert_eq!(c.cells_v, vec![Some(3.333), Some(3.334)]);
    assert_eq!(r.temperatures[0].probes_c, vec![Some(20), Some(22)]);
    assert_eq!(r.signature, Some(Signature { algorithm: 1, r: vec![0xAB, 0xCD], s: vec![0xEF] }));
}

#[test]
fn accepts_blocks_in_any_order_and_skips_vendor_blocks() {
    let in_order = report(decode_frame(&report_2016(&[VEHICLE_2016, MOTORS_2016, POSITION_2016, TEMPS_2016])));
    let shuffled =
        report(decode_frame(&report_2016(&[TEMPS_2016, VENDOR, POSITION_2016, MOTORS_2016, VEHICLE_2016, VENDOR])));
    assert_eq!(shuffled.skipped_vendor_blocks, vec![0x80, 0x80]);
    assert_eq!(Report { skipped_vendor_blocks: Vec::new(), ..shuffled }, in_order);

    let position = position_2025(0x01, 1, 2);
    let r = report(decode_frame(&report_2025(&[&position, &[0xFE, 0x00, 0x00], VEHICLE_2025, SIGNATURE_2025])));
    assert_eq!(r.skipped_vendor_blocks, vec![0xFE]);
    assert!(r.vehicle.is_some() && r.signature.is_some());
}

#[test]
fn turns_abnormal_and_invalid_values_into_absent_fields() {
    // Status bytes 0xFF/0xFE, speed 0xFFFF, odometer 0xFFFFFFFE, voltage 0xFFFE, current
    // 0xFFFF, SOC 0xFE, DC-DC 0xFF, gear 0, insulation 0xFFFF, pedals 0xFF/0xFE.
    let vehicle = [
        0x01, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFE, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xFF,
        0xFF, 0xFF, 0xFE,
    ];
    let motors = [0x02, 0x01, 0x01, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF];
    let r = report(decode_frame(&report_2016(&[&vehicle, &motors, POSITION_2016])));
    let v = r.vehicle.unwrap();
    assert_eq!((v.vehicle_status, v.charging_status, v.run_mode), (None, None, None));
    assert_eq!((v.speed_kmh, v.odometer_km, v.voltage_v, v.current_a), (None, None, None, None));
    assert_eq!(
        (v.soc_pct, v.dcdc_status, v.insulation_kohm, v.accelerator_pct, v.brake_pct),
        (None, None, None, None, None)
    );
    let m = &r.motors[0];
    assert_eq!((m.status, m.controller_temp_c, m.speed_rpm, m.torque_nm, m.temp_c), (None, None, None, None, None));
    assert_eq!((m.controller_voltage_v, m.controller_current_a), (None, None));

    let sample =
        report_sample(&decode_frame(&report_2016(&[&vehicle, POSITION_2016])).unwrap(), &vin()).unwrap().unwrap();
    assert_eq!((sample.speed_kmh, sample.odometer_km, sample.soc_pct), (None, None, None));
    assert_eq!((sample.battery_voltage_v, sample.battery_current_a), (None, None));
    assert_eq!((sample.charging, sample.ignition), (None, None));
}

#[test]
fn rejects_a_truncated_block() {
    let err = decode_frame(&report_2016(&[&VEHICLE_2016[..11]])).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { .. }), "{err:?}");
    assert_eq!(err.reason(), DeadLetterReason::MalformedFrame);
    let err = decode_frame(&report_2016(&[POSITION_2016, &VENDOR[..5]])).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { what: "vendor block", .. }), "{err:?}");
}

#[test]
fn rejects_counts_that_promise_more_than_the_frame_holds() {
    // 255 cell-voltage subsystems, 65535 cells, 255 motors, 65535 probes: none are there.
    for block in [
        &[0x08, 0xFF, 0x01][..],
        &[0x08, 0x01, 0x01, 0x0D, 0xE0, 0x27, 0x74, 0xFF, 0xFF, 0x00, 0x01, 0xFF, 0x0E][..],
        &[0x02, 0xFF, 0x01][..],
        &[0x09, 0x01, 0x01, 0xFF, 0xFF, 0x00][..],
        &[0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF][..],
    ] {
        let err = decode_frame(&report_2016(&[POSITION_2016, block])).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }), "{block:02x?}: {err:?}");
    }
    let err =
        decode_frame(&report_2025(&[&[0x07, 0x01, 0x01, 0x0F, 0xA0, 0x73, 0x37, 0xFF, 0xFF, 0x0D][..]])).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { .. }), "{err:?}");
}

#[test]
fn rejects_unknown_reserved_and_unsizable_block_types() {
    let err = decode_frame(&report_2016(&[POSITION_2016, &[0x0A, 0x00]])).unwrap_err();
    assert_eq!(err, FrameError::UnknownBlock { edition: Edition::V2016, block: 0x0A });
    assert_eq!(err.reason(), DeadLetterReason::MalformedFrame);
    // 0xFF is the 2025 signature, nothing in 2016; 2025 has no extremes block 0x09.
    assert!(matches!(decode_frame(&report_2016(&[&[0xFF, 0x01]])), Err(FrameError::UnknownBlock { .. })));
    assert!(matches!(decode_frame(&report_2025(&[&[0x09, 0x01]])), Err(FrameError::UnknownBlock { .. })));
    for block in [0x03, 0x30, 0x31, 0x32] {
        let err = decode_frame(&report_2025(&[&[block, 0x00, 0x00]])).unwrap_err();
        assert_eq!(err, FrameError::UnknownBlock { edition: Edition::V2025, block });
    }
}

#[test]
fn rejects_a_block_sent_twice() {
    let err = decode_frame(&report_2016(&[POSITION_2016, VEHICLE_2016, POSITION_2016])).unwrap_err();
    assert_eq!(err, FrameError::DuplicateBlock(0x05));
}

#[test]
fn rejects_bytes_after_the_2025_signature() {
    let err = decode_frame(&report_2025(&[SIGNATURE_2025, VEHICLE_2025])).unwrap_err();
    assert!(matches!(err, FrameError::TrailingBytes { what: "the signature", count: 19 }), "{err:?}");
}

#[test]
fn decodes_the_2016_fuel_cell_and_engine_blocks() {
    let fuel_cell = [
        0x03, 0x0F, 0xA0, 0x03, 0xE8, 0x00, 0x64, 0x00, 0x02, 0x50, 0xFF, 0x02, 0x6C, 0x01, 0x00, 0x32, 0x02, 0x00,
        0x23, 0x03, 0x01,
    ];
    let engine = [0x04, 0x02, 0x00, 0x00, 0x01, 0x2C];
    let r = report(decode_frame(&report_2016(&[&fuel_cell, &engine, POSITION_2016])));
    let f = r.fuel_cell.unwrap();
    assert_eq!((f.voltage_v, f.current_a, f.h2_consumption_kg_per_100km), (Some(400.0), Some(100.0), Some(1.0)));
    assert_eq!(f.probe_temps_c, vec![Some(40), None]);
    assert_eq!((f.max_h2_temp_c, f.max_h2_temp_probe), (Some(22.0), Some(1)));
    assert_eq!((f.max_h2_concentration_ppm, f.max_h2_pressure_mpa, f.dcdc_status), (Some(50), Some(3.5), Some(1)));
    let e = r.engine.unwrap();
    assert_eq!((e.status, e.crankshaft_rpm, e.fuel_rate_l_per_100km), (Some(2), Some(0), Some(3.0)));

    let r = report(decode_frame(&report_2025(&[&[0x04, 0x03, 0xE8]])));
    assert_eq!(r.engine.unwrap().crankshaft_rpm, Some(1000));
}
