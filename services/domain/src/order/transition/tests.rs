use chrono::TimeZone;

use super::*;
use crate::order::Place;

use OrderAction as A;
use OrderStatus as S;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap()
}

fn vin(i: u8) -> Vin {
    Vin::parse(&format!("LSJA24U66NS00000{i}")).unwrap()
}

fn order(status: OrderStatus) -> Order {
    let place = |name: &str| Place { lat: 30.0, lon: 122.1, name: name.into() };
    Order {
        id: "o-1".into(),
        unit_id: "u01".into(),
        status,
        passengers: 2,
        pickup: place("市政府"),
        dropoff: place("机场"),
        pickup_at: now(),
        purpose: "公务".into(),
        vin: None,
        driver_id: None,
        unmatched_reason: None,
        assigned_at: None,
    }
}

/// An order assigned to `vin(1)` driven by `d1`.
fn assigned(status: OrderStatus) -> Order {
    Order {
        vin: Some(vin(1)),
        driver_id: Some("d1".into()),
        assigned_at: Some(now() - chrono::Duration::minutes(5)),
        ..order(status)
    }
}

fn user(name: &str, id: i64) -> Actor {
    Actor { name: name.into(), user_id: Some(id), on_behalf: false, driver_id: None }
}

fn driver(name: &str, id: i64, driver_id: &str) -> Actor {
    Actor { driver_id: Some(driver_id.into()), ..user(name, id) }
}

fn act(action: OrderAction, actor: &Actor) -> Act<'_> {
    Act { action, actor, reason: None, car: None, expected_version: None }
}

fn entry(action: OrderAction, to: OrderStatus, actor: &Actor, vin: Option<Vin>) -> (OrderEvent, Option<i64>) {
    let event = OrderEvent {
        ts: now() - chrono::Duration::minutes(1),
        actor: actor.name.clone(),
        action,
        from: None,
        to,
        reason: None,
        vin,
        on_behalf: false,
    };
    (event, actor.user_id)
}

fn after(last: &(OrderEvent, Option<i64>)) -> History<'_> {
    History { own_last: None, last: Some(last) }
}

