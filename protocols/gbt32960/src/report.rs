//! The body of a real-time (0x02) or re-issued (0x03) report: the collection time, then
//! information blocks in any order.
//!
//! Values are kept in engineering units with the standard's "abnormal"/"invalid" sentinels
//! turned into `None` before any scaling. Status bytes stay as their wire codes.

mod blocks;

use chrono::NaiveDateTime;
use serde::{Serialize, Serializer};

use super::reader::Reader;
use super::{Edition, FrameError};

/// A decoded report. `time` is the collection time as sent (GMT+8): a re-issued report may be
/// days old, so order by it, never by arrival.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub time: NaiveDateTime,
    pub vehicle: Option<WholeVehicle>,
    pub position: Option<Position>,
    pub motors: Vec<Motor>,
    /// 2016 only (block 0x03).
    pub fuel_cell: Option<FuelCell>,
    pub engine: Option<Engine>,
    /// 2016 only (block 0x06).
    pub extremes: Option<Extremes>,
    pub alarm: Option<Alarm>,
    pub cell_voltages: Vec<CellVoltages>,
    pub temperatures: Vec<ProbeTemperatures>,
    /// 2025: the signature closing the body; kept, not verified.
    pub signature: Option<Signature>,
    /// Type numbers of the vendor-defined blocks (0x80–0xFE) that were skipped, in order.
    pub skipped_vendor_blocks: Vec<u8>,
}

/// Whole-vehicle data (block 0x01; 20 bytes in 2016, 18 in 2025).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WholeVehicle {
    /// 1 started, 2 off, 3 other.
    pub vehicle_status: Option<u8>,
    /// 1 charging while parked, 2 charging while driving, 3 not charging, 4 charge complete.
    pub charging_status: Option<u8>,
    /// 1 electric, 2 hybrid, 3 fuel.
    pub run_mode: Option<u8>,
    pub speed_kmh: Option<f64>,
    pub odometer_km: Option<f64>,
    pub voltage_v: Option<f64>,
    /// Negative while charging.
    pub current_a: Option<f64>,
    pub soc_pct: Option<u8>,
    /// 1 working, 2 off.
    pub dcdc_status: Option<u8>,
    /// Raw bit field: bits 0–3 gear (0 N, 1–12, 13 R, 14 D, 15 P), bit 4 braking force,
    /// bit 5 driving force; 2025 bit 7 = gear invalid.
    pub gear: u8,
    pub insulation_kohm: Option<u16>,
    /// 2016 only.
    pub accelerator_pct: Option<u8>,
    /// 2016 only; 101 means "brake on" without a travel value.
    pub brake_pct: Option<u8>,
}

/// One drive motor (block 0x02; 12 bytes each in 2016, 10 in 2025).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Motor {
    pub seq: u8,
    /// 1 consuming, 2 generating, 3 off, 4 ready.
    pub status: Option<u8>,
    pub controller_temp_c: Option<i16>,
    pub speed_rpm: Option<i32>,
    pub torque_nm: Option<f64>,
    pub temp_c: Option<i16>,
    /// 2016 only.
    pub controller_voltage_v: Option<f64>,
    /// 2016 only.
    pub controller_current_a: Option<f64>,
}

/// Fuel-cell data (2016 block 0x03).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FuelCell {
    pub voltage_v: Option<f64>,
    pub current_a: Option<f64>,
    pub h2_consumption_kg_per_100km: Option<f64>,
    pub probe_temps_c: Vec<Option<i16>>,
    pub max_h2_temp_c: Option<f64>,
    pub max_h2_temp_probe: Option<u8>,
    pub max_h2_concentration_ppm: Option<u16>,
    pub max_h2_concentration_sensor: Option<u8>,
    pub max_h2_pressure_mpa: Option<f64>,
    pub max_h2_pressure_sensor: Option<u8>,
    /// 1 working, 2 off.
    pub dcdc_status: Option<u8>,
}

/// Engine data (block 0x04; 5 bytes in 2016, 2 in 2025).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Engine {
    /// 2016 only: 1 on, 2 off.
    pub status: Option<u8>,
    pub crankshaft_rpm: Option<u16>,
    /// 2016 only.
    pub fuel_rate_l_per_100km: Option<f64>,
}

/// The datum of a position (2025 only; 2016 does not say, and terminals send WGS-84).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordinateSystem {
    Wgs84,
    /// The Chinese map datum: converted to WGS-84 before a position is stored.
    Gcj02,
    Other(u8),
}

/// Position (block 0x05; 9 bytes in 2016, 10 in 2025). Coordinates are magnitudes in
/// degrees as sent; the hemisphere flags give the signs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Position {
    /// Status bit 0 clear. An invalid fix still carries the last known, stale coordinates.
    pub fix_valid: bool,
    /// Status bit 1: southern latitude.
    pub south: bool,
    /// Status bit 2: western longitude.
    pub west: bool,
    pub coordinate_system: Option<CoordinateSystem>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
}

