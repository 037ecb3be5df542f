//! GCJ-02, the datum Chinese web maps use, and its conversion back to WGS-84.
//!
//! GCJ-02 is WGS-84 plus a deterministic, position-dependent offset of a few hundred metres,
//! defined only inside mainland China. The forward transform below is the published one (the
//! Krasovsky 1940 ellipsoid and a fixed trigonometric series); it has no closed-form inverse,
//! so [`to_wgs84`] inverts it by fixed-point iteration, which converges to well under a
//! millimetre in a few steps because the offset varies slowly with position.

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid, in metres.
const A: f64 = 6_378_245.0;
/// Its first eccentricity squared.
const EE: f64 = 0.006_693_421_622_965_943;
/// Iteration stops when a step moves the estimate by less than this many degrees (~0.1 mm).
const TOLERANCE_DEG: f64 = 1e-9;
const MAX_ITERATIONS: usize = 30;

/// Whether a point lies inside the rough box the transform is defined on; outside it GCJ-02
/// coordinates are WGS-84 coordinates.
pub fn in_china(lat: f64, lon: f64) -> bool {
    (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
}

/// WGS-84 → GCJ-02, as `(lat, lon)` in degrees; unchanged outside China.
pub fn from_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    if !in_china(lat, lon) {
        return (lat, lon);
    }
    let (d_lat, d_lon) = offset(lat, lon);
    (lat + d_lat, lon + d_lon)
}

/// GCJ-02 → WGS-84, as `(lat, lon)` in degrees; unchanged outside China.
pub fn to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    if !in_china(lat, lon) {
        return (lat, lon);
    }
    // Find w with w + offset(w) = g: start at g, and correct by the residual each step.
    let (mut w_lat, mut w_lon) = (lat, lon);
    for _ in 0..MAX_ITERATIONS {
        let (d_lat, d_lon) = offset(w_lat, w_lon);
        let (err_lat, err_lon) = (w_lat + d_lat - lat, w_lon + d_lon - lon);
        w_lat -= err_lat;
        w_lon -= err_lon;
        if err_lat.abs() < TOLERANCE_DEG && err_lon.abs() < TOLERANCE_DEG {
            break;
        }
    }
    (w_lat, w_lon)
}

/// The GCJ-02 offset at a WGS-84 point, in degrees of latitude and longitude.
fn offset(lat: f64, lon: f64) -> (f64, f64) {
    let (x, y) = (lon - 105.0, lat - 35.0);
    let rad_lat = lat.to_radians();
    let magic = 1.0 - EE * rad_lat.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let d_lat = series_lat(x, y) * 180.0 / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    let d_lon = series_lon(x, y) * 180.0 / (A / sqrt_magic * rad_lat.cos() * PI);
    (d_lat, d_lon)
}

/// The published latitude series, in metres, of `x` = lon − 105° and `y` = lat − 35°.
fn series_lat(x: f64, y: f64) -> f64 {
    -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * x.abs().sqrt()
        + (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0
        + (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0
        + (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0
}

/// The published longitude series, in metres, of `x` = lon − 105° and `y` = lat − 35°.
fn series_lon(x: f64, y: f64) -> f64 {
    300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * x.abs().sqrt()
        + (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0
        + (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0
        + (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0
}

/// Great-circle distance in metres, for checking conversions.
#[cfg(test)]
pub(super) fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.1 - a.1).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Tian'anmen, Beijing, in WGS-84.
    const BEIJING: (f64, f64) = (39.908_692, 116.397_477);
    /// Dinghai, Zhoushan, in WGS-84.
    const ZHOUSHAN: (f64, f64) = (30.016_5, 122.106_8);

    #[test]
    fn shifts_a_point_in_china_by_a_few_hundred_metres_to_the_north_east() {
        let gcj = from_wgs84(BEIJING.0, BEIJING.1);
        // The published offset at Tian'anmen is about +0.0014° lat, +0.0062° lon.
        assert!((gcj.0 - BEIJING.0 - 0.0014).abs() < 0.0003, "{gcj:?}");
        assert!((gcj.1 - BEIJING.1 - 0.0062).abs() < 0.0003, "{gcj:?}");
        let shift = distance_m(BEIJING, gcj);
        assert!((300.0..800.0).contains(&shift), "shift {shift} m");
    }

    #[test]
    fn converts_a_known_gcj02_point_back_to_wgs84_within_a_metre() {
        for point in [BEIJING, ZHOUSHAN] {
            let gcj = from_wgs84(point.0, point.1);
            let back = to_wgs84(gcj.0, gcj.1);
            assert!(distance_m(point, back) < 1.0, "{point:?} came back as {back:?}");
        }
    }

    #[test]
    fn leaves_points_outside_china_unchanged() {
        let paris = (48.8584, 2.2945);
        assert_eq!(from_wgs84(paris.0, paris.1), paris);
        assert_eq!(to_wgs84(paris.0, paris.1), paris);
        assert!(!in_china(-33.0, 122.0));
    }

    proptest! {
        #[test]
        fn round_trips_any_point_in_china_within_a_centimetre(lat in 18.0..53.0f64, lon in 74.0..135.0f64) {
            let gcj = from_wgs84(lat, lon);
            let back = to_wgs84(gcj.0, gcj.1);
            prop_assert!(distance_m((lat, lon), back) < 0.01);
        }
    }
}
