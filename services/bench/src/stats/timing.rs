//! The figures of `fleetd bench stats`: the report's time as a client sees it, and the time of
//! the storage reads it makes.

use anyhow::Context;
use chrono::{DateTime, Utc};
use fleet_storage::{Store, TripGroup};
use serde_json::Value;
use tokio::time::Instant;

use super::month::{ORDER_TRIPS, TRIPS};
use super::{Case, last_month};
use crate::progress;

/// Requests each case's report once to warm up and check it, then `requests` times, the
/// cases taking turns (each going first in turn); gives each case's median and p95 in ms
/// and the size of its answer.
pub(super) async fn time_reports(
    cases: &[Case],
    month: &str,
    n: usize,
    requests: usize,
) -> anyhow::Result<Vec<(f64, f64, usize)>> {
    let path = format!("/api/v1/stats/monthly?month={month}");
    let mut tokens = Vec::with_capacity(cases.len());
    let mut sizes = Vec::with_capacity(cases.len());
    for case in cases {
        let fleetd = case.fleetd()?;
        let token = fleetd.admin_token().await?;
        let report = fleetd.call("GET", &path, &token, None, 200).await?;
        check_report(&report, n).with_context(|| format!("the report of {}", case.name))?;
        sizes.push(report.to_string().len());
        tokens.push(token);
    }
    progress(format!("stats: timing {requests} reports of each of {} cases, taking turns", cases.len()));
    let mut times = vec![Vec::with_capacity(requests); cases.len()];
    for r in 0..requests {
        for k in 0..cases.len() {
            let i = (r + k) % cases.len();
            let t = Instant::now();
            let (status, body) = cases[i].fleetd()?.request("GET", &path, Some(&tokens[i]), None).await?;
            times[i].push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(status == 200 && body.len() > 2, "the report of {} answered {status}", cases[i].name);
        }
    }
    Ok(times
        .into_iter()
        .zip(sizes)
        .map(|(mut t, size)| {
            t.sort_by(f64::total_cmp);
            let rank = |p: f64| t[((p / 100.0 * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1];
            (rank(50.0), rank(95.0), size)
        })
        .collect())
}

/// Rounds of [`time_reads`].
const READ_ROUNDS: usize = 11;

/// The storage reads the report makes, in its order, by kind.
const READ_KINDS: [&str; 5] = ["trip_totals", "charge_totals", "order_counts", "unit_budgets", "registry"];

/// Times the storage reads the report makes, in its order, from this process (its own pool,
/// warm): what of the report's time is the database's. Gives the median of [`READ_ROUNDS`] in
/// ms, all together and by kind ([`READ_KINDS`]).
pub(super) async fn time_reads(
    store: &Store,
    month: &str,
    month_start: DateTime<Utc>,
) -> anyhow::Result<(f64, Vec<(&'static str, f64)>)> {
    let previous = last_month(month_start);
    let end = super::month_start(&last_month(month_start + chrono::Duration::days(62))).context("the next month")?;
    let derived = store.derived();
    let mut rounds: Vec<[f64; READ_KINDS.len()]> = Vec::with_capacity(READ_ROUNDS);
    for _ in 0..READ_ROUNDS {
        let mut kinds = [0.0; READ_KINDS.len()];
        let mut t = Instant::now();
        let mut lap = |kind: usize, t: &mut Instant| {
            kinds[kind] += t.elapsed().as_secs_f64() * 1e3;
            *t = Instant::now();
        };
        for m in [month, previous.as_str()] {
            for group in [TripGroup::Unit, TripGroup::Vehicle, TripGroup::Driver] {
                derived.trip_totals(m, group).await?;
            }
        }
        lap(0, &mut t);
        derived.charge_totals(month).await?;
        lap(1, &mut t);
        store.orders().counts_by_unit(month_start, end).await?;
        lap(2, &mut t);
        for unit in store.units().list().await? {
            derived.unit_energy_kwh(&unit.id, month).await?;
        }
        lap(3, &mut t);
        store.vehicles().list(None).await?;
        store.drivers().list().await?;
        lap(4, &mut t);
        rounds.push(kinds);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let total = median(rounds.iter().map(|r| r.iter().sum()).collect());
    let by_kind =
        READ_KINDS.iter().enumerate().map(|(k, name)| (*name, median(rounds.iter().map(|r| r[k]).collect()))).collect();
    Ok((total, by_kind))
}

/// The report must hold every car with its trips, and the units and drivers the trips that
/// served orders.
fn check_report(report: &Value, n: usize) -> anyhow::Result<()> {
    let sum =
        |list: &str| report[list].as_array().map_or(0, |a| a.iter().filter_map(|r| r["trips"].as_i64()).sum::<i64>());
    let rows = |list: &str| report[list].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        rows("vehicles") == n && rows("drivers") == n,
        "the report lists {} cars and {} drivers, not {n}",
        rows("vehicles"),
        rows("drivers")
    );
    let (all, served) = ((n * TRIPS) as i64, (n * ORDER_TRIPS) as i64);
    anyhow::ensure!(sum("vehicles") == all, "the report's cars made {} trips, not {all}", sum("vehicles"));
    anyhow::ensure!(
        sum("units") == served && sum("drivers") == served,
        "the report ties {} trips to units and {} to drivers, not {served}",
        sum("units"),
        sum("drivers")
    );
    Ok(())
}
