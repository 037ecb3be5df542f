//! The JSON EMQX's JT/T 808 gateway publishes on `jt808/{client id}/{phone}/up` (docs/emqx.md):
//! `{"header": {"msg_id", "encrypt", "phone", "msg_sn", …}, "body": {…}}` for every message a
//! terminal sends. Only location reports make samples: 0x0200 (the body is one location) and
//! the batch upload 0x0704 (its `location` list). Registrations, authentications,
//! heartbeats and the rest pass on the same topic and are accepted and passed over.
//!
//! A location's fields are the message's raw integers: `alarm` and `status` words,
//! `latitude`/`longitude` in 10⁻⁶° (the sign in the status word), `altitude` in metres,
//! `speed` in 0.1 km/h, `direction` in degrees, `time` as the BCD digits `YYMMDDhhmmss`
//! (Beijing time), and `extra.mileage` (additional item 0x01) in 0.1 km. They become the same
//! location a binary report decodes to, and that location the same sample
//! ([`fleet_jt808::location_sample`]); the other additional items are not read.

use chrono::{NaiveDate, NaiveDateTime};
use fleet_domain::{InvalidSample, Sample, Vin};
use fleet_jt808::{Location, id};
use serde_json::{Map, Value};

use super::emqx_json::{DWORD, EmqxError, WORD, envelope, message, raw, required_raw};
use super::json::kind;

/// What one message of the up topic holds for ingest.
#[derive(Debug, Clone, PartialEq)]
pub enum Upload {
    /// Any message but a location report: nothing to store.
    Other { msg_id: u64 },
    /// The locations of a 0x0200 report (one) or a 0x0704 batch, each valid or not on its
    /// own: one bad item leaves the others alone.
    Locations(Vec<Result<Location, InvalidSample>>),
}

/// Reads a message published under the terminal `topic_phone`'s topic.
///
/// Rejected whole: a payload that is not a JSON object with a `header` holding the
/// `msg_id`; and for a location report, a `header.phone` other than the topic's (compared
/// without the leading zeros of BCD padding), an encrypted body, or a `body` (for a batch,
/// its `location` list) of the wrong shape.
pub fn decode(topic_phone: &str, payload: &[u8]) -> Result<Upload, EmqxError> {
    let message = message(payload)?;
    let header = envelope(&message, "header")?;
    let msg_id = match header.get("msg_id").and_then(Value::as_u64) {
        Some(msg_id) if msg_id <= WORD => msg_id,
        _ => return Err(EmqxError::Shape("header.msg_id: expected a message id (a WORD)".to_owned())),
    };
    if msg_id != u64::from(id::LOCATION) && msg_id != u64::from(id::LOCATION_BATCH) {
        return Ok(Upload::Other { msg_id });
    }
    check_phone(header, topic_phone)?;
    if let Some(scheme) = raw(header, "encrypt", WORD)?
        && scheme != 0
    {
        return Err(EmqxError::Encrypted(scheme));
    }
    let body = envelope(&message, "body")?;
    if msg_id == u64::from(id::LOCATION) {
        return Ok(Upload::Locations(vec![location(body)]));
    }
    match body.get("location") {
        Some(Value::Array(items)) => Ok(Upload::Locations(
            items
                .iter()
                .map(|item| match item {
                    Value::Object(item) => location(item),
                    other => Err(InvalidSample::new("location", format!("expected an object, found {}", kind(other)))),
                })
                .collect(),
        )),
        None | Some(Value::Null) => Err(EmqxError::Shape("the batch's body has no location list".to_owned())),
        Some(other) => Err(EmqxError::Shape(format!("body.location: expected a list, found {}", kind(other)))),
    }
}

/// The samples of the vehicle `vin` (whose terminal the topic names) for its locations.
pub fn samples(vin: &Vin, locations: Vec<Result<Location, InvalidSample>>) -> Vec<Result<Sample, InvalidSample>> {
    locations.into_iter().map(|l| l.and_then(|l| fleet_jt808::location_sample(&l, vin))).collect()
}

