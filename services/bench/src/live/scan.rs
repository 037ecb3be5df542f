//! Cheap reading of the few fields the bench needs, without building JSON values: the `vin`
//! and `ts` of every car in a live-feed message, and the integer `ts` of a published sample.
//! 200 clients each receive about 100 KB four times a second; a full parse of every message
//! would take a core of the two this machine has.

/// Where a car's VIN starts in a `VehicleState` object.
const VIN_KEY: &str = "\"vin\":\"";
/// Where a car's time starts in a `VehicleState` object (a string, or `null`).
const TS_KEY: &str = "\"ts\":";

/// A car's `ts` as the feed sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ts {
    /// No sample yet.
    Null,
    /// Epoch milliseconds.
    Ms(i64),
    /// Neither `null` nor a time this scanner reads: a bench error, counted and reported.
    Bad,
}

/// The `(vin, ts)` of every car in a `snapshot` or `positions` message, in order.
///
/// Correct for any JSON the feed sends: inside a JSON string every `"` is escaped, so the
/// byte sequences `"vin":"` and `"ts":` occur only as keys. A car's `ts` is the first `ts`
/// key after its `vin` and before the next car's `vin`: the feed writes a `VehicleState`'s
/// fields in declaration order, `vin` first. Were that order to change, cars would come out
/// as [`Ts::Bad`], which the bench reports (`ws_unreadable_count`).
pub(crate) fn cars(msg: &str) -> Cars<'_> {
    Cars { rest: msg }
}

pub(crate) struct Cars<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Cars<'a> {
    type Item = (&'a str, Ts);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.rest.find(VIN_KEY)? + VIN_KEY.len();
        let after = &self.rest[start..];
        let Some(end) = after.find('"') else {
            self.rest = "";
            return None;
        };
        let vin = &after[..end];
        let after = &after[end + 1..];
        let ts_at = after.find(TS_KEY);
        // No `ts` for this car (it belongs to the next one, or there is none).
        let Some(ts_at) = ts_at.filter(|&t| !after[..t].contains(VIN_KEY)) else {
            self.rest = after;
            return Some((vin, Ts::Bad));
        };
        let value = &after[ts_at + TS_KEY.len()..];
        let (ts, used) = if let Some(rest) = value.strip_prefix('"') {
            match rest.find('"') {
                Some(close) => (rfc3339_ms(&rest[..close]).map_or(Ts::Bad, Ts::Ms), close + 2),
                None => (Ts::Bad, value.len()),
            }
        } else if value.starts_with("null") {
            (Ts::Null, 4)
        } else {
            (Ts::Bad, 0)
        };
        self.rest = &value[used..];
        Some((vin, ts))
    }
}

/// The integer epoch-millisecond `ts` of a published JSON sample (`{"ts":1764165000123,…}`).
pub(crate) fn integer_ts(payload: &[u8]) -> Option<i64> {
    let key = TS_KEY.as_bytes();
    let at = payload.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 15 {
        return None;
    }
    std::str::from_utf8(&payload[at..at + digits]).ok()?.parse().ok()
}

