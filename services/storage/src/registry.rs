//! Units, vehicles and drivers.

use fleet_domain::{Driver, NewDriver, NewUnit, NewVehicle, Unit, Vehicle, Vin};

use crate::{StorageError, Store, on_pool};

#[derive(sqlx::FromRow)]
struct UnitRow {
    id: String,
    name: String,
    monthly_energy_budget_kwh: f64,
    auto_approve: bool,
}

impl From<UnitRow> for Unit {
    fn from(r: UnitRow) -> Self {
        Unit {
            id: r.id,
            name: r.name,
            monthly_energy_budget_kwh: r.monthly_energy_budget_kwh,
            auto_approve: r.auto_approve,
        }
    }
}

/// Units (departments).
pub struct Units<'a>(pub(crate) &'a Store);

impl Units<'_> {
    /// Creates a validated unit with the given id (the caller picks one when the request had none).
    pub async fn create(&self, id: &str, u: &NewUnit) -> Result<Unit, StorageError> {
        let q = "INSERT INTO units (id, name, monthly_energy_budget_kwh, auto_approve) VALUES ($1, $2, $3, $4)";
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(id)
            .bind(u.name.trim())
            .bind(u.monthly_energy_budget_kwh)
            .bind(u.auto_approve)
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| StorageError::classify(e, "unit id", "unit"))?;
        Ok(Unit {
            id: id.to_owned(),
            name: u.name.trim().to_owned(),
            monthly_energy_budget_kwh: u.monthly_energy_budget_kwh,
            auto_approve: u.auto_approve,
        })
    }

    pub async fn list(&self) -> Result<Vec<Unit>, StorageError> {
        let q = "SELECT id, name, monthly_energy_budget_kwh, auto_approve FROM units ORDER BY id";
        let rows: Vec<UnitRow> = on_pool!(self.0, pool => sqlx::query_as(q).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Unit::from).collect())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Unit>, StorageError> {
        let q = "SELECT id, name, monthly_energy_budget_kwh, auto_approve FROM units WHERE id = $1";
        let row: Option<UnitRow> = on_pool!(self.0, pool => sqlx::query_as(q).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(Unit::from))
    }

    pub async fn count(&self) -> Result<i64, StorageError> {
        Ok(on_pool!(self.0, pool => sqlx::query_scalar("SELECT COUNT(*) FROM units").fetch_one(pool).await)?)
    }
}

#[derive(sqlx::FromRow)]
struct VehicleRow {
    vin: String,
    plate: String,
    model: String,
    seats: i32,
    battery_kwh: f64,
    consumption_kwh_per_100km: f64,
    unit_id: Option<String>,
    terminal_phone: Option<String>,
}

impl TryFrom<VehicleRow> for Vehicle {
    type Error = StorageError;
    fn try_from(r: VehicleRow) -> Result<Self, StorageError> {
        Ok(Vehicle {
            vin: Vin::parse(&r.vin).map_err(|e| StorageError::Corrupt(format!("vehicle VIN {:?}: {e}", r.vin)))?,
            plate: r.plate,
            model: r.model,
            seats: r.seats,
            battery_kwh: r.battery_kwh,
            consumption_kwh_per_100km: r.consumption_kwh_per_100km,
            unit_id: r.unit_id,
            terminal_phone: r.terminal_phone,
        })
    }
}

const VEHICLE_COLUMNS: &str =
    "vin, plate, model, seats, battery_kwh, consumption_kwh_per_100km, unit_id, terminal_phone";

/// Registered vehicles.
pub struct Vehicles<'a>(pub(crate) &'a Store);

