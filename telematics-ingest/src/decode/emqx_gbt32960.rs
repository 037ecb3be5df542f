//! The JSON EMQX's GB/T 32960 gateway publishes for a real-time (`…/upstream/info`) or
//! re-issued (`…/upstream/reinfo`) report (docs/emqx.md): `Vin`, `Encrypt` and a `Data`
//! object with the collection `Time` (two-digit `Year`, then `Month` … `Second`, Beijing
//! time) and `Infos`, one object per information block, told apart by `Type`.
//!
//! The blocks' fields are the frame's raw integers. They are turned into the same report a
//! binary frame decodes to, with the same rules (sentinels checked before scaling, status
//! codes kept), and that report into a sample by [`gbt32960::report_sample`], so a report is
//! the same sample whichever way it came. The blocks a sample has no field for (motors,
//! fuel cell, engine, alarms, cell voltages) are not read.
//!
//! EMQX's gateway reads the 2016 edition only (frames opening with `##`), so the samples
//! are GB/T 32960-2016 ones.

use chrono::{NaiveDate, NaiveDateTime};
use fleet_domain::{InvalidSample, Sample, Vin};
use serde_json::{Map, Value};

use super::emqx_json::{BYTE, DWORD, EmqxError, WORD, envelope, message, raw, required_raw};
use super::gbt32960::{
    self, Body, Command, ENCRYPTION_NONE, Edition, Extremes, Frame, Position, ProbeTemperatures, RESPONSE_COMMAND,
    Report, WholeVehicle,
};
use super::json::kind;

/// The current's offset in the 2016 edition: the raw value counts 0.1 A from −1000 A.
const CURRENT_OFFSET_A: f64 = 1000.0;
/// Temperatures count whole degrees from −40 °C.
const TEMPERATURE_OFFSET_C: i16 = 40;

/// The sample of one report published under `vin`'s topic (`reissue` for `…/reinfo`).
///
/// Rejected whole: a payload that is not a JSON object with a `Data` object holding an
/// `Infos` list ([`EmqxError::Shape`]), a `Vin` other than the topic's, an encrypted data
/// unit, and a report whose sample is invalid: no `Location` block, a field of the wrong type
/// or wider than the wire's, a bad time, a value out of range.
pub fn decode(vin: &Vin, reissue: bool, payload: &[u8]) -> Result<Sample, EmqxError> {
    let message = message(payload)?;
    match message.get("Vin") {
        None | Some(Value::Null) => {}
        Some(Value::String(sent)) if sent == vin.as_str() => {}
        Some(Value::String(sent)) => {
            return Err(EmqxError::Mismatch(format!("Vin {sent:?} differs from the topic's")));
        }
        Some(other) => return Err(EmqxError::Shape(format!("Vin: expected a string, found {}", kind(other)))),
    }
    if let Some(scheme) = raw(&message, "Encrypt", BYTE)?
        && scheme != u64::from(ENCRYPTION_NONE)
    {
        return Err(EmqxError::Encrypted(scheme));
    }
    let data = envelope(&message, "Data")?;
    let infos = match data.get("Infos") {
        Some(Value::Array(infos)) => infos,
        None | Some(Value::Null) => return Err(EmqxError::Shape("Data has no Infos list".to_owned())),
        Some(other) => return Err(EmqxError::Shape(format!("Data.Infos: expected a list, found {}", kind(other)))),
    };
    let report = report(collection_time(data.get("Time"))?, infos)?;
    let command = if reissue { Command::ReissueReport } else { Command::RealtimeReport };
    let frame = Frame {
        edition: Edition::V2016,
        command,
        response: RESPONSE_COMMAND,
        vin: vin.as_str().to_owned(),
        encryption: ENCRYPTION_NONE,
        body: Body::Report(report),
    };
    match gbt32960::report_sample(&frame, vin) {
        Some(sample) => Ok(sample?),
        // A report body always makes a sample or an invalid one.
        None => Err(InvalidSample::new("Infos", "not a report").into()),
    }
}

