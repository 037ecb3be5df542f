//! Events between fleetd instances over PostgreSQL's LISTEN/NOTIFY: the database the
//! instances share already connects them, so no other moving part is needed. Notifications
//! are transient: a listener that loses its connection is told so ([`Listener::recv`] answers
//! `None`) and must reload what it keeps from storage.

use sqlx::postgres::PgListener;

use crate::{StorageError, Store};

/// The channel every instance listens on.
pub const CHANNEL: &str = "fleet_events";
/// Longest payload sent: PostgreSQL refuses 8,000 bytes and more.
pub const MAX_PAYLOAD: usize = 7_900;

impl Store {
    /// Sends each payload as one notification on [`CHANNEL`], in order, in one round trip.
    pub async fn notify(&self, payloads: &[String]) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(..) => Err(StorageError::Config("events between instances need PostgreSQL".into())),
            Self::Postgres(pool, _) => {
                sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n")
                    .bind(CHANNEL)
                    .bind(payloads)
                    .execute(pool)
                    .await?;
                Ok(())
            }
        }
    }

    /// A listener on [`CHANNEL`], on a connection of its own.
    pub async fn listen(&self) -> Result<Listener, StorageError> {
        match self {
            Self::Sqlite(..) => Err(StorageError::Config("events between instances need PostgreSQL".into())),
            Self::Postgres(pool, _) => {
                let mut l = PgListener::connect_with(pool).await?;
                l.listen(CHANNEL).await?;
                Ok(Listener(l))
            }
        }
    }
}

/// Notifications from [`CHANNEL`].
pub struct Listener(PgListener);

impl Listener {
    /// The next payload; `None` when the connection was lost (notifications sent meanwhile
    /// are gone; the next call reconnects and listens again). An error when reconnecting
    /// fails: call again later.
    pub async fn recv(&mut self) -> Result<Option<String>, StorageError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}
