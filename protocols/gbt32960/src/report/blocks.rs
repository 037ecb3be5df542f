//! The information blocks of a report, one parser each, by edition.

use super::super::reader::{Reader, byte, scaled_dword, scaled_word, temperature, word};
use super::super::{Edition, FrameError};
use super::{
    Alarm, CellVoltages, CoordinateSystem, Engine, Extremes, FuelCell, Motor, Position, ProbeTemperatures, Signature,
    Warning, WholeVehicle,
};

pub(super) fn whole_vehicle(edition: Edition, r: &mut Reader<'_>) -> Result<WholeVehicle, FrameError> {
    let current_offset = match edition {
        Edition::V2016 => 1000.0,
        Edition::V2025 => 3000.0,
    };
    r.expect_items(1, whole_vehicle_len(edition), "the whole-vehicle block")?;
    let mut v = WholeVehicle {
        vehicle_status: byte(r.u8("vehicle status")?),
        charging_status: byte(r.u8("charging status")?),
        run_mode: byte(r.u8("run mode")?),
        speed_kmh: scaled_word(r.u16("speed")?, 10.0, 0.0),
        odometer_km: scaled_dword(r.u32("odometer")?, 10.0, 0.0),
        voltage_v: scaled_word(r.u16("total voltage")?, 10.0, 0.0),
        current_a: scaled_word(r.u16("total current")?, 10.0, current_offset),
        soc_pct: byte(r.u8("SOC")?),
        dcdc_status: byte(r.u8("DC-DC status")?),
        gear: r.u8("gear")?,
        insulation_kohm: word(r.u16("insulation resistance")?),
        accelerator_pct: None,
        brake_pct: None,
    };
    if edition == Edition::V2016 {
        v.accelerator_pct = byte(r.u8("accelerator pedal")?);
        v.brake_pct = byte(r.u8("brake pedal")?);
    }
    Ok(v)
}

fn whole_vehicle_len(edition: Edition) -> usize {
    match edition {
        Edition::V2016 => 20,
        Edition::V2025 => 18,
    }
}

pub(super) fn motors(edition: Edition, r: &mut Reader<'_>) -> Result<Vec<Motor>, FrameError> {
    let count = usize::from(r.u8("motor count")?);
    let size = match edition {
        Edition::V2016 => 12,
        Edition::V2025 => 10,
    };
    r.expect_items(count, size, "drive motors")?;
    (0..count)
        .map(|_| {
            let seq = r.u8("motor number")?;
            let status = byte(r.u8("motor status")?);
            let controller_temp_c = temperature(r.u8("motor controller temperature")?);
            let (speed_rpm, torque_nm) = match edition {
                Edition::V2016 => (
                    word(r.u16("motor speed")?).map(|v| i32::from(v) - 20_000),
                    scaled_word(r.u16("motor torque")?, 10.0, 2_000.0),
                ),
                Edition::V2025 => (
                    word(r.u16("motor speed")?).map(|v| i32::from(v) - 32_000),
                    scaled_dword(r.u32("motor torque")?, 10.0, 20_000.0),
                ),
            };
            let temp_c = temperature(r.u8("motor temperature")?);
            let (controller_voltage_v, controller_current_a) = match edition {
                Edition::V2016 => (
                    scaled_word(r.u16("motor controller voltage")?, 10.0, 0.0),
                    scaled_word(r.u16("motor controller current")?, 10.0, 1_000.0),
                ),
                Edition::V2025 => (None, None),
            };
            Ok(Motor {
                seq,
                status,
                controller_temp_c,
                speed_rpm,
                torque_nm,
                temp_c,
                controller_voltage_v,
                controller_current_a,
            })
        })
        .collect()
}

pub(super) fn fuel_cell(r: &mut Reader<'_>) -> Result<FuelCell, FrameError> {
    let voltage_v = scaled_word(r.u16("fuel cell voltage")?, 10.0, 0.0);
    let current_a = scaled_word(r.u16("fuel cell current")?, 10.0, 0.0);
    let h2_consumption_kg_per_100km = scaled_word(r.u16("hydrogen consumption")?, 100.0, 0.0);
    let probes = usize::from(r.u16("fuel cell probe count")?);
    let probe_temps_c = r.take(probes, "fuel cell probe temperatures")?.iter().map(|&t| temperature(t)).collect();
    Ok(FuelCell {
        voltage_v,
        current_a,
        h2_consumption_kg_per_100km,
        probe_temps_c,
        max_h2_temp_c: scaled_word(r.u16("hydrogen system temperature")?, 10.0, 40.0),
        max_h2_temp_probe: byte(r.u8("hydrogen temperature probe")?),
        max_h2_concentration_ppm: word(r.u16("hydrogen concentration")?),
        max_h2_concentration_sensor: byte(r.u8("hydrogen concentration sensor")?),
        max_h2_pressure_mpa: scaled_word(r.u16("hydrogen pressure")?, 10.0, 0.0),
        max_h2_pressure_sensor: byte(r.u8("hydrogen pressure sensor")?),
        dcdc_status: byte(r.u8("high-voltage DC-DC status")?),
    })
}

pub(super) fn engine(edition: Edition, r: &mut Reader<'_>) -> Result<Engine, FrameError> {
    Ok(match edition {
        Edition::V2016 => Engine {
            status: byte(r.u8("engine status")?),
            crankshaft_rpm: word(r.u16("crankshaft speed")?),
            fuel_rate_l_per_100km: scaled_word(r.u16("fuel consumption")?, 100.0, 0.0),
        },
        Edition::V2025 => {
            Engine { status: None, crankshaft_rpm: word(r.u16("crankshaft speed")?), fuel_rate_l_per_100km: None }
        }
    })
}