/// Epoch milliseconds of an RFC 3339 time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, as
/// chrono writes a `DateTime<Utc>` (fractions beyond milliseconds are cut, not rounded).
pub(crate) fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for k in 0..3 {
            millis = millis * 10 + if k < digits { i64::from(b[i + k] - b'0') } else { 0 };
        }
        i += digits;
    }
    let offset_s = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = [*h1, *h2];
            let mm = [*m1, *m2];
            if !hh.iter().chain(&mm).all(u8::is_ascii_digit) {
                return None;
            }
            let (oh, om) = (
                i64::from(hh[0] - b'0') * 10 + i64::from(hh[1] - b'0'),
                i64::from(mm[0] - b'0') * 10 + i64::from(mm[1] - b'0'),
            );
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};

    use super::*;

    fn ms(t: DateTime<Utc>) -> i64 {
        t.timestamp_millis()
    }

    #[test]
    fn reads_times_as_chrono_writes_them() {
        // A spread of instants over leap years, month ends, and the whole day.
        let mut t = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        for step in 0..20_000i64 {
            t += chrono::Duration::milliseconds(3 * 86_400_000 + 3_601_237 + step % 1000);
            for format in [
                SecondsFormat::AutoSi,
                SecondsFormat::Secs,
                SecondsFormat::Millis,
                SecondsFormat::Micros,
                SecondsFormat::Nanos,
            ] {
                let text = t.to_rfc3339_opts(format, true);
                let want = if format == SecondsFormat::Secs { ms(t) / 1000 * 1000 } else { ms(t) };
                assert_eq!(rfc3339_ms(&text), Some(want), "{text}");
            }
            // serde's form of a DateTime<Utc> is the AutoSi one.
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(rfc3339_ms(json.trim_matches('"')), Some(ms(t)), "{json}");
        }
    }

    #[test]
    fn reads_offsets_east_and_west_of_utc() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 13, 48, 52).unwrap() + chrono::Duration::milliseconds(123);
        for offset_s in [8 * 3600, -5 * 3600 - 30 * 60, 0] {
            let local = t.with_timezone(&FixedOffset::east_opt(offset_s).unwrap());
            let text = local.to_rfc3339_opts(SecondsFormat::Millis, false);
            assert_eq!(rfc3339_ms(&text), Some(ms(t)), "{text}");
        }
        assert_eq!(rfc3339_ms("2026-11-26T21:48:52.123+08:00"), Some(ms(t)));
    }

    #[test]
    fn refuses_what_is_not_an_rfc3339_time() {
        for bad in [
            "",
            "2026-11-26",
            "2026-11-26T13:48:52",
            "2026-11-26T13:48:52.Z",
            "2026-13-26T13:48:52Z",
            "2026-02-29T13:48:52Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T13:48:52+0800",
            "2026-11-26T13:48:52.123Zx",
            "2026-1a-26T13:48:52Z",
            "12026-11-26T13:48:52Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad:?}");
        }
        assert!(rfc3339_ms("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn finds_every_car_with_its_time_in_a_feed_message() {
        let a = Utc.with_ymd_and_hms(2026, 11, 26, 13, 48, 52).unwrap() + chrono::Duration::milliseconds(5);
        let b = a + chrono::Duration::milliseconds(995);
        // Built the way the feed builds it: serde for each car (fields in `VehicleStateView`
        // order), joined by hand.
        #[derive(serde::Serialize)]
        struct Car<'a> {
            vin: &'a str,
            plate: &'a str,
            unit_id: Option<&'a str>,
            ts: Option<DateTime<Utc>>,
            lat: f64,
            lon: f64,
            speed_kmh: f64,
            heading_deg: Option<f64>,
            soc_pct: f64,
            status: &'a str,
        }
        let car = |vin, plate, ts| {
            let c = Car {
                vin,
                plate,
                unit_id: None,
                ts,
                lat: 30.0,
                lon: 122.1,
                speed_kmh: 40.0,
                heading_deg: None,
                soc_pct: 80.0,
                status: "driving",
            };
            serde_json::to_string(&c).unwrap()
        };
        let msg = format!(
            "{{\"type\":\"positions\",\"vehicles\":[{},{},{}]}}",
            car("LFBENCH0000000001", "浙LD00001", Some(a)),
            car("LFBENCH0000000002", "a \"ts\":\"vin\":\" plate", None),
            car("LFBENCH0000000003", "浙LD00003", Some(b)),
        );
        let got: Vec<_> = cars(&msg).collect();
        assert_eq!(
            got,
            vec![
                ("LFBENCH0000000001", Ts::Ms(ms(a))),
                ("LFBENCH0000000002", Ts::Null),
                ("LFBENCH0000000003", Ts::Ms(ms(b)))
            ]
        );
        assert_eq!(cars("{\"type\":\"positions\",\"vehicles\":[]}").count(), 0);
    }

    #[test]
    fn a_car_without_a_readable_time_is_reported_as_bad() {
        let msg = r#"[{"vin":"A1","ts":17},{"vin":"A2","plate":"x"},{"vin":"A3","ts":"2026-11-26T13:48:52Z"}]"#;
        let got: Vec<_> = cars(msg).collect();
        assert_eq!(got, vec![("A1", Ts::Bad), ("A2", Ts::Bad), ("A3", Ts::Ms(1_795_700_932_000))]);
    }

    #[test]
    fn reads_the_integer_time_of_a_published_sample() {
        assert_eq!(integer_ts(br#"{"ts":1764165000123,"lat":30.0,"lon":122.1}"#), Some(1_764_165_000_123));
        assert_eq!(integer_ts(br#"{"lat":30.0,"ts":5}"#), Some(5));
        assert_eq!(integer_ts(br#"{"ts":"2026-11-26T13:48:52Z"}"#), None);
        assert_eq!(integer_ts(br#"{"lat":30.0}"#), None);
    }
}