impl Vehicles<'_> {
    /// Registers a vehicle whose fields were validated (`NewVehicle::validate`).
    pub async fn create(&self, vin: &Vin, v: &NewVehicle) -> Result<Vehicle, StorageError> {
        let phone =
            v.terminal_phone.as_deref().map(fleet_domain::terminal_phone).transpose().map_err(|e| {
                StorageError::Corrupt(format!("vehicle {vin} was not validated before it was stored: {e}"))
            })?;
        let q = "INSERT INTO vehicles \
                 (vin, plate, model, seats, battery_kwh, consumption_kwh_per_100km, unit_id, terminal_phone) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(vin.as_str())
            .bind(&v.plate)
            .bind(v.model.trim())
            .bind(v.seats)
            .bind(v.battery_kwh)
            .bind(v.consumption_kwh_per_100km)
            .bind(&v.unit_id)
            .bind(&phone)
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| {
            let db = e.as_database_error();
            let plate =
                db.is_some_and(|d| d.message().contains("plate") || d.constraint() == Some("vehicles_plate_key"));
            let phone = db.is_some_and(|d| {
                d.message().contains("terminal_phone") || d.constraint() == Some("vehicles_terminal_phone_key")
            });
            let field = if plate {
                "plate"
            } else if phone {
                "terminal_phone"
            } else {
                "VIN"
            };
            StorageError::classify(e, field, "unit")
        })?;
        Ok(Vehicle {
            vin: vin.clone(),
            plate: v.plate.clone(),
            model: v.model.trim().to_owned(),
            seats: v.seats,
            battery_kwh: v.battery_kwh,
            consumption_kwh_per_100km: v.consumption_kwh_per_100km,
            unit_id: v.unit_id.clone(),
            terminal_phone: phone,
        })
    }

    /// Every vehicle, or those of one unit.
    pub async fn list(&self, unit_id: Option<&str>) -> Result<Vec<Vehicle>, StorageError> {
        let rows: Vec<VehicleRow> = match unit_id {
            Some(u) => {
                let q = format!("SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE unit_id = $1 ORDER BY plate");
                on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(u).fetch_all(pool).await)?
            }
            None => {
                let q = format!("SELECT {VEHICLE_COLUMNS} FROM vehicles ORDER BY plate");
                on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await)?
            }
        };
        rows.into_iter().map(Vehicle::try_from).collect()
    }

    pub async fn get(&self, vin: &str) -> Result<Option<Vehicle>, StorageError> {
        let q = format!("SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE vin = $1");
        let row: Option<VehicleRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(vin).fetch_optional(pool).await)?;
        row.map(Vehicle::try_from).transpose()
    }

    /// Whether a VIN is registered (the ingest gate).
    pub async fn exists(&self, vin: &str) -> Result<bool, StorageError> {
        let q = "SELECT COUNT(*) FROM vehicles WHERE vin = $1";
        let n: i64 = on_pool!(self.0, pool => sqlx::query_scalar(q).bind(vin).fetch_one(pool).await)?;
        Ok(n > 0)
    }

    /// The VIN of the vehicle whose JT/T 808 terminal has this phone number (leading zeros
    /// are ignored), if one does.
    pub async fn vin_of_terminal(&self, phone: &str) -> Result<Option<String>, StorageError> {
        let Ok(phone) = fleet_domain::terminal_phone(phone) else { return Ok(None) };
        let q = "SELECT vin FROM vehicles WHERE terminal_phone = $1";
        Ok(on_pool!(self.0, pool => sqlx::query_scalar(q).bind(&phone).fetch_optional(pool).await)?)
    }

    /// The authentication code of the terminal with this phone number: the one it was given
    /// before, or `fresh` (kept from now on) if it has none. `None` when no vehicle has the
    /// terminal. A terminal that registers again (its answer lost) gets the same code.
    pub async fn terminal_auth_code(&self, phone: &str, fresh: &str) -> Result<Option<String>, StorageError> {
        let Ok(phone) = fleet_domain::terminal_phone(phone) else { return Ok(None) };
        let set =
            "UPDATE vehicles SET terminal_auth_code = $2 WHERE terminal_phone = $1 AND terminal_auth_code IS NULL";
        let get = "SELECT terminal_auth_code FROM vehicles WHERE terminal_phone = $1";
        let code: Option<Option<String>> = on_pool!(self.0, pool => async {
            sqlx::query(set).bind(&phone).bind(fresh).execute(pool).await?;
            sqlx::query_scalar(get).bind(&phone).fetch_optional(pool).await
        }.await)?;
        Ok(code.flatten())
    }

    /// Whether `code` is the authentication code given to the terminal with this phone number.
    pub async fn terminal_code_matches(&self, phone: &str, code: &str) -> Result<bool, StorageError> {
        let Ok(phone) = fleet_domain::terminal_phone(phone) else { return Ok(false) };
        let q = "SELECT terminal_auth_code FROM vehicles WHERE terminal_phone = $1";
        let stored: Option<Option<String>> =
            on_pool!(self.0, pool => sqlx::query_scalar(q).bind(&phone).fetch_optional(pool).await)?;
        Ok(stored.flatten().is_some_and(|s| s == code))
    }

    /// Every registered VIN.
    pub async fn vins(&self) -> Result<Vec<String>, StorageError> {
        Ok(on_pool!(self.0, pool => sqlx::query_scalar("SELECT vin FROM vehicles").fetch_all(pool).await)?)
    }
}

