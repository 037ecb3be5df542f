//! Geofences (parking places, the service area, zones) and the alarms a car's samples raise
//! against them: leaving its parking place after hours, leaving the service area, entering and
//! leaving zones. Pure: a car's samples in time order in, crossings out, so a window of late
//! data is evaluated again the same way.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alarm::AlarmKind;
use crate::feasibility::{GeoPoint, haversine_m};
use crate::registry::ValidationError;
use crate::trips::china_offset;
use crate::{Sample, Vehicle};

/// What a geofence is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceKind {
    /// Where a car is kept: leaving it after hours raises `left_parking_off_hours`.
    Parking,
    /// Where official trips go: leaving it raises `left_service_area`.
    ServiceArea,
    /// Any other area: crossings raise `zone_entered` and `zone_exited`.
    Zone,
}

impl FenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parking => "parking",
            Self::ServiceArea => "service_area",
            Self::Zone => "zone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Parking, Self::ServiceArea, Self::Zone].into_iter().find(|k| k.as_str() == s)
    }
}

/// A car more than this far outside its parking place has left it.
pub const PARKING_MARGIN_M: f64 = 50.0;
/// Radius of a circular geofence, metres.
pub const RADIUS_RANGE_M: std::ops::RangeInclusive<f64> = 1.0..=200_000.0;
/// Most positions in a polygon's rings together.
pub const MAX_POSITIONS: usize = 10_000;

/// A geofence as received.
#[derive(Debug, Clone, Deserialize)]
pub struct NewGeofence {
    pub name: String,
    pub kind: FenceKind,
    #[serde(default)]
    pub unit_id: Option<String>,
    #[serde(default)]
    pub vin: Option<String>,
    /// A GeoJSON Polygon, or a GeoJSON Point with `radius_m`.
    pub geometry: Value,
    #[serde(default)]
    pub radius_m: Option<f64>,
}

/// A stored geofence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geofence {
    pub id: i64,
    pub name: String,
    pub kind: FenceKind,
    pub unit_id: Option<String>,
    pub vin: Option<String>,
    pub geometry: Value,
    pub radius_m: Option<f64>,
}

/// A geofence's shape, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Outer ring first, then holes; each ring closed, positions `(lon, lat)`.
    Polygon(Vec<Vec<(f64, f64)>>),
    Circle {
        center: GeoPoint,
        radius_m: f64,
    },
}

fn position(v: &Value) -> Result<(f64, f64), ValidationError> {
    let bad = || ValidationError::new("geometry", "a position is [longitude, latitude] in degrees");
    let a = v.as_array().filter(|a| a.len() >= 2).ok_or_else(bad)?;
    let (lon, lat) = (a[0].as_f64().ok_or_else(bad)?, a[1].as_f64().ok_or_else(bad)?);
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(ValidationError::new(
            "geometry",
            format!("[{lon}, {lat}] is outside longitude ±180, latitude ±90"),
        ));
    }
    Ok((lon, lat))
}

impl NewGeofence {
    /// Checks the fields and the geometry (a closed Polygon of at least three distinct
    /// positions per ring, or a Point with a radius).
    pub fn validate(&self) -> Result<Shape, ValidationError> {
        let n = self.name.trim().chars().count();
        if n == 0 || n > 100 {
            return Err(ValidationError::new("name", "must hold 1 to 100 characters"));
        }
        if let Some(u) = &self.unit_id {
            crate::registry::validate_id("unit_id", u)?;
        }
        if let Some(v) = &self.vin {
            crate::Vin::parse(v).map_err(|e| ValidationError::new("vin", e.to_string()))?;
        }
        shape(&self.geometry, self.radius_m)
    }
}