/// The phone in the header, when there is one, is the topic's. The gateway writes it as
/// the BCD digits (a string); a number is taken too.
fn check_phone(header: &Map<String, Value>, topic_phone: &str) -> Result<(), EmqxError> {
    let sent = match header.get("phone") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(phone)) => phone.clone(),
        Some(Value::Number(phone)) => phone.to_string(),
        Some(other) => return Err(EmqxError::Shape(format!("header.phone: expected digits, found {}", kind(other)))),
    };
    if sent.trim_start_matches('0') == topic_phone.trim_start_matches('0') {
        Ok(())
    } else {
        Err(EmqxError::Mismatch(format!("header.phone {sent:?} differs from the topic's")))
    }
}

/// One location: the fixed fields (`alarm` and `altitude` may be left out, as 0) and the
/// mileage additional item.
fn location(body: &Map<String, Value>) -> Result<Location, InvalidSample> {
    let word = |key: &'static str| -> Result<u16, InvalidSample> {
        // At most a WORD, so the conversion holds.
        Ok(u16::try_from(required_raw(body, key, WORD)?).unwrap_or(u16::MAX))
    };
    let dword = |key: &'static str| -> Result<u32, InvalidSample> {
        Ok(u32::try_from(required_raw(body, key, DWORD)?).unwrap_or(u32::MAX))
    };
    let mileage = match body.get("extra") {
        None | Some(Value::Null) => None,
        Some(Value::Object(extra)) => raw(extra, "mileage", DWORD)?.and_then(|m| u32::try_from(m).ok()),
        Some(other) => return Err(InvalidSample::new("extra", format!("expected an object, found {}", kind(other)))),
    };
    Ok(Location {
        alarm: raw(body, "alarm", DWORD)?.and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
        status: dword("status")?,
        latitude_e6: dword("latitude")?,
        longitude_e6: dword("longitude")?,
        altitude_m: raw(body, "altitude", WORD)?.and_then(|a| u16::try_from(a).ok()).unwrap_or(0),
        speed: word("speed")?,
        direction: word("direction")?,
        time: bcd_time(body.get("time"))?,
        mileage,
        extras: Vec::new(),
    })
}

