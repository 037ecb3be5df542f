//! The order repository on both back ends: the state machine in a transaction, the
//! append-only history, same-actor repeats, exclusions, and no double booking even under
//! concurrent writers.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use fleet_domain::{NewDriver, NewOrder, NewUnit, NewVehicle, OrderAction, OrderStatus, Place, Vin};
use fleet_storage::{Act, Acted, Actor, OrderRecord, StorageError, Store};
use fleet_tests::{both, random_vin};

async fn fixture(s: &Store) -> anyhow::Result<(Vin, String)> {
    let unit = NewUnit {
        id: Some("u1".into()),
        name: "市委办".into(),
        monthly_energy_budget_kwh: 900.0,
        auto_approve: false,
        ..Default::default()
    };
    s.units().create("u1", &unit).await?;
    let vin = random_vin();
    let v = NewVehicle {
        vin: vin.clone(),
        plate: "浙LD66601".into(),
        model: "BYD e6".into(),
        seats: 5,
        battery_kwh: 71.7,
        consumption_kwh_per_100km: 17.0,
        unit_id: None,
        terminal_phone: None,
        ..Default::default()
    };
    let vin = v.validate()?;
    s.vehicles().create(&vin, &v).await?;
    let d = NewDriver {
        id: Some("d1".into()),
        name: "王师傅".into(),
        phone: "13800000001".into(),
        vehicle_vin: Some(vin.to_string()),
    };
    s.drivers().create("d1", &d, Some(&vin)).await?;
    Ok((vin, "d1".into()))
}

fn new_order() -> NewOrder {
    let place = |name: &str, lat: f64| Place { lat, lon: 122.1, name: name.into() };
    NewOrder {
        unit_id: "u1".into(),
        passengers: 2,
        pickup: place("市行政中心", 30.0),
        dropoff: place("定海古城", 30.02),
        pickup_at: None,
        purpose: "检查工作".into(),
        override_budget: false,
    }
}

async fn create(
    s: &Store,
    id: &str,
    status: OrderStatus,
    start: DateTime<Utc>,
    mins: i64,
) -> anyhow::Result<OrderRecord> {
    let clerk = Actor { name: "clerk".into(), user_id: Some(7), on_behalf: false, driver_id: None };
    Ok(s.orders()
        .create(
            id,
            &new_order(),
            start,
            status,
            (start, start + ChronoDuration::minutes(mins)),
            &clerk,
            None,
            Utc::now(),
        )
        .await?)
}

fn act<'a>(action: OrderAction, actor: &'a Actor, car: Option<(Vin, Option<String>)>) -> Act<'a> {
    Act { action, actor, reason: None, car, expected_version: None }
}

both!(an_order_walks_its_lifecycle_with_a_history_and_repeats_record_nothing, |app: TestApp| async move {
    let s = &app.store;
    let (vin, driver) = fixture(s).await?;
    let now = Utc::now();
    let o = create(s, "o-1", OrderStatus::PendingApproval, now, 60).await?;
    assert_eq!((o.order.status, o.version), (OrderStatus::PendingApproval, 0));
    let boss = Actor { name: "boss".into(), user_id: Some(8), on_behalf: false, driver_id: None };
    let disp = Actor::dispatch();
    let drv = Actor { name: "driver01".into(), user_id: Some(9), on_behalf: false, driver_id: Some(driver.clone()) };

    let r = s.orders().act("o-1", &act(OrderAction::Approve, &boss, None), now).await?.unwrap();
    assert!(matches!(&r, Acted::Changed(x) if x.order.status == OrderStatus::Approved && x.version == 1));
    // The same approver again: unchanged, nothing recorded.
    let r = s.orders().act("o-1", &act(OrderAction::Approve, &boss, None), now).await?.unwrap();
    assert!(matches!(r, Acted::Unchanged(_)));
    // Someone else approving an approved order: not allowed from there.
    let err = s.orders().act("o-1", &act(OrderAction::Approve, &drv, None), now).await.unwrap_err();
    assert!(matches!(err, StorageError::InvalidTransition { action: "approve", from: "approved" }), "{err}");

    let r = s
        .orders()
        .act("o-1", &act(OrderAction::Assign, &disp, Some((vin.clone(), Some(driver.clone())))), now)
        .await?
        .unwrap();
    let assigned = r.record().clone();
    assert_eq!(
        (assigned.order.status, assigned.order.vin.as_ref(), assigned.order.driver_id.as_deref()),
        (OrderStatus::Assigned, Some(&vin), Some("d1"))
    );
    assert!(assigned.order.assigned_at.is_some());
    for a in [OrderAction::Accept, OrderAction::Pickup, OrderAction::Complete] {
        s.orders().act("o-1", &act(a, &drv, None), now).await?.unwrap();
    }
    let err = s.orders().act("o-1", &act(OrderAction::Cancel, &boss, None), now).await.unwrap_err();
    assert!(matches!(err, StorageError::InvalidTransition { from: "completed", .. }));
    assert!(s.orders().act("nope", &act(OrderAction::Cancel, &boss, None), now).await?.is_none());

    let events: Vec<_> =
        s.orders().events("o-1").await?.into_iter().map(|(e, _)| (e.action, e.from, e.to, e.actor)).collect();
    use OrderStatus as S;
    assert_eq!(
        events,
        vec![
            (OrderAction::Create, None, S::PendingApproval, "clerk".to_owned()),
            (OrderAction::Approve, Some(S::PendingApproval), S::Approved, "boss".to_owned()),
            (OrderAction::Assign, Some(S::Approved), S::Assigned, "dispatch".to_owned()),
            (OrderAction::Accept, Some(S::Assigned), S::Accepted, "driver01".to_owned()),
            (OrderAction::Pickup, Some(S::Accepted), S::PickedUp, "driver01".to_owned()),
            (OrderAction::Complete, Some(S::PickedUp), S::Completed, "driver01".to_owned()),
        ]
    );

    // Nobody edits the history, not even with SQL.
    let edit = match s {
        Store::Sqlite(p, _) => sqlx::query("UPDATE order_events SET actor = 'x'").execute(p).await.map(|_| ()),
        Store::Postgres(p, _) => sqlx::query("UPDATE order_events SET actor = 'x'").execute(p).await.map(|_| ()),
    };
    assert!(edit.unwrap_err().to_string().contains("append-only"));
    let delete = match s {
        Store::Sqlite(p, _) => sqlx::query("DELETE FROM order_events").execute(p).await.map(|_| ()),
        Store::Postgres(p, _) => sqlx::query("DELETE FROM order_events").execute(p).await.map(|_| ()),
    };
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(s.orders().events("o-1").await?.len(), 6);
    Ok(())
});

