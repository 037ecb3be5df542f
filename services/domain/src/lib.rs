//! Pure fleet types and rules shared by every service: the VIN, a telemetry sample, the
//! registry (units, vehicles, drivers, users), a vehicle's current state and how its status
//! is derived, the shape of an order. Nothing here does I/O. Identifiers (`Vin`, `Role`, …)
//! are valid once parsed (`parse`/`TryFrom`); inputs (`Sample`, `NewOrder`, the `New*` registry
//! types) are checked once by their `validate()` before they are stored.

pub mod alarm;
pub mod costs;
pub mod dead_letter;
pub mod feasibility;
pub mod geofence;
pub mod order;
pub mod registry;
pub mod sample;
pub mod secret;
pub mod state;
pub mod tariff;
pub mod trips;
pub mod upkeep;
pub mod user;
pub mod vin;

pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use feasibility::{
    CarFacts, ChargeBudget, DispatchParams, Feasible, GeoPoint, Infeasible, OrderFacts, TimeWindow, WaitReason,
    WaitTally,
};
pub use order::{DriverStanding, NewOrder, Order, OrderAction, OrderEvent, OrderStatus, Place, driver_standing};
pub use registry::{
    Driver, NewDriver, NewUnit, NewVehicle, TERMINAL_PHONE_MAX_DIGITS, Unit, ValidationError, Vehicle, VehicleFile,
    terminal_phone, validate_email,
};
pub use sample::{InvalidSample, MAX_CLOCK_AHEAD, Sample, SampleSource};
pub use secret::{Secret, SecretUrl};
pub use state::{Duty, OFFLINE_AFTER_SECS, VehicleState, VehicleStatus};
pub use user::{NewUser, Role, User};
pub use vin::{Vin, VinError};
