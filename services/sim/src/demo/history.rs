//! Demo history: each demo car driven through past working days by the simulator's car model,
//! sampled sparsely while it stands still.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_domain::{NewVehicle, Sample, SampleSource};

use crate::{Car, CarActivity, CarSpec, Rhythm, car_seed};

/// A parked car reports this often (real terminals wake up now and then when switched off).
pub const PARKED_REPORT_EVERY: TimeDelta = TimeDelta::minutes(30);
/// Shortest step honoured; a smaller one is raised to this.
const MIN_STEP: Duration = Duration::from_secs(1);

pub fn history(
    vehicles: &[NewVehicle],
    end: DateTime<Utc>,
    days: u32,
    step: Duration,
    seed: u64,
) -> impl Iterator<Item = Sample> + use<> {
    let start = end - TimeDelta::days(i64::from(days));
    let step = step.max(MIN_STEP);
    let specs: Vec<CarSpec> = vehicles
        .iter()
        .filter_map(|v| {
            Some(CarSpec {
                vin: v.validate().ok()?,
                battery_kwh: v.battery_kwh,
                consumption_kwh_per_100km: v.consumption_kwh_per_100km,
                source: SampleSource::Json,
            })
        })
        .collect();
    specs.into_iter().flat_map(move |spec| {
        let seed = car_seed(seed, &spec.vin);
        CarHistory {
            car: Car::new(spec, start, Rhythm::WorkingDays, seed),
            end,
            step,
            last_report: None,
            was_moving: false,
        }
    })
}

/// One car's samples from its start to `end`.
struct CarHistory {
    car: Car,
    end: DateTime<Utc>,
    step: Duration,
    last_report: Option<DateTime<Utc>>,
    /// Whether the last step was spent driving or charging.
    was_moving: bool,
}

impl Iterator for CarHistory {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        let step = TimeDelta::from_std(self.step).ok()?;
        while self.car.now() + step <= self.end {
            self.car.advance(self.step);
            let now = self.car.now();
            let moving = self.car.activity() != CarActivity::Parked;
            // Report every step while busy, on arrival, and now and then while parked.
            let due = self.last_report.is_none_or(|t| now - t >= PARKED_REPORT_EVERY);
            if moving || self.was_moving || due {
                self.was_moving = moving;
                self.last_report = Some(now);
                return Some(self.car.sample());
            }
        }
        None
    }
}
