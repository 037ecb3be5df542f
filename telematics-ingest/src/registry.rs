//! Which VINs are registered: ingest accepts only those. Loaded once, then a miss asks
//! storage (a vehicle registered a moment ago is accepted at once); an unknown VIN is
//! remembered briefly so a stream of unknown traffic does not hammer the database.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fleet_storage::{StorageError, Store};

/// How long an unknown VIN stays known as unknown.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Bound on remembered unknown VINs (junk traffic cannot grow memory without limit).
const NEGATIVE_MAX: usize = 10_000;

pub(crate) struct Registry {
    store: Store,
    known: HashSet<String>,
    unknown: HashMap<String, Instant>,
}

impl Registry {
    pub(crate) async fn load(store: Store) -> Result<Self, StorageError> {
        let known = store.vehicles().vins().await?.into_iter().collect();
        Ok(Self { store, known, unknown: HashMap::new() })
    }

    /// Whether `vin` is registered. A storage error counts as "ask again later": the caller
    /// must not dead-letter the message on it.
    pub(crate) async fn is_registered(&mut self, vin: &str) -> Result<bool, StorageError> {
        if self.known.contains(vin) {
            return Ok(true);
        }
        if let Some(at) = self.unknown.get(vin)
            && at.elapsed() < NEGATIVE_TTL
        {
            return Ok(false);
        }
        if self.store.vehicles().exists(vin).await? {
            self.unknown.remove(vin);
            self.known.insert(vin.to_owned());
            Ok(true)
        } else {
            if self.unknown.len() >= NEGATIVE_MAX {
                self.unknown.retain(|_, at| at.elapsed() < NEGATIVE_TTL);
                if self.unknown.len() >= NEGATIVE_MAX {
                    self.unknown.clear();
                }
            }
            self.unknown.insert(vin.to_owned(), Instant::now());
            Ok(false)
        }
    }
}
