//! The information blocks of a report, one writer each, by edition; a value the wire cannot
//! carry goes out as the field's "invalid" sentinel.

use fleet_domain::Sample;

use super::super::Edition;
use super::{MotorReadings, Readings};

/// The wire's largest torque magnitude, in N·m (a larger value is sent as the largest).
const MAX_TORQUE_NM: f64 = 2_000.0;
/// Length of each dummy signature value (an SM2 R or S).
const SIGNATURE_VALUE_LEN: usize = 32;

pub(super) fn whole_vehicle(data: &mut Vec<u8>, edition: Edition, s: &Sample, r: &Readings) {
    let moving = s.speed_kmh.is_some_and(|v| v >= 0.5);
    data.push(0x01);
    data.push(match s.ignition {
        Some(true) => 1,
        Some(false) => 2,
        None => 0xFF,
    });
    data.push(match s.charging {
        Some(true) if moving => 2,
        Some(true) => 1,
        Some(false) => 3,
        None => 0xFF,
    });
    data.push(1); // pure electric
    data.extend_from_slice(&raw_word(s.speed_kmh, 10.0, 0.0).to_be_bytes());
    data.extend_from_slice(&raw_dword(s.odometer_km, 10.0, 0.0).to_be_bytes());
    data.extend_from_slice(&raw_word(s.battery_voltage_v, 10.0, 0.0).to_be_bytes());
    data.extend_from_slice(&raw_word(s.battery_current_a, 10.0, current_offset(edition)).to_be_bytes());
    data.push(raw_byte(s.soc_pct, 0.0));
    data.push(if s.ignition == Some(true) || s.charging == Some(true) { 1 } else { 2 });
    data.push(r.gear);
    data.extend_from_slice(&r.insulation_kohm.to_be_bytes());
    if edition == Edition::V2016 {
        data.push(r.accelerator_pct);
        data.push(r.brake_pct);
    }
}

pub(super) fn position(data: &mut Vec<u8>, edition: Edition, s: &Sample) {
    data.push(0x05);
    let mut status = 0u8;
    if !s.position_valid {
        status |= 0b001;
    }
    if s.lat < 0.0 {
        status |= 0b010;
    }
    if s.lon < 0.0 {
        status |= 0b100;
    }
    data.push(status);
    if edition == Edition::V2025 {
        data.push(1); // WGS-84: a sample's coordinates are WGS-84
    }
    data.extend_from_slice(&raw_dword(Some(s.lon.abs()), 1e6, 0.0).to_be_bytes());
    data.extend_from_slice(&raw_dword(Some(s.lat.abs()), 1e6, 0.0).to_be_bytes());
}

pub(super) fn motor(data: &mut Vec<u8>, edition: Edition, s: &Sample, m: &MotorReadings) {
    let torque = m.torque_nm.clamp(-MAX_TORQUE_NM, MAX_TORQUE_NM);
    data.extend_from_slice(&[0x02, 1, 1, m.status, raw_byte(Some(m.controller_temp_c), 40.0)]);
    match edition {
        Edition::V2016 => {
            data.extend_from_slice(&raw_word(Some(m.speed_rpm), 1.0, 20_000.0).to_be_bytes());
            data.extend_from_slice(&raw_word(Some(torque), 10.0, 2_000.0).to_be_bytes());
        }
        Edition::V2025 => {
            data.extend_from_slice(&raw_word(Some(m.speed_rpm), 1.0, 32_000.0).to_be_bytes());
            data.extend_from_slice(&raw_dword(Some(torque), 10.0, 20_000.0).to_be_bytes());
        }
    }
    data.push(raw_byte(Some(m.temp_c), 40.0));
    if edition == Edition::V2016 {
        data.extend_from_slice(&raw_word(s.battery_voltage_v, 10.0, 0.0).to_be_bytes());
        data.extend_from_slice(&raw_word(s.battery_current_a, 10.0, 1_000.0).to_be_bytes());
    }
}