/// `time`: the six BCD bytes as their twelve digits, `YYMMDDhhmmss`, year counted from 2000.
fn bcd_time(value: Option<&Value>) -> Result<NaiveDateTime, InvalidSample> {
    let digits = match value {
        Some(Value::String(digits)) => digits,
        None | Some(Value::Null) => return Err(InvalidSample::new("time", "missing")),
        Some(other) => return Err(InvalidSample::new("time", format!("expected a string, found {}", kind(other)))),
    };
    let bad = || InvalidSample::new("time", format!("{digits:?} is not a YYMMDDhhmmss time"));
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let pair = |i: usize| u32::from(digits.as_bytes()[i] - b'0') * 10 + u32::from(digits.as_bytes()[i + 1] - b'0');
    NaiveDate::from_ymd_opt(2000 + pair(0) as i32, pair(2), pair(4))
        .and_then(|d| d.and_hms_opt(pair(6), pair(8), pair(10)))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use fleet_domain::{DeadLetterReason, SampleSource};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const PHONE: &str = "13912345678";

    fn vin() -> Vin {
        Vin::parse("LSJA24U66NS000001").unwrap()
    }

    /// Zhoushan, north and east, ACC on, fixed, 36.5 km/h heading 84°, 12345.6 km.
    fn location_body() -> Value {
        json!({"alarm": 0, "status": 0b11, "latitude": 30_016_500, "longitude": 122_106_800, "altitude": 12,
               "speed": 365, "direction": 84, "time": "250301083015",
               "extra": {"mileage": 123_456, "rssi": 25, "gnss_sat_num": 9}})
    }

    fn message(msg_id: u16, body: Value) -> Value {
        json!({"header": {"msg_id": msg_id, "encrypt": 0, "len": 40, "phone": format!("0{PHONE}"), "msg_sn": 7},
               "body": body})
    }

    fn read(message: &Value) -> Result<Upload, EmqxError> {
        decode(PHONE, message.to_string().as_bytes())
    }

    fn sampled(message: &Value) -> Vec<Result<Sample, InvalidSample>> {
        match read(message).expect("the message is accepted") {
            Upload::Locations(locations) => samples(&vin(), locations),
            other => panic!("expected locations, got {other:?}"),
        }
    }

    fn one(message: &Value) -> Result<Sample, InvalidSample> {
        let mut samples = sampled(message);
        assert_eq!(samples.len(), 1);
        samples.remove(0)
    }

    #[test]
    fn scales_a_location_report_as_the_standard_says() {
        let s = one(&message(id::LOCATION, location_body())).unwrap();
        assert_eq!((s.vin.clone(), s.source), (vin(), SampleSource::Jt808));
        // 08:30:15 Beijing time is 00:30:15 UTC.
        assert_eq!(s.ts, Utc.with_ymd_and_hms(2025, 3, 1, 0, 30, 15).unwrap());
        assert_eq!((s.lat, s.lon, s.position_valid), (30.0165, 122.1068, true));
        assert_eq!((s.speed_kmh, s.heading_deg), (Some(36.5), Some(84.0)));
        assert_eq!((s.odometer_km, s.ignition), (Some(12345.6), Some(true)));
        assert_eq!((s.soc_pct, s.battery_voltage_v), (None, None));
    }

    #[test]
    fn signs_south_and_west_and_keeps_a_position_without_a_fix_flagged() {
        let mut body = location_body();
        body["status"] = json!(0b1100);
        let s = one(&message(id::LOCATION, body)).unwrap();
        assert_eq!((s.lat, s.lon), (-30.0165, -122.1068));
        assert!(!s.position_valid, "status bit 1 clear: no fix");
        assert_eq!(s.ignition, Some(false));
    }

    #[test]
    fn reads_every_location_of_a_batch_keeping_the_valid_ones() {
        let mut late = location_body();
        late["time"] = json!("250301083045");
        let mut off_the_map = location_body();
        off_the_map["latitude"] = json!(95_000_000);
        let body = json!({"type": 1, "length": 4, "location": [location_body(), off_the_map, 7, late]});
        let samples = sampled(&message(id::LOCATION_BATCH, body));
        assert_eq!(samples.len(), 4);
        assert!(samples[0].is_ok());
        assert_eq!(samples[1].as_ref().unwrap_err().field, "lat");
        assert_eq!(samples[2].as_ref().unwrap_err().field, "location");
        assert_eq!(samples[3].as_ref().unwrap().ts, Utc.with_ymd_and_hms(2025, 3, 1, 0, 30, 45).unwrap());
        let empty = sampled(&message(id::LOCATION_BATCH, json!({"type": 0, "length": 0, "location": []})));
        assert!(empty.is_empty());
    }

    #[test]
    fn passes_over_messages_that_are_not_locations() {
        for (msg_id, body) in [
            (0x0002, json!({})),
            (0x0100, json!({"province": 33, "city": 900, "license_number": "浙L"})),
            (0x0102, json!({"code": "abc"})),
            (0x0201, json!({"seq": 1, "params": location_body()})),
            (0x0900, json!({"type": 1, "data": "AAE="})),
        ] {
            assert_eq!(read(&message(msg_id, body)).unwrap(), Upload::Other { msg_id: u64::from(msg_id) });
        }
        let no_body = json!({"header": {"msg_id": 2, "phone": "1"}});
        assert_eq!(read(&no_body).unwrap(), Upload::Other { msg_id: 2 }, "whoever the header names");
    }

    #[test]
    fn leaves_out_what_was_not_reported_and_refuses_what_the_wire_could_not_carry() {
        let with = |key: &str, value: Value| {
            let mut body = location_body();
            body[key] = value;
            one(&message(id::LOCATION, body))
        };
        let s = with("extra", json!(null)).unwrap();
        assert_eq!(s.odometer_km, None);
        assert!(with("alarm", json!(null)).is_ok(), "alarm and altitude default to 0");
        assert_eq!(with("speed", json!(65_536)).unwrap_err().field, "speed");
        assert_eq!(with("speed", json!(4000)).unwrap_err().field, "speed_kmh");
        assert_eq!(with("status", json!("3")).unwrap_err().field, "status");
        assert_eq!(with("latitude", json!(null)).unwrap_err().field, "latitude");
        assert_eq!(with("longitude", json!(-1)).unwrap_err().field, "longitude");
        assert_eq!(with("direction", json!(1.5)).unwrap_err().field, "direction");
        assert_eq!(with("extra", json!({"mileage": "x"})).unwrap_err().field, "mileage");
        assert_eq!(with("extra", json!([1])).unwrap_err().field, "extra");
    }

    #[test]
    fn rejects_a_time_that_is_not_twelve_digits_of_a_real_date() {
        for bad in [json!("2503010830"), json!("25030108301a"), json!("251301083015"), json!(250301083015u64)] {
            let mut body = location_body();
            body["time"] = bad.clone();
            assert_eq!(one(&message(id::LOCATION, body)).unwrap_err().field, "time", "{bad}");
        }
    }

    #[test]
    fn compares_the_header_phone_without_its_leading_zeros() {
        let mut m = message(id::LOCATION, location_body());
        m["header"]["phone"] = json!("000013912345678");
        assert!(read(&m).is_ok());
        m["header"]["phone"] = json!(13_912_345_678u64);
        assert!(read(&m).is_ok(), "a number is taken as its digits");
        m["header"]["phone"] = json!("13912345679");
        assert_eq!(read(&m).unwrap_err().reason(), DeadLetterReason::VinMismatch);
        m["header"]["phone"] = json!(null);
        assert!(read(&m).is_ok(), "the topic names the terminal");
    }

    #[test]
    fn rejects_an_encrypted_location_and_a_message_without_the_envelope() {
        let mut m = message(id::LOCATION, location_body());
        m["header"]["encrypt"] = json!(1);
        assert_eq!(read(&m).unwrap_err().reason(), DeadLetterReason::Encrypted);
        for bad in [
            json!([]),
            json!({"body": location_body()}),
            json!({"header": {"phone": PHONE}, "body": {}}),
            json!({"header": {"msg_id": "512"}, "body": {}}),
            json!({"header": {"msg_id": 70_000}, "body": {}}),
            json!({"header": {"msg_id": 512}}),
            json!({"header": {"msg_id": 512}, "body": [1]}),
            json!({"header": {"msg_id": 1796}, "body": {"type": 0}}),
            json!({"header": {"msg_id": 1796}, "body": {"location": {}}}),
            json!({"header": {"msg_id": 512, "phone": [1]}, "body": {}}),
        ] {
            let err = read(&bad).unwrap_err();
            assert_eq!(err.reason(), DeadLetterReason::MalformedJson, "{bad}: {err}");
        }
        assert_eq!(decode(PHONE, b"~\x02\x00").unwrap_err().reason(), DeadLetterReason::MalformedJson);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(PHONE, &bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_field_values(
            batch in any::<bool>(),
            key in prop::sample::select(vec!["alarm", "status", "latitude", "longitude", "altitude", "speed",
                                              "direction", "time", "extra"]),
            value in prop_oneof![
                Just(json!(null)),
                any::<bool>().prop_map(|b| json!(b)),
                any::<i64>().prop_map(|n| json!(n)),
                any::<u64>().prop_map(|n| json!(n)),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
                "[0-9a-z]{0,14}".prop_map(|s| json!(s)),
                any::<i64>().prop_map(|n| json!({"mileage": n})),
            ],
            phone in "[0-9]{0,21}",
        ) {
            let mut body = location_body();
            body[key] = value;
            let m = if batch {
                message(id::LOCATION_BATCH, json!({"type": 0, "location": [body]}))
            } else {
                message(id::LOCATION, body)
            };
            if let Ok(Upload::Locations(locations)) = decode(&phone, m.to_string().as_bytes()) {
                let _ = samples(&vin(), locations);
            }
        }
    }
}
