//! Small-scale geometry on WGS-84 coordinates: distances, bearings and positions along a
//! straight segment. Segments here are a few kilometres long, so interpolating linearly in
//! degrees and projecting onto a local plane are well within a metre of the great circle.

/// Mean Earth radius used by the haversine distance, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS-84 position in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

impl LatLon {
    pub const fn new(lat: f64, lon: f64) -> Self {
        Self { lat, lon }
    }

    /// Great-circle (haversine) distance in metres.
    pub fn distance_m(self, other: LatLon) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }

    /// Initial bearing towards `other`, degrees clockwise from north in `0..360`.
    pub fn bearing_deg(self, other: LatLon) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dl = (other.lon - self.lon).to_radians();
        let y = dl.sin() * p2.cos();
        let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
        y.atan2(x).to_degrees().rem_euclid(360.0)
    }

    /// The point a fraction `t` (0 = self, 1 = other) of the way to `other`.
    pub fn lerp(self, other: LatLon, t: f64) -> LatLon {
        LatLon::new(self.lat + (other.lat - self.lat) * t, self.lon + (other.lon - self.lon) * t)
    }

    /// The point `north_m` metres north and `east_m` metres east of this one.
    pub fn offset_m(self, north_m: f64, east_m: f64) -> LatLon {
        let dlat = (north_m / EARTH_RADIUS_M).to_degrees();
        let dlon = (east_m / (EARTH_RADIUS_M * self.lat.to_radians().cos())).to_degrees();
        LatLon::new(self.lat + dlat, self.lon + dlon)
    }

    /// Distance in metres from this point to the segment `a`–`b`, on a plane tangent at `a`.
    pub fn distance_to_segment_m(self, a: LatLon, b: LatLon) -> f64 {
        let k = EARTH_RADIUS_M.to_radians();
        let cos = a.lat.to_radians().cos();
        let to_plane = |p: LatLon| ((p.lon - a.lon) * k * cos, (p.lat - a.lat) * k);
        let (bx, by) = to_plane(b);
        let (px, py) = to_plane(self);
        let len2 = bx * bx + by * by;
        let t = if len2 == 0.0 { 0.0 } else { ((px * bx + py * by) / len2).clamp(0.0, 1.0) };
        (px - t * bx).hypot(py - t * by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DINGHAI: LatLon = LatLon::new(30.019, 122.106);
    const SHENJIAMEN: LatLon = LatLon::new(29.952, 122.297);

    #[test]
    fn measures_dinghai_to_shenjiamen_as_about_twenty_kilometres() {
        let d = DINGHAI.distance_m(SHENJIAMEN);
        assert!((19_500.0..20_500.0).contains(&d), "{d}");
    }

    #[test]
    fn bearings_point_the_right_way() {
        let b = DINGHAI.bearing_deg(SHENJIAMEN);
        assert!((105.0..115.0).contains(&b), "east-south-east, got {b}");
        let north = DINGHAI.offset_m(1_000.0, 0.0);
        assert!(DINGHAI.bearing_deg(north) < 0.01 || DINGHAI.bearing_deg(north) > 359.99);
        assert!((DINGHAI.distance_m(north) - 1_000.0).abs() < 1.0);
    }

    #[test]
    fn distance_to_a_segment_is_zero_on_it_and_grows_beside_it() {
        let mid = DINGHAI.lerp(SHENJIAMEN, 0.5);
        assert!(mid.distance_to_segment_m(DINGHAI, SHENJIAMEN) < 1.0);
        let beside = mid.offset_m(500.0, 0.0);
        let d = beside.distance_to_segment_m(DINGHAI, SHENJIAMEN);
        assert!((400.0..510.0).contains(&d), "{d}");
        let beyond = SHENJIAMEN.offset_m(0.0, 300.0);
        let d = beyond.distance_to_segment_m(DINGHAI, SHENJIAMEN);
        assert!((299.0..301.0).contains(&d), "{d}");
    }
}
