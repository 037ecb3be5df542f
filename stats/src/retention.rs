//! Raw-sample retention: aged samples are removed every hour by whichever instance holds the
//! lock; the trips and sessions derived from them stay.

use std::time::Duration;

use chrono::Utc;
use fleet_storage::Store;
use tokio_util::sync::CancellationToken;

use crate::Deriver;

/// Raw samples are kept this long by default (derived trips and sessions stay for good).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
/// How often aged samples are removed.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The lock held while aged samples are removed, so two instances never purge at once.
pub const RETENTION_LOCK: &str = "fleet.stats.retention";

impl Deriver {
    /// Removes aged raw samples every [`RETENTION_EVERY`] until `shutdown`. A removal under
    /// way is cut short at `shutdown`: it deletes in chunks (SQLite) or drops whole months
    /// (PostgreSQL), each its own statement or transaction, so what is left is removed next
    /// time.
    pub async fn retain(store: Store, retention: Duration, shutdown: CancellationToken) {
        let Ok(keep) = chrono::Duration::from_std(retention) else {
            // Longer than any clock can reach back: nothing ever ages.
            shutdown.cancelled().await;
            return;
        };
        loop {
            match store.try_lead(RETENTION_LOCK).await {
                Ok(Some(_held)) => {
                    let telemetry = store.telemetry();
                    let purged = tokio::select! {
                        () = shutdown.cancelled() => return,
                        purged = telemetry.purge_before(Utc::now() - keep) => purged,
                    };
                    match purged {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "aged raw samples removed"),
                        Err(e) => tracing::warn!(error = %e, "removing aged raw samples failed; retrying later"),
                    }
                }
                Ok(None) => tracing::debug!("another instance is removing aged samples"),
                Err(e) => tracing::warn!(error = %e, "removing aged raw samples failed; retrying later"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETENTION_EVERY) => {}
            }
        }
    }
}
