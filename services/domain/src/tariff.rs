//! The electricity tariff by time of day (Asia/Shanghai) and what a charging session cost under
//! it: the energy the car took in each period at that period's price. Pure.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::Sample;
use crate::registry::ValidationError;
use crate::trips::{ChargingSession, china_offset};

/// The price when no tariff is set: one flat rate all day, yuan per kWh (about what a
/// government fleet in Zhejiang pays for commercial power off a public charger's meter).
pub const DEFAULT_YUAN_PER_KWH: f64 = 0.8;
/// The most periods a day may be cut into.
pub const MAX_PERIODS: usize = 48;
/// The highest price taken as real, yuan per kWh.
pub const MAX_YUAN_PER_KWH: f64 = 100.0;

const DAY_MIN: u32 = 24 * 60;

/// One period of the day, `[from, to)` as `HH:MM` (the last ends `24:00`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TariffPeriod {
    pub from: String,
    pub to: String,
    pub yuan_per_kwh: f64,
}

/// A day's periods as stored and served: they cover 00:00–24:00 without gap or overlap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tariff {
    pub periods: Vec<TariffPeriod>,
}

/// `HH:MM` as minutes of the day; `24:00` is allowed (the day's end).
fn minutes(field: &'static str, text: &str) -> Result<u32, ValidationError> {
    let bad = || ValidationError::new(field, format!("{text:?}: expected HH:MM from 00:00 to 24:00"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let total = h * 60 + m;
    if m >= 60 || total > DAY_MIN {
        return Err(bad());
    }
    Ok(total)
}

impl Tariff {
    /// One price all day.
    pub fn flat(yuan_per_kwh: f64) -> Self {
        Self { periods: vec![TariffPeriod { from: "00:00".into(), to: "24:00".into(), yuan_per_kwh }] }
    }

    /// Checks the periods and answers them as minute ranges in day order. The periods may
    /// come in any order but must tile the day: the first from 00:00, each from where the one
    /// before ended, the last to 24:00.
    pub fn validate(&self) -> Result<PricedDay, ValidationError> {
        if self.periods.is_empty() || self.periods.len() > MAX_PERIODS {
            return Err(ValidationError::new("periods", format!("1 to {MAX_PERIODS} periods")));
        }
        let mut spans = Vec::with_capacity(self.periods.len());
        for p in &self.periods {
            let (from, to) = (minutes("from", &p.from)?, minutes("to", &p.to)?);
            if from >= to {
                return Err(ValidationError::new("periods", format!("{}–{} is empty or runs backwards", p.from, p.to)));
            }
            if !(p.yuan_per_kwh.is_finite() && (0.0..=MAX_YUAN_PER_KWH).contains(&p.yuan_per_kwh)) {
                return Err(ValidationError::new("yuan_per_kwh", "must be 0 to 100"));
            }
            spans.push((from, to, p.yuan_per_kwh));
        }
        spans.sort_by_key(|s| s.0);
        let mut at = 0;
        for &(from, to, _) in &spans {
            match from.cmp(&at) {
                std::cmp::Ordering::Greater => {
                    return Err(ValidationError::new("periods", format!("a gap from {} to {}", hhmm(at), hhmm(from))));
                }
                std::cmp::Ordering::Less => {
                    return Err(ValidationError::new("periods", format!("periods overlap at {}", hhmm(from))));
                }
                std::cmp::Ordering::Equal => at = to,
            }
        }
        if at != DAY_MIN {
            return Err(ValidationError::new("periods", format!("a gap from {} to 24:00", hhmm(at))));
        }
        Ok(PricedDay { spans })
    }
}

fn hhmm(min: u32) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// A checked tariff: `(from_min, to_min, yuan_per_kwh)` tiling the day in order.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedDay {
    spans: Vec<(u32, u32, f64)>,
}

impl Default for PricedDay {
    fn default() -> Self {
        Self { spans: vec![(0, DAY_MIN, DEFAULT_YUAN_PER_KWH)] }
    }
}

impl PricedDay {
    /// The price at a minute of the day.
    pub fn price_at(&self, minute: u32) -> f64 {
        self.spans.iter().find(|s| minute < s.1).or(self.spans.last()).map_or(DEFAULT_YUAN_PER_KWH, |s| s.2)
    }

    /// The cost of `kwh` taken evenly from `from` to `to` (all at `from`'s price when the span
    /// is empty): each stretch of it at the price of its period, day after day.
    pub fn cost(&self, from: DateTime<Utc>, to: DateTime<Utc>, kwh: f64) -> f64 {
        if !kwh.is_finite() || kwh <= 0.0 {
            return 0.0;
        }
        let secs = (to - from).num_milliseconds() as f64 / 1000.0;
        let local = from.with_timezone(&china_offset());
        let start_min = local.hour() * 60 + local.minute();
        if secs <= 0.0 {
            return kwh * self.price_at(start_min);
        }
        let rate = kwh / secs;
        let mut at = from;
        let mut total = 0.0;
        while at < to {
            let local = at.with_timezone(&china_offset());
            let minute = local.hour() * 60 + local.minute();
            let span = self.spans.iter().find(|s| minute < s.1).copied().unwrap_or((0, DAY_MIN, DEFAULT_YUAN_PER_KWH));
            // Up to the period's end (seconds into the minute counted off).
            let left_s =
                f64::from(span.1 - minute) * 60.0 - f64::from(local.second()) - f64::from(local.nanosecond()) / 1e9;
            let step = TimeDelta::milliseconds((left_s * 1000.0).ceil().max(1.0) as i64);
            let next = (at + step).min(to);
            total += rate * ((next - at).num_milliseconds() as f64 / 1000.0) * span.2;
            at = next;
        }
        total
    }
}

/// What a charging session cost: the energy between each two of its samples (by volts ×
/// amps when both report them, else by the rise in charge × the battery's capacity) at the
/// price of the periods it was taken in, scaled so that the pieces add up to the session's
/// energy. A session whose samples show no rise costs its energy at its start's price.
/// `samples` are the car's, in time order; only those within the session count.
pub fn charging_cost(samples: &[Sample], session: &ChargingSession, battery_kwh: f64, day: &PricedDay) -> f64 {
    let part: Vec<&Sample> =
        samples.iter().filter(|s| s.ts >= session.start_ts && s.ts <= session.end_ts && s.moves_state()).collect();
    let pieces: Vec<(DateTime<Utc>, DateTime<Utc>, f64)> = part
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let hours = (b.ts - a.ts).num_milliseconds() as f64 / 3_600_000.0;
            let electrical = match (a.battery_voltage_v, a.battery_current_a, b.battery_voltage_v, b.battery_current_a)
            {
                // Charging current is negative by the GB/T 32960 convention.
                (Some(va), Some(ia), Some(vb), Some(ib)) => Some(-(va * ia + vb * ib) / 2.0 * hours / 1000.0),
                _ => None,
            };
            let by_soc = match (a.soc_pct, b.soc_pct) {
                (Some(x), Some(y)) => (y - x) / 100.0 * battery_kwh,
                _ => 0.0,
            };
            (a.ts, b.ts, electrical.unwrap_or(by_soc).max(0.0))
        })
        .collect();
    let seen: f64 = pieces.iter().map(|p| p.2).sum();
    if seen <= 0.0 {
        return day.cost(session.start_ts, session.start_ts, session.energy_kwh);
    }
    let scale = session.energy_kwh / seen;
    pieces.iter().map(|&(a, b, kwh)| day.cost(a, b, kwh * scale)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SampleSource, Vin};

    fn period(from: &str, to: &str, price: f64) -> TariffPeriod {
        TariffPeriod { from: from.into(), to: to.into(), yuan_per_kwh: price }
    }

    /// Zhejiang-like time of use: valley 22:00–08:00, peak 08:00–11:00 and 13:00–17:00 …
    fn tou() -> Tariff {
        Tariff {
            periods: vec![
                period("08:00", "11:00", 1.2),
                period("00:00", "08:00", 0.3),
                period("11:00", "13:00", 0.7),
                period("13:00", "17:00", 1.2),
                period("17:00", "22:00", 0.7),
                period("22:00", "24:00", 0.3),
            ],
        }
    }

    /// 2026-11-20 at `hh:mm` Beijing time.
    fn bj(hh: u32, mm: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-20T{hh:02}:{mm:02}:00+08:00")).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_tariff_must_tile_the_day() {
        assert!(tou().validate().is_ok());
        assert!(Tariff::flat(0.8).validate().is_ok());
        let cases = [
            (vec![period("00:00", "12:00", 1.0)], "gap from 12:00"),
            (vec![period("00:00", "12:00", 1.0), period("11:00", "24:00", 1.0)], "overlap"),
            (vec![period("01:00", "24:00", 1.0)], "gap from 00:00"),
            (vec![period("00:00", "12:00", 1.0), period("13:00", "24:00", 1.0)], "gap from 12:00 to 13:00"),
            (vec![period("00:00", "24:00", -1.0)], "0 to 100"),
            (vec![period("00:00", "25:00", 1.0)], "HH:MM"),
            (vec![period("0:00", "24:00", 1.0)], "HH:MM"),
            (vec![period("00:00", "00:00", 1.0), period("00:00", "24:00", 1.0)], "empty"),
            (vec![], "1 to 48"),
        ];
        for (periods, want) in cases {
            let e = Tariff { periods: periods.clone() }.validate().unwrap_err();
            assert!(e.to_string().contains(want), "{periods:?}: {e}");
        }
    }

    #[test]
    fn energy_is_priced_by_the_periods_it_was_taken_in() {
        let day = tou().validate().unwrap();
        assert_eq!(day.price_at(7 * 60 + 59), 0.3);
        assert_eq!(day.price_at(8 * 60), 1.2);
        // 10 kWh evenly from 07:00 to 09:00: 5 at 0.3 and 5 at 1.2.
        let c = day.cost(bj(7, 0), bj(9, 0), 10.0);
        assert!((c - 7.5).abs() < 1e-6, "{c}");
        // Over midnight: 21:00–01:00, a quarter at 0.7, three quarters at 0.3.
        let c = day.cost(bj(21, 0), bj(21, 0) + TimeDelta::hours(4), 8.0);
        assert!((c - (2.0 * 0.7 + 6.0 * 0.3)).abs() < 1e-6, "{c}");
        // An instant: at its price.
        assert!((day.cost(bj(9, 30), bj(9, 30), 2.0) - 2.4).abs() < 1e-9);
        assert_eq!(day.cost(bj(9, 30), bj(10, 0), 0.0), 0.0);
        // No tariff: the default flat price.
        assert!((PricedDay::default().cost(bj(1, 0), bj(5, 0), 10.0) - 10.0 * DEFAULT_YUAN_PER_KWH).abs() < 1e-9);
    }

    #[test]
    fn a_session_costs_its_energy_where_the_charge_rose() {
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        // Charging 21:00–23:00 by state of charge: 20 % → 50 % in the first hour, → 60 % in
        // the second (60 kWh pack: 18 kWh at 0.7, 6 kWh at 0.3).
        let sample = |t: DateTime<Utc>, soc: f64| {
            let mut s = Sample::at(vin.clone(), t, 30.0, 122.1, SampleSource::Json);
            s.soc_pct = Some(soc);
            s.charging = Some(true);
            s
        };
        let samples = vec![sample(bj(21, 0), 20.0), sample(bj(22, 0), 50.0), sample(bj(23, 0), 60.0)];
        let session = ChargingSession {
            vin: vin.clone(),
            start_ts: bj(21, 0),
            end_ts: bj(23, 0),
            position: crate::feasibility::GeoPoint::new(30.0, 122.1),
            start_soc_pct: Some(20.0),
            end_soc_pct: Some(60.0),
            energy_kwh: 24.0,
            open: false,
            cost_yuan: 0.0,
        };
        let day = tou().validate().unwrap();
        let c = charging_cost(&samples, &session, 60.0, &day);
        assert!((c - (18.0 * 0.7 + 6.0 * 0.3)).abs() < 1e-6, "{c}");
        // The session's energy rules: the same rise with 30 kWh reported costs pro rata more.
        let bigger = ChargingSession { energy_kwh: 30.0, ..session.clone() };
        let c2 = charging_cost(&samples, &bigger, 60.0, &day);
        assert!((c2 - c * 1.25).abs() < 1e-6, "{c2}");
        // By volts and amps (charging current negative): 400 V × −50 A = 20 kW for an hour
        // from 21:30 to 22:30: half at 0.7, half at 0.3.
        let electric = |t: DateTime<Utc>| {
            let mut s = sample(t, 50.0);
            s.battery_voltage_v = Some(400.0);
            s.battery_current_a = Some(-50.0);
            s
        };
        let samples = vec![electric(bj(21, 30)), electric(bj(22, 30))];
        let s2 = ChargingSession { start_ts: bj(21, 30), end_ts: bj(22, 30), energy_kwh: 20.0, ..session.clone() };
        let c = charging_cost(&samples, &s2, 60.0, &day);
        assert!((c - (10.0 * 0.7 + 10.0 * 0.3)).abs() < 1e-6, "{c}");
        // One sample only: its energy at the start's price.
        let one = vec![sample(bj(9, 0), 40.0)];
        let s3 = ChargingSession { start_ts: bj(9, 0), end_ts: bj(9, 0), energy_kwh: 5.0, ..session };
        assert!((charging_cost(&one, &s3, 60.0, &day) - 6.0).abs() < 1e-9);
    }
}
