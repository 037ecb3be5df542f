//! Who may see and do what (docs/api.md, docs/dispatch.md). Handlers ask these rules; they
//! never compare roles themselves. Refusals come in a fixed order: an object outside the caller's view → 404
//! (`ApiError::NotFound`), then an action the role may not take → 403 (`ApiError::Forbidden`).

use axum::http::Method;
use fleet_domain::{Driver, Order, OrderAction, Role, User, Vehicle, Vin};
use fleet_storage::Store;

use crate::error::ApiError;

/// The writes an auditor may make: ending their own session and changing their own password.
const AUDITOR_MAY_WRITE: [&str; 2] = ["/api/v1/auth/logout", "/api/v1/auth/password"];

/// Whether `role` may send a request with `method` to `path` at all. Auditors read
/// everything and change nothing; checked for every authenticated request, so a new route
/// cannot forget it.
pub fn may_send(role: Role, method: &Method, path: &str) -> bool {
    role != Role::Auditor || method.is_safe() || AUDITOR_MAY_WRITE.contains(&path)
}

/// Refuses with 403 unless `allowed`.
pub fn require(allowed: bool) -> Result<(), ApiError> {
    if allowed { Ok(()) } else { Err(ApiError::Forbidden) }
}

/// Creating units, vehicles, drivers and users, and reading users.
pub fn manages_registry(role: Role) -> bool {
    role == Role::Admin
}

/// Reading the dead letters of ingestion.
pub fn reads_dead_letters(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Auditor)
}

/// Which units a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitScope {
    All,
    /// A unit user: its own unit only.
    Own(String),
}

/// The units a caller sees; `Err(Forbidden)` for a role that may not read units (drivers).
pub fn unit_scope(user: &User) -> Result<UnitScope, ApiError> {
    match user.role {
        Role::Admin | Role::Dispatcher | Role::Auditor => Ok(UnitScope::All),
        // A unit user without a unit (bad data) sees an empty own unit.
        Role::Unit => Ok(UnitScope::Own(user.unit_id.clone().unwrap_or_default())),
        Role::Driver => Err(ApiError::Forbidden),
    }
}

impl UnitScope {
    /// Whether the unit `unit_id` is in view.
    pub fn sees(&self, unit_id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Own(own) => own == unit_id,
        }
    }
}

/// Which vehicles a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VehicleScope {
    All,
    /// A unit user: the vehicles whose `unit_id` is its own.
    Unit(String),
    /// A driver: their own car, if they have one.
    Car(Option<Vin>),
}

impl VehicleScope {
    /// The scope of a user; `driver_car` is the car of the user's driver record (drivers only).
    pub fn of(user: &User, driver_car: Option<Vin>) -> Self {
        match user.role {
            Role::Admin | Role::Dispatcher | Role::Auditor => Self::All,
            Role::Unit => Self::Unit(user.unit_id.clone().unwrap_or_default()),
            Role::Driver => Self::Car(driver_car),
        }
    }

    /// Looks up what the scope needs (a driver's car) and builds it.
    pub async fn load(store: &Store, user: &User) -> Result<Self, ApiError> {
        let car = match (user.role, &user.driver_id) {
            (Role::Driver, Some(id)) => store.drivers().get(id).await?.and_then(|d| d.vehicle_vin),
            _ => None,
        };
        Ok(Self::of(user, car))
    }

    /// Whether the vehicle `v` is in view.
    pub fn sees(&self, v: &Vehicle) -> bool {
        match self {
            Self::All => true,
            Self::Unit(unit) => v.unit_id.as_deref() == Some(unit.as_str()),
            Self::Car(car) => car.as_ref() == Some(&v.vin),
        }
    }
}

/// Which drivers a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverScope {
    All,
    /// A unit user: the drivers bound to the unit's vehicles (whom its passengers meet).
    UnitCars(String),
    /// A driver: themselves.
    Own(Option<String>),
}

impl DriverScope {
    /// The scope of a user.
    pub fn of(user: &User) -> Self {
        match user.role {
            Role::Admin | Role::Dispatcher | Role::Auditor => Self::All,
            Role::Unit => Self::UnitCars(user.unit_id.clone().unwrap_or_default()),
            Role::Driver => Self::Own(user.driver_id.clone()),
        }
    }

    /// Whether the scope sees `d`; `car` is the vehicle `d` is bound to, if any (needed for
    /// a unit's scope only).
    pub fn sees(&self, d: &Driver, car: Option<&Vehicle>) -> bool {
        match self {
            Self::All => true,
            Self::UnitCars(unit) => car.is_some_and(|v| v.unit_id.as_deref() == Some(unit.as_str())),
            Self::Own(own) => own.as_deref() == Some(d.id.as_str()),
        }
    }
}