pub(super) fn extremes(data: &mut Vec<u8>, cells: &[Option<u16>], probes: &[Option<i16>]) {
    // 1-based position and value of the first maximum and minimum, or invalid throughout.
    fn extreme<T: Copy + Ord>(values: &[Option<T>], max: bool) -> Option<(u8, T)> {
        let found = values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v)));
        let best = if max {
            found.max_by_key(|&(i, v)| (v, std::cmp::Reverse(i)))
        } else {
            found.min_by_key(|&(i, v)| (v, i))
        };
        best.map(|(i, v)| (u8::try_from(i + 1).unwrap_or(0xFF), v))
    }
    data.push(0x06);
    for max in [true, false] {
        match extreme(cells, max) {
            Some((cell, mv)) => {
                data.extend_from_slice(&[1, cell]);
                data.extend_from_slice(&mv.to_be_bytes());
            }
            None => data.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]),
        }
    }
    for max in [true, false] {
        match extreme(probes, max) {
            Some((probe, t)) => data.extend_from_slice(&[1, probe, raw_byte(Some(f64::from(t)), 40.0)]),
            None => data.extend_from_slice(&[0xFF, 0xFF, 0xFF]),
        }
    }
}

pub(super) fn no_alarms(data: &mut Vec<u8>, edition: Edition) {
    data.push(match edition {
        Edition::V2016 => 0x07,
        Edition::V2025 => 0x06,
    });
    // Level 0, no general flags, no fault codes of any of the four kinds.
    data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0]);
    if edition == Edition::V2025 {
        data.push(0); // empty general-alarm list
    }
}

pub(super) fn cell_voltages(data: &mut Vec<u8>, edition: Edition, s: &Sample, cells: &[Option<u16>]) {
    data.push(match edition {
        Edition::V2016 => 0x08,
        Edition::V2025 => 0x07,
    });
    data.extend_from_slice(&[1, 1]); // one subsystem, number 1
    data.extend_from_slice(&raw_word(s.battery_voltage_v, 10.0, 0.0).to_be_bytes());
    let count = cells.len() as u16;
    match edition {
        Edition::V2016 => {
            data.extend_from_slice(&raw_word(s.battery_current_a, 10.0, 1_000.0).to_be_bytes());
            data.extend_from_slice(&count.to_be_bytes()); // cells in the subsystem
            data.extend_from_slice(&1u16.to_be_bytes()); // this frame starts at cell 1
            data.push(count as u8);
        }
        Edition::V2025 => {
            data.extend_from_slice(&raw_word(s.battery_current_a, 10.0, 3_000.0).to_be_bytes());
            data.extend_from_slice(&count.to_be_bytes());
        }
    }
    for mv in cells {
        data.extend_from_slice(&mv.unwrap_or(0xFFFF).to_be_bytes());
    }
}

pub(super) fn temperatures(data: &mut Vec<u8>, edition: Edition, probes: &[Option<i16>]) {
    data.push(match edition {
        Edition::V2016 => 0x09,
        Edition::V2025 => 0x08,
    });
    data.push(1); // one subsystem
    data.push(1); // number 1
    data.extend_from_slice(&(probes.len() as u16).to_be_bytes());
    data.extend(probes.iter().map(|t| raw_byte(t.map(f64::from), 40.0)));
}

pub(super) fn dummy_signature(data: &mut Vec<u8>) {
    data.extend_from_slice(&[0xFF, 1]); // signature block, SM2
    for filler in [0x52, 0x53] {
        data.extend_from_slice(&(SIGNATURE_VALUE_LEN as u16).to_be_bytes());
        data.extend(std::iter::repeat_n(filler, SIGNATURE_VALUE_LEN));
    }
}

fn current_offset(edition: Edition) -> f64 {
    match edition {
        Edition::V2016 => 1_000.0,
        Edition::V2025 => 3_000.0,
    }
}

/// The raw step count for `value` on a wire of `per_unit` steps per unit with `offset` added
/// first, if it fits below the sentinels.
fn raw(value: Option<f64>, per_unit: f64, offset: f64, max_valid: f64) -> Option<f64> {
    value.map(|v| ((v + offset) * per_unit).round()).filter(|r| (0.0..=max_valid).contains(r))
}

/// A BYTE value with `offset` added, or 0xFF (invalid) when absent or unrepresentable.
fn raw_byte(value: Option<f64>, offset: f64) -> u8 {
    raw(value, 1.0, offset, 253.0).map_or(0xFF, |r| r as u8)
}

/// A WORD value, or 0xFFFF (invalid) when absent or unrepresentable.
fn raw_word(value: Option<f64>, per_unit: f64, offset: f64) -> u16 {
    raw(value, per_unit, offset, 65_533.0).map_or(0xFFFF, |r| r as u16)
}

/// A DWORD value, or 0xFFFFFFFF (invalid) when absent or unrepresentable.
fn raw_dword(value: Option<f64>, per_unit: f64, offset: f64) -> u32 {
    raw(value, per_unit, offset, 4_294_967_293.0).map_or(0xFFFF_FFFF, |r| r as u32)
}
