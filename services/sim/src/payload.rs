//! What simulated cars put on the wire: topics, JSON telemetry objects and batches (the
//! shapes of docs/mqtt.md), and Beijing time for GB/T 32960 session frames.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use fleet_domain::{Sample, Vin};
use serde::Serialize;

/// Most samples in one JSON batch (docs/mqtt.md).
pub const MAX_BATCH_SAMPLES: usize = 1_000;
/// Largest JSON payload the simulator sends; well under ingest's 256 KiB limit.
pub const MAX_PAYLOAD_BYTES: usize = 200 * 1024;

/// UTC+8, the offset every simulated car writes its timestamps with.
fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3_600).expect("UTC+8 is a valid offset")
}

/// Beijing wall-clock time, as GB/T 32960 frames carry it.
pub fn beijing_naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&beijing()).naive_local()
}

pub fn json_topic(vin: &Vin) -> String {
    format!("fleet/v1/vehicles/{vin}/telemetry")
}

pub fn gbt_topic(vin: &Vin) -> String {
    format!("fleet/v1/vehicles/{vin}/gbt32960")
}

/// One sample as the JSON telemetry format spells it.
#[derive(Debug, Serialize)]
struct JsonSample {
    ts: String,
    lat: f64,
    lon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed_kmh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heading_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    soc_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    odometer_km: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charging: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignition: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_voltage_v: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_current_a: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_temp_c: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_km: Option<f64>,
}

impl From<&Sample> for JsonSample {
    fn from(s: &Sample) -> Self {
        Self {
            ts: s.ts.with_timezone(&beijing()).to_rfc3339_opts(SecondsFormat::Millis, false),
            lat: s.lat,
            lon: s.lon,
            speed_kmh: s.speed_kmh,
            heading_deg: s.heading_deg,
            soc_pct: s.soc_pct,
            odometer_km: s.odometer_km,
            charging: s.charging,
            ignition: s.ignition,
            battery_voltage_v: s.battery_voltage_v,
            battery_current_a: s.battery_current_a,
            battery_temp_c: s.battery_temp_c,
            range_km: s.range_km,
        }
    }
}

/// A live sample as one JSON object.
pub fn json_object(sample: &Sample) -> Vec<u8> {
    serde_json::to_vec(&JsonSample::from(sample)).expect("plain data serializes")
}

/// The longest prefix of `samples` (at most [`MAX_BATCH_SAMPLES`], at least one) that fits
/// one JSON array payload under [`MAX_PAYLOAD_BYTES`]: how many it holds and the payload.
pub fn json_batch(samples: &[Sample]) -> (usize, Vec<u8>) {
    let mut n = samples.len().min(MAX_BATCH_SAMPLES);
    loop {
        let batch: Vec<JsonSample> = samples[..n].iter().map(JsonSample::from).collect();
        let payload = serde_json::to_vec(&batch).expect("plain data serializes");
        if payload.len() <= MAX_PAYLOAD_BYTES || n <= 1 {
            return (n, payload);
        }
        n = n * MAX_PAYLOAD_BYTES / payload.len();
        n = n.max(1);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use fleet_domain::SampleSource;

    use super::*;

    fn sample(i: i64) -> Sample {
        let vin = Vin::parse("LZSEVS1M0SZ000001").unwrap();
        let ts = Utc.with_ymd_and_hms(2025, 11, 26, 2, 0, 0).unwrap() + chrono::TimeDelta::seconds(5 * i);
        Sample {
            speed_kmh: Some(42.5),
            heading_deg: Some(101.3),
            soc_pct: Some(77.7),
            odometer_km: Some(12_345.6),
            charging: Some(false),
            ignition: Some(true),
            battery_voltage_v: Some(385.2),
            battery_current_a: Some(-25.3),
            battery_temp_c: Some(24.5),
            range_km: Some(345.6),
            ..Sample::at(vin, ts, 30.019123, 122.106456, SampleSource::Json)
        }
    }

    #[test]
    fn writes_every_field_with_a_beijing_offset() {
        let v: serde_json::Value = serde_json::from_slice(&json_object(&sample(0))).unwrap();
        assert_eq!(v["ts"], "2025-11-26T10:00:00.000+08:00");
        assert_eq!(v["lat"], 30.019123);
        assert_eq!(v["lon"], 122.106456);
        for field in [
            "speed_kmh",
            "heading_deg",
            "soc_pct",
            "odometer_km",
            "charging",
            "ignition",
            "battery_voltage_v",
            "battery_current_a",
            "battery_temp_c",
            "range_km",
        ] {
            assert!(!v[field].is_null(), "{field}");
        }
        let ts = DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap()).unwrap();
        assert_eq!(ts.with_timezone(&Utc), sample(0).ts);
    }

    #[test]
    fn batches_hold_at_most_a_thousand_samples_and_fit_the_size_limit() {
        let samples: Vec<Sample> = (0..2_500).map(sample).collect();
        let (n, payload) = json_batch(&samples);
        assert!(n <= MAX_BATCH_SAMPLES && n > 500, "{n}");
        assert!(payload.len() <= MAX_PAYLOAD_BYTES);
        let v: Vec<serde_json::Value> = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v.len(), n);
        assert_eq!(json_batch(&samples[..3]).0, 3);
    }
}