/// Which orders a caller sees: a unit its own, a driver those assigned to
/// them now, everyone else all. (A driver's retried tap on an order that has left them is
/// answered by the order lifecycle itself, without showing the order as it is now.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderScope {
    All,
    Unit(String),
    Driver(Option<String>),
}

impl OrderScope {
    pub fn of(user: &User) -> Self {
        match user.role {
            Role::Admin | Role::Dispatcher | Role::Auditor => Self::All,
            Role::Unit => Self::Unit(user.unit_id.clone().unwrap_or_default()),
            Role::Driver => Self::Driver(user.driver_id.clone()),
        }
    }

    /// Whether `order` is in view.
    pub fn sees(&self, order: &Order) -> bool {
        match self {
            Self::All => true,
            Self::Unit(unit) => &order.unit_id == unit,
            Self::Driver(Some(id)) => order.driver_id.as_deref() == Some(id.as_str()),
            Self::Driver(None) => false,
        }
    }
}

/// Whether a user who sees `order` may take `action` on it; `Some(on_behalf)` when allowed
/// (`true`: a dispatcher or admin acting for the driver). Approve, reject and cancel: the
/// order's unit, dispatchers, admins. Accept, decline, pickup, complete: the assigned driver,
/// or a dispatcher or admin on their behalf. Assign: dispatchers and admins.
pub fn may_act(user: &User, action: OrderAction, order: &Order) -> Option<bool> {
    let staff = matches!(user.role, Role::Admin | Role::Dispatcher);
    match action {
        OrderAction::Approve | OrderAction::Reject | OrderAction::Cancel => {
            let own_unit = user.role == Role::Unit && user.unit_id.as_deref() == Some(order.unit_id.as_str());
            (staff || own_unit).then_some(false)
        }
        OrderAction::Accept | OrderAction::Decline | OrderAction::Pickup | OrderAction::Complete => {
            if staff {
                Some(true)
            } else {
                (user.role == Role::Driver && user.driver_id.is_some() && user.driver_id == order.driver_id)
                    .then_some(false)
            }
        }
        OrderAction::Assign => staff.then_some(false),
        OrderAction::Create | OrderAction::Expire => None,
    }
}

