//! The alarms no single sample raises, looked for every minute: a car gone silent while it
//! holds an order, a car left parked almost flat, something in a car's file falling due, a
//! unit's energy budget at 80 % and spent, and the month's trips that look like private use.
//! Each alarm has a key, so a sweep that finds the same thing again (or another instance's
//! sweep) stores nothing twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_domain::alarm::{Alarm, AlarmKind, NewAlarm};
use fleet_domain::trips::{MisuseReason, china_offset, month_of};
use fleet_domain::{OFFLINE_AFTER_SECS, upkeep};
use fleet_storage::{StorageError, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::budget::budget_of;

/// How often the sweep runs by default.
pub const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// A parked car below this charge, not charging, raises `low_soc_idle` (once a day).
pub const LOW_SOC_PCT: f64 = 20.0;

/// Sweeps every `every` until `shutdown`.
pub async fn run(store: Store, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match sweep(&store, Utc::now()).await {
            Ok(raised) if !raised.is_empty() => {
                metrics::counter!("fleet_alarms_raised_total").increment(raised.len() as u64);
                tracing::info!(alarms = raised.len(), "alarm sweep raised alarms");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alarm sweep failed; trying again next time"),
        }
    }
}

fn alarm(
    kind: AlarmKind,
    vin: Option<&fleet_domain::Vin>,
    unit_id: Option<&str>,
    ts: DateTime<Utc>,
    key: String,
    detail: serde_json::Value,
) -> NewAlarm {
    NewAlarm { kind, vin: vin.cloned(), unit_id: unit_id.map(str::to_owned), ts, key, detail }
}

/// One sweep at `now`; answers the alarms it raised (the new ones).
pub async fn sweep(store: &Store, now: DateTime<Utc>) -> Result<Vec<Alarm>, StorageError> {
    let mut found = Vec::new();
    let vehicles = store.vehicles().list(None).await?;
    let states: std::collections::HashMap<fleet_domain::Vin, fleet_domain::VehicleState> =
        store.telemetry().states().await?.into_iter().map(|s| (s.vin.clone(), s)).collect();
    let holding = store.orders().occupying().await?;

    // Silent while holding an order.
    let offline_after = chrono::Duration::seconds(OFFLINE_AFTER_SECS);
    for o in &holding {
        let Some(vin) = &o.order.vin else { continue };
        let last = states.get(vin).map(|s| s.ts);
        if last.is_none_or(|ts| ts + offline_after < now) {
            let ts = last.map_or(now, |t| t + offline_after);
            let key = format!("offline_on_order:{}:{vin}", o.order.id);
            let detail = json!({"order_id": o.order.id, "last_seen": last});
            found.push(alarm(AlarmKind::OfflineOnOrder, Some(vin), Some(o.order.unit_id.as_str()), ts, key, detail));
        }
    }
    // Parked almost flat: once a car a day.
    for v in vehicles.iter().filter(|v| !v.retired) {
        let Some(s) = states.get(&v.vin) else { continue };
        let parked = s.speed_kmh.is_none_or(|k| k < 1.0) && s.charging != Some(true);
        let busy = holding.iter().any(|o| o.order.vin.as_ref() == Some(&v.vin));
        if let Some(soc) = s.soc_pct.filter(|soc| *soc < LOW_SOC_PCT && parked && !busy) {
            let day = s.ts.with_timezone(&china_offset()).date_naive();
            let key = format!("low_soc_idle:{}:{day}", v.vin);
            found.push(alarm(
                AlarmKind::LowSocIdle,
                Some(&v.vin),
                v.unit_id.as_deref(),
                s.ts,
                key,
                json!({"soc_pct": soc}),
            ));
        }
    }
    // The vehicle file: once per thing and due date.
    let today = now.with_timezone(&china_offset()).date_naive();
    for v in &vehicles {
        let odometer = states.get(&v.vin).and_then(|s| s.odometer_km);
        for r in upkeep::reminders(v, odometer, today) {
            let due = r.due_on.map(|d| d.to_string()).or(r.due_km.map(|k| format!("{k}km"))).unwrap_or_default();
            let key = format!("maintenance_due:{}:{}:{due}", v.vin, r.kind.as_str());
            let detail = json!({"kind": r.kind, "due_on": r.due_on, "due_km": r.due_km, "overdue": r.overdue});
            found.push(alarm(AlarmKind::MaintenanceDue, Some(&v.vin), v.unit_id.as_deref(), now, key, detail));
        }
    }
    // Budgets: once a unit a month for each threshold.
    let month = month_of(now);
    for unit in store.units().list().await? {
        let b = budget_of(store, &unit, &month).await?;
        let detail =
            json!({"month": month, "budget_kwh": b.budget_kwh, "used_kwh": b.used_kwh, "share_pct": b.share * 100.0});
        if b.warning {
            let key = format!("budget_warning:{}:{month}", unit.id);
            found.push(alarm(AlarmKind::BudgetWarning, None, Some(&unit.id), now, key, detail.clone()));
        }
        if b.spent() {
            let key = format!("budget_exhausted:{}:{month}", unit.id);
            found.push(alarm(AlarmKind::BudgetExhausted, None, Some(&unit.id), now, key, detail));
        }
    }
    // The last days' trips that look like private use (a terminal's clock may run a little
    // ahead), one alarm per reason, at the trip's start.
    let (since, until) = (now - chrono::Duration::days(2), now + chrono::Duration::hours(1));
    for m in crate::misuse::misuse_trips(store, since, until, None).await? {
        for reason in &m.reasons {
            let kind = match reason {
                MisuseReason::NoOrder => AlarmKind::MisuseNoOrder,
                MisuseReason::OffHours => AlarmKind::MisuseOffHours,
                MisuseReason::OutsideArea => AlarmKind::MisuseOutOfArea,
            };
            let t = &m.trip.trip;
            let key = format!("{}:{}:{}", kind.as_str(), t.vin, t.start_ts.timestamp_millis());
            let detail = json!({
                "start_ts": t.start_ts, "end_ts": t.end_ts, "distance_km": t.distance_km,
                "order_id": m.trip.order_id, "reasons": m.reasons,
            });
            found.push(alarm(kind, Some(&t.vin), m.vehicle.unit_id.as_deref(), t.start_ts, key, detail));
        }
    }
    let mut raised = Vec::new();
    for a in &found {
        if let Some(stored) = store.alarms().raise(a).await? {
            raised.push(stored);
        }
    }
    Ok(raised)
}
