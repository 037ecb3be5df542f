//! Frame builders: what a terminal sends for a sample and the readings beside it, plus the
//! session frames around it. Neutral: every value on the wire comes from the caller (the
//! simulator's terminal in `fleet-sim` chooses its pack, motor and SIM card; tests choose
//! their own).

mod blocks;

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};
use fleet_domain::{Sample, Vin};

use self::blocks::{cell_voltages, dummy_signature, extremes, motor, no_alarms, position, temperatures, whole_vehicle};
use super::frame::assemble;
use super::{Command, Edition, Login};

/// What a report carries besides the [`Sample`]'s own fields: the pack's cells and probes,
/// one drive motor, the gear, pedals and insulation, as the terminal measures them.
#[derive(Debug, Clone, PartialEq)]
pub struct Readings {
    /// Cell voltages of the pack's one subsystem, mV; `None` goes out as invalid.
    pub cell_mv: Vec<Option<u16>>,
    /// Probe temperatures of that subsystem, °C; `None` (or a value the wire cannot carry)
    /// goes out as invalid. The decoder takes the hottest as the battery's temperature.
    pub probe_c: Vec<Option<i16>>,
    /// The one drive motor.
    pub motor: MotorReadings,
    /// The gear byte as on the wire: bits 0–3 the gear (14 D, 15 P), bit 5 driving force,
    /// bit 4 braking force.
    pub gear: u8,
    pub insulation_kohm: u16,
    /// Pedal travel, % (the 2016 edition only; the 2025 edition has no place for it).
    pub accelerator_pct: u8,
    pub brake_pct: u8,
}

/// One drive motor's state in a report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotorReadings {
    /// 1 consuming, 2 generating, 3 off, 4 ready.
    pub status: u8,
    pub controller_temp_c: f64,
    pub speed_rpm: f64,
    /// Clamped to the wire's ±2,000 N·m.
    pub torque_nm: f64,
    pub temp_c: f64,
}

/// A complete real-time (or reissue, command 0x03) frame carrying `sample` and `readings`:
/// whole-vehicle block, position block, one drive motor, (2016: extremes block, from the
/// cells and probes), alarm block with no alarms, one cell-voltage subsystem and one
/// temperature subsystem; 2025 adds a signature block (dummy R/S bytes) at the end.
/// [`report_sample`](super::report_sample) of the decoded frame gives back the sample's
/// fields within the wire's resolution (heading and range have no place on the wire, the
/// battery temperature is the hottest probe's; a value the wire cannot represent is sent as
/// "invalid"). In the 2016 edition the motor controller's input is the pack's voltage and
/// current.
pub fn encode_report(edition: Edition, reissue: bool, sample: &Sample, readings: &Readings) -> Vec<u8> {
    let mut data = Vec::with_capacity(320);
    // Beijing time; a time beyond the calendar's end is clamped, not a panic.
    let beijing = sample.ts.naive_utc().checked_add_signed(Duration::hours(8)).unwrap_or(NaiveDateTime::MAX);
    put_time(&mut data, beijing);
    whole_vehicle(&mut data, edition, sample, readings);
    position(&mut data, edition, sample);
    motor(&mut data, edition, sample, &readings.motor);
    if edition == Edition::V2016 {
        extremes(&mut data, &readings.cell_mv, &readings.probe_c);
    }
    no_alarms(&mut data, edition);
    cell_voltages(&mut data, edition, sample, &readings.cell_mv);
    temperatures(&mut data, edition, &readings.probe_c);
    if edition == Edition::V2025 {
        dummy_signature(&mut data);
    }
    let command = if reissue { Command::ReissueReport } else { Command::RealtimeReport };
    assemble(edition, command, sample.vin.as_str(), &data)
}

