//! Ride orders (docs/dispatch.md): the order as the outside world sees it, a new order's
//! validation, and the one state machine every transition goes through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Vin;
use crate::registry::{ValidationError, validate_id};

mod transition;

pub use transition::{Act, Actor, Change, Decision, History, Refusal, decide};

/// Most passengers one order may carry (a minibus).
pub const MAX_PASSENGERS: u32 = 50;
/// Longest an order may be booked ahead.
pub const MAX_BOOKING_AHEAD: chrono::Duration = chrono::Duration::days(90);
/// A `pickup_at` this far in the past is refused (clock skew and slow forms are tolerated).
pub const MAX_PICKUP_IN_PAST: chrono::Duration = chrono::Duration::minutes(10);

/// How long before its pickup time an order is matched to a car (and the car reserved),
/// unless configured otherwise.
pub const DEFAULT_DISPATCH_LEAD: chrono::Duration = chrono::Duration::minutes(30);
/// Time a car is held before pickup to drive there.
pub const RESERVATION_APPROACH: chrono::Duration = chrono::Duration::minutes(15);
/// Slack after a trip's estimated end before its car may serve another order.
pub const RESERVATION_SLACK: chrono::Duration = chrono::Duration::minutes(15);

/// The time an order holds its car: from [`RESERVATION_APPROACH`] before pickup to the
/// trip's estimated end (`trip_eta` after pickup) plus [`RESERVATION_SLACK`].
pub fn reservation_window(pickup_at: DateTime<Utc>, trip_eta: std::time::Duration) -> (DateTime<Utc>, DateTime<Utc>) {
    let trip = chrono::Duration::from_std(trip_eta).unwrap_or(chrono::Duration::hours(24));
    (pickup_at - RESERVATION_APPROACH, pickup_at + trip + RESERVATION_SLACK)
}

/// Where an order's lifecycle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingApproval,
    Approved,
    Assigned,
    Accepted,
    PickedUp,
    Completed,
    Rejected,
    Canceled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        Self::PendingApproval,
        Self::Approved,
        Self::Assigned,
        Self::Accepted,
        Self::PickedUp,
        Self::Completed,
        Self::Rejected,
        Self::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Assigned => "assigned",
            Self::Accepted => "accepted",
            Self::PickedUp => "picked_up",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The car is held for the order but has not yet picked up its passengers.
    pub fn holds_car(self) -> bool {
        matches!(self, Self::Assigned | Self::Accepted)
    }

    /// The car carries the order's passengers.
    pub fn carries_passengers(self) -> bool {
        self == Self::PickedUp
    }

    /// The order occupies its car (a reservation no other order may overlap).
    pub fn occupies_car(self) -> bool {
        self.holds_car() || self.carries_passengers()
    }

    /// Nothing more can happen to the order.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Rejected | Self::Canceled)
    }
}

/// What someone (or dispatch) does to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderAction {
    /// The order was applied for (the first event of every order).
    Create,
    Approve,
    Reject,
    Cancel,
    /// A car (and its driver) is given to the order: by the batch, or a dispatcher's manual
    /// assignment or reassignment.
    Assign,
    Accept,
    Decline,
    /// The driver did not answer in time: back to the pool, like a decline.
    Expire,
    Pickup,
    Complete,
}

impl OrderAction {
    pub const ALL: [OrderAction; 10] = [
        Self::Create,
        Self::Approve,
        Self::Reject,
        Self::Cancel,
        Self::Assign,
        Self::Accept,
        Self::Decline,
        Self::Expire,
        Self::Pickup,
        Self::Complete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
            Self::Assign => "assign",
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Expire => "expire",
            Self::Pickup => "pickup",
            Self::Complete => "complete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The status this action leads to from `from`, or `None` when it is not allowed there.
    pub fn target(self, from: OrderStatus) -> Option<OrderStatus> {
        use OrderStatus as S;
        match (self, from) {
            (Self::Approve, S::PendingApproval) => Some(S::Approved),
            (Self::Reject, S::PendingApproval) => Some(S::Rejected),
            (Self::Cancel, s) if !s.is_final() => Some(S::Canceled),
            (Self::Assign, S::Approved | S::Assigned | S::Accepted) => Some(S::Assigned),
            (Self::Accept, S::Assigned) => Some(S::Accepted),
            (Self::Decline | Self::Expire, S::Assigned) => Some(S::Approved),
            (Self::Pickup, S::Accepted) => Some(S::PickedUp),
            (Self::Complete, S::PickedUp) => Some(S::Completed),
            _ => None,
        }
    }

    /// Whether the action releases the order's car.
    pub fn releases_car(self) -> bool {
        matches!(self, Self::Cancel | Self::Decline | Self::Expire | Self::Complete)
    }

    /// Whether the action is the driver's own (a dispatcher or admin may take it on their
    /// behalf).
    pub fn is_drivers(self) -> bool {
        matches!(self, Self::Accept | Self::Decline | Self::Pickup | Self::Complete)
    }
}

/// How a driver acting for themselves stands to an order (decided where the transition is,
/// in the same transaction that reads the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverStanding {
    /// The order is assigned to this driver: the state machine decides.
    Current,
    /// The order left this driver (they declined it, it expired, or it was reassigned) and
    /// the driver repeats exactly their own last action on it (a retried tap): answered
    /// unchanged, nothing recorded.
    FormerRepeat,
    /// Not this driver's order: they may not act on it, nor learn what became of it.
    Stranger,
}