#[derive(sqlx::FromRow)]
struct DriverRow {
    id: String,
    name: String,
    phone: String,
    vehicle_vin: Option<String>,
}

impl TryFrom<DriverRow> for Driver {
    type Error = StorageError;
    fn try_from(r: DriverRow) -> Result<Self, StorageError> {
        let vehicle_vin = r
            .vehicle_vin
            .map(|v| Vin::parse(&v).map_err(|e| StorageError::Corrupt(format!("driver VIN {v:?}: {e}"))))
            .transpose()?;
        Ok(Driver { id: r.id, name: r.name, phone: r.phone, vehicle_vin })
    }
}

/// Drivers.
pub struct Drivers<'a>(pub(crate) &'a Store);

impl Drivers<'_> {
    /// Creates a validated driver with the given id.
    pub async fn create(&self, id: &str, d: &NewDriver, vin: Option<&Vin>) -> Result<Driver, StorageError> {
        let q = "INSERT INTO drivers (id, name, phone, vehicle_vin) VALUES ($1, $2, $3, $4)";
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(id)
            .bind(d.name.trim())
            .bind(d.phone.trim())
            .bind(vin.map(Vin::as_str))
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| StorageError::classify(e, "driver id", "vehicle"))?;
        Ok(Driver {
            id: id.to_owned(),
            name: d.name.trim().to_owned(),
            phone: d.phone.trim().to_owned(),
            vehicle_vin: vin.cloned(),
        })
    }

    pub async fn list(&self) -> Result<Vec<Driver>, StorageError> {
        let q = "SELECT id, name, phone, vehicle_vin FROM drivers ORDER BY id";
        let rows: Vec<DriverRow> = on_pool!(self.0, pool => sqlx::query_as(q).fetch_all(pool).await)?;
        rows.into_iter().map(Driver::try_from).collect()
    }

    /// The driver bound to a car (the first by id if several are).
    pub async fn of_vehicle(&self, vin: &str) -> Result<Option<Driver>, StorageError> {
        let q = "SELECT id, name, phone, vehicle_vin FROM drivers WHERE vehicle_vin = $1 ORDER BY id LIMIT 1";
        let row: Option<DriverRow> = on_pool!(self.0, pool => sqlx::query_as(q).bind(vin).fetch_optional(pool).await)?;
        row.map(Driver::try_from).transpose()
    }

    pub async fn get(&self, id: &str) -> Result<Option<Driver>, StorageError> {
        let q = "SELECT id, name, phone, vehicle_vin FROM drivers WHERE id = $1";
        let row: Option<DriverRow> = on_pool!(self.0, pool => sqlx::query_as(q).bind(id).fetch_optional(pool).await)?;
        row.map(Driver::try_from).transpose()
    }
}
