//! Whether a car can take an order (docs/dispatch.md): the one rule that dispatch's matcher and the
//! API's manual assignment share, and the reason an order still waits when no car passes it.
//!
//! Pure arithmetic. The caller says what needs storage or a clock (is the car online, idle,
//! reserved in the order's window); this module measures distances and energy and applies the
//! rules, always in the same order (see [`Infeasible`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Place, ValidationError};

/// Road distance is the great-circle distance times this factor.
pub const DEFAULT_ROAD_FACTOR: f64 = 1.3;
/// Average speed for ETAs, km/h.
pub const DEFAULT_AVG_SPEED_KMH: f64 = 30.0;
/// Share of the battery that must remain after pickup and trip, percent.
pub const DEFAULT_RESERVE_PCT: f64 = 20.0;
/// Multiplier on the energy pickup and trip need (× 1.15).
pub const DEFAULT_ENERGY_MARGIN: f64 = 1.15;
/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The configurable numbers of the feasibility rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DispatchParams {
    /// Road metres per great-circle metre.
    pub road_factor: f64,
    /// Average speed for ETAs, km/h.
    pub avg_speed_kmh: f64,
    /// Battery share that must remain after the trip, percent.
    pub reserve_pct: f64,
    /// Multiplier on the estimated energy of pickup and trip.
    pub energy_margin: f64,
}

impl Default for DispatchParams {
    fn default() -> Self {
        Self {
            road_factor: DEFAULT_ROAD_FACTOR,
            avg_speed_kmh: DEFAULT_AVG_SPEED_KMH,
            reserve_pct: DEFAULT_RESERVE_PCT,
            energy_margin: DEFAULT_ENERGY_MARGIN,
        }
    }
}

impl DispatchParams {
    /// Checks that the numbers make sense (for configuration).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let ok = |x: f64, lo: f64, hi: f64| x.is_finite() && (lo..=hi).contains(&x);
        if !ok(self.road_factor, 1.0, 10.0) {
            return Err(ValidationError::new("road_factor", "must be 1 to 10"));
        }
        if !ok(self.avg_speed_kmh, 1.0, 200.0) {
            return Err(ValidationError::new("avg_speed_kmh", "must be 1 to 200"));
        }
        if !ok(self.reserve_pct, 0.0, 100.0) {
            return Err(ValidationError::new("reserve_pct", "must be 0 to 100"));
        }
        if !ok(self.energy_margin, 1.0, 10.0) {
            return Err(ValidationError::new("energy_margin", "must be 1 to 10"));
        }
        Ok(())
    }

    /// Road metres for a great-circle distance.
    #[inline]
    pub fn road_m(&self, haversine_m: f64) -> f64 {
        haversine_m * self.road_factor
    }

    /// Time to drive `road_m` at the average speed.
    pub fn eta(&self, road_m: f64) -> Duration {
        let secs = road_m / (self.avg_speed_kmh / 3.6);
        Duration::from_secs_f64(if secs.is_finite() { secs.max(0.0) } else { 0.0 })
    }

    /// kWh a car needs for a pickup and a trip of these road lengths, margin included.
    #[inline]
    pub fn needed_kwh(&self, pickup_road_m: f64, trip_road_m: f64, consumption_kwh_per_100km: f64) -> f64 {
        // Multiply before dividing: round inputs (50 km at 20 kWh/100 km) stay exact.
        (pickup_road_m + trip_road_m) * consumption_kwh_per_100km / 100_000.0 * self.energy_margin
    }
}

/// A WGS-84 position in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    pub fn new(lat: f64, lon: f64) -> Self {
        Self { lat, lon }
    }
}

impl From<&Place> for GeoPoint {
    fn from(p: &Place) -> Self {
        Self { lat: p.lat, lon: p.lon }
    }
}

/// A position as a point on the unit sphere. Converting costs four trig calls once per
/// point; the distance between two converted points then needs no trig but one `sqrt` and
/// one `asin`, which is what lets a batch measure millions of pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitVector {
    x: f64,
    y: f64,
    z: f64,
}

impl UnitVector {
    #[inline]
    pub fn new(p: GeoPoint) -> Self {
        let (sin_lat, cos_lat) = p.lat.to_radians().sin_cos();
        let (sin_lon, cos_lon) = p.lon.to_radians().sin_cos();
        Self { x: cos_lat * cos_lon, y: cos_lat * sin_lon, z: sin_lat }
    }