/// `Time`: the frame's six bytes, year counted from 2000, as sent (Beijing time).
fn collection_time(value: Option<&Value>) -> Result<NaiveDateTime, InvalidSample> {
    let time = match value {
        Some(Value::Object(time)) => time,
        None | Some(Value::Null) => return Err(InvalidSample::new("Time", "missing")),
        Some(other) => return Err(InvalidSample::new("Time", format!("expected an object, found {}", kind(other)))),
    };
    let mut parts = [0u32; 6];
    for (part, key) in parts.iter_mut().zip(["Year", "Month", "Day", "Hour", "Minute", "Second"]) {
        // At most a BYTE: no conversion below can fail.
        *part = u32::try_from(required_raw(time, key, BYTE)?).unwrap_or(u32::MAX);
    }
    let [year, month, day, hour, minute, second] = parts;
    NaiveDate::from_ymd_opt(2000 + i32::try_from(year).unwrap_or(i32::MAX - 2000), month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .ok_or_else(|| InvalidSample::new("Time", format!("{parts:?} is not a date and time")))
}

/// The report of the blocks a sample reads; others are passed over. A block twice would
/// leave us guessing which one is true.
fn report(time: NaiveDateTime, infos: &[Value]) -> Result<Report, InvalidSample> {
    let mut report = Report::new(time);
    let mut temperatures_seen = false;
    for info in infos {
        let info = match info {
            Value::Object(info) => info,
            other => return Err(InvalidSample::new("Infos", format!("expected objects, found {}", kind(other)))),
        };
        let block = match info.get("Type") {
            Some(Value::String(block)) => block.as_str(),
            Some(other) => return Err(InvalidSample::new("Type", format!("expected a string, found {}", kind(other)))),
            None => return Err(InvalidSample::new("Type", "missing")),
        };
        let twice = match block {
            "Vehicle" => report.vehicle.replace(whole_vehicle(info)?).is_some(),
            "Location" => report.position.replace(position(info)?).is_some(),
            "Extreme" => report.extremes.replace(extremes(info)?).is_some(),
            "ChargeableTemp" => {
                report.temperatures = temperatures(info)?;
                std::mem::replace(&mut temperatures_seen, true)
            }
            _ => false,
        };
        if twice {
            return Err(InvalidSample::new("Infos", format!("two {block} blocks in one report")));
        }
    }
    Ok(report)
}

/// A BYTE status or count, `None` for 0xFE (abnormal) and 0xFF (invalid).
fn byte(info: &Map<String, Value>, key: &'static str) -> Result<Option<u8>, InvalidSample> {
    Ok(raw(info, key, BYTE)?.and_then(|v| u8::try_from(v).ok()).filter(|v| *v < 0xFE))
}

/// A WORD or DWORD in units of 1/`per_unit` less `offset`; its two sentinels (0xFFFE and
/// 0xFFFF, 0xFFFFFFFE and 0xFFFFFFFF) are `None`, checked before scaling.
fn scaled(
    info: &Map<String, Value>,
    key: &'static str,
    max: u64,
    per_unit: f64,
    offset: f64,
) -> Result<Option<f64>, InvalidSample> {
    Ok(raw(info, key, max)?.filter(|v| *v < max - 1).map(|v| (v as f64 - offset * per_unit) / per_unit))
}

/// A BYTE temperature in °C (offset 40), sentinels checked before the offset.
fn temperature(raw: u64) -> Option<i16> {
    u8::try_from(raw).ok().filter(|v| *v < 0xFE).map(|v| i16::from(v) - TEMPERATURE_OFFSET_C)
}

fn whole_vehicle(info: &Map<String, Value>) -> Result<WholeVehicle, InvalidSample> {
    Ok(WholeVehicle {
        vehicle_status: byte(info, "Status")?,
        charging_status: byte(info, "Charging")?,
        run_mode: byte(info, "Mode")?,
        speed_kmh: scaled(info, "Speed", WORD, 10.0, 0.0)?,
        odometer_km: scaled(info, "Mileage", DWORD, 10.0, 0.0)?,
        voltage_v: scaled(info, "Voltage", WORD, 10.0, 0.0)?,
        current_a: scaled(info, "Current", WORD, 10.0, CURRENT_OFFSET_A)?,
        soc_pct: byte(info, "SOC")?,
        dcdc_status: byte(info, "DC")?,
        gear: raw(info, "Gear", BYTE)?.and_then(|v| u8::try_from(v).ok()).unwrap_or(0),
        insulation_kohm: raw(info, "Resistance", WORD)?.and_then(|v| u16::try_from(v).ok()).filter(|v| *v < 0xFFFE),
        accelerator_pct: byte(info, "AcceleratorPedal")?,
        brake_pct: byte(info, "BrakePedal")?,
    })
}

/// `Status` bit 0 set: no valid fix; bit 1: south; bit 2: west. Coordinates in 10⁻⁶°.
fn position(info: &Map<String, Value>) -> Result<Position, InvalidSample> {
    let status = required_raw(info, "Status", BYTE)?;
    Ok(Position {
        fix_valid: status & 0b001 == 0,
        south: status & 0b010 != 0,
        west: status & 0b100 != 0,
        coordinate_system: None,
        longitude: scaled(info, "Longitude", DWORD, 1e6, 0.0)?,
        latitude: scaled(info, "Latitude", DWORD, 1e6, 0.0)?,
    })
}

/// The highest and lowest probe temperatures; where they are is not needed for a sample.
fn extremes(info: &Map<String, Value>) -> Result<Extremes, InvalidSample> {
    Ok(Extremes {
        max_voltage_subsystem: None,
        max_voltage_cell: None,
        max_cell_voltage_v: scaled(info, "MaxBatteryVoltage", WORD, 1000.0, 0.0)?,
        min_voltage_subsystem: None,
        min_voltage_cell: None,
        min_cell_voltage_v: scaled(info, "MinBatteryVoltage", WORD, 1000.0, 0.0)?,
        max_temp_subsystem: None,
        max_temp_probe: None,
        max_temp_c: raw(info, "MaxTemp", BYTE)?.and_then(temperature),
        min_temp_subsystem: None,
        min_temp_probe: None,
        min_temp_c: raw(info, "MinTemp", BYTE)?.and_then(temperature),
    })
}

/// `SubSystems`, each with its `ChargeableSubsysNo` and its probes' `ProbesTemp`.
fn temperatures(info: &Map<String, Value>) -> Result<Vec<ProbeTemperatures>, InvalidSample> {
    let subsystems = match info.get("SubSystems") {
        Some(Value::Array(subsystems)) => subsystems,
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(other) => {
            return Err(InvalidSample::new("SubSystems", format!("expected a list, found {}", kind(other))));
        }
    };
    subsystems
        .iter()
        .map(|subsystem| {
            let Value::Object(subsystem) = subsystem else {
                return Err(InvalidSample::new("SubSystems", format!("expected objects, found {}", kind(subsystem))));
            };
            let number = raw(subsystem, "ChargeableSubsysNo", BYTE)?.and_then(|v| u8::try_from(v).ok()).unwrap_or(0);
            let probes: &[Value] = match subsystem.get("ProbesTemp") {
                Some(Value::Array(probes)) => probes,
                None | Some(Value::Null) => &[],
                Some(other) => {
                    return Err(InvalidSample::new("ProbesTemp", format!("expected a list, found {}", kind(other))));
                }
            };
            let probes_c = probes
                .iter()
                .map(|p| match p.as_u64() {
                    Some(v) if v <= BYTE => Ok(temperature(v)),
                    _ => Err(InvalidSample::new("ProbesTemp", format!("{p} is not a raw value of 0..={BYTE}"))),
                })
                .collect::<Result<_, _>>()?;
            Ok(ProbeTemperatures { subsystem: number, probes_c })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use fleet_domain::{DeadLetterReason, SampleSource};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn vin() -> Vin {
        Vin::parse("LSJA24U66NS000001").unwrap()
    }

    fn time() -> Value {
        json!({"Year": 25, "Month": 3, "Day": 1, "Hour": 8, "Minute": 30, "Second": 15})
    }

    fn vehicle() -> Value {
        json!({"Type": "Vehicle", "Status": 1, "Charging": 3, "Mode": 1, "Speed": 425, "Mileage": 123456,
               "Voltage": 3552, "Current": 9877, "SOC": 77, "DC": 1, "Gear": 14, "Resistance": 5000,
               "AcceleratorPedal": 20, "BrakePedal": 0})
    }

    fn location(status: u64, lon: u64, lat: u64) -> Value {
        json!({"Type": "Location", "Status": status, "Longitude": lon, "Latitude": lat})
    }

    fn message(infos: Vec<Value>) -> Value {
        json!({"Cmd": 2, "Encrypt": 1, "Vin": vin().as_str(), "Data": {"Time": time(), "Infos": infos}})
    }

    fn decoded(message: &Value) -> Result<Sample, EmqxError> {
        decode(&vin(), false, message.to_string().as_bytes())
    }

    fn invalid_field(message: &Value) -> &'static str {
        match decoded(message) {
            Err(EmqxError::Invalid(e)) => e.field,
            other => panic!("expected an invalid sample, got {other:?}"),
        }
    }

    #[test]
    fn scales_and_offsets_a_report_as_the_standard_says() {
        let temps = json!({"Type": "ChargeableTemp", "Number": 2, "SubSystems": [
            {"ChargeableSubsysNo": 1, "ProbeNum": 3, "ProbesTemp": [60, 68, 255]},
            {"ChargeableSubsysNo": 2, "ProbeNum": 1, "ProbesTemp": [65]}]});
        let motors = json!({"Type": "DriveMotor", "Number": 0, "Motors": []});
        let s = decoded(&message(vec![vehicle(), location(0, 122_106_800, 30_016_500), temps, motors])).unwrap();
        assert_eq!(s.vin, vin());
        assert_eq!(s.source, SampleSource::Gbt2016);
        // 08:30:15 Beijing time is 00:30:15 UTC.
        assert_eq!(s.ts, Utc.with_ymd_and_hms(2025, 3, 1, 0, 30, 15).unwrap());
        assert_eq!((s.lat, s.lon, s.position_valid), (30.0165, 122.1068, true));
        assert_eq!((s.speed_kmh, s.odometer_km, s.soc_pct), (Some(42.5), Some(12345.6), Some(77.0)));
        // 9877 × 0.1 A − 1000 A: discharging would be positive, this is charging.
        assert_eq!((s.battery_voltage_v, s.battery_current_a), (Some(355.2), Some(-12.3)));
        assert_eq!((s.charging, s.ignition), (Some(false), Some(true)));
        assert_eq!(s.battery_temp_c, Some(28.0), "the hottest probe, 68 − 40");
        assert_eq!((s.heading_deg, s.range_km, s.frame.as_ref()), (None, None, None));
    }

    #[test]
    fn a_reissued_report_is_the_same_sample() {
        let m = message(vec![vehicle(), location(0, 122_106_800, 30_016_500)]);
        let realtime = decoded(&m).unwrap();
        let reissued = decode(&vin(), true, m.to_string().as_bytes()).unwrap();
        assert_eq!(realtime, reissued);
    }

    #[test]
    fn turns_abnormal_and_invalid_values_into_absent_fields_before_scaling() {
        let v = json!({"Type": "Vehicle", "Status": 254, "Charging": 255, "Mode": 1, "Speed": 65534,
                       "Mileage": 4_294_967_295u64, "Voltage": 65535, "Current": 65534, "SOC": 254, "DC": 255,
                       "Gear": 0, "Resistance": 65535});
        let extreme = json!({"Type": "Extreme", "MaxTemp": 254, "MinTemp": 255});
        let s = decoded(&message(vec![v, location(0, 122_000_000, 30_000_000), extreme])).unwrap();
        assert_eq!((s.speed_kmh, s.odometer_km, s.soc_pct), (None, None, None));
        assert_eq!((s.battery_voltage_v, s.battery_current_a, s.battery_temp_c), (None, None, None));
        assert_eq!((s.charging, s.ignition), (None, None));
    }

    #[test]
    fn takes_the_extremes_maximum_when_no_probe_reports() {
        let extreme = json!({"Type": "Extreme", "MaxTemp": 75, "MinTemp": 60});
        let s = decoded(&message(vec![location(0, 122_000_000, 30_000_000), extreme])).unwrap();
        assert_eq!(s.battery_temp_c, Some(35.0));
        assert_eq!(s.speed_kmh, None, "no vehicle block: nothing of it");
    }

    #[test]
    fn keeps_an_invalid_fix_flagged_and_signs_south_and_west() {
        let s = decoded(&message(vec![location(0b111, 70_500_000, 33_250_000)])).unwrap();
        assert!(!s.position_valid);
        assert_eq!((s.lat, s.lon), (-33.25, -70.5));
    }

    #[test]
    fn a_report_without_a_usable_position_is_invalid() {
        assert_eq!(invalid_field(&message(vec![vehicle()])), "lat");
        assert_eq!(invalid_field(&message(vec![location(0, 122_000_000, 0xFFFF_FFFF)])), "lat");
        assert_eq!(invalid_field(&message(vec![location(0, 0xFFFF_FFFE, 30_000_000)])), "lon");
        assert_eq!(invalid_field(&message(vec![location(0, 122_000_000, 95_000_000)])), "lat");
        assert_eq!(invalid_field(&message(vec![json!({"Type": "Location", "Longitude": 1, "Latitude": 1})])), "Status");
    }

    #[test]
    fn rejects_values_the_wire_could_not_carry_or_the_sample_cannot_hold() {
        let with = |key: &str, value: Value| {
            let mut v = vehicle();
            v[key] = value;
            message(vec![v, location(0, 122_000_000, 30_000_000)])
        };
        assert_eq!(invalid_field(&with("Speed", json!(65536))), "Speed");
        assert_eq!(invalid_field(&with("Speed", json!(-1))), "Speed");
        assert_eq!(invalid_field(&with("Speed", json!(42.5))), "Speed");
        assert_eq!(invalid_field(&with("SOC", json!("77"))), "SOC");
        assert_eq!(invalid_field(&with("SOC", json!(101))), "soc_pct");
        assert_eq!(invalid_field(&with("Speed", json!(3500))), "speed_kmh");
        let mut bad_probe = message(vec![location(0, 122_000_000, 30_000_000)]);
        bad_probe["Data"]["Infos"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Type": "ChargeableTemp", "SubSystems": [{"ChargeableSubsysNo": 1, "ProbesTemp": [300]}]}));
        assert_eq!(invalid_field(&bad_probe), "ProbesTemp");
    }

    #[test]
    fn rejects_a_bad_time_a_missing_type_and_a_block_sent_twice() {
        let mut m = message(vec![location(0, 122_000_000, 30_000_000)]);
        m["Data"]["Time"]["Month"] = json!(13);
        assert_eq!(invalid_field(&m), "Time");
        m["Data"]["Time"] = json!(null);
        assert_eq!(invalid_field(&m), "Time");
        m["Data"]["Time"] = json!({"Year": 25, "Month": 3, "Day": 1, "Hour": 8, "Minute": 30});
        assert_eq!(invalid_field(&m), "Second");
        assert_eq!(invalid_field(&message(vec![json!({"Speed": 1})])), "Type");
        assert_eq!(invalid_field(&message(vec![json!(7)])), "Infos");
        let twice = message(vec![location(0, 122_000_000, 30_000_000), location(0, 121_000_000, 30_000_000)]);
        assert_eq!(invalid_field(&twice), "Infos");
    }

    #[test]
    fn ignores_blocks_a_sample_has_no_field_for_and_unknown_fields() {
        let alarm = json!({"Type": "Alarm", "MaxAlarmLevel": 1, "GeneralAlarmFlag": 3, "FaultEngineList": ["006F"]});
        let engine = json!({"Type": "Engine", "Status": 1, "CrankshaftSpeed": 2000, "FuelConsumption": 200});
        let mut m =
            message(vec![alarm, engine, json!({"Type": "Vendor", "X": [1]}), location(0, 122_000_000, 30_000_000)]);
        m["Extra"] = json!("ignored");
        assert!(decoded(&m).is_ok());
    }

    #[test]
    fn rejects_a_message_without_the_gateway_envelope_as_malformed() {
        for bad in [
            json!([1]),
            json!({"Vin": vin().as_str()}),
            json!({"Data": []}),
            json!({"Data": {"Time": time()}}),
            json!({"Data": {"Time": time(), "Infos": {}}}),
            json!({"Vin": 17, "Data": {"Time": time(), "Infos": []}}),
        ] {
            let err = decoded(&bad).unwrap_err();
            assert_eq!(err.reason(), DeadLetterReason::MalformedJson, "{bad}: {err}");
        }
        for bad in [&b"##\x02"[..], b"", b"{} trailing"] {
            assert_eq!(decode(&vin(), false, bad).unwrap_err().reason(), DeadLetterReason::MalformedJson);
        }
    }

    #[test]
    fn rejects_a_vin_other_than_the_topics_and_an_encrypted_data_unit() {
        let mut m = message(vec![location(0, 122_000_000, 30_000_000)]);
        m["Vin"] = json!("LSJA24U66NS000002");
        assert_eq!(decoded(&m).unwrap_err().reason(), DeadLetterReason::VinMismatch);
        m["Vin"] = json!(null);
        assert!(decoded(&m).is_ok(), "the topic names the vehicle");
        for scheme in [2, 3] {
            m["Encrypt"] = json!(scheme);
            assert_eq!(decoded(&m).unwrap_err().reason(), DeadLetterReason::Encrypted);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&vin(), false, &bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_field_values(
            block in prop::sample::select(vec!["Vehicle", "Location", "Extreme", "ChargeableTemp", "Alarm"]),
            key in prop::sample::select(vec!["Status", "Speed", "Mileage", "Current", "SOC", "Longitude",
                                              "Latitude", "MaxTemp", "SubSystems", "Type"]),
            value in prop_oneof![
                Just(json!(null)),
                any::<bool>().prop_map(|b| json!(b)),
                any::<i64>().prop_map(|n| json!(n)),
                any::<u64>().prop_map(|n| json!(n)),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
                "[a-z0-9]{0,10}".prop_map(|s| json!(s)),
                Just(json!([{"ChargeableSubsysNo": 1, "ProbesTemp": [1, 2000, "x"]}])),
            ],
            time_part in prop::sample::select(vec!["Year", "Month", "Day", "Hour", "Minute", "Second"]),
            time_value in any::<i64>(),
        ) {
            let mut info = json!({"Type": block, "Status": 0, "Longitude": 122_000_000, "Latitude": 30_000_000});
            info[key] = value;
            let mut m = message(vec![info, location(0, 122_000_000, 30_000_000)]);
            m["Data"]["Time"][time_part] = json!(time_value);
            let _ = decoded(&m);
        }
    }
}
