//! Pure fleet types and rules shared by every service: the VIN, a telemetry sample, the
//! registry (units, vehicles, drivers, users), a vehicle's current state and how its status
//! is derived, the shape of an order. Nothing here does I/O; every type that exists is valid
//! (validated once, in `parse`/`TryFrom`).

pub mod dead_letter;
pub mod feasibility;
pub mod order;
pub mod registry;
pub mod sample;
pub mod secret;
pub mod state;
pub mod trips;
pub mod user;
pub mod vin;

pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use feasibility::{
    CarFacts, ChargeBudget, DispatchParams, Feasible, GeoPoint, Infeasible, OrderFacts, TimeWindow, WaitReason,
    WaitTally,
};
pub use order::{DriverStanding, NewOrder, Order, OrderAction, OrderEvent, OrderStatus, Place, driver_standing};
pub use registry::{Driver, NewDriver, NewUnit, NewVehicle, Unit, ValidationError, Vehicle};
pub use sample::{InvalidSample, MAX_CLOCK_AHEAD, Sample, SampleSource};
pub use secret::{Secret, SecretUrl};
pub use state::{Duty, OFFLINE_AFTER_SECS, VehicleState, VehicleStatus};
pub use user::{NewUser, Role, User};
pub use vin::{Vin, VinError};
