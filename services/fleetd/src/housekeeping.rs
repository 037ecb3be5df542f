//! Housekeeping: what is kept only for a while is removed every hour, by one instance at a
//! time — idempotency answers after their 24 hours (docs/api.md), and login tokens a week
//! after they expired or were revoked.

use std::time::Duration;

use chrono::Utc;
use fleet_storage::Store;
use tokio_util::sync::CancellationToken;

/// How often housekeeping runs.
pub const EVERY: Duration = Duration::from_secs(3600);
/// The lock held while it runs, so that instances take turns.
const LOCK: &str = "fleet.housekeeping";
/// How long a retried request with the same `Idempotency-Key` is answered as the first was.
const IDEMPOTENCY_KEPT: chrono::Duration = chrono::Duration::hours(24);
/// How long a dead token is kept (for a support question about a session, not for access).
const DEAD_TOKENS_KEPT: chrono::Duration = chrono::Duration::days(7);

/// Runs housekeeping every [`EVERY`] until `shutdown`.
pub async fn run(store: Store, shutdown: CancellationToken) {
    loop {
        match store.try_lead(LOCK).await {
            Ok(Some(_held)) => {
                let now = Utc::now();
                match store.idempotency_keys().purge(now - IDEMPOTENCY_KEPT).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "old idempotency answers removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "removing old idempotency answers failed; retrying later"),
                }
                match store.tokens().purge(now - DEAD_TOKENS_KEPT).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "dead login tokens removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "removing dead login tokens failed; retrying later"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "housekeeping cannot reach the database; retrying later"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