/// Whether `user` may apply for an order for `unit_id`: 403 for roles that never do
/// (drivers, auditors), 404 for a unit user naming another unit (outside their view).
pub fn may_create_order(user: &User, unit_id: &str) -> Result<(), ApiError> {
    match user.role {
        Role::Admin | Role::Dispatcher => Ok(()),
        Role::Unit if user.unit_id.as_deref() == Some(unit_id) => Ok(()),
        Role::Unit => Err(ApiError::NotFound("unit")),
        Role::Driver | Role::Auditor => Err(ApiError::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> User {
        let unit_id = (role == Role::Unit).then(|| "u1".to_owned());
        let driver_id = (role == Role::Driver).then(|| "d1".to_owned());
        User { id: 1, username: "x".into(), role, unit_id, driver_id, retired: false }
    }

    fn vin(n: u8) -> Vin {
        Vin::parse(&format!("LSJA24U66NS00000{n}")).unwrap()
    }

    fn vehicle(n: u8, unit: Option<&str>) -> Vehicle {
        Vehicle {
            vin: vin(n),
            plate: format!("浙LD1234{n}"),
            model: "m".into(),
            seats: 5,
            battery_kwh: 60.0,
            consumption_kwh_per_100km: 15.0,
            unit_id: unit.map(str::to_owned),
            terminal_phone: None,
            file: fleet_domain::VehicleFile::default(),
            retired: false,
        }
    }

    #[test]
    fn auditors_may_only_read_and_end_their_own_session() {
        assert!(may_send(Role::Auditor, &Method::GET, "/api/v1/vehicles"));
        assert!(!may_send(Role::Auditor, &Method::POST, "/api/v1/vehicles"));
        assert!(!may_send(Role::Auditor, &Method::DELETE, "/api/v1/units/u1"));
        assert!(may_send(Role::Auditor, &Method::POST, "/api/v1/auth/logout"));
        assert!(may_send(Role::Auditor, &Method::POST, "/api/v1/auth/password"));
        assert!(may_send(Role::Dispatcher, &Method::POST, "/api/v1/vehicles"), "others are judged per route");
    }

    #[test]
    fn only_admins_manage_the_registry_and_admins_and_auditors_read_dead_letters() {
        for role in Role::ALL {
            assert_eq!(manages_registry(role), role == Role::Admin, "{role:?}");
            assert_eq!(reads_dead_letters(role), matches!(role, Role::Admin | Role::Auditor), "{role:?}");
        }
    }

    #[test]
    fn a_unit_sees_its_own_unit_and_a_driver_no_unit() {
        assert!(unit_scope(&user(Role::Dispatcher)).unwrap().sees("u2"));
        let own = unit_scope(&user(Role::Unit)).unwrap();
        assert!(own.sees("u1"));
        assert!(!own.sees("u2"));
        assert!(matches!(unit_scope(&user(Role::Driver)), Err(ApiError::Forbidden)));
    }

    #[test]
    fn a_unit_sees_its_vehicles_and_a_driver_only_their_car() {
        let mine = vehicle(1, Some("u1"));
        let other = vehicle(2, Some("u2"));
        let pool = vehicle(3, None);
        let unit = VehicleScope::of(&user(Role::Unit), None);
        assert!(unit.sees(&mine) && !unit.sees(&other) && !unit.sees(&pool));
        let driver = VehicleScope::of(&user(Role::Driver), Some(vin(2)));
        assert!(driver.sees(&other) && !driver.sees(&mine));
        let carless = VehicleScope::of(&user(Role::Driver), None);
        assert!(!carless.sees(&mine) && !carless.sees(&pool));
        let auditor = VehicleScope::of(&user(Role::Auditor), None);
        assert!(auditor.sees(&mine) && auditor.sees(&pool));
    }

    fn order(unit: &str, driver: Option<&str>) -> Order {
        let place = fleet_domain::Place { lat: 30.0, lon: 122.1, name: "p".into() };
        Order {
            id: "o1".into(),
            unit_id: unit.into(),
            status: fleet_domain::OrderStatus::Assigned,
            passengers: 1,
            pickup: place.clone(),
            dropoff: place,
            pickup_at: chrono::Utc::now(),
            purpose: "x".into(),
            vin: None,
            driver_id: driver.map(str::to_owned),
            unmatched_reason: None,
            assigned_at: None,
        }
    }

    #[test]
    fn orders_are_seen_and_acted_on_by_the_documented_roles() {
        use OrderAction as A;
        let mine = order("u1", Some("d1"));
        let theirs = order("u2", Some("d2"));
        let unit = user(Role::Unit);
        let driver = user(Role::Driver);
        assert!(OrderScope::of(&unit).sees(&mine) && !OrderScope::of(&unit).sees(&theirs));
        assert!(
            OrderScope::of(&driver).sees(&mine) && !OrderScope::of(&driver).sees(&theirs),
            "a driver sees only what is assigned to them now"
        );
        for role in [Role::Admin, Role::Dispatcher, Role::Auditor] {
            assert!(OrderScope::of(&user(role)).sees(&theirs));
        }
        assert_eq!(may_act(&unit, A::Approve, &mine), Some(false));
        assert_eq!(may_act(&unit, A::Accept, &mine), None);
        assert_eq!(may_act(&unit, A::Assign, &mine), None);
        assert_eq!(may_act(&driver, A::Accept, &mine), Some(false));
        assert_eq!(may_act(&driver, A::Accept, &theirs), None);
        assert_eq!(may_act(&driver, A::Cancel, &mine), None);
        assert_eq!(may_act(&user(Role::Dispatcher), A::Pickup, &mine), Some(true), "on the driver's behalf");
        assert_eq!(may_act(&user(Role::Admin), A::Assign, &mine), Some(false));
        assert_eq!(may_act(&user(Role::Auditor), A::Cancel, &mine), None);
        assert!(may_create_order(&unit, "u1").is_ok());
        assert!(matches!(may_create_order(&unit, "u2"), Err(ApiError::NotFound(_))));
        assert!(matches!(may_create_order(&driver, "u1"), Err(ApiError::Forbidden)));
        assert!(may_create_order(&user(Role::Dispatcher), "u2").is_ok());
    }

    #[test]
    fn a_driver_sees_only_themselves_and_a_unit_the_drivers_of_its_cars() {
        let d1 = Driver {
            id: "d1".into(),
            name: "n".into(),
            phone: "13800000000".into(),
            vehicle_vin: Some(vin(1)),
            retired: false,
        };
        let d2 = Driver { id: "d2".into(), vehicle_vin: Some(vin(2)), ..d1.clone() };
        let own = DriverScope::of(&user(Role::Driver));
        assert!(own.sees(&d1, None) && !own.sees(&d2, None));
        let unit = DriverScope::of(&user(Role::Unit));
        assert!(unit.sees(&d1, Some(&vehicle(1, Some("u1")))));
        assert!(!unit.sees(&d2, Some(&vehicle(2, Some("u2")))));
        assert!(!unit.sees(&d2, None));
    }
}
