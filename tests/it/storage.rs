//! The repository layer on both back ends.

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use fleet_domain::{DeadLetter, DeadLetterReason, NewUnit, NewVehicle, Role, Sample, SampleSource, Vin};
use fleet_storage::{StateBacklog, StorageError};
use fleet_tests::{both, random_vin};

fn new_vehicle(vin: &str, plate: &str, unit: Option<&str>) -> NewVehicle {
    NewVehicle {
        vin: vin.into(),
        plate: plate.into(),
        model: "GAC Aion S".into(),
        seats: 5,
        battery_kwh: 58.8,
        consumption_kwh_per_100km: 13.0,
        unit_id: unit.map(Into::into),
        terminal_phone: None,
        ..Default::default()
    }
}

both!(registry_round_trips_and_reports_conflicts, |app: TestApp| async move {
    let s = &app.store;
    let unit = NewUnit {
        id: Some("u-test".into()),
        name: "舟山市测试局".into(),
        monthly_energy_budget_kwh: 800.0,
        auto_approve: true,
        ..Default::default()
    };
    s.units().create("u-test", &unit).await?;
    assert!(matches!(s.units().create("u-test", &unit).await, Err(StorageError::Conflict("unit id"))));
    assert_eq!(s.units().get("u-test").await?.unwrap().name, "舟山市测试局");

    let vin = random_vin();
    let v = new_vehicle(&vin, "浙LD00001", Some("u-test"));
    let parsed = v.validate()?;
    s.vehicles().create(&parsed, &v).await?;
    assert_eq!(s.vehicles().get(&vin).await?.unwrap().unit_id.as_deref(), Some("u-test"));
    let again = new_vehicle(&random_vin(), "浙LD00001", None);
    assert!(matches!(s.vehicles().create(&again.validate()?, &again).await, Err(StorageError::Conflict("plate"))));
    let dup_vin = new_vehicle(&vin, "浙LD00002", None);
    assert!(matches!(s.vehicles().create(&parsed, &dup_vin).await, Err(StorageError::Conflict("VIN"))));
    let orphan = new_vehicle(&random_vin(), "浙LD00003", Some("nope"));
    assert!(matches!(
        s.vehicles().create(&orphan.validate()?, &orphan).await,
        Err(StorageError::MissingReference("unit"))
    ));
    assert_eq!(s.vehicles().list(Some("u-test")).await?.len(), 1);
    assert!(s.vehicles().exists(&vin).await?);

    let user = s.users().create("clerk", "hash", Role::Unit, Some("u-test"), None).await?;
    assert_eq!(s.users().credentials("clerk").await?.unwrap().0, user);
    assert!(matches!(
        s.users().create("clerk", "h", Role::Auditor, None, None).await,
        Err(StorageError::Conflict("username"))
    ));
    Ok(())
});

both!(tokens_expire_and_are_revoked, |app: TestApp| async move {
    let s = &app.store;
    let u = s.users().create("tok", "hash", Role::Auditor, None, None).await?;
    let now = Utc::now();
    s.tokens().create("h1", u.id, now + ChronoDuration::hours(1)).await?;
    s.tokens().create("h2", u.id, now - ChronoDuration::seconds(1)).await?;
    assert_eq!(s.tokens().user("h1", now).await?.map(|u| u.username), Some("tok".into()));
    assert!(s.tokens().user("h2", now).await?.is_none(), "expired");
    s.tokens().revoke("h1").await?;
    assert!(s.tokens().user("h1", now).await?.is_none(), "revoked");
    s.tokens().create("h3", u.id, now + ChronoDuration::hours(1)).await?;
    // Housekeeping forgets the expired and the revoked, and keeps the live one.
    assert_eq!(s.tokens().purge(now + ChronoDuration::seconds(1)).await?, 2);
    assert_eq!(s.tokens().owner("h2").await?, None);
    assert_eq!(s.tokens().user("h3", now).await?.map(|u| u.username), Some("tok".into()));
    Ok(())
});

