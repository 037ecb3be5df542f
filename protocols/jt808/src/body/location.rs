//! Location reports (0x0200) and batch uploads of them (0x0704). The same layout in both
//! editions: alarm and status words, position, altitude, speed, direction and BCD time, then
//! additional items (id, length, value).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::super::reader::{Reader, bcd_time};
use super::super::{EncodeError, FrameError};

/// Status bit 0: ACC (ignition) on.
const STATUS_ACC: u32 = 1 << 0;
/// Status bit 1: the position is a fix.
const STATUS_FIX: u32 = 1 << 1;
/// Status bit 2: southern latitude.
const STATUS_SOUTH: u32 = 1 << 2;
/// Status bit 3: western longitude.
const STATUS_WEST: u32 = 1 << 3;
/// Additional item 0x01: mileage, DWORD in 0.1 km.
const ITEM_MILEAGE: u8 = 0x01;
/// The fixed part of a location body, before its additional items.
const FIXED_LEN: usize = 28;
/// Location times are Beijing time (UTC+8), wherever the vehicle is.
const UTC_OFFSET_HOURS: i64 = 8;

/// A location report (0x0200), or one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The alarm flags, as sent.
    pub alarm: u32,
    /// The status flags: bit 0 ACC on, bit 1 fix, bit 2 south, bit 3 west, others as sent.
    pub status: u32,
    /// Latitude in 10⁻⁶ degrees, unsigned (the sign is status bit 2).
    pub latitude_e6: u32,
    /// Longitude in 10⁻⁶ degrees, unsigned (the sign is status bit 3).
    pub longitude_e6: u32,
    /// Altitude in metres.
    pub altitude_m: u16,
    /// Speed in 0.1 km/h.
    pub speed: u16,
    /// Direction in degrees clockwise from north, 0–359.
    pub direction: u16,
    /// The time as sent, Beijing time (UTC+8).
    pub time: NaiveDateTime,
    /// Additional item 0x01: the odometer in 0.1 km.
    pub mileage: Option<u32>,
    /// Every other additional item, in the order sent.
    pub extras: Vec<Extra>,
}

/// An additional item of a location report that is kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub id: u8,
    pub value: Vec<u8>,
}

/// A batch upload of locations (0x0704).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationBatch {
    /// 0 a regular batch, 1 a blind-area upload (positions kept while out of coverage).
    pub kind: u8,
    pub locations: Vec<Location>,
}

impl Location {
    /// Whether the terminal had a fix (status bit 1).
    pub fn fix(&self) -> bool {
        self.status & STATUS_FIX != 0
    }

    /// Whether ACC (the ignition) was on (status bit 0).
    pub fn acc_on(&self) -> bool {
        self.status & STATUS_ACC != 0
    }

    /// Signed latitude in degrees.
    pub fn latitude(&self) -> f64 {
        signed_degrees(self.latitude_e6, self.status & STATUS_SOUTH != 0)
    }

    /// Signed longitude in degrees.
    pub fn longitude(&self) -> f64 {
        signed_degrees(self.longitude_e6, self.status & STATUS_WEST != 0)
    }

    /// Speed in km/h.
    pub fn speed_kmh(&self) -> f64 {
        f64::from(self.speed) / 10.0
    }

    /// The odometer in km, when reported.
    pub fn odometer_km(&self) -> Option<f64> {
        self.mileage.map(|m| f64::from(m) / 10.0)
    }

    /// The time as a UTC instant.
    pub fn time_utc(&self) -> DateTime<Utc> {
        (self.time - Duration::hours(UTC_OFFSET_HOURS)).and_utc()
    }

    /// A Beijing time for a UTC instant, as [`Self::time`] holds it.
    pub fn beijing_time(utc: DateTime<Utc>) -> NaiveDateTime {
        utc.naive_utc() + Duration::hours(UTC_OFFSET_HOURS)
    }

    /// Reads a location from the bytes of a 0x0200 body (as [`Self::to_body`] writes them,
    /// and as a sample keeps them).
    pub fn from_body(bytes: &[u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(bytes);
        let location = Self::decode(&mut r)?;
        r.finish("the location")?;
        Ok(location)
    }

    /// The location as the body of a 0x0200 report: what a stored sample keeps of the
    /// report beyond its own fields (alarm and status words, altitude, additional items).
    pub fn to_body(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(FIXED_LEN + 6);
        self.encode(&mut out)?;
        Ok(out)
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, FrameError> {
        let mut location = Self {
            alarm: r.u32("alarm flags")?,
            status: r.u32("status")?,
            latitude_e6: r.u32("latitude")?,
            longitude_e6: r.u32("longitude")?,
            altitude_m: r.u16("altitude")?,
            speed: r.u16("speed")?,
            direction: r.u16("direction")?,
            time: r.time()?,
            mileage: None,
            extras: Vec::new(),
        };
        while r.remaining() > 0 {
            let id = r.u8("additional item id")?;
            let len = usize::from(r.u8("additional item length")?);
            let value = r.take(len, "additional item")?;
            if id == ITEM_MILEAGE {
                if location.mileage.is_some() {
                    return Err(FrameError::DuplicateItem(id));
                }
                let bytes: [u8; 4] =
                    value.try_into().map_err(|_| FrameError::BadItemLength { id, len, expected: 4 })?;
                location.mileage = Some(u32::from_be_bytes(bytes));
            } else {
                location.extras.push(Extra { id, value: value.to_vec() });
            }
        }
        Ok(location)
    }

    /// Writes the body: the fixed part, the mileage item, then the other items.
    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for word in [self.alarm, self.status, self.latitude_e6, self.longitude_e6] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for half in [self.altitude_m, self.speed, self.direction] {
            out.extend_from_slice(&half.to_be_bytes());
        }
        out.extend_from_slice(&bcd_time(self.time)?);
        if let Some(mileage) = self.mileage {
            out.extend_from_slice(&[ITEM_MILEAGE, 4]);
            out.extend_from_slice(&mileage.to_be_bytes());
        }
        for extra in &self.extras {
            let len = u8::try_from(extra.value.len()).map_err(|_| EncodeError::FieldTooLong {
                what: "additional item",
                len: extra.value.len(),
                max: 255,
            })?;
            out.extend_from_slice(&[extra.id, len]);
            out.extend_from_slice(&extra.value);
        }
        Ok(())
    }
}

fn signed_degrees(micro: u32, negative: bool) -> f64 {
    let degrees = f64::from(micro) / 1e6;
    if negative { -degrees } else { degrees }
}

impl LocationBatch {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, FrameError> {
        let count = usize::from(r.u16("location count")?);
        let kind = r.u8("location data type")?;
        // Each item is a length WORD and at least the fixed part: a count the bytes cannot
        // hold is refused before anything is allocated for it.
        r.expect_items(count, 2 + FIXED_LEN, "locations")?;
        let mut locations = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(r.u16("location length")?);
            let mut item = Reader::new(r.take(len, "location")?);
            locations.push(Location::decode(&mut item)?);
        }
        Ok(Self { kind, locations })
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let too_long = |what, len, max| EncodeError::FieldTooLong { what, len, max };
        let count = u16::try_from(self.locations.len()).map_err(|_| too_long("batch", self.locations.len(), 65_535))?;
        out.extend_from_slice(&count.to_be_bytes());
        out.push(self.kind);
        for location in &self.locations {
            let mut item = Vec::with_capacity(FIXED_LEN + 6);
            location.encode(&mut item)?;
            let len = u16::try_from(item.len()).map_err(|_| too_long("location", item.len(), 65_535))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&item);
        }
        Ok(())
    }
}
