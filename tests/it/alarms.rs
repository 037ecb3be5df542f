//! Geofences and their alarms (issue 21): drawing them with every refusal, working hours, and
//! the alarms a car's samples raise (leaving its parking place after hours, entering and
//! leaving a zone, leaving the service area), following the samples' own times, so that a
//! late sample moves an alarm to where it belongs.

use std::time::Duration;

use fleet_tests::{Publisher, Settings, TestApp, both_with};
use serde_json::{Value, json};

use crate::orders::{get, patch, post, put, world};

fn quick(s: &mut Settings) {
    s.stats.interval = Duration::from_millis(200);
    s.dispatch.batch_interval = Duration::from_secs(3600);
}

/// The square around 舟山市行政中心 where the test's car is kept (about 220 m a side).
fn car_park() -> Value {
    json!({"type": "Polygon", "coordinates": [[[122.206, 29.985], [122.208, 29.985], [122.208, 29.987], [122.206, 29.987], [122.206, 29.985]]]})
}

fn field_of(v: &Value) -> String {
    v["error"]["message"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_owned()
}

both_with!(geofences_are_drawn_checked_and_deleted, quick, |app: TestApp| async move {
    let w = world(&app, 1).await?;
    let vin = w.cars[0].0.clone();
    let parking = json!({"name": "市政府停车场", "kind": "parking", "vin": vin, "geometry": car_park()});
    let (s, f) = post(&app, &w.dispatcher, "/api/v1/geofences", parking).await?;
    assert_eq!((s.as_u16(), f["kind"].as_str()), (201, Some("parking")), "{f}");
    let zone = json!({"name": "普陀山机场", "kind": "zone", "geometry": {"type": "Point", "coordinates": [122.36, 29.93]}, "radius_m": 800.0});
    let (s, z) = post(&app, &w.admin, "/api/v1/geofences", zone.clone()).await?;
    assert_eq!(s, 201, "{z}");
    let open =
        json!({"type": "Polygon", "coordinates": [[[122.0, 30.0], [122.1, 30.0], [122.1, 30.1], [122.0, 30.1]]]});
    for (body, field) in [
        (json!({"name": "x", "kind": "zone", "geometry": open}), "geometry"),
        (json!({"name": "x", "kind": "zone", "geometry": {"type": "Point", "coordinates": [122.1, 30.0]}}), "radius_m"),
        (
            json!({"name": "x", "kind": "zone", "geometry": {"type": "Point", "coordinates": [222.1, 30.0]}, "radius_m": 5.0}),
            "geometry",
        ),
        (json!({"name": "x", "kind": "zone", "geometry": {"type": "LineString", "coordinates": []}}), "geometry"),
        (json!({"name": "x", "kind": "zone", "vin": "LSJA24U66NS000009", "geometry": car_park()}), "vin"),
        (json!({"name": "x", "kind": "zone", "unit_id": "ghost", "geometry": car_park()}), "unit_id"),
        (json!({"name": "", "kind": "zone", "geometry": car_park()}), "name"),
        (json!({"name": "x", "kind": "lake", "geometry": car_park()}), "body"),
    ] {
        let (s, v) = post(&app, &w.admin, "/api/v1/geofences", body.clone()).await?;
        assert_eq!((s.as_u16(), field_of(&v)), (422, field.to_owned()), "{body}: {v}");
    }
    let (s, _) = post(&app, &w.unit1, "/api/v1/geofences", zone.clone()).await?;
    assert_eq!(s, 403);
    let (_, list) = get(&app, &w.auditor, "/api/v1/geofences").await?;
    assert_eq!(list["geofences"].as_array().map(Vec::len), Some(2), "nothing refused was stored: {list}");
    // A unit user sees the fleet's fences, not another car's.
    let (_, mine) = get(&app, &w.unit1, "/api/v1/geofences").await?;
    assert_eq!(mine["geofences"].as_array().map(Vec::len), Some(1), "{mine}");
    let path = format!("/api/v1/geofences/{}", z["id"]);
    let r = app.http.delete(app.url(&path)).bearer_auth(&w.unit1).send().await?;
    assert_eq!(r.status(), 403);
    let r = app.http.delete(app.url(&path)).bearer_auth(&w.dispatcher).send().await?;
    assert_eq!(r.status(), 204);
    let r = app.http.delete(app.url(&path)).bearer_auth(&w.dispatcher).send().await?;
    assert_eq!(r.status(), 404);

    // Working hours: set, read back in order, refused when wrong.
    let (_, h) = get(&app, &w.dispatcher, "/api/v1/working-hours").await?;
    assert_eq!(
        (h["start"].as_str(), h["end"].as_str(), h["weekdays"].clone()),
        (Some("07:00"), Some("20:00"), json!([1, 2, 3, 4, 5]))
    );
    let hours = json!({"weekdays": [5, 1, 2, 3, 4], "start": "08:00", "end": "18:30", "holidays": ["2027-01-01"], "workdays": []});
    let (s, h) = put(&app, &w.admin, "/api/v1/working-hours", hours).await?;
    assert_eq!((s.as_u16(), h["weekdays"].clone()), (200, json!([1, 2, 3, 4, 5])), "{h}");
    for bad in [
        json!({"weekdays": [8], "start": "08:00", "end": "18:00"}),
        json!({"weekdays": [1], "start": "18:00", "end": "08:00"}),
    ] {
        let (s, v) = put(&app, &w.admin, "/api/v1/working-hours", bad.clone()).await?;
        assert_eq!(s, 422, "{bad}: {v}");
    }
    let (s, _) =
        put(&app, &w.dispatcher, "/api/v1/working-hours", json!({"weekdays": [1], "start": "08:00", "end": "18:00"}))
            .await?;
    assert_eq!(s, 403);
    let (_, h) = get(&app, &w.admin, "/api/v1/working-hours").await?;
    assert_eq!(h["end"], "18:30");
    Ok(())
});

/// Polls the alarms in the window until `check` holds; answers them.
async fn wait_alarms(
    app: &TestApp,
    token: &str,
    query: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let last = std::sync::Mutex::new(Vec::new());
    let waited = app
        .wait_until(what, || async {
            let (s, v) = get(app, token, &format!("/api/v1/alarms?{query}")).await?;
            anyhow::ensure!(s == 200, "alarms: {s} {v}");
            let list = v["alarms"].as_array().cloned().unwrap_or_default();
            let ok = check(&list);
            *last.lock().unwrap() = list;
            Ok(ok)
        })
        .await;
    let last = last.into_inner().unwrap();
    waited.map_err(|e| anyhow::anyhow!("{e}; last seen {}", Value::Array(last.clone())))?;
    Ok(last)
}

both_with!(samples_raise_fence_alarms_at_their_own_times_and_late_ones_move_them, quick, |app: TestApp| async move {
    let w = world(&app, 1).await?;
    let vin = w.cars[0].0.clone();
    let (s, _) = patch(&app, &w.admin, &format!("/api/v1/vehicles/{vin}"), json!({"unit_id": "u1"})).await?;
    assert_eq!(s, 200);
    for body in [
        json!({"name": "市政府停车场", "kind": "parking", "vin": vin, "geometry": car_park()}),
        json!({"name": "临城商圈", "kind": "zone", "geometry": {"type": "Point", "coordinates": [122.22, 29.99]}, "radius_m": 300.0}),
        json!({"name": "舟山本岛", "kind": "service_area", "unit_id": "u1", "geometry": {"type": "Point", "coordinates": [122.2, 30.0]}, "radius_m": 20000.0}),
    ] {
        let (s, v) = post(&app, &w.admin, "/api/v1/geofences", body).await?;
        assert_eq!(s, 201, "{v}");
    }
    // Tuesday 24 November 2026, Beijing time: parked at 21:00, gone at 21:10 (after hours),
    // through the zone at 21:20, out of it at 21:30, far out of the service area at 22:00.
    let at = |hh: u32, mm: u32| format!("2026-11-24T{hh:02}:{mm:02}:00+08:00");
    let sample =
        |ts: String, lat: f64, lon: f64| json!({"ts": ts, "lat": lat, "lon": lon, "speed_kmh": 30.0, "soc_pct": 70.0});
    let batch = vec![
        sample(at(21, 0), 29.986, 122.207),
        sample(at(21, 10), 29.99, 122.215),
        sample(at(21, 20), 29.99, 122.22),
        sample(at(21, 30), 29.99, 122.23),
        sample(at(22, 0), 30.30, 122.20),
    ];
    let mut p = Publisher::connect().await?;
    p.json(&vin, &Value::Array(batch)).await?;
    app.wait_for_samples(&vin, 5).await?;
    let window = "from=2026-11-24T12:00:00Z&to=2026-11-24T16:00:00Z";
    let alarms = wait_alarms(&app, &w.dispatcher, window, "four alarms", |a| a.len() >= 4).await?;
    let seen: Vec<(&str, &str)> =
        alarms.iter().map(|a| (a["kind"].as_str().unwrap(), a["ts"].as_str().unwrap())).collect();
    assert_eq!(
        seen,
        vec![
            ("left_service_area", "2026-11-24T14:00:00Z"),
            ("zone_exited", "2026-11-24T13:30:00Z"),
            ("zone_entered", "2026-11-24T13:20:00Z"),
            ("left_parking_off_hours", "2026-11-24T13:10:00Z"),
        ],
        "newest first, each at its sample's time"
    );
    let parked = alarms.iter().find(|a| a["kind"] == "left_parking_off_hours").unwrap();
    assert_eq!((parked["vin"].as_str(), parked["unit_id"].as_str()), (Some(vin.as_str()), Some("u1")));
    assert_eq!(parked["detail"]["geofence"], "市政府停车场");

    // A late sample: the car was already 150 m out of its place at 21:05. The departure moves
    // there, and the one at 21:10 goes.
    p.json(&vin, &sample(at(21, 5), 29.986, 122.2095)).await?;
    app.wait_for_samples(&vin, 6).await?;
    let query = format!("{window}&kind=left_parking_off_hours");
    let moved = wait_alarms(&app, &w.dispatcher, &query, "the departure moved to 21:05", |a| {
        a.len() == 1 && a[0]["ts"] == "2026-11-24T13:05:00Z"
    })
    .await?;
    assert_eq!(moved.len(), 1);
    // The others were not raised twice.
    let (_, all) = get(&app, &w.dispatcher, &format!("/api/v1/alarms?{window}")).await?;
    assert_eq!(all["alarms"].as_array().map(Vec::len), Some(4), "{all}");

    // Who sees them: the car's unit and driver, not another unit; a bad kind or window is refused.
    let (_, unit1) = get(&app, &w.unit1, &format!("/api/v1/alarms?{window}")).await?;
    assert_eq!(unit1["alarms"].as_array().map(Vec::len), Some(4));
    let (_, unit2) = get(&app, &w.unit2, &format!("/api/v1/alarms?{window}")).await?;
    assert_eq!(unit2["alarms"], json!([]));
    let (_, driver) = get(&app, &w.cars[0].2, &format!("/api/v1/alarms?{window}")).await?;
    assert_eq!(driver["alarms"].as_array().map(Vec::len), Some(4));
    // The alarm centre: acknowledged once by whoever sees it, then no longer unread.
    let open = format!("/api/v1/alarms?{window}&unacknowledged=true");
    let id = moved[0]["id"].as_i64().unwrap();
    let ack = format!("/api/v1/alarms/{id}/acknowledge");
    let (s, _) = post(&app, &w.unit2, &ack, json!({})).await?;
    assert_eq!(s, 404, "another unit's alarm");
    let (s, _) = post(&app, &w.auditor, &ack, json!({})).await?;
    assert_eq!(s, 403);
    let (s, a) = post(&app, &w.unit1, &ack, json!({})).await?;
    assert_eq!(s, 200, "{a}");
    assert!(a["acknowledged_at"].is_string() && a["acknowledged_by"].is_i64(), "{a}");
    let (s, again) = post(&app, &w.dispatcher, &ack, json!({})).await?;
    assert_eq!(
        (s.as_u16(), &again["acknowledged_by"]),
        (200, &a["acknowledged_by"]),
        "the first acknowledgement stays"
    );
    let (_, unread) = get(&app, &w.dispatcher, &open).await?;
    let ids: Vec<i64> = unread["alarms"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{unread}");
    assert!(!ids.contains(&id));
    let (s, _) = post(&app, &w.dispatcher, "/api/v1/alarms/999999/acknowledge", json!({})).await?;
    assert_eq!(s, 404);
    let (s, _) = get(&app, &w.dispatcher, "/api/v1/alarms?kind=fire").await?;
    assert_eq!(s, 400);
    let (s, _) = get(&app, &w.dispatcher, "/api/v1/alarms?from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z").await?;
    assert_eq!(s, 400);
    Ok(())
});

fn sweeping(s: &mut Settings) {
    quick(s);
    s.stats.sweep_every = Duration::from_millis(300);
    // The statistics scene's drive is stamped up to 13 minutes ahead of now.
    s.ingest_max_clock_ahead = Duration::from_secs(3600);
}

both_with!(
    the_sweep_raises_budget_misuse_low_charge_file_and_offline_alarms_once,
    sweeping,
    |app: TestApp| async move {
        // Unit u3's 2.5 kWh are spent by its order's drive; car 1 made the same drive without one.
        let (w, _, _, _, joyride, _) = crate::stats::served_drive(&app, 2.5).await?;
        // A car parked at 15 %, its insurance ran out yesterday.
        let (flat, silent) = (fleet_tests::random_vin(), fleet_tests::random_vin());
        for vin in [&flat, &silent] {
            app.register_vehicle(vin).await?;
        }
        let yesterday = (chrono::Utc::now().with_timezone(&fleet_domain::trips::china_offset()).date_naive()
            - chrono::TimeDelta::days(1))
        .to_string();
        let (s, _) =
            patch(&app, &w.admin, &format!("/api/v1/vehicles/{flat}"), json!({"insurance_until": yesterday})).await?;
        assert_eq!(s, 200);
        let mut p = Publisher::connect().await?;
        let now = chrono::Utc::now();
        p.json(&flat, &json!({"ts": now.to_rfc3339(), "lat": 30.0, "lon": 122.1, "speed_kmh": 0.0, "soc_pct": 15.0, "charging": false}))
        .await?;
        // A car last heard ten minutes ago, given an order.
        let old = now - chrono::Duration::minutes(10);
        p.json(&silent, &json!({"ts": old.to_rfc3339(), "lat": 30.0, "lon": 122.1, "soc_pct": 90.0})).await?;
        let (s, v) = post(
            &app,
            &w.admin,
            "/api/v1/drivers",
            json!({"id": "d-silent", "name": "司机", "phone": "13800005555", "vehicle_vin": silent}),
        )
        .await?;
        assert_eq!(s, 201, "{v}");
        app.wait_for_samples(&flat, 1).await?;
        app.wait_for_samples(&silent, 1).await?;
        let (_, o) = post(&app, &w.unit2, "/api/v1/orders", crate::orders::order_body("u2", 1)).await?;
        let order = o["id"].as_str().unwrap().to_owned();
        let (s, v) =
            post(&app, &w.dispatcher, &format!("/api/v1/orders/{order}/assign"), json!({"vin": silent})).await?;
        assert_eq!(s, 200, "{v}");

        // The drive is stamped a little ahead of now, and so are its trips' alarms.
        let window = format!(
            "from={}&to={}",
            urlencode(&(now - chrono::Duration::days(2)).to_rfc3339()),
            urlencode(&(now + chrono::Duration::hours(1)).to_rfc3339())
        );
        let has = |list: &[Value], kind: &str, who: &str| {
            list.iter().any(|a| a["kind"] == kind && (a["vin"] == who || a["unit_id"] == who))
        };
        let all = wait_alarms(&app, &w.auditor, &window, "every sweep alarm", |l| {
            has(l, "budget_warning", "u3")
                && has(l, "budget_exhausted", "u3")
                && has(l, "misuse_no_order", &joyride)
                && has(l, "low_soc_idle", &flat)
                && has(l, "maintenance_due", &flat)
                && has(l, "offline_on_order", &silent)
        })
        .await?;
        let find = |kind: &str| all.iter().find(|a| a["kind"] == kind).unwrap().clone();
        let offline = all.iter().find(|a| a["kind"] == "offline_on_order" && a["vin"] == silent.as_str()).unwrap();
        assert_eq!(offline["detail"]["order_id"], order.as_str());
        assert_eq!(find("maintenance_due")["detail"]["kind"], "insurance");
        assert_eq!(find("low_soc_idle")["detail"]["soc_pct"].as_f64(), Some(15.0));
        assert!(find("budget_exhausted")["detail"]["share_pct"].as_f64().unwrap() >= 100.0);
        // Sweeps go on and raise nothing twice.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let (_, again) = get(&app, &w.auditor, &format!("/api/v1/alarms?{window}")).await?;
        let again = again["alarms"].as_array().cloned().unwrap_or_default();
        for (kind, who) in [
            ("budget_warning", "u3"),
            ("budget_exhausted", "u3"),
            ("low_soc_idle", flat.as_str()),
            ("maintenance_due", flat.as_str()),
            ("offline_on_order", silent.as_str()),
            ("misuse_no_order", joyride.as_str()),
        ] {
            let n = again.iter().filter(|a| a["kind"] == kind && (a["vin"] == who || a["unit_id"] == who)).count();
            assert_eq!(n, 1, "{kind} of {who}: {again:?}");
        }
        Ok(())
    }
);

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
