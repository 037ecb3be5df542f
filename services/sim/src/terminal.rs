//! The simulated cars' GB/T 32960 terminal: what it reports beside a sample (a 96-cell pack
//! with 16 probes, one drive motor behind a single-speed reduction, the pedals), the SIM
//! card it logs in with and its login serials. The frames themselves are `fleet-gbt32960`'s;
//! the choices are here.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use fleet_domain::{Sample, Vin};
use fleet_gbt32960::{Edition, Login, MotorReadings, Readings};

use super::payload::beijing_naive;

/// Cells in the simulated battery pack's one subsystem.
const CELLS: usize = 96;
/// Temperature probes in that subsystem.
const PROBES: usize = 16;
/// Drive motor revolutions per minute for each km/h (a single-speed reduction of about 9:1).
const RPM_PER_KMH: f64 = 80.0;
/// Below this shaft speed the motor is taken to give no torque (no division by a near-zero
/// speed).
const MIN_TORQUE_RPM: f64 = 100.0;
/// The simulated terminal's SIM card.
pub const ICCID: &str = "89860012345678901234";
/// Insulation resistance the terminal reports, kΩ.
const INSULATION_KOHM: u16 = 5_000;
/// Accelerator pedal travel while moving, %.
const CRUISING_ACCELERATOR_PCT: u8 = 18;
/// Motor controller and motor temperatures, °C.
const CONTROLLER_TEMP_C: f64 = 45.0;
const MOTOR_TEMP_C: f64 = 55.0;
/// Login serial numbers run from 1 to this each day (GB/T 32960.3), then wrap.
const MAX_LOGIN_SERIAL: u16 = 65_531;

/// A terminal's login serial numbers: from 1 each (Beijing) day, wrapping after 65531; a
/// logout repeats the serial of the login it ends.
#[derive(Debug, Clone, Default)]
pub struct LoginSerials {
    serial: u16,
    day: Option<NaiveDate>,
}

impl LoginSerials {
    /// The serial of a login at `now`.
    pub fn next(&mut self, now: DateTime<Utc>) -> u16 {
        let day = beijing_naive(now).date();
        if self.day != Some(day) || self.serial >= MAX_LOGIN_SERIAL {
            self.day = Some(day);
            self.serial = 0;
        }
        self.serial += 1;
        self.serial
    }

    /// The serial of the last login (0 before the first).
    pub fn current(&self) -> u16 {
        self.serial
    }
}

/// A real-time (or reissue) frame of `sample` as the simulated terminal sends it.
pub fn encode_sample(edition: Edition, reissue: bool, sample: &Sample) -> Vec<u8> {
    fleet_gbt32960::encode_report(edition, reissue, sample, &readings(sample))
}

/// The simulated terminal's login frame: its SIM card and one subsystem whose code is
/// derived from the VIN (24 characters, as either edition takes it).
pub fn encode_login(edition: Edition, vin: &Vin, time: NaiveDateTime, serial: u16) -> Vec<u8> {
    let login = Login { time, serial, iccid: ICCID.to_owned(), subsystems: vec![vec![format!("BAT{vin}0001")]] };
    fleet_gbt32960::encode_login(edition, vin, &login)
}

/// What the terminal measures beside `sample`, derived from it.
pub fn readings(sample: &Sample) -> Readings {
    let moving = sample.speed_kmh.is_some_and(|v| v >= 0.5);
    Readings {
        cell_mv: cell_millivolts(sample.battery_voltage_v),
        probe_c: probe_temperatures(sample.battery_temp_c),
        motor: motor(sample),
        // Gear D with driving force while moving, P otherwise.
        gear: if moving { 0x20 | 14 } else { 15 },
        insulation_kohm: INSULATION_KOHM,
        accelerator_pct: if moving { CRUISING_ACCELERATOR_PCT } else { 0 },
        brake_pct: 0,
    }
}

fn motor(s: &Sample) -> MotorReadings {
    let speed = s.speed_kmh.unwrap_or(0.0);
    let current = s.battery_current_a.unwrap_or(0.0);
    let rpm = speed * RPM_PER_KMH;
    // Torque from electrical power over shaft speed, ignoring losses.
    let torque = if rpm >= MIN_TORQUE_RPM {
        s.battery_voltage_v.unwrap_or(0.0) * current / (rpm * std::f64::consts::TAU / 60.0)
    } else {
        0.0
    };
    let status = match (speed >= 0.5, s.ignition) {
        (true, _) if current < 0.0 => 2,
        (true, _) => 1,
        (false, Some(true)) => 4,
        (false, _) => 3,
    };
    MotorReadings {
        status,
        controller_temp_c: CONTROLLER_TEMP_C,
        speed_rpm: rpm,
        torque_nm: torque,
        temp_c: MOTOR_TEMP_C,
    }
}