/// Login (0x01) frame. The 2016 edition carries one code per subsystem (each subsystem's
/// first), all of the first code's length; the 2025 edition every pack's serial number
/// (24 characters each). The ICCID is 20 characters.
pub fn encode_login(edition: Edition, vin: &Vin, login: &Login) -> Vec<u8> {
    let mut data = Vec::with_capacity(64);
    put_time(&mut data, login.time);
    data.extend_from_slice(&login.serial.to_be_bytes());
    data.extend_from_slice(login.iccid.as_bytes());
    // Counts are bytes on the wire: a login of ours has a handful of subsystems.
    data.push(login.subsystems.len() as u8);
    match edition {
        Edition::V2016 => {
            fn first(codes: &[String]) -> &str {
                codes.first().map_or("", String::as_str)
            }
            let len = login.subsystems.first().map_or(0, |c| first(c).len());
            data.push(len as u8);
            for codes in &login.subsystems {
                data.extend_from_slice(first(codes).as_bytes());
            }
        }
        Edition::V2025 => {
            data.extend(login.subsystems.iter().map(|codes| codes.len() as u8));
            for code in login.subsystems.iter().flatten() {
                data.extend_from_slice(code.as_bytes());
            }
        }
    }
    assemble(edition, Command::Login, vin.as_str(), &data)
}

/// Logout (0x04) frame; `serial` repeats the login's.
pub fn encode_logout(edition: Edition, vin: &Vin, time: NaiveDateTime, serial: u16) -> Vec<u8> {
    let mut data = Vec::with_capacity(8);
    put_time(&mut data, time);
    data.extend_from_slice(&serial.to_be_bytes());
    assemble(edition, Command::Logout, vin.as_str(), &data)
}

/// Heartbeat (0x07) frame.
pub fn encode_heartbeat(edition: Edition, vin: &Vin) -> Vec<u8> {
    assemble(edition, Command::Heartbeat, vin.as_str(), &[])
}

