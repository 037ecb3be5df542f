//! The text form of bus events between instances: one JSON object per message, each at most
//! a given size (PostgreSQL's NOTIFY takes under 8,000 bytes), so a large batch of samples
//! becomes several messages. Samples travel in a compact form (short keys, absent fields
//! left out); orders and vehicles in their API form.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleet_domain::{Order, Sample, SampleSource, Vehicle, Vin};
use serde::{Deserialize, Serialize};

use crate::{Event, Revocation};

/// Why a message is not a bus event.
#[derive(Debug, thiserror::Error)]
#[error("not a bus event: {0}")]
pub struct WireError(#[from] serde_json::Error);

#[derive(Serialize, Deserialize)]
struct Message {
    /// The instance that published the event (listeners skip their own).
    #[serde(rename = "o")]
    origin: String,
    #[serde(flatten)]
    body: Body,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k", content = "d", rename_all = "snake_case")]
enum Body {
    Samples(Vec<WireSample>),
    Order(Box<Order>),
    Vehicle(Box<Vehicle>),
    Resync,
    Revoked(Revocation),
}

#[derive(Serialize, Deserialize)]
struct WireSample {
    v: Vin,
    t: DateTime<Utc>,
    a: f64,
    o: f64,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pv: bool,
    /// The sample's clock was ahead (`Sample::clock_ahead`): listeners must not let it move
    /// a car.
    #[serde(default, skip_serializing_if = "is_false")]
    ca: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sp: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    so: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    od: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ig: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bv: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ba: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rk: Option<f64>,
    s: SampleSource,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl From<&Sample> for WireSample {
    fn from(s: &Sample) -> Self {
        Self {
            v: s.vin.clone(),
            t: s.ts,
            a: s.lat,
            o: s.lon,
            pv: s.position_valid,
            ca: s.clock_ahead,
            sp: s.speed_kmh,
            hd: s.heading_deg,
            so: s.soc_pct,
            od: s.odometer_km,
            ch: s.charging,
            ig: s.ignition,
            bv: s.battery_voltage_v,
            ba: s.battery_current_a,
            bt: s.battery_temp_c,
            rk: s.range_km,
            s: s.source,
        }
    }
}

impl From<WireSample> for Sample {
    /// The GB/T frame stays behind: listeners of the bus never read it (it is in storage).
    fn from(w: WireSample) -> Self {
        Self {
            vin: w.v,
            ts: w.t,
            lat: w.a,
            lon: w.o,
            position_valid: w.pv,
            clock_ahead: w.ca,
            speed_kmh: w.sp,
            heading_deg: w.hd,
            soc_pct: w.so,
            odometer_km: w.od,
            charging: w.ch,
            ignition: w.ig,
            battery_voltage_v: w.bv,
            battery_current_a: w.ba,
            battery_temp_c: w.bt,
            range_km: w.rk,
            source: w.s,
            frame: None,
        }
    }
}

/// `event` as messages of at most `max_len` bytes each, from instance `origin`. Samples are
/// split across as many messages as they need; an order or vehicle too large for one
/// message (they are far smaller in practice) becomes a resync request instead, so the
/// other instances reload rather than miss it.
pub fn encode(origin: &str, event: &Event, max_len: usize) -> Vec<String> {
    let one =
        |body: Body| serde_json::to_string(&Message { origin: origin.to_owned(), body }).expect("bus events serialize");
    match event {
        Event::SamplesCommitted(samples) => {
            let empty_len = one(Body::Samples(Vec::new())).len();
            let mut out = Vec::new();
            let mut items: Vec<String> = Vec::new();
            let mut len = empty_len;
            for s in samples.iter() {
                let item = serde_json::to_string(&WireSample::from(s)).expect("samples serialize");
                if !items.is_empty() && len + 1 + item.len() > max_len {
                    out.push(wrap_samples(origin, &items));
                    items.clear();
                    len = empty_len;
                }
                len += item.len() + usize::from(!items.is_empty());
                items.push(item);
            }
            if !items.is_empty() {
                out.push(wrap_samples(origin, &items));
            }
            out
        }
        Event::OrderChanged(order) => vec![fit(one(Body::Order(Box::new((**order).clone()))), origin, max_len)],
        Event::VehicleChanged(v) => vec![fit(one(Body::Vehicle(Box::new((**v).clone()))), origin, max_len)],
        Event::Resync => vec![resync(origin)],
        Event::TokensRevoked(r) => vec![fit(one(Body::Revoked((**r).clone())), origin, max_len)],
    }
}

/// A resync request from `origin`.
pub fn resync(origin: &str) -> String {
    serde_json::to_string(&Message { origin: origin.to_owned(), body: Body::Resync }).expect("bus events serialize")
}

fn fit(msg: String, origin: &str, max_len: usize) -> String {
    if msg.len() <= max_len { msg } else { resync(origin) }
}

/// Samples already serialized one by one, joined into one message (they were measured so).
fn wrap_samples(origin: &str, items: &[String]) -> String {
    let origin = serde_json::to_string(origin).expect("strings serialize");
    format!("{{\"o\":{origin},\"k\":\"samples\",\"d\":[{}]}}", items.join(","))
}

/// A message back into its origin and event.
pub fn decode(msg: &str) -> Result<(String, Event), WireError> {
    let m: Message = serde_json::from_str(msg)?;
    let event = match m.body {
        Body::Samples(items) => Event::SamplesCommitted(items.into_iter().map(Sample::from).collect::<Vec<_>>().into()),
        Body::Order(o) => Event::OrderChanged(Arc::new(*o)),
        Body::Vehicle(v) => Event::VehicleChanged(Arc::new(*v)),
        Body::Resync => Event::Resync,
        Body::Revoked(r) => Event::TokensRevoked(Arc::new(r)),
    };
    Ok((m.origin, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: u32) -> Sample {
        Sample {
            vin: Vin::parse("LSVAU2180N2183294").unwrap(),
            ts: DateTime::from_timestamp(1_764_000_000 + i64::from(i), 123_456_000).unwrap(),
            lat: 30.0 + f64::from(i) * 1e-4,
            lon: 122.1,
            position_valid: !i.is_multiple_of(3),
            clock_ahead: i.is_multiple_of(7),
            speed_kmh: Some(41.5),
            heading_deg: None,
            soc_pct: Some(77.0),
            odometer_km: Some(12_345.6),
            charging: Some(false),
            ignition: None,
            battery_voltage_v: Some(350.2),
            battery_current_a: Some(-12.5),
            battery_temp_c: None,
            range_km: Some(300.0),
            source: if i.is_multiple_of(2) { SampleSource::Json } else { SampleSource::Gbt2025 },
            frame: None,
        }
    }

    #[test]
    fn samples_round_trip_split_into_messages_under_the_limit() {
        let samples: Vec<Sample> = (0..500).map(sample).collect();
        let msgs = encode("a", &Event::SamplesCommitted(samples.clone().into()), 7_900);
        assert!(msgs.len() > 1, "500 samples do not fit in one message");
        let mut back = Vec::new();
        for m in &msgs {
            assert!(m.len() <= 7_900, "a message of {} bytes", m.len());
            let (origin, event) = decode(m).unwrap();
            assert_eq!(origin, "a");
            let Event::SamplesCommitted(s) = event else { panic!("samples expected") };
            back.extend(s.iter().cloned());
        }
        assert_eq!(back, samples);
    }

    #[test]
    fn a_frame_stays_behind() {
        let mut s = sample(1);
        s.frame = Some(vec![0x23; 300]);
        let msgs = encode("a", &Event::SamplesCommitted(vec![s].into()), 7_900);
        let Event::SamplesCommitted(back) = decode(&msgs[0]).unwrap().1 else { panic!() };
        assert_eq!(back[0].frame, None);
        assert!(msgs[0].len() < 400);
    }

    #[test]
    fn too_large_an_order_becomes_a_resync_request() {
        assert!(matches!(decode(&fit("x".repeat(100), "b", 10)).unwrap(), (o, Event::Resync) if o == "b"));
    }

    #[test]
    fn a_revocation_round_trips() {
        let r = Revocation {
            user_id: 3,
            token_hash: None,
            except: Some("ab".into()),
            reason: crate::RevokeReason::PasswordChanged,
        };
        let msgs = encode("a", &Event::TokensRevoked(Arc::new(r.clone())), 7_900);
        assert_eq!(msgs.len(), 1);
        let (origin, Event::TokensRevoked(back)) = decode(&msgs[0]).unwrap() else { panic!("a revocation expected") };
        assert_eq!((origin.as_str(), &*back), ("a", &r));
    }

    #[test]
    fn rejects_what_is_not_a_bus_event() {
        for bad in [
            "",
            "{}",
            "{\"o\":\"a\",\"k\":\"samples\",\"d\":[{\"v\":\"short\"}]}",
            "{\"o\":\"a\",\"k\":\"nope\"}",
            "[1]",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} decoded");
        }
    }
}
