//! A stored frame's information blocks as JSON, for readers of the track: everything a report
//! carries that has no place among a sample's fields (motors, extremes, alarms, cell voltages,
//! temperatures, signature…). Ingest keeps the frame bytes and never builds this document;
//! it is decoded only when someone asks for it.

use serde::Serialize;

use super::report::{
    Alarm, CellVoltages, CoordinateSystem, Engine, Extremes, FuelCell, Motor, ProbeTemperatures, Report, Signature,
    WholeVehicle,
};
use super::{Body, Edition, decode_frame};

/// The blocks of a report frame as a JSON object: `edition` ("2016"/"2025"), then, when
/// present, `vehicle`, `coordinate_system`, `motors`, `fuel_cell`, `engine`, `extremes`,
/// `alarm`, `cell_voltages`, `temperatures`, `signature` (`r` and `s` in hex) and
/// `skipped_vendor_blocks` (their type bytes). Sentinel values are nulls.
///
/// None when the bytes are not a report frame that decodes (a stored frame always is one).
pub fn blocks_json(bytes: &[u8]) -> Option<serde_json::Value> {
    let frame = decode_frame(bytes).ok()?;
    match &frame.body {
        Body::Report(report) => serde_json::to_value(Blocks::of(frame.edition, report)).ok(),
        Body::Login(_) | Body::Logout(_) | Body::Empty => None,
    }
}

/// Every decoded block that has no place among the sample's fields.
#[derive(Serialize)]
struct Blocks<'a> {
    edition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle: Option<&'a WholeVehicle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coordinate_system: Option<CoordinateSystem>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    motors: &'a [Motor],
    #[serde(skip_serializing_if = "Option::is_none")]
    fuel_cell: Option<&'a FuelCell>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'a Engine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extremes: Option<&'a Extremes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm: Option<&'a Alarm>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cell_voltages: &'a [CellVoltages],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    temperatures: &'a [ProbeTemperatures],
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a Signature>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    skipped_vendor_blocks: &'a [u8],
}

impl<'a> Blocks<'a> {
    fn of(edition: Edition, report: &'a Report) -> Self {
        Self {
            edition: match edition {
                Edition::V2016 => "2016",
                Edition::V2025 => "2025",
            },
            vehicle: report.vehicle.as_ref(),
            coordinate_system: report.position.as_ref().and_then(|p| p.coordinate_system),
            motors: &report.motors,
            fuel_cell: report.fuel_cell.as_ref(),
            engine: report.engine.as_ref(),
            extremes: report.extremes.as_ref(),
            alarm: report.alarm.as_ref(),
            cell_voltages: &report.cell_voltages,
            temperatures: &report.temperatures,
            signature: report.signature.as_ref(),
            skipped_vendor_blocks: &report.skipped_vendor_blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::encode_heartbeat;
    use super::super::tests::*;
    use super::*;

    #[test]
    fn shows_every_other_block_of_a_2016_report() {
        let blocks = blocks_json(&report_2016(&[
            VEHICLE_2016,
            MOTORS_2016,
            POSITION_2016,
            EXTREMES_2016,
            ALARM_2016,
            CELLS_2016,
            TEMPS_2016,
            VENDOR,
        ]))
        .expect("a report");
        assert_eq!(blocks["edition"], "2016");
        assert_eq!(blocks["motors"][0]["speed_rpm"], 3400);
        assert_eq!(blocks["extremes"]["max_cell_voltage_v"], 3.8);
        assert_eq!(blocks["alarm"]["ress_faults"][0], 0x1234);
        assert_eq!(blocks["cell_voltages"][0]["cells_v"][2], serde_json::Value::Null);
        assert_eq!(blocks["temperatures"][0]["probes_c"][0], 28);
        assert_eq!(blocks["vehicle"]["insulation_kohm"], 5000);
        assert_eq!(blocks["skipped_vendor_blocks"][0], 0x80);
        assert!(blocks.get("signature").is_none());
        assert!(blocks.get("coordinate_system").is_none(), "2016 states no datum");
    }

    #[test]
    fn shows_a_2025_signature_in_hex() {
        let position = position_2025(0x01, 122_106_800, 30_016_500);
        let blocks = blocks_json(&report_2025(&[VEHICLE_2025, &position, ALARM_2025, TEMPS_2025, SIGNATURE_2025]))
            .expect("a report");
        assert_eq!(blocks["edition"], "2025");
        assert_eq!(blocks["coordinate_system"], "wgs84");
        assert_eq!(blocks["signature"], serde_json::json!({"algorithm": 1, "r": "abcd", "s": "ef"}));
        assert_eq!(blocks["alarm"]["warnings"], serde_json::json!([{"id": 23, "level": 3}]));
    }

    #[test]
    fn gives_nothing_for_session_frames_or_bytes_that_do_not_decode() {
        assert_eq!(blocks_json(&encode_login(Edition::V2016, &vin(), at(2025, 3, 1, 8, 0, 0), 1)), None);
        assert_eq!(blocks_json(&encode_heartbeat(Edition::V2025, &vin())), None);
        let mut broken = report_2016(&[POSITION_2016]);
        broken.pop();
        assert_eq!(blocks_json(&broken), None);
        assert_eq!(blocks_json(b""), None);
    }
}
