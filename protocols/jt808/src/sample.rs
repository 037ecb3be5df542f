//! A location report as a [`Sample`], and a sample as a location report (for simulators and
//! tests).

use chrono::SubsecRound;
use fleet_domain::{InvalidSample, Sample, SampleSource, Vin};

use super::body::Location;

/// The sample of one location (a 0x0200 report or one item of a 0x0704 batch) of the vehicle
/// `vin` (the caller knows it from the terminal's phone number): its time (Beijing time to
/// UTC), signed coordinates, speed, direction as heading, ACC as ignition, and the mileage
/// item as the odometer; the report's body is kept as the sample's `frame` (alarm and status
/// words, altitude and the other additional items, readable again with
/// [`Location::from_body`]). Without a fix (status bit 1 clear) the sample is kept with
/// `position_valid = false`: stored in the track, never moving the vehicle's position.
/// Coordinates outside ±90° / ±180°, or any value [`Sample::validate`] refuses, make it
/// invalid.
pub fn location_sample(location: &Location, vin: &Vin) -> Result<Sample, InvalidSample> {
    let mut sample =
        Sample::at(vin.clone(), location.time_utc(), location.latitude(), location.longitude(), SampleSource::Jt808);
    sample.position_valid = location.fix();
    sample.speed_kmh = Some(location.speed_kmh());
    sample.heading_deg = Some(f64::from(location.direction));
    sample.ignition = Some(location.acc_on());
    sample.odometer_km = location.odometer_km();
    // A location decoded from the wire always encodes again; one built by hand with an
    // over-long item is kept without its body rather than refused.
    sample.frame = location.to_body().ok();
    sample.validate()?;
    Ok(sample)
}

/// A location report carrying what a sample has of one: time (whole seconds), position and
/// fix, speed, heading, ignition (ACC) and odometer. Values are rounded to the wire's
/// resolution and clamped to its ranges; altitude and alarms are 0.
pub fn sample_location(sample: &Sample) -> Location {
    let mut status = 0;
    for (bit, on) in
        [(0, sample.ignition == Some(true)), (1, sample.position_valid), (2, sample.lat < 0.0), (3, sample.lon < 0.0)]
    {
        if on {
            status |= 1 << bit;
        }
    }
    Location {
        alarm: 0,
        status,
        latitude_e6: scaled(sample.lat.abs(), 1e6) as u32,
        longitude_e6: scaled(sample.lon.abs(), 1e6) as u32,
        altitude_m: 0,
        speed: scaled(sample.speed_kmh.unwrap_or(0.0), 10.0).min(f64::from(u16::MAX)) as u16,
        direction: sample.heading_deg.map_or(0, |h| scaled(h, 1.0).min(359.0) as u16),
        time: Location::beijing_time(sample.ts.trunc_subsecs(0)),
        mileage: sample.odometer_km.map(|km| scaled(km, 10.0).min(f64::from(u32::MAX)) as u32),
        extras: Vec::new(),
    }
}

/// `value` in units of 1/`per_unit`, rounded, never negative.
fn scaled(value: f64, per_unit: f64) -> f64 {
    (value * per_unit).round().max(0.0)
}
