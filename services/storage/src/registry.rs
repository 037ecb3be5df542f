//! Units, vehicles and drivers: created, edited and retired (a retired record stays, for the
//! history that names it), and each vehicle's file and service records.

use chrono::{NaiveDate, Utc};
use fleet_domain::{Driver, NewDriver, NewUnit, NewVehicle, Unit, Vehicle, VehicleFile, Vin};

use crate::{StorageError, Store, on_pool, to_ms};

/// A calendar day as the database keeps it: `YYYY-MM-DD` text, which sorts as the days do.
fn day_text(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

fn day_of(what: &str, text: Option<String>) -> Result<Option<NaiveDate>, StorageError> {
    text.map(|t| {
        NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|e| StorageError::Corrupt(format!("{what} {t:?}: {e}")))
    })
    .transpose()
}

#[derive(sqlx::FromRow)]
struct UnitRow {
    id: String,
    name: String,
    monthly_energy_budget_kwh: f64,
    auto_approve: bool,
    contact_email: Option<String>,
}

impl From<UnitRow> for Unit {
    fn from(r: UnitRow) -> Self {
        Unit {
            id: r.id,
            name: r.name,
            monthly_energy_budget_kwh: r.monthly_energy_budget_kwh,
            auto_approve: r.auto_approve,
            contact_email: r.contact_email,
        }
    }
}

const UNIT_COLUMNS: &str = "id, name, monthly_energy_budget_kwh, auto_approve, contact_email";

/// Units (departments).
pub struct Units<'a>(pub(crate) &'a Store);

impl Units<'_> {
    /// Creates a validated unit with the given id (the caller picks one when the request had none).
    pub async fn create(&self, id: &str, u: &NewUnit) -> Result<Unit, StorageError> {
        let q = "INSERT INTO units (id, name, monthly_energy_budget_kwh, auto_approve, contact_email) \
                 VALUES ($1, $2, $3, $4, $5)";
        self.write(q, id, u).await?;
        Ok(Unit {
            id: id.to_owned(),
            name: u.name.trim().to_owned(),
            monthly_energy_budget_kwh: u.monthly_energy_budget_kwh,
            auto_approve: u.auto_approve,
            contact_email: u.contact_email.clone(),
        })
    }

    /// Replaces a unit's writable fields with validated ones; `None` when there is no such unit.
    pub async fn update(&self, id: &str, u: &NewUnit) -> Result<Option<Unit>, StorageError> {
        let q = "UPDATE units SET name = $2, monthly_energy_budget_kwh = $3, auto_approve = $4, contact_email = $5 \
                 WHERE id = $1";
        let n = self.write(q, id, u).await?;
        if n == 0 { Ok(None) } else { self.get(id).await }
    }

    /// Runs an insert or update binding `$1`…`$5` to the id and the unit's fields.
    async fn write(&self, q: &'static str, id: &str, u: &NewUnit) -> Result<u64, StorageError> {
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(id)
            .bind(u.name.trim())
            .bind(u.monthly_energy_budget_kwh)
            .bind(u.auto_approve)
            .bind(&u.contact_email)
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| StorageError::classify(e, "unit id", "unit"))
    }

    pub async fn list(&self) -> Result<Vec<Unit>, StorageError> {
        let q = format!("SELECT {UNIT_COLUMNS} FROM units ORDER BY id");
        let rows: Vec<UnitRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Unit::from).collect())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Unit>, StorageError> {
        let q = format!("SELECT {UNIT_COLUMNS} FROM units WHERE id = $1");
        let row: Option<UnitRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(id).fetch_optional(pool).await)?;
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
    retired_ms: Option<i64>,
    insurance_until: Option<String>,
    inspection_due: Option<String>,
    maintenance_every_km: Option<f64>,
    maintenance_every_months: Option<i32>,
    last_maintenance_on: Option<String>,
    last_maintenance_km: Option<f64>,
    in_maintenance: bool,
}

