//! fleet-stats: usage statistics. Two parts that share only the derived tables:
//!
//! - The [`Deriver`] (a task, started by fleetd) follows committed telemetry on the bus and,
//!   every 30 s ([`DEFAULT_INTERVAL`]), re-derives the trips and charging sessions of each
//!   car that received samples, over the window those samples can touch (late data —
//!   re-issued reports, offline batches — re-derives the trips it touches). On start it catches up every car from its
//!   newest stored trip, so history loaded without the bus (the demo's month) is derived too.
//!   Each derived trip is tied to the order whose passengers the car carried meanwhile, which
//!   gives the unit's energy use against its budget. Raw-sample retention runs beside it.
//! - The report rules, which hold no task and are what the web calls: a month's figures per
//!   unit, car and driver ([`monthly`]), the CO₂ comparison ([`co2`]), a unit's energy budget
//!   ([`budget`]), and the tables of a download ([`export`]).

mod deriver;
mod retention;

pub mod budget;
pub mod co2;
pub mod export;
pub mod misuse;
pub mod monthly;
pub mod sweep;

pub use co2::Co2Factors;
pub use deriver::{
    Config, DEFAULT_INTERVAL, DEFAULT_MAX_YIELD_PER_PASS, Deriver, LEADER_LOCK, MAX_CARS_PER_PASS, MAX_WINDOW_SAMPLES,
    YIELD_IN_HAND,
};
pub use retention::{DEFAULT_RETENTION, RETENTION_EVERY, RETENTION_LOCK};

/// What can go wrong building a report.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Not a month this calendar has.
    #[error("bad month {0:?}")]
    BadMonth(String),
    #[error(transparent)]
    Storage(#[from] fleet_storage::StorageError),
}
