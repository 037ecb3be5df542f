//! One telemetry sample: what a car reported at one instant, whatever the wire format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Vin;

/// Where a sample came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleSource {
    Json,
    Gbt2016,
    Gbt2025,
    /// A JT/T 808 location report (Beidou vehicle terminal).
    Jt808,
}

impl SampleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Gbt2016 => "gbt2016",
            Self::Gbt2025 => "gbt2025",
            Self::Jt808 => "jt808",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Self::Json),
            "gbt2016" => Some(Self::Gbt2016),
            "gbt2025" => Some(Self::Gbt2025),
            "jt808" => Some(Self::Jt808),
            _ => None,
        }
    }
}

/// A validated telemetry sample. Coordinates are WGS-84 decimal degrees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub vin: Vin,
    pub ts: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// False when the terminal flagged its fix invalid: the sample is stored but never moves
    /// the vehicle's current position.
    pub position_valid: bool,
    /// True when the sample's time was more than [`MAX_CLOCK_AHEAD`] ahead of the receiving
    /// clock (a terminal with a wrong clock): stored and shown in the track, but it never
    /// moves the vehicle's state, the live map or trip derivation. Decided once, on receipt
    /// ([`Sample::flag_clock_ahead`]), and stored with the sample.
    #[serde(default)]
    pub clock_ahead: bool,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub soc_pct: Option<f64>,
    pub odometer_km: Option<f64>,
    pub charging: Option<bool>,
    pub ignition: Option<bool>,
    pub battery_voltage_v: Option<f64>,
    pub battery_current_a: Option<f64>,
    pub battery_temp_c: Option<f64>,
    pub range_km: Option<f64>,
    pub source: SampleSource,
    /// The GB/T 32960 frame the sample was decoded from, kept whole; its other blocks
    /// (motors, cells, extremes, alarms, signature) are decoded from it on demand. Not part
    /// of a sample's JSON form: readers show the decoded blocks instead.
    #[serde(skip)]
    pub frame: Option<Vec<u8>>,
}

/// How far ahead of the receiving clock a sample's time may be and still count as the
/// vehicle's present. Terminal clocks drift and networks delay, so a little ahead is normal;
/// a sample hours ahead would become the vehicle's state and, since the state never moves
/// back, hide every real sample after it until the clock caught up.
pub const MAX_CLOCK_AHEAD: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Why a sample is invalid: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidSample {
    pub field: &'static str,
    pub problem: String,
}

impl InvalidSample {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self { field, problem: problem.into() }
    }
}

/// Plausible ranges for each numeric field; a value outside makes the sample invalid.
const RANGES: &[(&str, f64, f64)] = &[
    ("lat", -90.0, 90.0),
    ("lon", -180.0, 180.0),
    ("speed_kmh", 0.0, 300.0),
    ("heading_deg", 0.0, 360.0),
    ("soc_pct", 0.0, 100.0),
    ("odometer_km", 0.0, 10_000_000.0),
    ("battery_voltage_v", 0.0, 2_000.0),
    ("battery_current_a", -3_000.0, 3_000.0),
    ("battery_temp_c", -60.0, 200.0),
    ("range_km", 0.0, 5_000.0),
];

impl Sample {
    /// A sample at a position with every optional field absent.
    pub fn at(vin: Vin, ts: DateTime<Utc>, lat: f64, lon: f64, source: SampleSource) -> Self {
        Self {
            vin,
            ts,
            lat,
            lon,
            position_valid: true,
            clock_ahead: false,
            speed_kmh: None,
            heading_deg: None,
            soc_pct: None,
            odometer_km: None,
            charging: None,
            ignition: None,
            battery_voltage_v: None,
            battery_current_a: None,
            battery_temp_c: None,
            range_km: None,
            source,
            frame: None,
        }
    }