/// Extreme values (2016 block 0x06): where the highest and lowest cell voltage and probe
/// temperature are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extremes {
    pub max_voltage_subsystem: Option<u8>,
    pub max_voltage_cell: Option<u8>,
    pub max_cell_voltage_v: Option<f64>,
    pub min_voltage_subsystem: Option<u8>,
    pub min_voltage_cell: Option<u8>,
    pub min_cell_voltage_v: Option<f64>,
    pub max_temp_subsystem: Option<u8>,
    pub max_temp_probe: Option<u8>,
    pub max_temp_c: Option<i16>,
    pub min_temp_subsystem: Option<u8>,
    pub min_temp_probe: Option<u8>,
    pub min_temp_c: Option<i16>,
}

/// Alarms (block 0x07 in 2016, 0x06 in 2025).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    /// 0 none, 1–3 with 3 the most severe.
    pub max_level: Option<u8>,
    /// General alarm flags, one bit each (2025 bit 23: battery thermal event).
    pub flags: u32,
    pub ress_faults: Vec<u32>,
    pub motor_faults: Vec<u32>,
    pub engine_faults: Vec<u32>,
    pub other_faults: Vec<u32>,
    /// 2025 only: the general alarms that are on, each with its level.
    pub warnings: Vec<Warning>,
}

/// One entry of the 2025 general-alarm list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The general alarm's bit number.
    pub id: u8,
    pub level: u8,
}

/// Cell voltages of one energy storage subsystem (block 0x08 in 2016, 0x07 in 2025).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellVoltages {
    pub subsystem: u8,
    pub voltage_v: Option<f64>,
    pub current_a: Option<f64>,
    /// 2016 only: cells in the subsystem (a big pack may span several frames).
    pub total_cells: Option<u16>,
    /// 2016 only: 1-based number of the first cell in this frame.
    pub first_cell: Option<u16>,
    pub cells_v: Vec<Option<f64>>,
}

/// Probe temperatures of one energy storage subsystem (block 0x09 in 2016, 0x08 in 2025).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeTemperatures {
    pub subsystem: u8,
    pub probes_c: Vec<Option<i16>>,
}

/// The 2025 signature block (0xFF) that closes a report; kept, not verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// 1 SM2, 2 RSA, 3 ECC.
    pub algorithm: u8,
    #[serde(serialize_with = "hex")]
    pub r: Vec<u8>,
    #[serde(serialize_with = "hex")]
    pub s: Vec<u8>,
}

fn hex<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Vendor-defined block types; each such block carries a WORD length, so it can be skipped.
const VENDOR_BLOCKS: std::ops::RangeInclusive<u8> = 0x80..=0xFE;
/// The 2025 signature block, always last.
const SIGNATURE_BLOCK: u8 = 0xFF;

impl Report {
    /// A report at `time` with no blocks.
    pub fn new(time: NaiveDateTime) -> Self {
        Self {
            time,
            vehicle: None,
            position: None,
            motors: Vec::new(),
            fuel_cell: None,
            engine: None,
            extremes: None,
            alarm: None,
            cell_voltages: Vec::new(),
            temperatures: Vec::new(),
            signature: None,
            skipped_vendor_blocks: Vec::new(),
        }
    }

    pub(super) fn decode(edition: Edition, data: &[u8]) -> Result<Self, FrameError> {
        use Edition::{V2016, V2025};

        let mut r = Reader::new(data);
        let mut report = Self::new(r.time()?);
        let mut seen = [false; 256];
        while !r.is_empty() {
            let block = r.u8("information block type")?;
            if VENDOR_BLOCKS.contains(&block) {
                let len = usize::from(r.u16("vendor block length")?);
                r.take(len, "vendor block")?;
                report.skipped_vendor_blocks.push(block);
                continue;
            }
            // A second copy of a block would leave us guessing which one is true.
            if std::mem::replace(&mut seen[usize::from(block)], true) {
                return Err(FrameError::DuplicateBlock(block));
            }
            match (edition, block) {
                (_, 0x01) => report.vehicle = Some(blocks::whole_vehicle(edition, &mut r)?),
                (_, 0x02) => report.motors = blocks::motors(edition, &mut r)?,
                (V2016, 0x03) => report.fuel_cell = Some(blocks::fuel_cell(&mut r)?),
                (_, 0x04) => report.engine = Some(blocks::engine(edition, &mut r)?),
                (_, 0x05) => report.position = Some(blocks::position(edition, &mut r)?),
                (V2016, 0x06) => report.extremes = Some(blocks::extremes(&mut r)?),
                (V2016, 0x07) | (V2025, 0x06) => report.alarm = Some(blocks::alarm(edition, &mut r)?),
                (V2016, 0x08) | (V2025, 0x07) => report.cell_voltages = blocks::cell_voltages(edition, &mut r)?,
                (V2016, 0x09) | (V2025, 0x08) => report.temperatures = blocks::temperatures(&mut r)?,
                (V2025, SIGNATURE_BLOCK) => {
                    report.signature = Some(blocks::signature(&mut r)?);
                    if !r.is_empty() {
                        return Err(FrameError::TrailingBytes { what: "the signature", count: r.remaining() });
                    }
                }
                // Reserved numbers, and the 2025 fuel-cell (0x03), fuel-cell stack (0x30),
                // super-capacitor (0x31) and super-capacitor extremes (0x32) blocks, whose
                // layouts we do not have: without a length prefix they cannot be skipped.
                _ => return Err(FrameError::UnknownBlock { edition, block }),
            }
        }
        Ok(report)
    }
}