impl TryFrom<VehicleRow> for Vehicle {
    type Error = StorageError;
    fn try_from(r: VehicleRow) -> Result<Self, StorageError> {
        let file = VehicleFile {
            insurance_until: day_of("insurance_until", r.insurance_until)?,
            inspection_due: day_of("inspection_due", r.inspection_due)?,
            maintenance_every_km: r.maintenance_every_km,
            maintenance_every_months: r.maintenance_every_months.and_then(|m| u32::try_from(m).ok()),
            last_maintenance_on: day_of("last_maintenance_on", r.last_maintenance_on)?,
            last_maintenance_km: r.last_maintenance_km,
            in_maintenance: r.in_maintenance,
        };
        Ok(Vehicle {
            vin: Vin::parse(&r.vin).map_err(|e| StorageError::Corrupt(format!("vehicle VIN {:?}: {e}", r.vin)))?,
            plate: r.plate,
            model: r.model,
            seats: r.seats,
            battery_kwh: r.battery_kwh,
            consumption_kwh_per_100km: r.consumption_kwh_per_100km,
            unit_id: r.unit_id,
            terminal_phone: r.terminal_phone,
            file,
            retired: r.retired_ms.is_some(),
        })
    }
}

const VEHICLE_COLUMNS: &str = "vin, plate, model, seats, battery_kwh, consumption_kwh_per_100km, unit_id, terminal_phone, \
     retired_ms, insurance_until, inspection_due, maintenance_every_km, maintenance_every_months, \
     last_maintenance_on, last_maintenance_km, in_maintenance";

/// Which unique key a failed vehicle write ran into.
fn vehicle_write_error(e: sqlx::Error) -> StorageError {
    let db = e.as_database_error();
    let plate = db.is_some_and(|d| d.message().contains("plate") || d.constraint() == Some("vehicles_plate_key"));
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
}

/// The registry's form of a validated vehicle's terminal phone.
fn stored_phone(vin: &Vin, v: &NewVehicle) -> Result<Option<String>, StorageError> {
    v.terminal_phone
        .as_deref()
        .map(fleet_domain::terminal_phone)
        .transpose()
        .map_err(|e| StorageError::Corrupt(format!("vehicle {vin} was not validated before it was stored: {e}")))
}

/// Binds `$1`…`$15` of a vehicle write: the VIN, the registry fields, the terminal phone as
/// stored, and the file (a macro: the two back ends' query types differ).
macro_rules! bind_vehicle {
    ($query:expr, $vin:expr, $v:expr, $phone:expr) => {{
        let f = &$v.file;
        $query
            .bind($vin.as_str())
            .bind(&$v.plate)
            .bind($v.model.trim())
            .bind($v.seats)
            .bind($v.battery_kwh)
            .bind($v.consumption_kwh_per_100km)
            .bind(&$v.unit_id)
            .bind(&$phone)
            .bind(day_text(f.insurance_until))
            .bind(day_text(f.inspection_due))
            .bind(f.maintenance_every_km)
            .bind(f.maintenance_every_months.map(|m| i32::try_from(m).unwrap_or(i32::MAX)))
            .bind(day_text(f.last_maintenance_on))
            .bind(f.last_maintenance_km)
            .bind(f.in_maintenance)
    }};
}

/// A service done on a car, as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MaintenanceRecord {
    pub id: i64,
    pub vin: Vin,
    pub on: NaiveDate,
    pub odometer_km: Option<f64>,
    pub note: String,
    pub cost_yuan: f64,
}

#[derive(sqlx::FromRow)]
struct MaintenanceRow {
    id: i64,
    vin: String,
    done_on: String,
    odometer_km: Option<f64>,
    note: String,
    cost_yuan: f64,
}

/// Registered vehicles.
pub struct Vehicles<'a>(pub(crate) &'a Store);