    /// Flags the sample when its time is more than `tolerance` ahead of `received` (the
    /// receiving clock) and answers whether it did. An unflagged sample stays unflagged
    /// otherwise: the flag is never taken back.
    pub fn flag_clock_ahead(&mut self, received: DateTime<Utc>, tolerance: std::time::Duration) -> bool {
        let tolerance = chrono::Duration::from_std(tolerance).unwrap_or(chrono::Duration::MAX);
        let ahead = received.checked_add_signed(tolerance).is_some_and(|limit| self.ts > limit);
        self.clock_ahead |= ahead;
        ahead
    }

    /// Whether the sample may move the vehicle's current state (and what derives from it:
    /// the live map, trips): not when its clock was ahead.
    pub fn moves_state(&self) -> bool {
        !self.clock_ahead
    }

    /// Checks every value against its plausible range (and that it is finite).
    pub fn validate(&self) -> Result<(), InvalidSample> {
        let values = [
            Some(self.lat),
            Some(self.lon),
            self.speed_kmh,
            self.heading_deg,
            self.soc_pct,
            self.odometer_km,
            self.battery_voltage_v,
            self.battery_current_a,
            self.battery_temp_c,
            self.range_km,
        ];
        for ((field, lo, hi), v) in RANGES.iter().zip(values) {
            if let Some(v) = v
                && (!v.is_finite() || v < *lo || v > *hi)
            {
                return Err(InvalidSample::new(field, format!("{v} is outside {lo}..={hi}")));
            }
        }
        // Samples from far in the future are clock errors, not data.
        if self.ts > Utc::now() + chrono::Duration::hours(24) {
            return Err(InvalidSample::new("ts", format!("{} is more than a day ahead", self.ts)));
        }
        if self.ts.timestamp() < 946_684_800 {
            return Err(InvalidSample::new("ts", format!("{} is before 2000", self.ts)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        Sample::at(vin, Utc::now(), 30.0, 122.1, SampleSource::Json)
    }

    #[test]
    fn every_source_reads_back_from_its_stored_text_and_its_json() {
        for source in [SampleSource::Json, SampleSource::Gbt2016, SampleSource::Gbt2025, SampleSource::Jt808] {
            assert_eq!(SampleSource::parse(source.as_str()), Some(source));
            assert_eq!(serde_json::to_value(source).unwrap(), source.as_str());
        }
    }

    #[test]
    fn accepts_a_plain_sample() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn rejects_out_of_range_values_naming_the_field() {
        let mut s = sample();
        s.soc_pct = Some(101.0);
        assert_eq!(s.validate().unwrap_err().field, "soc_pct");
        let mut s = sample();
        s.lat = 91.0;
        assert_eq!(s.validate().unwrap_err().field, "lat");
        let mut s = sample();
        s.speed_kmh = Some(f64::NAN);
        assert_eq!(s.validate().unwrap_err().field, "speed_kmh");
        let mut s = sample();
        s.ts = Utc::now() + chrono::Duration::days(3);
        assert_eq!(s.validate().unwrap_err().field, "ts");
    }

    #[test]
    fn a_sample_more_than_the_tolerance_ahead_of_the_receiving_clock_is_flagged() {
        let received = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let at = |secs: i64| {
            let mut s = sample();
            s.ts = received + chrono::Duration::seconds(secs);
            s
        };
        let mut hours_ahead = at(23 * 3600);
        assert!(hours_ahead.flag_clock_ahead(received, MAX_CLOCK_AHEAD));
        assert!(hours_ahead.clock_ahead && !hours_ahead.moves_state());
        for secs in [-3600, 0, 60, 300] {
            let mut s = at(secs);
            assert!(!s.flag_clock_ahead(received, MAX_CLOCK_AHEAD), "{secs} s ahead is within the tolerance");
            assert!(s.moves_state());
        }
        let mut just_over = at(301);
        assert!(just_over.flag_clock_ahead(received, MAX_CLOCK_AHEAD));
        // A flag once set stays, whatever a later look finds.
        assert!(!hours_ahead.flag_clock_ahead(received + chrono::Duration::days(1), MAX_CLOCK_AHEAD));
        assert!(hours_ahead.clock_ahead);
    }
}
