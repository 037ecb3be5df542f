//! The JSON telemetry format (docs/mqtt.md): one sample object, or an array of up to
//! [`MAX_BATCH`] of them from a vehicle that was offline.
//!
//! A message that is not JSON, or not an object or a non-empty array of acceptable size, is
//! rejected whole. Inside a batch each element stands alone: a missing or ill-typed field, or a
//! value out of range, makes that one sample invalid and leaves the others alone.

use chrono::{DateTime, Utc};
use fleet_domain::{DeadLetterReason, InvalidSample, Sample, SampleSource, Vin};
use serde_json::{Map, Value};

/// The most samples one message may carry.
pub const MAX_BATCH: usize = 1000;

/// Why a whole JSON message was rejected.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("expected a sample object or an array of them, found {0}")]
    NotObjectOrArray(&'static str),
    #[error("the array holds no samples")]
    EmptyBatch,
    #[error("a batch holds at most {MAX_BATCH} samples, this one holds {0}")]
    TooManySamples(usize),
}

impl JsonError {
    /// The reason the message is kept under in the dead letters.
    pub fn reason(&self) -> DeadLetterReason {
        match self {
            Self::TooManySamples(_) => DeadLetterReason::TooLarge,
            Self::NotJson(_) | Self::NotObjectOrArray(_) | Self::EmptyBatch => DeadLetterReason::MalformedJson,
        }
    }
}

/// Decodes a JSON payload published under `vin`'s topic.
///
/// Each element: Ok(sample) or Err(InvalidSample) (missing/ill-typed required field, out of
/// range per [`Sample::validate`], bad ts).
pub fn decode(vin: &Vin, payload: &[u8]) -> Result<Vec<Result<Sample, InvalidSample>>, JsonError> {
    match serde_json::from_slice::<Value>(payload)? {
        Value::Object(object) => Ok(vec![sample(vin, &object)]),
        Value::Array(items) if items.is_empty() => Err(JsonError::EmptyBatch),
        Value::Array(items) if items.len() > MAX_BATCH => Err(JsonError::TooManySamples(items.len())),
        Value::Array(items) => Ok(items
            .iter()
            .map(|item| match item {
                Value::Object(object) => sample(vin, object),
                other => Err(InvalidSample::new("sample", format!("expected an object, found {}", kind(other)))),
            })
            .collect()),
        other => Err(JsonError::NotObjectOrArray(kind(&other))),
    }
}

/// One sample object, checked field by field in a fixed order, then for ranges.
fn sample(vin: &Vin, object: &Map<String, Value>) -> Result<Sample, InvalidSample> {
    let ts = timestamp(object.get("ts"))?;
    let lat = required_number(object, "lat")?;
    let lon = required_number(object, "lon")?;
    let mut sample = Sample::at(vin.clone(), ts, lat, lon, SampleSource::Json);
    sample.speed_kmh = optional_number(object, "speed_kmh")?;
    sample.heading_deg = optional_number(object, "heading_deg")?;
    sample.soc_pct = optional_number(object, "soc_pct")?;
    sample.odometer_km = optional_number(object, "odometer_km")?;
    sample.charging = optional_bool(object, "charging")?;
    sample.ignition = optional_bool(object, "ignition")?;
    sample.battery_voltage_v = optional_number(object, "battery_voltage_v")?;
    sample.battery_current_a = optional_number(object, "battery_current_a")?;
    sample.battery_temp_c = optional_number(object, "battery_temp_c")?;
    sample.range_km = optional_number(object, "range_km")?;
    sample.validate()?;
    Ok(sample)
}

/// `ts`: an RFC 3339 string with an offset, or integer epoch milliseconds.
fn timestamp(value: Option<&Value>) -> Result<DateTime<Utc>, InvalidSample> {
    match value {
        None | Some(Value::Null) => Err(InvalidSample::new("ts", "missing")),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| InvalidSample::new("ts", format!("{s:?} is not RFC 3339 with an offset: {e}"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| InvalidSample::new("ts", format!("{n} is not an integer epoch-millisecond time"))),
        Some(other) => Err(InvalidSample::new("ts", format!("expected a string or an integer, found {}", kind(other)))),
    }
}

fn required_number(object: &Map<String, Value>, field: &'static str) -> Result<f64, InvalidSample> {
    optional_number(object, field)?.ok_or_else(|| InvalidSample::new(field, "missing"))
}

/// An absent field and an explicit `null` both mean "not reported".
fn optional_number(object: &Map<String, Value>, field: &'static str) -> Result<Option<f64>, InvalidSample> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_f64().map(Some).ok_or_else(|| InvalidSample::new(field, format!("{n} is not representable")))
        }
        Some(other) => Err(InvalidSample::new(field, format!("expected a number, found {}", kind(other)))),
    }
}

