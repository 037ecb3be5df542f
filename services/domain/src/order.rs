//! A ride order as the outside world sees it (contract §3): the shape the live feed and the
//! API carry. Its lifecycle rules arrive with dispatch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Vin;

/// Where an order's lifecycle stands (contract §3).
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
    /// The car is held for the order but has not yet picked up its passengers.
    pub fn holds_car(self) -> bool {
        matches!(self, Self::Assigned | Self::Accepted)
    }

    /// The car carries the order's passengers.
    pub fn carries_passengers(self) -> bool {
        self == Self::PickedUp
    }
}

/// A named point of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub lat: f64,
    pub lon: f64,
    pub name: String,
}

/// An order (contract §3 "An order object carries …").
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
    /// Why the order still waits for a car; null once matched.
    pub unmatched_reason: Option<String>,
}
