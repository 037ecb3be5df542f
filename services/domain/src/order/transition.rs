//! The one decision every status change of an order takes: given the order as stored, what
//! storage read of its history and the change asked for, whether to apply it (and what to
//! record), to answer it unchanged, or to refuse it. Storage reads and writes; the rules are
//! here.

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::{DriverStanding, Order, OrderAction, OrderEvent, OrderStatus, driver_standing};
use crate::Vin;

/// Who acts on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A username, or `dispatch` for the batch and timeouts.
    pub name: String,
    pub user_id: Option<i64>,
    /// A dispatcher or admin acting for the driver.
    pub on_behalf: bool,
    /// The driver this actor is, when a driver acts for themselves: they may take a driver's
    /// action only on the order now assigned to them, or repeat their own last one on an
    /// order that has left them ([`driver_standing`]).
    pub driver_id: Option<String>,
}

impl Actor {
    /// Dispatch itself (batch assignment, accept timeouts).
    pub fn dispatch() -> Self {
        Self { name: "dispatch".to_owned(), user_id: None, on_behalf: false, driver_id: None }
    }
}

/// One status change to make.
#[derive(Debug, Clone)]
pub struct Act<'a> {
    pub action: OrderAction,
    pub actor: &'a Actor,
    pub reason: Option<&'a str>,
    /// For `Assign`: the car and its driver.
    pub car: Option<(Vin, Option<String>)>,
    /// Change only if the order is still at this version (else [`Refusal::Stale`]).
    pub expected_version: Option<i64>,
}

impl Act<'_> {
    /// The user whose own last action on `order` [`decide`] needs to know, if any: a driver
    /// acting for themselves on a driver's action, on an order not assigned to them.
    pub fn needs_own_last(&self, order: &Order) -> Option<i64> {
        let driver = self.actor.driver_id.as_deref()?;
        let theirs = order.driver_id.as_deref() == Some(driver);
        (self.action.is_drivers() && !theirs).then_some(self.actor.user_id).flatten()
    }
}

/// What storage read of the order's history for [`decide`].
#[derive(Debug, Clone, Copy, Default)]
pub struct History<'a> {
    /// The last action of the user [`Act::needs_own_last`] names (None when it names none).
    pub own_last: Option<OrderAction>,
    /// The order's newest history entry, with the id of the user who acted.
    pub last: Option<&'a (OrderEvent, Option<i64>)>,
}

/// What to do with an asked-for change.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Store the change, in one transaction.
    Apply(Box<Change>),
    /// The same actor repeated the action that brought the order to its status (a retried
    /// tap): answer the order as it is, record nothing.
    Repeat,
    /// A driver the order has left repeated their own last action on it: answer the order
    /// as that driver may see it ([`Order::seen_by_former_driver`]), record nothing.
    FormerDriverRepeat,
    Refuse(Refusal),
}

/// A change to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The order after the change.
    pub order: Order,
    /// Its version after the change (one more than before).
    pub version: i64,
    /// The history entry recording it (its acting user is the actor's `user_id`).
    pub event: OrderEvent,
    /// A car never to be offered this order again (it declined or let it time out).
    pub exclude: Option<Vin>,
}

/// Why a change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The order is no longer at the version the actor read.
    #[error("the order changed meanwhile")]
    Stale,
    /// A driver acting for themselves on an order that is not (or no longer) theirs.
    #[error("the order is not assigned to this driver")]
    NotTheirs,
    /// The order's status does not allow the action.
    #[error("cannot {} an order that is {}", .action.as_str(), .from.as_str())]
    InvalidTransition { action: OrderAction, from: OrderStatus },
    /// An assignment that names no car (a caller's bug, not a user's request).
    #[error("an assignment names no car")]
    NoCar,
}

/// Decides `act` on `order`, stored at `version`, at `now`. The checks run in this order:
/// the expected version; a driver's standing to the order; a same-actor repeat; the state
/// machine.
pub fn decide(order: &Order, version: i64, act: &Act<'_>, history: History<'_>, now: DateTime<Utc>) -> Decision {
    if act.expected_version.is_some_and(|v| v != version) {
        return Decision::Refuse(Refusal::Stale);
    }
    if let (Some(driver), true) = (act.actor.driver_id.as_deref(), act.action.is_drivers()) {
        match driver_standing(order.driver_id.as_deref(), driver, act.action, history.own_last) {
            DriverStanding::Current => {}
            DriverStanding::FormerRepeat => return Decision::FormerDriverRepeat,
            DriverStanding::Stranger => return Decision::Refuse(Refusal::NotTheirs),
        }
    }
    let from = order.status;
    if let Some((last, user)) = history.last {
        let same_actor = *user == act.actor.user_id && (user.is_some() || last.actor == act.actor.name);
        let same_car = act.action != OrderAction::Assign || last.vin == act.car.as_ref().map(|c| c.0.clone());
        if last.action == act.action && last.to == from && same_actor && same_car {
            return Decision::Repeat;
        }
    }
    let Some(to) = act.action.target(from) else {
        return Decision::Refuse(Refusal::InvalidTransition { action: act.action, from });
    };
    let mut next = order.clone();
    next.status = to;
    let (event_vin, exclude) = match act.action {
        OrderAction::Assign => {
            let Some((vin, driver)) = act.car.clone() else { return Decision::Refuse(Refusal::NoCar) };
            next.vin = Some(vin.clone());
            next.driver_id = driver;
            next.unmatched_reason = None;
            next.assigned_at = Some(now);
            (Some(vin), None)
        }
        OrderAction::Decline | OrderAction::Expire => {
            let old = next.vin.take();
            next.driver_id = None;
            next.assigned_at = None;
            (old.clone(), old)
        }
        _ => (next.vin.clone(), None),
    };
    let event = OrderEvent {
        ts: now,
        actor: act.actor.name.clone(),
        action: act.action,
        from: Some(from),
        to,
        reason: act.reason.map(str::to_owned),
        vin: event_vin,
        on_behalf: act.actor.on_behalf,
    };
    Decision::Apply(Box::new(Change { order: next, version: version + 1, event, exclude }))
}

#[cfg(test)]
mod tests;