both!(a_decline_excludes_the_car_and_a_stale_writer_is_refused, |app: TestApp| async move {
    let s = &app.store;
    let (vin, driver) = fixture(s).await?;
    let now = Utc::now();
    create(s, "o-2", OrderStatus::Approved, now, 30).await?;
    let disp = Actor::dispatch();
    let drv = Actor { name: "driver01".into(), user_id: Some(9), on_behalf: false, driver_id: None };
    let assigned =
        s.orders().act("o-2", &act(OrderAction::Assign, &disp, Some((vin.clone(), Some(driver)))), now).await?.unwrap();
    let mut decline = act(OrderAction::Decline, &drv, None);
    decline.reason = Some("车辆故障");
    let back = s.orders().act("o-2", &decline, now).await?.unwrap();
    let back = back.record();
    assert_eq!(
        (back.order.status, back.order.vin.as_ref(), back.order.driver_id.as_ref()),
        (OrderStatus::Approved, None, None)
    );
    assert_eq!(s.orders().excluded("o-2").await?, vec![vin.clone()]);
    let (last, _) = s.orders().events("o-2").await?.pop().unwrap();
    assert_eq!((last.reason.as_deref(), last.vin.as_ref()), (Some("车辆故障"), Some(&vin)));
    // A writer still holding the assigned version is refused.
    let mut stale = act(OrderAction::Accept, &drv, None);
    stale.expected_version = Some(assigned.record().version);
    assert!(matches!(s.orders().act("o-2", &stale, now).await, Err(StorageError::Stale)));
    // Unmatched reasons change only while the order waits, and only when they differ.
    assert!(s.orders().set_unmatched_reason("o-2", Some("no_car_with_enough_charge")).await?);
    assert!(!s.orders().set_unmatched_reason("o-2", Some("no_car_with_enough_charge")).await?);
    assert_eq!(
        s.orders().get("o-2").await?.unwrap().order.unmatched_reason.as_deref(),
        Some("no_car_with_enough_charge")
    );
    Ok(())
});