/// Where a driver stands when taking a driver's `action` on an order now assigned to
/// `order_driver`; `own_last` is the last action this driver's user took on the order, if any.
pub fn driver_standing(
    order_driver: Option<&str>,
    driver: &str,
    action: OrderAction,
    own_last: Option<OrderAction>,
) -> DriverStanding {
    if order_driver == Some(driver) {
        DriverStanding::Current
    } else if action.is_drivers() && own_last == Some(action) {
        DriverStanding::FormerRepeat
    } else {
        DriverStanding::Stranger
    }
}

/// A named point of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub lat: f64,
    pub lon: f64,
    pub name: String,
}

impl Place {
    fn validate(&self, field: &'static str) -> Result<(), ValidationError> {
        if !self.lat.is_finite()
            || !(-90.0..=90.0).contains(&self.lat)
            || !self.lon.is_finite()
            || !(-180.0..=180.0).contains(&self.lon)
        {
            return Err(ValidationError::new(field, "lat must be -90 to 90 and lon -180 to 180 (WGS-84 degrees)"));
        }
        let n = self.name.trim().chars().count();
        if n == 0 || n > 100 {
            return Err(ValidationError::new(field, "name must hold 1 to 100 characters"));
        }
        Ok(())
    }
}

/// An order, as the API and the live feed show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub unit_id: String,
    pub status: OrderStatus,
    pub passengers: u32,
    pub pickup: Place,
    pub dropoff: Place,
    pub pickup_at: DateTime<Utc>,
    pub purpose: String,
    pub vin: Option<Vin>,
    pub driver_id: Option<String>,
    /// Why the order still waits for a car (a code such as `no_car_with_enough_charge`);
    /// null once matched.
    pub unmatched_reason: Option<String>,
    /// When the current car was assigned (the driver's time to accept runs from it).
    pub assigned_at: Option<DateTime<Utc>>,
}

impl Order {
    /// The order as a driver it has left may see it: its status and route, without the car
    /// and driver it has now (who took it over is not theirs to know).
    pub fn seen_by_former_driver(&self) -> Order {
        Order { vin: None, driver_id: None, unmatched_reason: None, assigned_at: None, ..self.clone() }
    }
}

/// An order as applied for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewOrder {
    pub unit_id: String,
    pub passengers: u32,
    pub pickup: Place,
    pub dropoff: Place,
    /// Absent: now.
    pub pickup_at: Option<DateTime<Utc>>,
    pub purpose: String,
    /// Admin only: book although the unit's energy budget is spent.
    #[serde(default)]
    pub override_budget: bool,
}

impl NewOrder {
    /// Checks the fields; answers the pickup time (`now` when absent).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ValidationError> {
        validate_id("unit_id", &self.unit_id)?;
        if !(1..=MAX_PASSENGERS).contains(&self.passengers) {
            return Err(ValidationError::new("passengers", format!("must be 1 to {MAX_PASSENGERS}")));
        }
        self.pickup.validate("pickup")?;
        self.dropoff.validate("dropoff")?;
        let n = self.purpose.trim().chars().count();
        if n == 0 || n > 200 {
            return Err(ValidationError::new("purpose", "must hold 1 to 200 characters"));
        }
        let at = self.pickup_at.unwrap_or(now);
        if at < now - MAX_PICKUP_IN_PAST {
            return Err(ValidationError::new("pickup_at", "lies in the past"));
        }
        if at > now + MAX_BOOKING_AHEAD {
            return Err(ValidationError::new("pickup_at", "lies more than 90 days ahead"));
        }
        Ok(at.max(now))
    }
}