/// The shape of a GeoJSON geometry (with `radius_m` for a Point).
pub fn shape(geometry: &Value, radius_m: Option<f64>) -> Result<Shape, ValidationError> {
    let kind = geometry.get("type").and_then(Value::as_str);
    let coords = geometry.get("coordinates");
    match (kind, coords) {
        (Some("Point"), Some(c)) => {
            let (lon, lat) = position(c)?;
            let r = radius_m.ok_or_else(|| ValidationError::new("radius_m", "a Point needs radius_m"))?;
            if !(r.is_finite() && RADIUS_RANGE_M.contains(&r)) {
                return Err(ValidationError::new("radius_m", "must be 1 to 200,000 m"));
            }
            Ok(Shape::Circle { center: GeoPoint::new(lat, lon), radius_m: r })
        }
        (Some("Polygon"), Some(Value::Array(rings))) => {
            if radius_m.is_some() {
                return Err(ValidationError::new("radius_m", "only a Point takes radius_m"));
            }
            if rings.is_empty() {
                return Err(ValidationError::new("geometry", "a Polygon needs at least its outer ring"));
            }
            let mut out = Vec::with_capacity(rings.len());
            let mut total = 0;
            for ring in rings {
                let ring = ring
                    .as_array()
                    .ok_or_else(|| ValidationError::new("geometry", "a ring is an array of positions"))?;
                total += ring.len();
                if total > MAX_POSITIONS {
                    return Err(ValidationError::new("geometry", format!("at most {MAX_POSITIONS} positions")));
                }
                let pts = ring.iter().map(position).collect::<Result<Vec<_>, _>>()?;
                if pts.len() < 4 {
                    return Err(ValidationError::new(
                        "geometry",
                        "a ring needs at least 4 positions, the last equal to the first",
                    ));
                }
                if pts.first() != pts.last() {
                    return Err(ValidationError::new(
                        "geometry",
                        "a ring is not closed: its last position must equal its first",
                    ));
                }
                out.push(pts);
            }
            Ok(Shape::Polygon(out))
        }
        (Some(other), _) if !matches!(other, "Point" | "Polygon") => Err(ValidationError::new(
            "geometry",
            format!("a {other} is not taken: a Polygon, or a Point with radius_m"),
        )),
        _ => Err(ValidationError::new(
            "geometry",
            "expected GeoJSON: {\"type\": \"Polygon\" or \"Point\", \"coordinates\": …}",
        )),
    }
}

/// Metres east and north of `origin` (an equirectangular projection: exact enough within a
/// city, where geofences live).
fn local_m(origin: GeoPoint, lon: f64, lat: f64) -> (f64, f64) {
    const M_PER_DEG: f64 = 111_195.0;
    let x = (lon - origin.lon) * M_PER_DEG * origin.lat.to_radians().cos();
    let y = (lat - origin.lat) * M_PER_DEG;
    (x, y)
}

fn in_ring(ring: &[(f64, f64)], lon: f64, lat: f64) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ((x1, y1), (x2, y2)) = (w[0], w[1]);
        if (y1 > lat) != (y2 > lat) && lon < x1 + (lat - y1) / (y2 - y1) * (x2 - x1) {
            inside = !inside;
        }
    }
    inside
}

impl Shape {
    pub fn contains(&self, p: GeoPoint) -> bool {
        match self {
            Shape::Circle { center, radius_m } => haversine_m(*center, p) <= *radius_m,
            Shape::Polygon(rings) => {
                in_ring(&rings[0], p.lon, p.lat) && !rings[1..].iter().any(|hole| in_ring(hole, p.lon, p.lat))
            }
        }
    }

