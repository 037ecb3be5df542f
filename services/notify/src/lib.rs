//! Webhook notifications. Every new alarm of a webhook's kinds goes into an outbox in the
//! database (`webhook_deliveries`), and the [`Notifier`] POSTs each delivery as the alarm's
//! JSON with `X-Fleet-Signature: sha256=<hex HMAC-SHA256 of the body keyed by the secret>`.
//! A delivery that fails (no answer, an error, a status that is not 2xx) is tried again first
//! within 10 s, then with backoff at most 10 minutes apart, for 25 hours; after a 2xx it is
//! never sent again. The outbox survives restarts, and several instances share it: each
//! claims a delivery before it sends it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_storage::{Delivery, Store};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// How often the outbox is looked at.
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);
/// How long a receiver has to answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries sent at once.
pub const CONCURRENCY: usize = 16;
/// Deliveries read from the outbox per look.
const BATCH: i64 = 500;
/// How long a sender holds a delivery it claimed (a sender that died lets it go after this).
const CLAIM: Duration = Duration::from_secs(60);
/// Alarms this old or newer are put in the outbox (older ones were before any hook cared).
const ENQUEUE_WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// Tries stop after this long.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(25);
/// The longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The wait after the `attempts`-th failed try: 1, 2 and 4 s (three tries within the first
/// 10 s), then doubling from 8 s up to [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Duration {
    let secs = 1u64.checked_shl(attempts.saturating_sub(1)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// `sha256=<hex>` of `body` keyed by `secret`.
pub fn signature(secret: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Sends the outbox's deliveries.
pub struct Notifier {
    store: Store,
    http: reqwest::Client,
    poll: Duration,
}

impl Notifier {
    pub fn new(store: Store, poll: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fleetd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { store, http, poll })
    }

    /// Fills and empties the outbox until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.pass(Utc::now()).await {
                tracing::warn!(error = %e, "webhook outbox pass failed; trying again");
            }
        }
    }

    /// One look: new alarms into the outbox, then every due delivery sent.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<(), fleet_storage::StorageError> {
        let hooks = self.store.webhooks();
        let added = hooks.enqueue(now - ENQUEUE_WINDOW, now, |a| serde_json::to_string(a).unwrap_or_default()).await?;
        if added > 0 {
            tracing::debug!(deliveries = added, "alarms put in the webhook outbox");
        }
        loop {
            let due = hooks.due(Utc::now(), BATCH).await?;
            if due.is_empty() {
                return Ok(());
            }
            let n = due.len();
            futures_util::stream::iter(due)
                .for_each_concurrent(CONCURRENCY, |d| async move {
                    if let Err(e) = self.deliver(d).await {
                        tracing::warn!(error = %e, "recording a webhook delivery failed");
                    }
                })
                .await;
            if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
                return Ok(());
            }
        }
    }

    async fn deliver(&self, d: Delivery) -> Result<(), fleet_storage::StorageError> {
        let hooks = self.store.webhooks();
        let claimed_until = Utc::now() + chrono::Duration::from_std(CLAIM).unwrap_or_default();
        if !hooks.claim(&d, claimed_until).await? {
            return Ok(());
        }
        let sent = self
            .http
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Fleet-Signature", signature(&d.secret, &d.body))
            .header("X-Fleet-Delivery", d.id.to_string())
            .body(d.body.clone())
            .send()
            .await;
        let now = Utc::now();
        let error = match sent {
            Ok(r) if r.status().is_success() => {
                metrics::counter!("fleet_webhook_deliveries_total", "outcome" => "delivered").increment(1);
                return hooks.delivered(d.id, now).await;
            }
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => format!("{e}"),
        };
        let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
        let created = DateTime::<Utc>::from_timestamp_millis(d.created_ms).unwrap_or(now);
        let next = now + chrono::Duration::from_std(backoff(attempts)).unwrap_or_default();
        let next = (next - created < GIVE_UP_AFTER).then_some(next);
        metrics::counter!("fleet_webhook_deliveries_total", "outcome" => if next.is_some() { "retry" } else { "gave_up" })
            .increment(1);
        tracing::info!(delivery.id = d.id, attempts, error = %error, gave_up = next.is_none(), "webhook delivery failed");
        hooks.failed(d.id, now, next, &error).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_tries_in_ten_seconds_then_doubling_to_ten_minutes() {
        let waits: Vec<u64> = (1..=12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert!(waits[..3].iter().sum::<u64>() < 10);
        assert_eq!(backoff(1000), MAX_BACKOFF);
        // Tried for at least a day: the sum of the waits passes 24 h well before the tries
        // that would run past GIVE_UP_AFTER.
        let mut total = 0;
        let mut n = 0;
        while total < 24 * 3600 {
            n += 1;
            total += backoff(n).as_secs();
        }
        assert!(n < 200, "{n} tries in a day");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