both!(idempotency_answers_are_purged_after_their_time, |app: TestApp| async move {
    let s = &app.store;
    let u = s.users().create("idem", "hash", Role::Dispatcher, None, None).await?;
    let now = Utc::now();
    let answer = fleet_storage::KeptAnswer { request: "POST /api/v1/orders".into(), status: 201, body: b"{}".to_vec() };
    // Younger than the app's own housekeeping purges (24 h), so that only this purge can
    // remove them: the app runs beside the test.
    s.idempotency_keys()
        .put(u.id, "old", &answer, now - ChronoDuration::hours(3), now - ChronoDuration::hours(6))
        .await?;
    s.idempotency_keys().put(u.id, "new", &answer, now, now - ChronoDuration::hours(1)).await?;
    assert_eq!(s.idempotency_keys().purge(now - ChronoDuration::hours(2)).await?, 1);
    let long_ago = now - ChronoDuration::days(30);
    assert_eq!(s.idempotency_keys().get(u.id, "old", long_ago).await?, None);
    assert_eq!(s.idempotency_keys().get(u.id, "new", long_ago).await?, Some(answer));
    Ok(())
});

both!(batch_commit_dedupes_orders_state_and_keeps_dead_letters, |app: TestApp| async move {
    let s = &app.store;
    let vin = random_vin();
    let v = new_vehicle(&vin, "浙LD10001", None);
    s.vehicles().create(&v.validate()?, &v).await?;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 31, 15, 59, 0).single().unwrap();
    let mk = |sec: i64, valid: bool| {
        let mut x = Sample::at(
            Vin::parse(&vin).unwrap(),
            t0 + ChronoDuration::seconds(sec),
            30.0 + sec as f64 * 1e-4,
            122.0,
            SampleSource::Json,
        );
        x.position_valid = valid;
        x.soc_pct = Some(50.0 + sec as f64 / 100.0);
        // Any bytes, NULs and 0xFF included, come back as they went in.
        x.frame = Some([&b"##"[..], &sec.to_be_bytes(), &[0x00, 0xFF]].concat());
        x
    };
    // Spans a month boundary in Shanghai time (new PostgreSQL partition); large enough for
    // PostgreSQL's COPY (small batches go by INSERT).
    let batch: Vec<Sample> = (0..1200).map(|i| mk(i, i != 1199)).collect();
    let dead = [DeadLetter::new("t", Some(&vin), DeadLetterReason::MalformedJson, "x", b"{")];
    let out = s.telemetry().commit(&batch, &dead).await?;
    assert_eq!((out.inserted, out.duplicates, out.dead_letters), (1200, 0, 1));
    let out = s.telemetry().commit(&batch[..10], &[]).await?;
    assert_eq!((out.inserted, out.duplicates), (0, 10));
    // Stored and new samples in one large batch (on PostgreSQL the COPY fails on the first
    // stored one and the batch goes again by the INSERT that skips it): the new ones are kept.
    let mixed: Vec<Sample> = batch[1190..].iter().cloned().chain((2000..3000).map(|i| mk(i, true))).collect();
    let out = s.telemetry().commit(&mixed, &[]).await?;
    assert_eq!((out.inserted, out.duplicates), (1000, 10));
    // The same in a small batch (on PostgreSQL a plain INSERT, which fails on a stored sample
    // like COPY, then the INSERT that skips it).
    let small: Vec<Sample> = batch[1195..].iter().cloned().chain((3000..3020).map(|i| mk(i, true))).collect();
    let out = s.telemetry().commit(&small, &[]).await?;
    assert_eq!((out.inserted, out.duplicates), (20, 5));
    assert_eq!(s.telemetry().count(Some(&vin)).await?, 2220);
    let state = s.telemetry().state(&vin).await?.unwrap();
    assert_eq!(state.ts, t0 + ChronoDuration::seconds(3019));
    assert_eq!(state.lat, Some(30.0 + 3019.0 * 1e-4), "the last valid position");
    // Older data does not move it back.
    s.telemetry().commit(&[mk(-500, true)], &[]).await?;
    assert_eq!(s.telemetry().state(&vin).await?.unwrap().ts, t0 + ChronoDuration::seconds(3019));
    let track = s.telemetry().track(&vin, t0 - ChronoDuration::hours(1), t0 + ChronoDuration::hours(1), 10_000).await?;
    assert_eq!(track.len(), 2221);
    let bare = s
        .telemetry()
        .track_without_frames(&vin, t0 - ChronoDuration::hours(1), t0 + ChronoDuration::hours(1), 10_000)
        .await?;
    assert_eq!(
        bare,
        track
            .iter()
            .cloned()
            .map(|mut x| {
                x.frame = None;
                x
            })
            .collect::<Vec<_>>(),
        "the same samples, without their frames"
    );
    assert_eq!(track[0].ts, t0 - ChronoDuration::seconds(500));
    assert_eq!(track[5].frame, Some([&b"##"[..], &4i64.to_be_bytes(), &[0x00, 0xFF]].concat()));
    // Every field back as it went in (NULLs too), the invalid fix flagged.
    assert_eq!(track[1200], mk(1199, false));
    assert_eq!((track[1201].soc_pct, track[1201].speed_kmh), (Some(70.0), None));
    assert_eq!(s.dead_letters().recent(10, Some(DeadLetterReason::MalformedJson)).await?.len(), 1);
    assert_eq!(s.dead_letters().recent(10, Some(DeadLetterReason::TooLarge)).await?.len(), 0);
    Ok(())
});