pub(super) fn position(edition: Edition, r: &mut Reader<'_>) -> Result<Position, FrameError> {
    let status = r.u8("positioning status")?;
    let coordinate_system = match edition {
        Edition::V2016 => None,
        Edition::V2025 => Some(match r.u8("coordinate system")? {
            1 => CoordinateSystem::Wgs84,
            2 => CoordinateSystem::Gcj02,
            other => CoordinateSystem::Other(other),
        }),
    };
    Ok(Position {
        fix_valid: status & 0b001 == 0,
        south: status & 0b010 != 0,
        west: status & 0b100 != 0,
        coordinate_system,
        longitude: scaled_dword(r.u32("longitude")?, 1e6, 0.0),
        latitude: scaled_dword(r.u32("latitude")?, 1e6, 0.0),
    })
}

pub(super) fn extremes(r: &mut Reader<'_>) -> Result<Extremes, FrameError> {
    Ok(Extremes {
        max_voltage_subsystem: byte(r.u8("highest-voltage subsystem")?),
        max_voltage_cell: byte(r.u8("highest-voltage cell")?),
        max_cell_voltage_v: scaled_word(r.u16("highest cell voltage")?, 1000.0, 0.0),
        min_voltage_subsystem: byte(r.u8("lowest-voltage subsystem")?),
        min_voltage_cell: byte(r.u8("lowest-voltage cell")?),
        min_cell_voltage_v: scaled_word(r.u16("lowest cell voltage")?, 1000.0, 0.0),
        max_temp_subsystem: byte(r.u8("highest-temperature subsystem")?),
        max_temp_probe: byte(r.u8("highest-temperature probe")?),
        max_temp_c: temperature(r.u8("highest temperature")?),
        min_temp_subsystem: byte(r.u8("lowest-temperature subsystem")?),
        min_temp_probe: byte(r.u8("lowest-temperature probe")?),
        min_temp_c: temperature(r.u8("lowest temperature")?),
    })
}

pub(super) fn alarm(edition: Edition, r: &mut Reader<'_>) -> Result<Alarm, FrameError> {
    let max_level = byte(r.u8("highest alarm level")?);
    let flags = r.u32("general alarm flags")?;
    let mut codes = |what: &'static str| -> Result<Vec<u32>, FrameError> {
        let count = usize::from(r.u8(what)?);
        r.expect_items(count, 4, what)?;
        (0..count).map(|_| r.u32(what)).collect()
    };
    let ress_faults = codes("energy storage fault codes")?;
    let motor_faults = codes("drive motor fault codes")?;
    let engine_faults = codes("engine fault codes")?;
    let other_faults = codes("other fault codes")?;
    let warnings = match edition {
        Edition::V2016 => Vec::new(),
        Edition::V2025 => {
            let count = usize::from(r.u8("general alarm list")?);
            r.expect_items(count, 2, "general alarm list")?;
            (0..count)
                .map(|_| Ok(Warning { id: r.u8("general alarm id")?, level: r.u8("general alarm level")? }))
                .collect::<Result<_, FrameError>>()?
        }
    };
    Ok(Alarm { max_level, flags, ress_faults, motor_faults, engine_faults, other_faults, warnings })
}

pub(super) fn cell_voltages(edition: Edition, r: &mut Reader<'_>) -> Result<Vec<CellVoltages>, FrameError> {
    let count = usize::from(r.u8("cell voltage subsystem count")?);
    // Each subsystem takes at least its fixed fields: 10 bytes in 2016, 7 in 2025.
    r.expect_items(count, if edition == Edition::V2016 { 10 } else { 7 }, "cell voltage subsystems")?;
    (0..count)
        .map(|_| {
            let subsystem = r.u8("subsystem number")?;
            let voltage_v = scaled_word(r.u16("subsystem voltage")?, 10.0, 0.0);
            let (current_a, total_cells, first_cell, cells) = match edition {
                Edition::V2016 => (
                    scaled_word(r.u16("subsystem current")?, 10.0, 1_000.0),
                    word(r.u16("total cells")?),
                    word(r.u16("first cell number")?),
                    usize::from(r.u8("cells in this frame")?),
                ),
                Edition::V2025 => (
                    scaled_word(r.u16("subsystem current")?, 10.0, 3_000.0),
                    None,
                    None,
                    usize::from(r.u16("cells in this frame")?),
                ),
            };
            r.expect_items(cells, 2, "cell voltages")?;
            let cells_v = (0..cells)
                .map(|_| r.u16("cell voltage").map(|v| scaled_word(v, 1000.0, 0.0)))
                .collect::<Result<_, _>>()?;
            Ok(CellVoltages { subsystem, voltage_v, current_a, total_cells, first_cell, cells_v })
        })
        .collect()
}

pub(super) fn temperatures(r: &mut Reader<'_>) -> Result<Vec<ProbeTemperatures>, FrameError> {
    let count = usize::from(r.u8("temperature subsystem count")?);
    r.expect_items(count, 3, "temperature subsystems")?;
    (0..count)
        .map(|_| {
            let subsystem = r.u8("subsystem number")?;
            let probes = usize::from(r.u16("probe count")?);
            let probes_c = r.take(probes, "probe temperatures")?.iter().map(|&t| temperature(t)).collect();
            Ok(ProbeTemperatures { subsystem, probes_c })
        })
        .collect()
}

pub(super) fn signature(r: &mut Reader<'_>) -> Result<Signature, FrameError> {
    let algorithm = r.u8("signature algorithm")?;
    let r_len = usize::from(r.u16("signature R length")?);
    let r_value = r.take(r_len, "signature R")?.to_vec();
    let s_len = usize::from(r.u16("signature S length")?);
    let s_value = r.take(s_len, "signature S")?.to_vec();
    Ok(Signature { algorithm, r: r_value, s: s_value })
}