impl Vehicles<'_> {
    /// Registers a vehicle whose fields were validated (`NewVehicle::validate`).
    pub async fn create(&self, vin: &Vin, v: &NewVehicle) -> Result<Vehicle, StorageError> {
        let phone = stored_phone(vin, v)?;
        let q = "INSERT INTO vehicles \
                 (vin, plate, model, seats, battery_kwh, consumption_kwh_per_100km, unit_id, terminal_phone, \
                  insurance_until, inspection_due, maintenance_every_km, maintenance_every_months, \
                  last_maintenance_on, last_maintenance_km, in_maintenance) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
        on_pool!(self.0, pool => bind_vehicle!(sqlx::query(q), vin, v, phone)
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(vehicle_write_error)?;
        self.get(vin.as_str()).await?.ok_or_else(|| StorageError::Corrupt(format!("vehicle {vin} vanished")))
    }

    /// Replaces a vehicle's writable fields with validated ones (the VIN stays); `None` when
    /// there is no such vehicle.
    pub async fn update(&self, vin: &Vin, v: &NewVehicle) -> Result<Option<Vehicle>, StorageError> {
        let phone = stored_phone(vin, v)?;
        let q = "UPDATE vehicles SET plate = $2, model = $3, seats = $4, battery_kwh = $5, \
                 consumption_kwh_per_100km = $6, unit_id = $7, terminal_phone = $8, \
                 terminal_auth_code = CASE WHEN terminal_phone = $8 THEN terminal_auth_code ELSE NULL END, \
                 insurance_until = $9, inspection_due = $10, maintenance_every_km = $11, \
                 maintenance_every_months = $12, last_maintenance_on = $13, last_maintenance_km = $14, \
                 in_maintenance = $15 WHERE vin = $1";
        let n = on_pool!(self.0, pool => bind_vehicle!(sqlx::query(q), vin, v, phone)
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(vehicle_write_error)?;
        if n == 0 { Ok(None) } else { self.get(vin.as_str()).await }
    }

    /// Takes a vehicle out of service (once; retiring again changes nothing); `None` when
    /// there is no such vehicle.
    pub async fn retire(&self, vin: &str) -> Result<Option<Vehicle>, StorageError> {
        let q = "UPDATE vehicles SET retired_ms = $2 WHERE vin = $1 AND retired_ms IS NULL";
        on_pool!(self.0, pool => sqlx::query(q).bind(vin).bind(to_ms(Utc::now())).execute(pool).await.map(|r| r.rows_affected()))?;
        self.get(vin).await
    }

    /// Records a service; the vehicle file's last service moves to it unless a later one is on
    /// record. `None` when there is no such vehicle.
    pub async fn record_maintenance(
        &self,
        vin: &Vin,
        on: NaiveDate,
        odometer_km: Option<f64>,
        note: &str,
        cost_yuan: f64,
    ) -> Result<Option<MaintenanceRecord>, StorageError> {
        let day = day_text(Some(on));
        let insert = "INSERT INTO maintenance_records (vin, done_on, odometer_km, note, cost_yuan) \
                      VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let file = "UPDATE vehicles SET last_maintenance_on = $2, \
                    last_maintenance_km = COALESCE($3, last_maintenance_km) \
                    WHERE vin = $1 AND (last_maintenance_on IS NULL OR last_maintenance_on <= $2)";
        let id: Result<i64, sqlx::Error> = on_pool!(self.0, pool => async {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(insert)
                .bind(vin.as_str()).bind(&day).bind(odometer_km).bind(note).bind(cost_yuan)
                .fetch_one(&mut *tx).await?;
            sqlx::query(file).bind(vin.as_str()).bind(&day).bind(odometer_km).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(id)
        }.await);
        match id.map_err(|e| StorageError::classify(e, "maintenance record", "vehicle")) {
            Ok(id) => {
                Ok(Some(MaintenanceRecord { id, vin: vin.clone(), on, odometer_km, note: note.to_owned(), cost_yuan }))
            }
            Err(StorageError::MissingReference(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A vehicle's service records, latest first.
    pub async fn maintenance(&self, vin: &str) -> Result<Vec<MaintenanceRecord>, StorageError> {
        let q = "SELECT id, vin, done_on, odometer_km, note, cost_yuan FROM maintenance_records \
                 WHERE vin = $1 ORDER BY done_on DESC, id DESC";
        let rows: Vec<MaintenanceRow> = on_pool!(self.0, pool => sqlx::query_as(q).bind(vin).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| {
                Ok(MaintenanceRecord {
                    id: r.id,
                    vin: Vin::parse(&r.vin).map_err(|e| StorageError::Corrupt(format!("maintenance VIN: {e}")))?,
                    on: day_of("done_on", Some(r.done_on))?.unwrap_or_default(),
                    odometer_km: r.odometer_km,
                    note: r.note,
                    cost_yuan: r.cost_yuan,
                })
            })
            .collect()
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
    retired_ms: Option<i64>,
}

const DRIVER_COLUMNS: &str = "id, name, phone, vehicle_vin, retired_ms";

impl TryFrom<DriverRow> for Driver {
    type Error = StorageError;
    fn try_from(r: DriverRow) -> Result<Self, StorageError> {
        let vehicle_vin = r
            .vehicle_vin
            .map(|v| Vin::parse(&v).map_err(|e| StorageError::Corrupt(format!("driver VIN {v:?}: {e}"))))
            .transpose()?;
        Ok(Driver { id: r.id, name: r.name, phone: r.phone, vehicle_vin, retired: r.retired_ms.is_some() })
    }
}

/// Drivers.
pub struct Drivers<'a>(pub(crate) &'a Store);

impl Drivers<'_> {
    /// Creates a validated driver with the given id.
    pub async fn create(&self, id: &str, d: &NewDriver, vin: Option<&Vin>) -> Result<Driver, StorageError> {
        self.write("INSERT INTO drivers (id, name, phone, vehicle_vin) VALUES ($1, $2, $3, $4)", id, d, vin).await?;
        Ok(Driver {
            id: id.to_owned(),
            name: d.name.trim().to_owned(),
            phone: d.phone.trim().to_owned(),
            vehicle_vin: vin.cloned(),
            retired: false,
        })
    }

    /// Replaces a driver's writable fields with validated ones; `None` when there is no such
    /// driver.
    pub async fn update(&self, id: &str, d: &NewDriver, vin: Option<&Vin>) -> Result<Option<Driver>, StorageError> {
        let n =
            self.write("UPDATE drivers SET name = $2, phone = $3, vehicle_vin = $4 WHERE id = $1", id, d, vin).await?;
        if n == 0 { Ok(None) } else { self.get(id).await }
    }

    /// Runs an insert or update binding `$1`…`$4` to the id, name, phone and car.
    async fn write(&self, q: &'static str, id: &str, d: &NewDriver, vin: Option<&Vin>) -> Result<u64, StorageError> {
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(id)
            .bind(d.name.trim())
            .bind(d.phone.trim())
            .bind(vin.map(Vin::as_str))
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| StorageError::classify(e, "driver id", "vehicle"))
    }

    /// Takes a driver out of service (once); `None` when there is no such driver.
    pub async fn retire(&self, id: &str) -> Result<Option<Driver>, StorageError> {
        let q = "UPDATE drivers SET retired_ms = $2 WHERE id = $1 AND retired_ms IS NULL";
        on_pool!(self.0, pool => sqlx::query(q).bind(id).bind(to_ms(Utc::now())).execute(pool).await.map(|r| r.rows_affected()))?;
        self.get(id).await
    }

    /// Every driver, retired ones too.
    pub async fn list(&self) -> Result<Vec<Driver>, StorageError> {
        let q = format!("SELECT {DRIVER_COLUMNS} FROM drivers ORDER BY id");
        let rows: Vec<DriverRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await)?;
        rows.into_iter().map(Driver::try_from).collect()
    }

    /// The driver in service bound to a car (the first by id if several are).
    pub async fn of_vehicle(&self, vin: &str) -> Result<Option<Driver>, StorageError> {
        let q = format!(
            "SELECT {DRIVER_COLUMNS} FROM drivers WHERE vehicle_vin = $1 AND retired_ms IS NULL ORDER BY id LIMIT 1"
        );
        let row: Option<DriverRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(vin).fetch_optional(pool).await)?;
        row.map(Driver::try_from).transpose()
    }

    pub async fn get(&self, id: &str) -> Result<Option<Driver>, StorageError> {
        let q = format!("SELECT {DRIVER_COLUMNS} FROM drivers WHERE id = $1");
        let row: Option<DriverRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(id).fetch_optional(pool).await)?;
        row.map(Driver::try_from).transpose()
    }
}
