//! The ingest sessions of a cluster. Every ingest instance keeps a persistent MQTT session
//! (its client id) in the broker's `$share` group, and the broker keeps handing a member its
//! share of the stream even while that member is down (Mosquitto 2.0 was measured
//! queueing it for the absent member).
//! So a session must never be left alone: each one is held by exactly one instance, decided
//! by a PostgreSQL advisory lock per client id, whose holder runs an ingest on it.
//!
//! - An instance holds its own session while it can; the lock dies with its database
//!   session, so a killed instance lets go at once.
//! - Every few seconds each instance tries the locks of the group's other sessions: a lock
//!   it gets belongs to an instance that is down, and it drains that session (acking only
//!   after the commit, as always) until the owner is back.
//! - An owner that comes back and finds its lock taken asks for its session back; the
//!   holder stops that ingest (finishing what is in flight) and lets go, and nobody else
//!   takes it while the owner's request is fresh.
//!
//! A session only runs while its lock holds, so two instances never fight over one client
//! id at the broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::Utc;
use fleet_bus::Bus;
use fleet_storage::{Leadership, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often sessions are checked: how soon a dead instance's session is drained, and how
/// soon a returning owner gets its own back.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A hand-back request counts this long: an owner that waits asks again on every check, so
/// the request of an owner that died meanwhile lapses and its session is drained again.
const REQUEST_FRESH: chrono::Duration = chrono::Duration::seconds(30);
/// Longest an ingest is given to finish its in-flight batch when its session is handed over.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Keeps this instance's session and drains the sessions of instances that are down.
pub struct Keeper {
    /// The ingest configuration of this instance's own session.
    pub own: fleet_ingest::Config,
    /// The share group the cluster's sessions belong to.
    pub group: String,
    pub store: Store,
    pub bus: Bus,
    /// This instance's broker connection, for `/healthz`.
    pub connected: Arc<AtomicBool>,
}

/// A session this instance holds and ingests from.
struct Held {
    lock: Leadership,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Held {
    async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(STOP_GRACE, self.task).await.is_err() {
            tracing::warn!("an ingest session did not stop in time");
        }
    }
}

fn lock_name(client_id: &str) -> String {
    format!("fleet.ingest.session.{client_id}")
}

impl Keeper {
    /// Keeps the sessions until `shutdown`; each ingest it runs is a task on `tasks`.
    pub async fn run(self, tasks: TaskTracker, shutdown: CancellationToken) {
        let own = self.own.client_id.clone();
        let mut held: HashMap<String, Held> = HashMap::new();
        let mut asking = false;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut registered = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if !registered {
                match self.store.ingest_sessions().register(&own, &self.group, Utc::now()).await {
                    Ok(()) => registered = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot register this instance's ingest session; retrying");
                        continue;
                    }
                }
            }
            let sessions = match self.store.ingest_sessions().list(&self.group).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the cluster's ingest sessions; retrying");
                    Vec::new()
                }
            };
            // Sessions whose owner is back and waits for them.
            let now = Utc::now();
            let asked: Vec<&str> = sessions
                .iter()
                .filter(|(id, at)| *id != own && at.is_some_and(|t| now - t < REQUEST_FRESH))
                .map(|(id, _)| id.as_str())
                .collect();
            // Let go of what no longer holds, or of what its owner asks back.
            let mut release = Vec::new();
            for (id, h) in &mut held {
                let wanted = asked.contains(&id.as_str());
                if wanted || h.task.is_finished() || !h.lock.holds().await {
                    release.push((id.clone(), wanted));
                }
            }
            for (id, wanted) in release {
                if let Some(h) = held.remove(&id) {
                    h.stop().await;
                    if wanted {
                        tracing::info!(mqtt.client_id = %id, "handed an ingest session back to its owner");
                    } else {
                        tracing::warn!(mqtt.client_id = %id, "lost an ingest session's lock; stopped its ingest");
                    }
                }
            }
            // Take what nobody holds (this instance's own session first), leaving alone the
            // sessions whose owners wait for them.
            let mut ids: Vec<&str> = vec![own.as_str()];
            ids.extend(sessions.iter().map(|(s, _)| s.as_str()).filter(|s| *s != own && !asked.contains(s)));
            for id in ids {
                if held.contains_key(id) {
                    continue;
                }
                match self.store.try_lead(&lock_name(id)).await {
                    Ok(Some(lock)) => {
                        if id == own {
                            if asking {
                                let _ = self.store.ingest_sessions().request_release(id, None).await;
                                asking = false;
                            }
                            tracing::info!(mqtt.client_id = %id, "ingesting from this instance's session");
                        } else {
                            tracing::warn!(mqtt.client_id = %id, "an ingest instance is down; draining its session until it is back");
                            metrics::counter!("fleet_ingest_sessions_adopted_total").increment(1);
                        }
                        held.insert(id.to_owned(), self.start(id, lock, id == own, &tasks, &shutdown));
                    }
                    Ok(None) if id == own => {
                        if !asking {
                            tracing::warn!(mqtt.client_id = %id, "another instance holds this instance's session; asking for it back");
                        }
                        asking = self.store.ingest_sessions().request_release(id, Some(Utc::now())).await.is_ok();
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot reach the database for the ingest sessions"),
                }
            }
            metrics::gauge!("fleet_ingest_sessions_held").set(held.len() as f64);
        }
        for (_, h) in held {
            h.stop().await;
        }
    }

    fn start(
        &self,
        client_id: &str,
        lock: Leadership,
        own: bool,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Held {
        let mut cfg = self.own.clone();
        cfg.client_id = client_id.to_owned();
        let mut ingest = fleet_ingest::Ingest::new(cfg, self.store.clone(), self.bus.clone());
        if own {
            ingest = ingest.with_connected_flag(self.connected.clone());
        }
        let stop = shutdown.child_token();
        let token = stop.clone();
        let id = client_id.to_owned();
        let task = tasks.spawn(async move {
            if let Err(e) = ingest.run(token).await {
                tracing::error!(mqtt.client_id = %id, error = %e, "ingest stopped");
            }
        });
        Held { lock, stop, task }
    }
}