fn optional_bool(object: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, InvalidSample> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(InvalidSample::new(field, format!("expected true or false, found {}", kind(other)))),
    }
}

/// A JSON value's kind, for messages (the EMQX gateways' decoders say it the same way).
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn vin() -> Vin {
        Vin::parse("LSJA24U66NS000001").unwrap()
    }

    fn one(payload: &str) -> Result<Sample, InvalidSample> {
        let mut samples = decode(&vin(), payload.as_bytes()).expect("message is accepted");
        assert_eq!(samples.len(), 1);
        samples.remove(0)
    }

    #[test]
    fn decodes_a_single_sample_with_every_field() {
        let s = one(r#"{"ts":"2025-03-01T08:30:00+08:00","lat":30.0123,"lon":122.1,"speed_kmh":42.5,
                "heading_deg":90,"soc_pct":77,"odometer_km":12345.6,"charging":false,"ignition":true,
                "battery_voltage_v":355.2,"battery_current_a":-12.5,"battery_temp_c":28,"range_km":210}"#)
        .unwrap();
        assert_eq!(s.vin, vin());
        assert_eq!(s.ts, Utc.with_ymd_and_hms(2025, 3, 1, 0, 30, 0).unwrap());
        assert_eq!((s.lat, s.lon), (30.0123, 122.1));
        assert!(s.position_valid);
        assert_eq!(s.speed_kmh, Some(42.5));
        assert_eq!(s.heading_deg, Some(90.0));
        assert_eq!(s.soc_pct, Some(77.0));
        assert_eq!(s.odometer_km, Some(12345.6));
        assert_eq!(s.charging, Some(false));
        assert_eq!(s.ignition, Some(true));
        assert_eq!(s.battery_voltage_v, Some(355.2));
        assert_eq!(s.battery_current_a, Some(-12.5));
        assert_eq!(s.battery_temp_c, Some(28.0));
        assert_eq!(s.range_km, Some(210.0));
        assert_eq!(s.source, SampleSource::Json);
        assert_eq!(s.frame, None);
    }

    #[test]
    fn leaves_absent_and_null_optional_fields_empty_and_ignores_unknown_fields() {
        let s = one(r#"{"ts":"2025-03-01T00:30:00Z","lat":30,"lon":122,"speed_kmh":null,"firmware":"1.2"}"#).unwrap();
        assert_eq!(s.speed_kmh, None);
        assert_eq!(s.soc_pct, None);
        assert_eq!(s.charging, None);
    }

    #[test]
    fn accepts_integer_epoch_milliseconds_as_ts() {
        let s = one(r#"{"ts":1740789000123,"lat":30,"lon":122}"#).unwrap();
        assert_eq!(s.ts, DateTime::from_timestamp_millis(1_740_789_000_123).unwrap());
    }

    #[test]
    fn rejects_fractional_epoch_and_offsetless_ts() {
        assert_eq!(one(r#"{"ts":1740789000123.5,"lat":30,"lon":122}"#).unwrap_err().field, "ts");
        assert_eq!(one(r#"{"ts":"2025-03-01T00:30:00","lat":30,"lon":122}"#).unwrap_err().field, "ts");
        assert_eq!(one(r#"{"ts":true,"lat":30,"lon":122}"#).unwrap_err().field, "ts");
    }

    #[test]
    fn rejects_a_sample_missing_a_required_field() {
        assert_eq!(one(r#"{"lat":30,"lon":122}"#).unwrap_err().field, "ts");
        assert_eq!(one(r#"{"ts":1740789000000,"lon":122}"#).unwrap_err().field, "lat");
        assert_eq!(one(r#"{"ts":1740789000000,"lat":30,"lon":null}"#).unwrap_err().field, "lon");
    }

    #[test]
    fn rejects_a_sample_with_a_field_of_the_wrong_type() {
        assert_eq!(one(r#"{"ts":1740789000000,"lat":"30","lon":122}"#).unwrap_err().field, "lat");
        assert_eq!(one(r#"{"ts":1740789000000,"lat":30,"lon":122,"soc_pct":"80"}"#).unwrap_err().field, "soc_pct");
        assert_eq!(one(r#"{"ts":1740789000000,"lat":30,"lon":122,"charging":1}"#).unwrap_err().field, "charging");
        assert_eq!(one(r#"{"ts":1740789000000,"lat":30,"lon":122,"ignition":"yes"}"#).unwrap_err().field, "ignition");
    }

    #[test]
    fn rejects_a_sample_with_a_value_out_of_range() {
        assert_eq!(one(r#"{"ts":1740789000000,"lat":30,"lon":122,"soc_pct":101}"#).unwrap_err().field, "soc_pct");
        assert_eq!(one(r#"{"ts":1740789000000,"lat":95,"lon":122}"#).unwrap_err().field, "lat");
        assert_eq!(one(r#"{"ts":0,"lat":30,"lon":122}"#).unwrap_err().field, "ts");
    }

    #[test]
    fn decodes_a_batch_in_order() {
        let samples =
            decode(&vin(), br#"[{"ts":1740789000000,"lat":30,"lon":122},{"ts":1740789010000,"lat":30.1,"lon":122.1}]"#)
                .unwrap();
        let samples: Vec<Sample> = samples.into_iter().map(Result::unwrap).collect();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[1].lat, 30.1);
        assert!(samples[0].ts < samples[1].ts);
    }

    #[test]
    fn keeps_the_valid_samples_of_a_batch_with_one_bad_element() {
        let samples = decode(
            &vin(),
            br#"[{"ts":1740789000000,"lat":30,"lon":122},{"ts":1740789005000,"lat":30,"lon":122,"speed_kmh":"fast"},
                 7,{"ts":1740789010000,"lat":30.1,"lon":122.1}]"#,
        )
        .unwrap();
        assert_eq!(samples.len(), 4);
        assert!(samples[0].is_ok());
        assert_eq!(samples[1].as_ref().unwrap_err().field, "speed_kmh");
        assert_eq!(samples[2].as_ref().unwrap_err().field, "sample");
        assert!(samples[3].is_ok());
    }

    #[test]
    fn rejects_a_batch_over_the_limit_and_an_empty_one() {
        let element = r#"{"ts":1740789000000,"lat":30,"lon":122}"#;
        let at_limit = format!("[{}]", vec![element; MAX_BATCH].join(","));
        assert_eq!(decode(&vin(), at_limit.as_bytes()).unwrap().len(), MAX_BATCH);
        let over = format!("[{}]", vec![element; MAX_BATCH + 1].join(","));
        let err = decode(&vin(), over.as_bytes()).unwrap_err();
        assert!(matches!(err, JsonError::TooManySamples(1001)));
        assert_eq!(err.reason(), DeadLetterReason::TooLarge);
        assert!(matches!(decode(&vin(), b"[]").unwrap_err(), JsonError::EmptyBatch));
    }

    #[test]
    fn rejects_a_payload_that_is_not_json_or_not_a_sample() {
        let err = decode(&vin(), b"\x23\x23\x02\xfe").unwrap_err();
        assert!(matches!(err, JsonError::NotJson(_)));
        assert_eq!(err.reason(), DeadLetterReason::MalformedJson);
        assert!(matches!(decode(&vin(), b"").unwrap_err(), JsonError::NotJson(_)));
        assert!(matches!(decode(&vin(), b"{} trailing").unwrap_err(), JsonError::NotJson(_)));
        assert!(matches!(decode(&vin(), b"42").unwrap_err(), JsonError::NotObjectOrArray("a number")));
        assert!(matches!(decode(&vin(), b"\"x\"").unwrap_err(), JsonError::NotObjectOrArray(_)));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&vin(), &bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_json_shaped_text(text in r#"[\[\]{}",:0-9a-z_ .eE+-]{0,200}"#) {
            let _ = decode(&vin(), text.as_bytes());
        }

        #[test]
        fn never_panics_on_objects_with_arbitrary_field_values(
            key in prop::sample::select(vec!["ts", "lat", "lon", "speed_kmh", "charging", "soc_pct"]),
            value in prop_oneof![
                Just("null".to_owned()),
                any::<bool>().prop_map(|b| b.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|f| format!("{f:e}")),
                "[a-z0-9:+-]{0,30}".prop_map(|s| format!("{s:?}")),
            ],
        ) {
            let payload = format!(r#"{{"ts":1740789000000,"lat":30,"lon":122,"{key}":{value}}}"#);
            let _ = decode(&vin(), payload.as_bytes());
        }
    }
}