    /// Great-circle distance in metres: the haversine distance, computed from the chord.
    ///
    /// With chord length `c`, `hav(θ) = sin²(θ/2) = (c/2)²`, so `θ = 2·asin(c/2)`. Taking the
    /// coordinate differences directly keeps short distances exact to well under a
    /// millimetre (no `1 − cos` cancellation).
    #[inline]
    pub fn haversine_m(&self, other: &Self) -> f64 {
        let (dx, dy, dz) = (self.x - other.x, self.y - other.y, self.z - other.z);
        let half_chord = (dx * dx + dy * dy + dz * dz).sqrt() * 0.5;
        2.0 * EARTH_RADIUS_M * asin(half_chord.min(1.0))
    }
}

/// `asin` for `0 ≤ x ≤ 1`. Below 0.02 (a distance of ~250 km, all of a city's) the Taylor
/// series to x⁹ is exact to the last bit or two (the first term left out, 63x¹¹/2816, is
/// below 10⁻¹⁸·x) and a third of libm's cost, which counts when a batch measures millions
/// of pairs.
#[inline]
fn asin(x: f64) -> f64 {
    if x < 0.02 {
        let x2 = x * x;
        x * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0 + x2 * (5.0 / 112.0 + x2 * (35.0 / 1152.0)))))
    } else {
        x.asin()
    }
}

/// Great-circle (haversine) distance between two positions, metres.
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    UnitVector::new(a).haversine_m(&UnitVector::new(b))
}

/// A half-open time span `[start, end)`: an order's trip, or a car's reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self { start, end }
    }

    /// The windows share an instant. Back-to-back windows (`a.end == b.start`) do not overlap.
    #[inline]
    pub fn overlaps(&self, other: &Self) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// What the rule needs to know of a car, as seen for one order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CarFacts {
    pub position: GeoPoint,
    /// The vehicle's seat count as registered, the driver's seat included: a "5-seat" car
    /// carries 4 passengers. The rule is `passengers ≤ seats − 1`.
    pub seats: u32,
    /// State of charge, percent; unknown never passes the charge rule.
    pub soc_pct: Option<f64>,
    pub battery_kwh: f64,
    pub consumption_kwh_per_100km: f64,
    /// Has a sample within [`crate::OFFLINE_AFTER_SECS`] (the caller's clock).
    pub online: bool,
    /// Not assigned, on a trip, charging or in maintenance.
    pub idle: bool,
    /// Holds a reservation overlapping this order's window.
    pub reserved: bool,
}

/// What the rule needs to know of an order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderFacts {
    pub pickup: GeoPoint,
    pub dropoff: GeoPoint,
    pub passengers: u32,
}

impl OrderFacts {
    /// Road metres from pickup to drop-off.
    pub fn trip_m(&self, params: &DispatchParams) -> f64 {
        params.road_m(haversine_m(self.pickup, self.dropoff))
    }
}

/// A car that can take an order, with the figures that made it so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feasible {
    /// Road metres from the car to the pickup.
    pub pickup_m: f64,
    /// Road metres from pickup to drop-off.
    pub trip_m: f64,
    /// Time to reach the pickup at the average speed.
    pub pickup_eta: Duration,
    /// Energy for pickup and trip, margin included.
    pub needed_kwh: f64,
    /// Energy the car would hold after them: `soc × battery − needed`, at least the reserve.
    pub left_kwh: f64,
}

/// Why a car cannot take an order. The rules are applied in this order, from what the car
/// is (seats) to what it is doing now (online, idle, reserved) to what the trip costs
/// (charge), so the first failing rule names what keeps it from serving; [`WaitTally`]
/// builds an order's waiting reason on that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum Infeasible {
    #[error("the car has too few seats for the passengers")]
    Seats,
    #[error("the car is offline")]
    Offline,
    #[error("the car is not idle")]
    NotIdle,
    #[error("the car is reserved during the order's time window")]
    Reserved,
    #[error("the car's charge does not cover pickup and trip with the reserve left")]
    Charge,
}

impl Infeasible {
    /// Stable snake_case code for APIs and logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Seats => "seats",
            Self::Offline => "offline",
            Self::NotIdle => "not_idle",
            Self::Reserved => "reserved",
            Self::Charge => "charge",
        }
    }
}