/// Per-cell voltages in mV around the pack voltage shared out evenly, with a few mV of spread
/// as in a real pack; all invalid when the pack voltage is unknown.
fn cell_millivolts(pack_v: Option<f64>) -> Vec<Option<u16>> {
    let base = pack_v.map(|v| (v * 1000.0 / CELLS as f64).round()).filter(|mv| (2.0..=65_000.0).contains(mv));
    (0..CELLS).map(|i| base.map(|mv| (mv + (i % 5) as f64 - 2.0) as u16)).collect()
}

/// Probe temperatures in °C: the battery temperature at the hottest probes, up to 2 °C below
/// at the others; invalid where the wire cannot carry them.
fn probe_temperatures(battery_c: Option<f64>) -> Vec<Option<i16>> {
    let hottest = battery_c.map(f64::round).filter(|t| (-40.0..=213.0).contains(t));
    (0..PROBES).map(|i| hottest.map(|t| t as i16 - (i % 3) as i16).filter(|t| *t >= -40)).collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate};
    use fleet_gbt32960::{Body, Command, decode_frame, report_sample};

    use super::*;

    fn vin() -> Vin {
        Vin::parse("LSJA24U66NS000001").unwrap()
    }

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

    #[test]
    fn builds_a_realistic_report() {
        let frame = decode_frame(&encode_sample(Edition::V2016, false, &zhoushan_sample())).unwrap();
        let Body::Report(r) = frame.body else { panic!("not a report") };
        assert_eq!(r.time, NaiveDate::from_ymd_opt(2025, 3, 1).unwrap().and_hms_opt(8, 30, 15).unwrap());
        assert_eq!(r.motors.len(), 1);
        assert_eq!(r.motors[0].speed_rpm, Some(3400));
        assert_eq!(r.motors[0].status, Some(2), "negative current while moving is regeneration");
        assert_eq!(r.cell_voltages[0].cells_v.len(), 96);
        assert_eq!(r.cell_voltages[0].cells_v[0], Some(3.698));
        let e = r.extremes.unwrap();
        assert_eq!((e.max_voltage_cell, e.max_cell_voltage_v, e.min_voltage_cell), (Some(5), Some(3.702), Some(1)));
        assert_eq!((e.max_temp_c, e.min_temp_c), (Some(28), Some(26)));
        assert_eq!(r.alarm.unwrap().max_level, Some(0));
        assert_eq!(r.temperatures[0].probes_c.len(), 16);
        assert_eq!(r.signature, None);

        let frame = decode_frame(&encode_sample(Edition::V2025, false, &zhoushan_sample())).unwrap();
        let Body::Report(r) = frame.body else { panic!("not a report") };
        assert_eq!(r.extremes, None);
        assert_eq!(r.signature.unwrap().r.len(), 32);
    }

    #[test]
    fn reports_the_sample_back_through_both_editions() {
        let sent = zhoushan_sample();
        for edition in [Edition::V2016, Edition::V2025] {
            let frame = decode_frame(&encode_sample(edition, false, &sent)).unwrap();
            let got = report_sample(&frame, &sent.vin).unwrap().unwrap();
            assert_eq!(got, Sample { source: edition.source(), ..sent.clone() }, "{edition:?}");
        }
    }

    #[test]
    fn login_serials_count_up_within_a_beijing_day_and_restart_the_next() {
        let mut serials = LoginSerials::default();
        // 15:59:59 UTC is 23:59:59 in Beijing; a second later it is the next day there.
        let late = DateTime::from_timestamp(1_740_844_799, 0).unwrap();
        assert_eq!((serials.next(late), serials.next(late), serials.current()), (1, 2, 2));
        assert_eq!(serials.next(late + chrono::TimeDelta::seconds(1)), 1);
    }

    #[test]
    fn logs_in_with_its_sim_card_and_a_pack_code_from_the_vin() {
        let time = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap().and_hms_opt(7, 59, 58).unwrap();
        for edition in [Edition::V2016, Edition::V2025] {
            let login = decode_frame(&encode_login(edition, &vin(), time, 42)).unwrap();
            assert_eq!((login.edition, login.command), (edition, Command::Login));
            let Body::Login(Login { time: t, serial, iccid, subsystems }) = login.body else { panic!("not a login") };
            assert_eq!((t, serial, iccid.as_str()), (time, 42, ICCID));
            assert_eq!(subsystems, vec![vec![format!("BAT{}0001", vin())]]);
        }
    }
}