/// One entry of an order's append-only history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub ts: DateTime<Utc>,
    /// Who acted: a username, or `dispatch` for the batch and timeouts.
    pub actor: String,
    pub action: OrderAction,
    /// Null for the creation.
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub reason: Option<String>,
    /// The car the event gave or took, when it concerns one.
    pub vin: Option<Vin>,
    /// A dispatcher or admin acted for the driver.
    pub on_behalf: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_driver_acts_and_a_former_one_may_only_repeat_their_last_tap() {
        use DriverStanding as D;
        use OrderAction as A;
        assert_eq!(driver_standing(Some("d1"), "d1", A::Accept, None), D::Current);
        // d1 declined, the order went to d2: d1's repeated decline answers, nothing else does.
        assert_eq!(driver_standing(Some("d2"), "d1", A::Decline, Some(A::Decline)), D::FormerRepeat);
        for action in [A::Accept, A::Pickup, A::Complete] {
            assert_eq!(driver_standing(Some("d2"), "d1", action, Some(A::Decline)), D::Stranger, "{action:?}");
        }
        // Back in the pool with nobody assigned: the same holds.
        assert_eq!(driver_standing(None, "d1", A::Decline, Some(A::Decline)), D::FormerRepeat);
        assert_eq!(driver_standing(None, "d1", A::Accept, Some(A::Decline)), D::Stranger);
        // A driver who never acted on the order is a stranger to it.
        assert_eq!(driver_standing(Some("d2"), "d1", A::Decline, None), D::Stranger);
        // Only a driver's own actions repeat.
        assert_eq!(driver_standing(None, "d1", A::Cancel, Some(A::Cancel)), D::Stranger);
    }

    #[test]
    fn the_state_machine_allows_exactly_the_documented_transitions() {
        use OrderAction as A;
        use OrderStatus as S;
        let allowed: Vec<(A, S, S)> = A::ALL
            .into_iter()
            .flat_map(|a| S::ALL.into_iter().filter_map(move |s| a.target(s).map(|t| (a, s, t))))
            .collect();
        let expected = vec![
            (A::Approve, S::PendingApproval, S::Approved),
            (A::Reject, S::PendingApproval, S::Rejected),
            (A::Cancel, S::PendingApproval, S::Canceled),
            (A::Cancel, S::Approved, S::Canceled),
            (A::Cancel, S::Assigned, S::Canceled),
            (A::Cancel, S::Accepted, S::Canceled),
            (A::Cancel, S::PickedUp, S::Canceled),
            (A::Assign, S::Approved, S::Assigned),
            (A::Assign, S::Assigned, S::Assigned),
            (A::Assign, S::Accepted, S::Assigned),
            (A::Accept, S::Assigned, S::Accepted),
            (A::Decline, S::Assigned, S::Approved),
            (A::Expire, S::Assigned, S::Approved),
            (A::Pickup, S::Accepted, S::PickedUp),
            (A::Complete, S::PickedUp, S::Completed),
        ];
        assert_eq!(allowed, expected);
        for s in S::ALL.into_iter().filter(|s| s.is_final()) {
            assert!(A::ALL.into_iter().all(|a| a.target(s).is_none()), "{s:?} is final");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for a in OrderAction::ALL {
            assert_eq!(OrderAction::parse(a.as_str()), Some(a));
        }
    }

    fn new_order() -> NewOrder {
        let place = |name: &str| Place { lat: 30.0, lon: 122.1, name: name.into() };
        NewOrder {
            unit_id: "u01".into(),
            passengers: 2,
            pickup: place("市政府"),
            dropoff: place("机场"),
            pickup_at: None,
            purpose: "公务".into(),
            override_budget: false,
        }
    }

    #[test]
    fn a_new_order_is_validated_field_by_field() {
        let now = Utc::now();
        assert_eq!(new_order().validate(now).unwrap(), now);
        type Change = Box<dyn Fn(&mut NewOrder)>;
        let cases: Vec<(&str, Change)> = vec![
            ("passengers", Box::new(|o| o.passengers = 0)),
            ("passengers", Box::new(|o| o.passengers = 51)),
            ("pickup", Box::new(|o| o.pickup.lat = 91.0)),
            ("dropoff", Box::new(|o| o.dropoff.lon = f64::NAN)),
            ("pickup", Box::new(|o| o.pickup.name = "  ".into())),
            ("purpose", Box::new(|o| o.purpose = String::new())),
            ("unit_id", Box::new(|o| o.unit_id = "a b".into())),
            ("pickup_at", Box::new(move |o| o.pickup_at = Some(now - chrono::Duration::hours(1)))),
            ("pickup_at", Box::new(move |o| o.pickup_at = Some(now + chrono::Duration::days(91)))),
        ];
        for (field, change) in cases {
            let mut o = new_order();
            change(&mut o);
            assert_eq!(o.validate(now).unwrap_err().field, field);
        }
    }
}