fn applied(d: Decision) -> Change {
    match d {
        Decision::Apply(c) => *c,
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn an_allowed_action_moves_the_order_bumps_its_version_and_records_who_did_what() {
    let boss = user("boss", 8);
    let a = Act { reason: Some("ok"), ..act(A::Approve, &boss) };
    let c = applied(decide(&order(S::PendingApproval), 3, &a, History::default(), now()));
    assert_eq!(c.order, Order { status: S::Approved, ..order(S::PendingApproval) });
    assert_eq!(c.version, 4);
    let expected = OrderEvent {
        ts: now(),
        actor: "boss".into(),
        action: A::Approve,
        from: Some(S::PendingApproval),
        to: S::Approved,
        reason: Some("ok".into()),
        vin: None,
        on_behalf: false,
    };
    assert_eq!(c.event, expected);
    assert_eq!(c.exclude, None);
}

#[test]
fn a_stale_version_is_refused_before_any_other_rule() {
    let boss = user("boss", 8);
    let a = Act { expected_version: Some(2), ..act(A::Approve, &boss) };
    assert_eq!(decide(&order(S::PendingApproval), 3, &a, History::default(), now()), Decision::Refuse(Refusal::Stale));
    // Even a repeat, or a driver the order is not theirs, hears of the version first.
    let last = entry(A::Approve, S::Approved, &boss, None);
    assert_eq!(decide(&order(S::Approved), 3, &a, after(&last), now()), Decision::Refuse(Refusal::Stale));
    let stranger = driver("driver03", 11, "d3");
    let a = Act { expected_version: Some(2), ..act(A::Accept, &stranger) };
    assert_eq!(decide(&assigned(S::Assigned), 3, &a, History::default(), now()), Decision::Refuse(Refusal::Stale));
    // The version read is the version stored: the change goes ahead.
    let a = Act { expected_version: Some(3), ..act(A::Approve, &boss) };
    assert!(matches!(decide(&order(S::PendingApproval), 3, &a, History::default(), now()), Decision::Apply(_)));
}

#[test]
fn the_same_user_repeating_the_action_that_brought_the_order_here_changes_nothing() {
    let boss = user("boss", 8);
    let last = entry(A::Approve, S::Approved, &boss, None);
    assert_eq!(decide(&order(S::Approved), 4, &act(A::Approve, &boss), after(&last), now()), Decision::Repeat);
}

#[test]
fn another_user_repeating_it_is_judged_by_the_state_machine() {
    let (boss, other) = (user("boss", 8), user("boss", 9));
    let last = entry(A::Approve, S::Approved, &boss, None);
    let refused = Decision::Refuse(Refusal::InvalidTransition { action: A::Approve, from: S::Approved });
    assert_eq!(decide(&order(S::Approved), 4, &act(A::Approve, &other), after(&last), now()), refused);
}

#[test]
fn actors_without_a_user_are_the_same_actor_by_name() {
    let dispatch = Actor::dispatch();
    let last = entry(A::Expire, S::Approved, &dispatch, Some(vin(1)));
    assert_eq!(decide(&order(S::Approved), 4, &act(A::Expire, &dispatch), after(&last), now()), Decision::Repeat);
    let clerk = Actor { name: "clerk".into(), ..Actor::dispatch() };
    let refused = Decision::Refuse(Refusal::InvalidTransition { action: A::Expire, from: S::Approved });
    assert_eq!(decide(&order(S::Approved), 4, &act(A::Expire, &clerk), after(&last), now()), refused);
    // A user and an actor without one are never the same, whatever their names.
    let named = user("dispatch", 1);
    assert_eq!(decide(&order(S::Approved), 4, &act(A::Expire, &named), after(&last), now()), refused);
}

#[test]
fn a_repeat_counts_only_while_the_order_is_still_where_that_action_brought_it() {
    let boss = user("boss", 8);
    // Approved, then canceled by someone else: the boss's approval no longer describes it.
    let last = entry(A::Approve, S::Approved, &boss, None);
    let refused = Decision::Refuse(Refusal::InvalidTransition { action: A::Approve, from: S::Canceled });
    assert_eq!(decide(&order(S::Canceled), 5, &act(A::Approve, &boss), after(&last), now()), refused);
}

#[test]
fn the_same_assignment_repeated_changes_nothing_but_another_car_is_a_reassignment() {
    let dispatch = Actor::dispatch();
    let last = entry(A::Assign, S::Assigned, &dispatch, Some(vin(1)));
    let same = Act { car: Some((vin(1), Some("d1".into()))), ..act(A::Assign, &dispatch) };
    assert_eq!(decide(&assigned(S::Assigned), 5, &same, after(&last), now()), Decision::Repeat);
    let other = Act { car: Some((vin(2), Some("d2".into()))), ..act(A::Assign, &dispatch) };
    let c = applied(decide(&assigned(S::Assigned), 5, &other, after(&last), now()));
    assert_eq!(
        (c.order.vin, c.order.driver_id.as_deref(), c.order.assigned_at),
        (Some(vin(2)), Some("d2"), Some(now()))
    );
    assert_eq!((c.event.vin, c.event.from, c.event.to), (Some(vin(2)), Some(S::Assigned), S::Assigned));
}

#[test]
fn an_assignment_takes_the_car_and_its_driver_and_clears_why_the_order_waited() {
    let dispatch = Actor::dispatch();
    let waiting = Order { unmatched_reason: Some("no_car_with_enough_charge".into()), ..order(S::Approved) };
    let a = Act { car: Some((vin(3), None)), ..act(A::Assign, &dispatch) };
    let c = applied(decide(&waiting, 1, &a, History::default(), now()));
    let expected = Order { status: S::Assigned, vin: Some(vin(3)), assigned_at: Some(now()), ..order(S::Approved) };
    assert_eq!(c.order, expected);
    assert_eq!((c.event.vin, c.exclude), (Some(vin(3)), None));
}

#[test]
fn an_assignment_that_names_no_car_is_refused() {
    let dispatch = Actor::dispatch();
    let d = decide(&order(S::Approved), 1, &act(A::Assign, &dispatch), History::default(), now());
    assert_eq!(d, Decision::Refuse(Refusal::NoCar));
}

#[test]
fn a_decline_or_an_expiry_frees_the_car_and_excludes_it_from_the_order() {
    let d1 = driver("driver01", 9, "d1");
    for (action, actor) in [(A::Decline, &d1), (A::Expire, &Actor::dispatch())] {
        let c = applied(decide(&assigned(S::Assigned), 2, &act(action, actor), History::default(), now()));
        assert_eq!(c.order, order(S::Approved), "{action:?}");
        assert_eq!((c.event.vin, c.exclude), (Some(vin(1)), Some(vin(1))), "{action:?}");
    }
}

#[test]
fn other_actions_keep_the_car_and_name_it_in_the_history() {
    let d1 = driver("driver01", 9, "d1");
    let c = applied(decide(&assigned(S::Assigned), 2, &act(A::Accept, &d1), History::default(), now()));
    assert_eq!(c.order, assigned(S::Accepted));
    assert_eq!((c.event.vin, c.exclude), (Some(vin(1)), None));
    let boss = user("boss", 8);
    let c = applied(decide(&assigned(S::PickedUp), 2, &act(A::Cancel, &boss), History::default(), now()));
    assert_eq!(c.order, assigned(S::Canceled), "a cancellation keeps the car on record");
}

#[test]
fn an_action_the_state_machine_forbids_is_an_invalid_transition() {
    let boss = user("boss", 8);
    let d = decide(&order(S::Completed), 7, &act(A::Cancel, &boss), History::default(), now());
    assert_eq!(d, Decision::Refuse(Refusal::InvalidTransition { action: A::Cancel, from: S::Completed }));
    assert_eq!(
        Refusal::InvalidTransition { action: A::Cancel, from: S::Completed }.to_string(),
        "cannot cancel an order that is completed"
    );
}

#[test]
fn someone_acting_on_behalf_of_the_driver_is_not_held_to_the_drivers_standing() {
    let disp = Actor { on_behalf: true, ..user("dispatcher", 8) };
    let c = applied(decide(&assigned(S::Assigned), 2, &act(A::Accept, &disp), History::default(), now()));
    assert!(c.event.on_behalf);
    assert_eq!(c.order.status, S::Accepted);
}

#[test]
fn the_current_driver_acts_through_the_state_machine_and_may_repeat_a_tap() {
    let d1 = driver("driver01", 9, "d1");
    let c = applied(decide(&assigned(S::Assigned), 2, &act(A::Accept, &d1), History::default(), now()));
    assert_eq!(c.event.actor, "driver01");
    let last = entry(A::Accept, S::Accepted, &d1, Some(vin(1)));
    assert_eq!(decide(&assigned(S::Accepted), 3, &act(A::Accept, &d1), after(&last), now()), Decision::Repeat);
    let refused = Decision::Refuse(Refusal::InvalidTransition { action: A::Complete, from: S::Accepted });
    assert_eq!(decide(&assigned(S::Accepted), 3, &act(A::Complete, &d1), after(&last), now()), refused);
}

#[test]
fn a_former_driver_repeating_exactly_their_last_tap_gets_the_order_unchanged() {
    let d1 = driver("driver01", 9, "d1");
    // d1 declined; the order went to d2.
    let reassigned = Order { driver_id: Some("d2".into()), vin: Some(vin(2)), ..assigned(S::Assigned) };
    let dispatch = Actor::dispatch();
    let last = entry(A::Assign, S::Assigned, &dispatch, Some(vin(2)));
    let history = History { own_last: Some(A::Decline), last: Some(&last) };
    assert_eq!(decide(&reassigned, 4, &act(A::Decline, &d1), history, now()), Decision::FormerDriverRepeat);
    // Back in the pool with nobody assigned: the same.
    assert_eq!(decide(&order(S::Approved), 4, &act(A::Decline, &d1), history, now()), Decision::FormerDriverRepeat);
}

#[test]
fn a_former_driver_doing_anything_else_is_told_the_order_is_not_theirs() {
    let d1 = driver("driver01", 9, "d1");
    let reassigned = Order { driver_id: Some("d2".into()), vin: Some(vin(2)), ..assigned(S::Assigned) };
    let history = History { own_last: Some(A::Decline), last: None };
    for action in [A::Accept, A::Pickup, A::Complete] {
        let d = decide(&reassigned, 4, &act(action, &d1), history, now());
        assert_eq!(d, Decision::Refuse(Refusal::NotTheirs), "{action:?}");
    }
}

#[test]
fn a_driver_who_never_acted_on_an_order_of_another_is_a_stranger_to_it() {
    let d3 = driver("driver03", 11, "d3");
    for action in [A::Accept, A::Decline, A::Pickup, A::Complete] {
        let d = decide(&assigned(S::Assigned), 4, &act(action, &d3), History::default(), now());
        assert_eq!(d, Decision::Refuse(Refusal::NotTheirs), "{action:?}");
    }
}

#[test]
fn a_driver_taking_an_action_that_is_not_a_drivers_is_judged_by_the_state_machine_alone() {
    // Who may cancel is decided before storage; here only the state machine speaks.
    let d3 = driver("driver03", 11, "d3");
    let c = applied(decide(&assigned(S::Assigned), 4, &act(A::Cancel, &d3), History::default(), now()));
    assert_eq!(c.order.status, S::Canceled);
}

#[test]
fn only_a_driver_acting_on_an_order_not_theirs_needs_their_own_last_action_read() {
    let d1 = driver("driver01", 9, "d1");
    let d2 = driver("driver02", 10, "d2");
    let mine = assigned(S::Assigned);
    assert_eq!(act(A::Accept, &d1).needs_own_last(&mine), None, "the current driver");
    assert_eq!(act(A::Decline, &d2).needs_own_last(&mine), Some(10));
    assert_eq!(act(A::Decline, &d2).needs_own_last(&order(S::Approved)), Some(10), "an order nobody drives");
    assert_eq!(act(A::Cancel, &d2).needs_own_last(&mine), None, "not a driver's action");
    assert_eq!(act(A::Decline, &user("boss", 8)).needs_own_last(&mine), None, "not a driver");
    let without_user = Actor { user_id: None, ..d2.clone() };
    assert_eq!(act(A::Decline, &without_user).needs_own_last(&mine), None, "no user to read the history of");
}
