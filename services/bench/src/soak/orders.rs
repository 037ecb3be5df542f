//! A steady trickle of orders through the API, each carried through its life by the driver
//! it is given: created (auto-approved) → assigned by dispatch → accepted, picked up and
//! completed by the driver, with their own tokens. Dispatch's batches, the order events on
//! the live feed and the history tables all see traffic for the whole run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::child::Fleetd;
use crate::progress;
use fleet_sim::places::{PLACES, PlaceKind};

/// Password of every bench driver's user.
const DRIVER_PASSWORD: &str = "bench-driver";
/// Users made and logged in one at a time. Each is an argon2 hash (19 MiB of working
/// memory) on one of fleetd's blocking threads, and glibc keeps what each thread's arena
/// held: eight at once left fleetd's RSS ~150 MiB higher for good, one at a time ~120 MiB
/// in all. The soak measures the fleet's memory, not that.
const SETUP_CONCURRENCY: usize = 1;
/// How often an order waiting for its car is looked at.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// An order with no car after this long is canceled and counted as unmatched.
const ASSIGN_WAIT: Duration = Duration::from_secs(180);
/// From accepting to picking up, and from picking up to completing.
const PICKUP_AFTER: Duration = Duration::from_secs(20);
const RIDE_FOR: Duration = Duration::from_secs(40);
/// Errors printed in full; later ones are only counted.
const ERRORS_SHOWN: u64 = 5;

/// Counts of the run's orders.
#[derive(Debug, Default)]
pub(super) struct OrderCounts {
    pub created: AtomicU64,
    pub completed: AtomicU64,
    /// Canceled after [`ASSIGN_WAIT`] without a car.
    pub unmatched: AtomicU64,
    /// An API call answered otherwise than the life of an order expects.
    pub failed: AtomicU64,
}

impl OrderCounts {
    fn fail(&self, e: &anyhow::Error) {
        if self.failed.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
            progress(format!("soak: an order failed: {e:#}"));
        }
    }
}

/// Makes a driver user for each `(driver id)` and logs each in; gives their tokens.
pub(super) async fn driver_tokens(
    fleetd: &Fleetd,
    admin: &str,
    drivers: &[String],
) -> anyhow::Result<HashMap<String, String>> {
    futures_util::stream::iter(drivers)
        .map(|id| async move {
            let user = json!({"username": id, "password": DRIVER_PASSWORD, "role": "driver", "driver_id": id});
            fleetd.call("POST", "/api/v1/users", admin, Some(&user), 201).await?;
            Ok::<_, anyhow::Error>((id.clone(), fleetd.login(id, DRIVER_PASSWORD).await?))
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

/// Everything the order load needs.
pub(super) struct OrderLoad {
    pub fleetd: Arc<Fleetd>,
    pub admin: String,
    pub drivers: Arc<HashMap<String, String>>,
    pub units: Vec<String>,
    pub per_min: f64,
    pub seed: u64,
    pub counts: Arc<OrderCounts>,
}

impl OrderLoad {
    /// Books orders at a steady pace until `stop_booking`; orders under way go on until
    /// `stop`. Returns once every order's task has ended.
    pub(super) async fn run(self, stop_booking: CancellationToken, stop: CancellationToken) {
        if self.per_min <= 0.0 {
            return;
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        let destinations: Vec<(f64, f64, &str)> =
            PLACES.iter().filter(|p| p.kind == PlaceKind::Destination).map(|p| (p.lat, p.lon, p.name_pinyin)).collect();
        let every = Duration::from_secs_f64(60.0 / self.per_min);
        let mut next = Instant::now();
        let mut lives = JoinSet::new();
        for k in 0u64.. {
            tokio::select! {
                () = stop_booking.cancelled() => break,
                () = tokio::time::sleep_until(next) => {}
            }
            next += every;
            let from = destinations[rng.random_range(0..destinations.len())];
            let mut to = destinations[rng.random_range(0..destinations.len())];
            while to == from && destinations.len() > 1 {
                to = destinations[rng.random_range(0..destinations.len())];
            }
            let body = json!({
                "unit_id": self.units[rng.random_range(0..self.units.len())],
                "passengers": rng.random_range(1..=4u32),
                "pickup": {"lat": from.0, "lon": from.1, "name": from.2},
                "dropoff": {"lat": to.0, "lon": to.1, "name": to.2},
                "purpose": format!("bench soak {k}"),
            });
            let (fleetd, admin, drivers, counts, stop) =
                (self.fleetd.clone(), self.admin.clone(), self.drivers.clone(), self.counts.clone(), stop.clone());
            lives.spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    r = life(&fleetd, &admin, &drivers, &counts, body) => {
                        if let Err(e) = r {
                            counts.fail(&e);
                        }
                    }
                }
            });
            // Ended lives are collected as we go, so the set stays small over an hour.
            while lives.try_join_next().is_some() {}
        }
        while lives.join_next().await.is_some() {}
    }
}

/// One order's life, as its unit's applicant (admin here) and its driver live it.
async fn life(
    fleetd: &Fleetd,
    admin: &str,
    drivers: &HashMap<String, String>,
    counts: &OrderCounts,
    body: Value,
) -> anyhow::Result<()> {
    let order = fleetd.call("POST", "/api/v1/orders", admin, Some(&body), 201).await?;
    counts.created.fetch_add(1, Ordering::Relaxed);
    anyhow::ensure!(order["status"] == "approved", "a new order of an auto-approving unit is {}", order["status"]);
    let id = order["id"].as_str().context("an order without an id")?.to_owned();
    let path = format!("/api/v1/orders/{id}");
    let deadline = Instant::now() + ASSIGN_WAIT;
    let driver = loop {
        tokio::time::sleep(POLL_EVERY).await;
        let order = fleetd.call("GET", &path, admin, None, 200).await?;
        match order["status"].as_str() {
            Some("assigned") => {
                break order["driver_id"].as_str().context("an assigned order without a driver")?.to_owned();
            }
            Some("approved") if Instant::now() < deadline => {}
            Some("approved") => {
                fleetd
                    .call("POST", &format!("{path}/cancel"), admin, Some(&json!({"reason": "bench: no car"})), 200)
                    .await?;
                counts.unmatched.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            other => anyhow::bail!("order {id} is {other:?} while waiting for a car"),
        }
    };
    let token = drivers.get(&driver).with_context(|| format!("order {id} went to {driver}, not a bench driver"))?;
    let empty = json!({});
    fleetd.call("POST", &format!("{path}/accept"), token, Some(&empty), 200).await?;
    tokio::time::sleep(PICKUP_AFTER).await;
    fleetd.call("POST", &format!("{path}/pickup"), token, Some(&empty), 200).await?;
    tokio::time::sleep(RIDE_FOR).await;
    let done = fleetd.call("POST", &format!("{path}/complete"), token, Some(&empty), 200).await?;
    anyhow::ensure!(done["status"] == "completed", "order {id} is {} after completing", done["status"]);
    counts.completed.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