    /// How far outside the shape `p` is, metres (0 inside).
    pub fn outside_m(&self, p: GeoPoint) -> f64 {
        if self.contains(p) {
            return 0.0;
        }
        match self {
            Shape::Circle { center, radius_m } => haversine_m(*center, p) - radius_m,
            Shape::Polygon(rings) => rings
                .iter()
                .flat_map(|r| r.windows(2))
                .map(|w| {
                    let (ax, ay) = local_m(p, w[0].0, w[0].1);
                    let (bx, by) = local_m(p, w[1].0, w[1].1);
                    let (dx, dy) = (bx - ax, by - ay);
                    let len2 = dx * dx + dy * dy;
                    let t = if len2 > 0.0 { (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                    let (cx, cy) = (ax + t * dx, ay + t * dy);
                    (cx * cx + cy * cy).sqrt()
                })
                .fold(f64::INFINITY, f64::min),
        }
    }
}

impl Geofence {
    /// The stored geometry's shape (checked when the geofence was drawn).
    pub fn shape(&self) -> Result<Shape, ValidationError> {
        shape(&self.geometry, self.radius_m)
    }

    /// Whether the geofence applies to a car: one naming the car, one naming only its unit,
    /// or one naming neither (the whole fleet).
    pub fn applies_to(&self, v: &Vehicle) -> bool {
        match (&self.vin, &self.unit_id) {
            (Some(vin), _) => vin == v.vin.as_str(),
            (None, Some(unit)) => v.unit_id.as_deref() == Some(unit.as_str()),
            (None, None) => true,
        }
    }
}

/// When official work is done: weekdays and hours in Asia/Shanghai, and holidays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkingHours {
    /// ISO weekdays, 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u32>,
    /// `HH:MM`, start inclusive and end exclusive.
    pub start: String,
    pub end: String,
    /// Days off although their weekday is a working day.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Working days although their weekday is not (China's make-up working days, 调休).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

impl Default for WorkingHours {
    fn default() -> Self {
        Self {
            weekdays: vec![1, 2, 3, 4, 5],
            start: "07:00".into(),
            end: "20:00".into(),
            holidays: Vec::new(),
            workdays: Vec::new(),
        }
    }
}

fn hhmm(field: &'static str, t: &str) -> Result<u32, ValidationError> {
    let bad = || ValidationError::new(field, format!("{t:?}: expected HH:MM from 00:00 to 24:00"));
    let (h, m) = t.split_once(':').filter(|(h, m)| h.len() == 2 && m.len() == 2).ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h * 60 + m > 24 * 60 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl WorkingHours {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.weekdays.iter().any(|d| !(1..=7).contains(d)) {
            return Err(ValidationError::new("weekdays", "ISO weekdays: 1 (Monday) to 7 (Sunday)"));
        }
        let (s, e) = (hhmm("start", &self.start)?, hhmm("end", &self.end)?);
        if s >= e {
            return Err(ValidationError::new("end", "must come after start"));
        }
        if self.holidays.len() + self.workdays.len() > 1000 {
            return Err(ValidationError::new("holidays", "at most 1000 days listed"));
        }
        Ok(())
    }

    /// Whether `ts` falls in working hours.
    pub fn is_working(&self, ts: DateTime<Utc>) -> bool {
        let local = ts.with_timezone(&china_offset());
        let day = local.date_naive();
        let working_day = if self.workdays.contains(&day) {
            true
        } else {
            !self.holidays.contains(&day) && self.weekdays.contains(&local.weekday().number_from_monday())
        };
        let minute = local.hour() * 60 + local.minute();
        let (s, e) = (hhmm("start", &self.start).unwrap_or(0), hhmm("end", &self.end).unwrap_or(0));
        working_day && (s..e).contains(&minute)
    }
}

/// One crossing: the sample at which it was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    pub alarm: AlarmKind,
    pub fence_id: i64,
    pub fence_name: String,
    pub ts: DateTime<Utc>,
    pub position: GeoPoint,
}

/// The crossings a car's samples (in time order; those without a valid position are passed
/// over) make of the geofences that apply to it. The first sample sets where the car is
/// without raising anything; each later change raises at most one alarm per fence:
/// leaving a parking place (more than [`PARKING_MARGIN_M`] outside) outside working hours,
/// leaving a service area, entering or leaving a zone.
pub fn crossings(samples: &[Sample], fences: &[(Geofence, Shape)], hours: &WorkingHours) -> Vec<Crossing> {
    let mut state: Vec<Option<bool>> = vec![None; fences.len()];
    let mut out = Vec::new();
    for s in samples.iter().filter(|s| s.position_valid && s.moves_state()) {
        let p = GeoPoint::new(s.lat, s.lon);
        for (i, (fence, shape)) in fences.iter().enumerate() {
            let inside = match fence.kind {
                FenceKind::Parking => shape.outside_m(p) <= PARKING_MARGIN_M,
                FenceKind::ServiceArea | FenceKind::Zone => shape.contains(p),
            };
            let before = state[i].replace(inside);
            let Some(was) = before else { continue };
            let alarm = match (fence.kind, was, inside) {
                (FenceKind::Parking, true, false) if !hours.is_working(s.ts) => Some(AlarmKind::LeftParkingOffHours),
                (FenceKind::ServiceArea, true, false) => Some(AlarmKind::LeftServiceArea),
                (FenceKind::Zone, false, true) => Some(AlarmKind::ZoneEntered),
                (FenceKind::Zone, true, false) => Some(AlarmKind::ZoneExited),
                _ => None,
            };
            if let Some(alarm) = alarm {
                out.push(Crossing { alarm, fence_id: fence.id, fence_name: fence.name.clone(), ts: s.ts, position: p });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