both!(a_driver_the_order_has_left_may_only_repeat_their_own_last_tap, |app: TestApp| async move {
    let s = &app.store;
    let (vin1, d1) = fixture(s).await?;
    let v2 = NewVehicle {
        vin: random_vin().to_string(),
        plate: "浙LD66602".into(),
        model: "BYD e6".into(),
        seats: 5,
        battery_kwh: 71.7,
        consumption_kwh_per_100km: 17.0,
        unit_id: None,
        terminal_phone: None,
        ..Default::default()
    };
    let vin2 = v2.validate()?;
    s.vehicles().create(&vin2, &v2).await?;
    let nd = NewDriver {
        id: Some("d2".into()),
        name: "李师傅".into(),
        phone: "13800000002".into(),
        vehicle_vin: Some(vin2.to_string()),
    };
    s.drivers().create("d2", &nd, Some(&vin2)).await?;
    let now = Utc::now();
    create(s, "o-f", OrderStatus::Approved, now, 30).await?;
    let disp = Actor { name: "dispatcher".into(), user_id: Some(8), on_behalf: false, driver_id: None };
    let first = Actor { name: "driver01".into(), user_id: Some(9), on_behalf: false, driver_id: Some(d1.clone()) };
    let second = Actor { name: "driver02".into(), user_id: Some(10), on_behalf: false, driver_id: Some("d2".into()) };
    let stranger = Actor { name: "driver03".into(), user_id: Some(11), on_behalf: false, driver_id: Some("d3".into()) };

    s.orders()
        .act("o-f", &act(OrderAction::Assign, &disp, Some((vin1.clone(), Some(d1.clone())))), now)
        .await?
        .unwrap();
    // A driver who never had the order cannot act on it.
    assert!(matches!(
        s.orders().act("o-f", &act(OrderAction::Accept, &stranger, None), now).await,
        Err(StorageError::NotTheirs)
    ));
    assert!(matches!(
        s.orders().act("o-f", &act(OrderAction::Decline, &first, None), now).await?,
        Some(Acted::Changed(_))
    ));
    s.orders()
        .act("o-f", &act(OrderAction::Assign, &disp, Some((vin2.clone(), Some("d2".into())))), now)
        .await?
        .unwrap();
    let recorded = s.orders().events("o-f").await?.len();

    // The first driver's repeated decline answers, recording nothing; the order it answers
    // with is the stored one (the API hides the new car and driver).
    let r = s.orders().act("o-f", &act(OrderAction::Decline, &first, None), now).await?.unwrap();
    assert!(matches!(&r, Acted::FormerDriverRepeat(x) if x.order.driver_id.as_deref() == Some("d2")), "{r:?}");
    // Anything else the first driver tries on the second driver's order is refused.
    for a in [OrderAction::Accept, OrderAction::Pickup, OrderAction::Complete] {
        let got = s.orders().act("o-f", &act(a, &first, None), now).await;
        assert!(matches!(got, Err(StorageError::NotTheirs)), "{a:?}: {got:?}");
    }
    assert_eq!(s.orders().events("o-f").await?.len(), recorded, "nothing recorded for the former driver");
    let o = s.orders().get("o-f").await?.unwrap().order;
    assert_eq!((o.status, o.driver_id.as_deref(), o.vin.as_ref()), (OrderStatus::Assigned, Some("d2"), Some(&vin2)));

    // The current driver goes on as always; the former one still cannot follow.
    for a in [OrderAction::Accept, OrderAction::Pickup] {
        assert!(matches!(s.orders().act("o-f", &act(a, &second, None), now).await?, Some(Acted::Changed(_))), "{a:?}");
    }
    assert!(matches!(
        s.orders().act("o-f", &act(OrderAction::Complete, &first, None), now).await,
        Err(StorageError::NotTheirs)
    ));
    let (last, user) = s.orders().events("o-f").await?.pop().unwrap();
    assert_eq!((last.action, last.actor.as_str(), user), (OrderAction::Pickup, "driver02", Some(10)));
    Ok(())
});

both!(one_car_never_holds_two_overlapping_orders_even_under_concurrent_writers, |app: TestApp| async move {
    let s = &app.store;
    let (vin, driver) = fixture(s).await?;
    let now = Utc::now();
    for i in 0..16 {
        // Overlapping windows, each shifted by a minute.
        create(s, &format!("c-{i}"), OrderStatus::Approved, now + ChronoDuration::minutes(i), 30).await?;
    }
    // A later, non-overlapping order may take the same car.
    create(s, "later", OrderStatus::Approved, now + ChronoDuration::hours(5), 30).await?;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        let (vin, driver) = (vin.clone(), driver.clone());
        tasks.push(tokio::spawn(async move {
            let disp =
                Actor { name: format!("dispatcher{i}"), user_id: Some(100 + i), on_behalf: false, driver_id: None };
            s.orders()
                .act(&format!("c-{i}"), &act(OrderAction::Assign, &disp, Some((vin, Some(driver)))), Utc::now())
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await? {
            Ok(Some(Acted::Changed(_))) => won += 1,
            Err(StorageError::VehicleBusy) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one overlapping order gets the car");
    let disp = Actor::dispatch();
    s.orders().act("later", &act(OrderAction::Assign, &disp, Some((vin.clone(), Some(driver)))), now).await?.unwrap();
    let holding: Vec<_> = s.orders().occupying().await?.into_iter().map(|o| o.order.id).collect();
    assert_eq!(holding.len(), 2);
    assert!(holding.contains(&"later".to_owned()));
    // A canceled order releases the car for an overlapping one.
    let first = holding.iter().find(|id| id.starts_with("c-")).unwrap().clone();
    s.orders().act(&first, &act(OrderAction::Cancel, &disp, None), now).await?.unwrap();
    let other = if first == "c-0" { "c-1" } else { "c-0" };
    s.orders().act(other, &act(OrderAction::Assign, &disp, Some((vin, None))), now).await?.unwrap();
    Ok(())
});
