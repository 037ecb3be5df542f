//! Which VINs are registered: ingest accepts only those. Loaded once, then a miss asks
//! storage (a vehicle registered a moment ago is accepted at once); an unknown VIN is
//! remembered briefly so a stream of unknown traffic does not hammer the database.
//!
//! Also which vehicle a JT/T 808 terminal's phone belongs to (for EMQX's JT/T 808 gateway,
//! whose topics name the phone): asked of storage on first sight and remembered for a while,
//! so that a phone moved to another vehicle is followed within [`PHONE_TTL`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fleet_domain::Vin;
use fleet_storage::{StorageError, Store};

/// How long an unknown VIN stays known as unknown.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Bound on remembered unknown VINs (junk traffic cannot grow memory without limit).
const NEGATIVE_MAX: usize = 10_000;
/// How long a phone's vehicle is remembered; an unknown phone is remembered for
/// [`NEGATIVE_TTL`].
const PHONE_TTL: Duration = Duration::from_secs(60);
/// Bound on remembered phones, known and unknown.
const PHONES_MAX: usize = 20_000;

pub(crate) struct Registry {
    store: Store,
    known: HashSet<String>,
    unknown: HashMap<String, Instant>,
    /// Phone (without leading zeros) → its vehicle, or none, and when storage said so.
    phones: HashMap<String, (Option<Vin>, Instant)>,
}

impl Registry {
    pub(crate) async fn load(store: Store) -> Result<Self, StorageError> {
        let known = store.vehicles().vins().await?.into_iter().collect();
        Ok(Self { store, known, unknown: HashMap::new(), phones: HashMap::new() })
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

    /// The vehicle whose terminal has `phone` (digits without leading zeros), if any. A
    /// storage error counts as "ask again later", as for [`Self::is_registered`].
    pub(crate) async fn vin_of_phone(&mut self, phone: &str) -> Result<Option<Vin>, StorageError> {
        if let Some((vin, at)) = self.phones.get(phone) {
            let ttl = if vin.is_some() { PHONE_TTL } else { NEGATIVE_TTL };
            if at.elapsed() < ttl {
                return Ok(vin.clone());
            }
        }
        let vin = self.store.vehicles().vin_of_terminal(phone).await?.and_then(|v| Vin::parse(&v).ok());
        if self.phones.len() >= PHONES_MAX {
            self.phones.retain(|_, (vin, at)| at.elapsed() < if vin.is_some() { PHONE_TTL } else { NEGATIVE_TTL });
            if self.phones.len() >= PHONES_MAX {
                self.phones.clear();
            }
        }
        self.phones.insert(phone.to_owned(), (vin.clone(), Instant::now()));
        Ok(vin)
    }
}