both!(a_batch_written_again_after_an_unknown_outcome_stores_nothing_twice, |app: TestApp| async move {
    let s = &app.store;
    let vin = random_vin();
    let v = new_vehicle(&vin, "浙LD10005", None);
    s.vehicles().create(&v.validate()?, &v).await?;
    let t0 = Utc::now() - ChronoDuration::minutes(5);
    let batch: Vec<Sample> = (0..30)
        .map(|i| {
            Sample::at(Vin::parse(&vin).unwrap(), t0 + ChronoDuration::seconds(i), 30.0, 122.0, SampleSource::Json)
        })
        .collect();
    let topic = format!("fleet/v1/vehicles/{vin}/telemetry");
    let dead = [
        DeadLetter::new(&topic, Some(&vin), DeadLetterReason::MalformedJson, "x", b"{"),
        DeadLetter::new(&topic, Some(&vin), DeadLetterReason::InvalidSample, "soc_pct", b"[{\"soc_pct\": 200}]"),
    ];
    // The first attempt committed, but (as if its reply were lost) the writer tries again.
    s.telemetry().commit(&batch, &dead).await?;
    let again = s.telemetry().recommit(&batch, &dead).await?;
    assert_eq!((again.inserted, again.duplicates), (0, 30));
    assert_eq!(s.telemetry().count(Some(&vin)).await?, 30);
    assert_eq!(s.dead_letters().count().await?, 2, "the rejects are stored once");
    // A retry of a batch whose first attempt did not commit stores all of it.
    let later: Vec<Sample> = (30..40)
        .map(|i| {
            Sample::at(Vin::parse(&vin).unwrap(), t0 + ChronoDuration::seconds(i), 30.0, 122.0, SampleSource::Json)
        })
        .collect();
    let mut other = [DeadLetter::new(&topic, Some(&vin), DeadLetterReason::MalformedJson, "x", b"{")];
    other[0].received_at = dead[0].received_at + ChronoDuration::seconds(1);
    let out = s.telemetry().recommit(&later, &other).await?;
    assert_eq!((out.inserted, out.dead_letters), (10, 1));
    assert_eq!(s.dead_letters().count().await?, 3, "a different time is a different reject");
    // A first attempt never looks: the same bad message twice is two dead letters.
    s.telemetry().commit(&[], &[other[0].clone(), other[0].clone()]).await?;
    assert_eq!(s.dead_letters().count().await?, 5);
    Ok(())
});