fn put_time(data: &mut Vec<u8>, t: NaiveDateTime) {
    let year = u8::try_from((t.year() - 2000).clamp(0, 255)).unwrap_or(0);
    // Month, day and clock fields are below 60 by construction.
    data.extend_from_slice(&[year, t.month() as u8, t.day() as u8, t.hour() as u8, t.minute() as u8, t.second() as u8]);
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    use super::super::tests::{at, encode_sample, vin};
    use super::super::{Body, Logout, decode_frame, report_sample};
    use super::*;

    fn zhoushan_sample() -> Sample {
        let mut s = Sample::at(
            vin(),
            DateTime::from_timestamp(1_740_789_015, 0).unwrap(),
            30.0165,
            122.1068,
            Edition::V2016.source(),
        );
        s.speed_kmh = Some(42.5);
        s.soc_pct = Some(77.0);
        s.odometer_km = Some(12_345.6);
        s.charging = Some(false);
        s.ignition = Some(true);
        s.battery_voltage_v = Some(355.2);
        s.battery_current_a = Some(-12.3);
        s.battery_temp_c = Some(28.0);
        s
    }

    fn round_trip(edition: Edition, reissue: bool, sample: &Sample) -> Sample {
        let frame = decode_frame(&encode_sample(edition, reissue, sample)).expect("our own frame decodes");
        assert_eq!(frame.edition, edition);
        assert_eq!(frame.command, if reissue { Command::ReissueReport } else { Command::RealtimeReport });
        assert_eq!(frame.vin, sample.vin.as_str());
        report_sample(&frame, &sample.vin).expect("a report").expect("a valid sample")
    }

    #[test]
    fn round_trips_a_sample_through_both_editions() {
        let sent = zhoushan_sample();
        for edition in [Edition::V2016, Edition::V2025] {
            for reissue in [false, true] {
                let got = round_trip(edition, reissue, &sent);
                let expected = Sample { source: edition.source(), ..sent.clone() };
                assert_eq!(got, expected, "{edition:?}");
            }
        }
    }

    #[test]
    fn encodes_the_readings_it_is_given() {
        let sample = zhoushan_sample();
        let given = Readings {
            cell_mv: vec![Some(3_700), None, Some(3_650), Some(3_720)],
            probe_c: vec![Some(27), Some(29), None],
            motor: MotorReadings {
                status: 1,
                controller_temp_c: 45.0,
                speed_rpm: 3_400.0,
                torque_nm: 2_500.0,
                temp_c: 55.0,
            },
            gear: 0x20 | 14,
            insulation_kohm: 4_800,
            accelerator_pct: 18,
            brake_pct: 3,
        };
        let frame = decode_frame(&encode_report(Edition::V2016, false, &sample, &given)).unwrap();
        let Body::Report(r) = &frame.body else { panic!("not a report") };
        let v = r.vehicle.as_ref().unwrap();
        assert_eq!(
            (v.gear, v.insulation_kohm, v.accelerator_pct, v.brake_pct),
            (0x20 | 14, Some(4_800), Some(18), Some(3))
        );
        let m = &r.motors[0];
        assert_eq!((m.status, m.controller_temp_c, m.speed_rpm, m.temp_c), (Some(1), Some(45), Some(3_400), Some(55)));
        assert_eq!(m.torque_nm, Some(2_000.0), "clamped to the wire's range");
        assert_eq!(r.cell_voltages[0].cells_v, vec![Some(3.7), None, Some(3.65), Some(3.72)]);
        assert_eq!(r.temperatures[0].probes_c, vec![Some(27), Some(29), None]);
        let e = r.extremes.as_ref().unwrap();
        assert_eq!((e.max_voltage_cell, e.max_cell_voltage_v, e.min_voltage_cell), (Some(4), Some(3.72), Some(3)));
        assert_eq!((e.max_temp_probe, e.max_temp_c, e.min_temp_c), (Some(2), Some(29), Some(27)));
        assert_eq!(report_sample(&frame, &sample.vin).unwrap().unwrap().battery_temp_c, Some(29.0));
    }

    #[test]
    fn sends_absent_and_unrepresentable_values_as_invalid() {
        let mut sent = Sample::at(
            vin(),
            DateTime::from_timestamp(1_740_789_015, 0).unwrap(),
            -33.25,
            -70.5,
            Edition::V2016.source(),
        );
        sent.position_valid = false;
        sent.battery_current_a = Some(-2_500.0); // below the 2016 wire's −1000 A
        sent.heading_deg = Some(90.0);
        let got = round_trip(Edition::V2016, false, &sent);
        assert_eq!((got.lat, got.lon, got.position_valid), (-33.25, -70.5, false));
        assert_eq!(
            (got.battery_current_a, got.speed_kmh, got.soc_pct, got.charging, got.ignition),
            (None, None, None, None, None)
        );
        assert_eq!((got.heading_deg, got.battery_temp_c), (None, None));
        assert_eq!(round_trip(Edition::V2025, false, &sent).battery_current_a, Some(-2_500.0));
    }

    #[test]
    fn marks_charging_while_driving() {
        let mut sent = zhoushan_sample();
        sent.charging = Some(true);
        let frame = decode_frame(&encode_sample(Edition::V2025, false, &sent)).unwrap();
        let Body::Report(r) = frame.body else { panic!("not a report") };
        assert_eq!(r.vehicle.unwrap().charging_status, Some(2));
        assert_eq!(round_trip(Edition::V2025, false, &sent).charging, Some(true));
    }

    #[test]
    fn builds_login_and_logout_frames_that_decode() {
        let time = at(2025, 3, 1, 7, 59, 58);
        let code = |n: u32| format!("PACK{n:020}");
        for edition in [Edition::V2016, Edition::V2025] {
            let subsystems = match edition {
                Edition::V2016 => vec![vec![code(1)], vec![code(2)]],
                Edition::V2025 => vec![vec![code(1), code(2)], vec![code(3)]],
            };
            let sent = Login { time, serial: 42, iccid: "89860012345678901234".to_owned(), subsystems };
            let login = decode_frame(&encode_login(edition, &vin(), &sent)).unwrap();
            assert_eq!((login.edition, login.command), (edition, Command::Login));
            assert_eq!(login.body, Body::Login(sent));

            let logout = decode_frame(&encode_logout(edition, &vin(), time, 42)).unwrap();
            assert_eq!((logout.command, logout.body), (Command::Logout, Body::Logout(Logout { time, serial: 42 })));

            let heartbeat = decode_frame(&encode_heartbeat(edition, &vin())).unwrap();
            assert_eq!((heartbeat.command, heartbeat.body), (Command::Heartbeat, Body::Empty));
        }
    }

    fn close(got: Option<f64>, sent: Option<f64>, resolution: f64) -> bool {
        match (got, sent) {
            (Some(g), Some(s)) => (g - s).abs() <= resolution / 2.0 + 1e-9,
            (None, None) => true,
            _ => false,
        }
    }

    prop_compose! {
        fn any_sample()(
            secs in 946_713_600i64..1_767_225_600,
            lat in -89.9..89.9f64,
            lon in -179.9..179.9f64,
            position_valid in any::<bool>(),
            speed in proptest::option::of(0.0..220.0f64),
            soc in proptest::option::of(0.0..=100.0f64),
            odometer in proptest::option::of(0.0..2_000_000.0f64),
            charging in proptest::option::of(any::<bool>()),
            ignition in proptest::option::of(any::<bool>()),
            voltage in proptest::option::of(0.0..1_000.0f64),
            current in proptest::option::of(-1_000.0..1_000.0f64),
            temp in proptest::option::of(-40.0..150.0f64),
        ) -> Sample {
            let mut s = Sample::at(vin(), DateTime::from_timestamp(secs, 0).unwrap(), lat, lon, Edition::V2016.source());
            s.position_valid = position_valid;
            s.speed_kmh = speed;
            s.soc_pct = soc;
            s.odometer_km = odometer;
            s.charging = charging;
            s.ignition = ignition;
            s.battery_voltage_v = voltage;
            s.battery_current_a = current;
            s.battery_temp_c = temp;
            s
        }
    }

    proptest! {
        #[test]
        fn round_trips_random_samples_within_the_wire_resolution(
            sent in any_sample(),
            edition in prop::sample::select(vec![Edition::V2016, Edition::V2025]),
            reissue in any::<bool>(),
        ) {
            let got = round_trip(edition, reissue, &sent);
            prop_assert_eq!(got.ts, sent.ts);
            prop_assert_eq!(got.source, edition.source());
            prop_assert!((got.lat - sent.lat).abs() <= 0.5e-6 + 1e-12);
            prop_assert!((got.lon - sent.lon).abs() <= 0.5e-6 + 1e-12);
            prop_assert_eq!(got.position_valid, sent.position_valid);
            prop_assert!(close(got.speed_kmh, sent.speed_kmh, 0.1), "speed {:?} {:?}", got.speed_kmh, sent.speed_kmh);
            prop_assert!(close(got.soc_pct, sent.soc_pct, 1.0));
            prop_assert!(close(got.odometer_km, sent.odometer_km, 0.1));
            prop_assert!(close(got.battery_voltage_v, sent.battery_voltage_v, 0.1));
            prop_assert!(close(got.battery_current_a, sent.battery_current_a, 0.1));
            prop_assert!(close(got.battery_temp_c, sent.battery_temp_c, 1.0));
            prop_assert_eq!(got.charging, sent.charging);
            prop_assert_eq!(got.ignition, sent.ignition);
            prop_assert_eq!(got.heading_deg, None);
            prop_assert_eq!(got.range_km, None);
        }
    }

    #[test]
    fn keeps_the_beijing_clock_in_the_frame() {
        // 23:30 UTC is 07:30 the next day in Beijing.
        let sent = Sample::at(
            vin(),
            "2025-02-28T23:30:00Z".parse::<DateTime<Utc>>().unwrap(),
            30.0,
            122.0,
            Edition::V2016.source(),
        );
        let frame = decode_frame(&encode_sample(Edition::V2016, false, &sent)).unwrap();
        let Body::Report(r) = frame.body else { panic!("not a report") };
        assert_eq!(r.time, at(2025, 3, 1, 7, 30, 0));
    }
}