/// The rules that need no distance: seats, online, idle, reservation.
#[inline]
pub fn check_state(car: &CarFacts, passengers: u32) -> Result<(), Infeasible> {
    if passengers > car.seats.saturating_sub(1) {
        Err(Infeasible::Seats)
    } else if !car.online {
        Err(Infeasible::Offline)
    } else if !car.idle {
        Err(Infeasible::NotIdle)
    } else if car.reserved {
        Err(Infeasible::Reserved)
    } else {
        Ok(())
    }
}

/// The charge rule for known road distances: feasible only if
/// `soc/100 × battery − needed ≥ reserve/100 × battery`.
pub fn check_charge(
    params: &DispatchParams,
    car: &CarFacts,
    pickup_m: f64,
    trip_m: f64,
) -> Result<Feasible, Infeasible> {
    match charge_left_kwh(params, car, pickup_m, trip_m) {
        Some((needed_kwh, left_kwh)) => {
            Ok(Feasible { pickup_m, trip_m, pickup_eta: params.eta(pickup_m), needed_kwh, left_kwh })
        }
        None => Err(Infeasible::Charge),
    }
}

/// The charge rule alone: `(needed, left)` kWh when the car passes, else `None`.
/// [`check_charge`] is this plus the figures.
#[inline]
pub fn charge_left_kwh(params: &DispatchParams, car: &CarFacts, pickup_m: f64, trip_m: f64) -> Option<(f64, f64)> {
    ChargeBudget::new(params, car)?.left_kwh(params, pickup_m, trip_m)
}

/// A car's side of the charge rule, computed once for the many orders of a batch. Gives
/// exactly what [`charge_left_kwh`] gives (it is how that is computed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChargeBudget {
    have_kwh: f64,
    reserve_kwh: f64,
    consumption_kwh_per_100km: f64,
    /// Road metres (pickup + trip) below which the car surely passes, and above which it
    /// surely fails; see [`ChargeBudget::covers`].
    sure_m: f64,
    never_m: f64,
}

impl ChargeBudget {
    /// `None` when the state of charge is unknown or not a number: such a car never passes.
    #[inline]
    pub fn new(params: &DispatchParams, car: &CarFacts) -> Option<Self> {
        let soc = car.soc_pct.filter(|s| s.is_finite())?;
        let have_kwh = soc * car.battery_kwh / 100.0;
        let reserve_kwh = params.reserve_pct * car.battery_kwh / 100.0;
        let kwh_per_m = car.consumption_kwh_per_100km / 100_000.0 * params.energy_margin;
        // The real-number range, and a slack far above the few ulps by which the rule's
        // floating-point arithmetic can differ from it (relative to every magnitude involved,
        // plus a micrometre). NaN or infinities give NaN bounds, which send every pair to the
        // exact arithmetic.
        let range_m = (have_kwh - reserve_kwh) / kwh_per_m;
        let slack_m = 1e-9 * (have_kwh.abs() + reserve_kwh.abs()) / kwh_per_m + 1e-6;
        Some(Self {
            have_kwh,
            reserve_kwh,
            consumption_kwh_per_100km: car.consumption_kwh_per_100km,
            sure_m: range_m - slack_m,
            never_m: range_m + slack_m,
        })
    }

    /// Whether the car passes the charge rule for these road distances: the same answer as
    /// [`Self::left_kwh`]`.is_some()`, without its division for all pairs but those within
    /// a hair of the boundary.
    #[inline]
    pub fn covers(&self, params: &DispatchParams, pickup_m: f64, trip_m: f64) -> bool {
        let d = pickup_m + trip_m;
        if d < self.sure_m {
            true
        } else if d > self.never_m {
            false
        } else {
            self.left_kwh(params, pickup_m, trip_m).is_some()
        }
    }

    /// `(needed, left)` kWh for these road distances if the reserve stays, else `None`.
    #[inline]
    pub fn left_kwh(&self, params: &DispatchParams, pickup_m: f64, trip_m: f64) -> Option<(f64, f64)> {
        let needed_kwh = params.needed_kwh(pickup_m, trip_m, self.consumption_kwh_per_100km);
        let left_kwh = self.have_kwh - needed_kwh;
        // Written so that NaN anywhere (a nonsense figure) fails the rule.
        (left_kwh >= self.reserve_kwh).then_some((needed_kwh, left_kwh))
    }
}