both!(state_written_behind_the_samples_is_merged_and_restored_after_a_crash, |app: TestApp| async move {
    let s = &app.store;
    let (a, b) = (random_vin(), random_vin());
    for (vin, plate) in [(&a, "浙LD10011"), (&b, "浙LD10012")] {
        let v = new_vehicle(vin, plate, None);
        s.vehicles().create(&v.validate()?, &v).await?;
    }
    let t0 = Utc.timestamp_opt(Utc::now().timestamp() - 600, 0).single().unwrap();
    let at = |vin: &str, sec: i64, soc: Option<f64>| {
        let mut x = Sample::at(
            Vin::parse(vin).unwrap(),
            t0 + ChronoDuration::seconds(sec),
            30.0 + sec as f64 * 1e-4,
            122.0,
            SampleSource::Json,
        );
        x.soc_pct = soc;
        x
    };
    // Samples committed without their state: none yet.
    let first = [at(&a, 10, Some(80.0)), at(&a, 20, Some(79.0)), at(&b, 10, Some(50.0))];
    assert_eq!(s.telemetry().commit_samples(&first, &[]).await?.inserted, 3);
    assert!(s.telemetry().state(&a).await?.is_none());
    // The backlog of two batches, written at once.
    let mut backlog = StateBacklog::default();
    backlog.absorb(&first);
    let second = [at(&a, 30, None)];
    s.telemetry().commit_samples(&second, &[]).await?;
    backlog.absorb(&second);
    s.telemetry().write_states(&backlog).await?;
    let state = s.telemetry().state(&a).await?.unwrap();
    assert_eq!(
        (state.ts, state.soc_pct, state.lat),
        (t0 + ChronoDuration::seconds(30), Some(79.0), Some(30.0 + 30.0 * 1e-4))
    );
    assert_eq!(s.telemetry().state(&b).await?.unwrap().soc_pct, Some(50.0));
    // An older backlog (a late batch) does not move it back.
    let mut late = StateBacklog::default();
    late.absorb(&[at(&a, 5, Some(99.0))]);
    s.telemetry().write_states(&late).await?;
    assert_eq!(s.telemetry().state(&a).await?.unwrap().ts, t0 + ChronoDuration::seconds(30));
    // A crash: samples committed (and acknowledged), their backlog lost before its write.
    s.telemetry().commit_samples(&[at(&a, 40, Some(77.0)), at(&a, 50, None), at(&b, 60, Some(49.0))], &[]).await?;
    assert_eq!(s.telemetry().state(&a).await?.unwrap().ts, t0 + ChronoDuration::seconds(30));
    // The next start brings every state up to its samples, and only the missing ones.
    assert_eq!(s.telemetry().catch_up_states().await?, 3);
    let state = s.telemetry().state(&a).await?.unwrap();
    assert_eq!(
        (state.ts, state.soc_pct, state.lat),
        (t0 + ChronoDuration::seconds(50), Some(77.0), Some(30.0 + 50.0 * 1e-4))
    );
    assert_eq!(s.telemetry().state(&b).await?.unwrap().ts, t0 + ChronoDuration::seconds(60));
    assert_eq!(s.telemetry().catch_up_states().await?, 0, "nothing left to catch up");
    Ok(())
});

both!(aged_raw_samples_are_removed_and_recent_ones_kept, |app: TestApp| async move {
    let s = &app.store;
    let vin = random_vin();
    let v = new_vehicle(&vin, "浙LD10009", None);
    s.vehicles().create(&v.validate()?, &v).await?;
    let now = Utc::now();
    let at = |days: i64| {
        Sample::at(Vin::parse(&vin).unwrap(), now - ChronoDuration::days(days), 30.0, 122.0, SampleSource::Json)
    };
    // Three samples in three different months wholly past the 400-day line (32+ days apart,
    // the newest 40 days past it), one inside it, and today.
    let batch: Vec<Sample> = [520, 480, 440, 380, 0].into_iter().map(at).collect();
    s.telemetry().commit(&batch, &[]).await?;
    let removed = s.telemetry().purge_before(now - ChronoDuration::days(400)).await?;
    // SQLite counts rows, PostgreSQL the monthly partitions dropped: three either way here.
    assert_eq!(removed, 3);
    let left = s.telemetry().track(&vin, now - ChronoDuration::days(1000), now, 100).await?;
    // Days ago, rounded: PostgreSQL keeps microseconds and may round a timestamp up.
    let days_ago = |t: chrono::DateTime<Utc>| ((now - t).num_seconds() as f64 / 86_400.0).round() as i64;
    assert_eq!(left.iter().map(|x| days_ago(x.ts)).collect::<Vec<_>>(), [380, 0]);
    assert_eq!(s.telemetry().purge_before(now - ChronoDuration::days(400)).await?, 0, "nothing more to remove");
    // New samples in a dropped month's range still find a table (it is created again).
    s.telemetry().commit(&[at(450)], &[]).await?;
    assert_eq!(s.telemetry().count(Some(&vin)).await?, 3);
    Ok(())
});
