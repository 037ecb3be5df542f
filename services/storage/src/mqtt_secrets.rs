//! Vehicles' MQTT accounts: the Mosquitto password-file line of each vehicle that was issued
//! a secret. Only the line (a salted PBKDF2 hash) is kept, never the secret; `fleetd
//! mqtt-passwd` writes the lines into the broker's password file.

use chrono::{DateTime, Utc};
use fleet_domain::Vin;

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

/// A vehicle's stored MQTT account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttAccount {
    /// The vehicle, and the account's username.
    pub vin: Vin,
    /// The whole password-file line, `VIN:$7$…`.
    pub password_line: String,
    /// When the secret behind the line was issued.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    vin: String,
    password_line: String,
    created_ms: i64,
}

impl TryFrom<AccountRow> for MqttAccount {
    type Error = StorageError;
    fn try_from(r: AccountRow) -> Result<Self, StorageError> {
        let vin =
            Vin::parse(&r.vin).map_err(|e| StorageError::Corrupt(format!("MQTT account VIN {:?}: {e}", r.vin)))?;
        Ok(Self { vin, password_line: r.password_line, created_at: from_ms(r.created_ms) })
    }
}

/// Vehicles' MQTT accounts.
pub struct MqttSecrets<'a>(pub(crate) &'a Store);

impl MqttSecrets<'_> {
    /// Stores the password-file line of `vin`, replacing any earlier one (the earlier secret
    /// stops working once the password file is regenerated). `MissingReference` when no
    /// vehicle has this VIN.
    pub async fn replace(&self, vin: &Vin, password_line: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
        let q = "INSERT INTO vehicle_mqtt_secrets (vin, password_line, created_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (vin) DO UPDATE SET password_line = excluded.password_line, created_ms = excluded.created_ms";
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(vin.as_str())
            .bind(password_line)
            .bind(to_ms(now))
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| StorageError::classify(e, "MQTT account", "vehicle"))?;
        Ok(())
    }

    /// Every vehicle's account, in VIN order (the password file's order).
    pub async fn list(&self) -> Result<Vec<MqttAccount>, StorageError> {
        let q = "SELECT vin, password_line, created_ms FROM vehicle_mqtt_secrets ORDER BY vin";
        let rows: Vec<AccountRow> = on_pool!(self.0, pool => sqlx::query_as(q).fetch_all(pool).await)?;
        rows.into_iter().map(MqttAccount::try_from).collect()
    }

    /// One vehicle's account, if it was issued a secret.
    pub async fn get(&self, vin: &str) -> Result<Option<MqttAccount>, StorageError> {
        let q = "SELECT vin, password_line, created_ms FROM vehicle_mqtt_secrets WHERE vin = $1";
        let row: Option<AccountRow> = on_pool!(self.0, pool => sqlx::query_as(q).bind(vin).fetch_optional(pool).await)?;
        row.map(MqttAccount::try_from).transpose()
    }
}