/// The whole rule, distances measured from the car's and the order's positions.
pub fn check(params: &DispatchParams, car: &CarFacts, order: &OrderFacts) -> Result<Feasible, Infeasible> {
    check_state(car, order.passengers)?;
    let pickup_m = params.road_m(haversine_m(car.position, order.pickup));
    check_charge(params, car, pickup_m, order.trip_m(params))
}

/// Why an order still waits for a car (the order's `unmatched_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// No car at all, or every car with enough seats is offline.
    NoCarOnline,
    /// No car has enough seats for the passengers.
    NoCarWithEnoughSeats,
    /// Every online car with enough seats is busy (assigned, on a trip, charging, maintenance).
    AllCarsBusy,
    /// Every idle car with enough seats is reserved during the order's window.
    AllCarsReserved,
    /// Every free car with enough seats lacks the charge for pickup, trip and reserve.
    NoCarWithEnoughCharge,
    /// The only cars that could take it declined it or let it time out.
    ExcludedCarsOnly,
    /// Feasible cars exist, but the batch's optimum gave them to other orders.
    TakenByOtherOrders,
}

impl WaitReason {
    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoCarOnline => "no_car_online",
            Self::NoCarWithEnoughSeats => "no_car_with_enough_seats",
            Self::AllCarsBusy => "all_cars_busy",
            Self::AllCarsReserved => "all_cars_reserved",
            Self::NoCarWithEnoughCharge => "no_car_with_enough_charge",
            Self::ExcludedCarsOnly => "excluded_cars_only",
            Self::TakenByOtherOrders => "taken_by_other_orders",
        }
    }

    /// The reason for a code, if it is one.
    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::NoCarOnline,
            Self::NoCarWithEnoughSeats,
            Self::AllCarsBusy,
            Self::AllCarsReserved,
            Self::NoCarWithEnoughCharge,
            Self::ExcludedCarsOnly,
            Self::TakenByOtherOrders,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// How far one car got through the rule for one order, in rule order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Progress {
    Failed(Infeasible),
    /// Passed every rule but declined or timed out on this order before.
    Excluded,
    Feasible,
}

/// Builds an order's waiting reason from the outcome of every car, by one rule: the reason
/// comes from the car that got furthest through the rules (seats, online, idle, reserved,
/// charge, not excluded). It names what the most promising car lacks, so a 7-passenger
/// order with only 5-seat cars hears `no_car_with_enough_seats` even if those cars are
/// also low on charge, and one whose only 7-seat car is reserved hears `all_cars_reserved`.
/// No car at all reads as `no_car_online`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitTally {
    best: Option<Progress>,
}

impl WaitTally {
    pub fn new() -> Self {
        Self::default()
    }

    fn note(&mut self, p: Progress) {
        self.best = self.best.max(Some(p));
    }

    /// A car that failed a rule.
    pub fn failed(&mut self, why: Infeasible) {
        self.note(Progress::Failed(why));
    }

    /// A car that passes every rule but is excluded from this order.
    pub fn excluded(&mut self) {
        self.note(Progress::Excluded);
    }

    /// A car that could take the order.
    pub fn feasible(&mut self) {
        self.note(Progress::Feasible);
    }

    /// Folds in one car's outcome of [`check`] and whether it is excluded from the order.
    pub fn record<T>(&mut self, outcome: &Result<T, Infeasible>, excluded: bool) {
        match outcome {
            Err(why) => self.failed(*why),
            Ok(_) if excluded => self.excluded(),
            Ok(_) => self.feasible(),
        }
    }

    /// Some car passed every rule and was not excluded.
    pub fn any_feasible(&self) -> bool {
        self.best == Some(Progress::Feasible)
    }

    /// The reason the order waits, given that it got no car.
    pub fn reason(&self) -> WaitReason {
        match self.best {
            None | Some(Progress::Failed(Infeasible::Offline)) => WaitReason::NoCarOnline,
            Some(Progress::Failed(Infeasible::Seats)) => WaitReason::NoCarWithEnoughSeats,
            Some(Progress::Failed(Infeasible::NotIdle)) => WaitReason::AllCarsBusy,
            Some(Progress::Failed(Infeasible::Reserved)) => WaitReason::AllCarsReserved,
            Some(Progress::Failed(Infeasible::Charge)) => WaitReason::NoCarWithEnoughCharge,
            Some(Progress::Excluded) => WaitReason::ExcludedCarsOnly,
            Some(Progress::Feasible) => WaitReason::TakenByOtherOrders,
        }
    }
}

#[cfg(test)]
mod tests;
