//! The registry: units (departments), vehicles and drivers, with the validation of new ones.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::Vin;

/// A field of a new registry object that does not pass validation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    pub field: &'static str,
    pub problem: String,
}

impl ValidationError {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self { field, problem: problem.into() }
    }
}

/// A unit (department) that applies for trips and has a monthly energy budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub id: String,
    pub name: String,
    pub monthly_energy_budget_kwh: f64,
    pub auto_approve: bool,
    /// Where the unit's budget alarms and monthly report go.
    pub contact_email: Option<String>,
}

/// A unit to create (or a unit's writable fields after an edit), as received.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewUnit {
    pub id: Option<String>,
    pub name: String,
    pub monthly_energy_budget_kwh: f64,
    #[serde(default)]
    pub auto_approve: bool,
    #[serde(default)]
    pub contact_email: Option<String>,
}

/// An e-mail address as far as it can be checked without sending to it: one `@` with
/// something on each side, a dot in the domain, no spaces or angle brackets, at most 254 bytes.
pub fn validate_email(field: &'static str, email: &str) -> Result<(), ValidationError> {
    let bad = || ValidationError::new(field, "expected an address such as office@zhoushan.gov.cn");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c)) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@');
    if local.is_empty() || !domain_ok {
        return Err(bad());
    }
    Ok(())
}

/// Ids chosen by clients (units, drivers): short, URL-safe and readable.
pub fn validate_id(field: &'static str, id: &str) -> Result<(), ValidationError> {
    let ok_len = (1..=32).contains(&id.len());
    let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(ValidationError::new(field, "1 to 32 characters of a-z, A-Z, 0-9, '-' and '_'"))
    }
}

fn validate_name(field: &'static str, name: &str, max: usize) -> Result<(), ValidationError> {
    let n = name.trim().chars().count();
    if n == 0 || n > max {
        return Err(ValidationError::new(field, format!("must hold 1 to {max} characters")));
    }
    Ok(())
}

impl NewUnit {
    /// Checks the fields; the id, when absent, is the storage's to choose.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(id) = &self.id {
            validate_id("id", id)?;
        }
        validate_name("name", &self.name, 100)?;
        let b = self.monthly_energy_budget_kwh;
        if !b.is_finite() || !(0.0..=10_000_000.0).contains(&b) {
            return Err(ValidationError::new("monthly_energy_budget_kwh", "must be 0 to 10,000,000"));
        }
        if let Some(e) = &self.contact_email {
            validate_email("contact_email", e)?;
        }
        Ok(())
    }
}

/// A registered vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vehicle {
    pub vin: Vin,
    pub plate: String,
    pub model: String,
    pub seats: i32,
    pub battery_kwh: f64,
    pub consumption_kwh_per_100km: f64,
    pub unit_id: Option<String>,
    /// The phone number its JT/T 808 (Beidou) terminal reports under, if it has one:
    /// digits only, without the leading zeros of the BCD padding ([`terminal_phone`]).
    pub terminal_phone: Option<String>,
    #[serde(flatten)]
    pub file: VehicleFile,
    /// Out of service: never dispatched, still named by history and statistics.
    pub retired: bool,
}

/// The vehicle file: insurance, the annual inspection and maintenance by time and distance.
/// Dates are calendar days in Asia/Shanghai.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VehicleFile {
    /// The compulsory insurance runs until this day.
    #[serde(default)]
    pub insurance_until: Option<NaiveDate>,
    /// The next annual inspection is due on this day.
    #[serde(default)]
    pub inspection_due: Option<NaiveDate>,
    /// A service is due this many km after the last one...
    #[serde(default)]
    pub maintenance_every_km: Option<f64>,
    /// ...or this many months after it, whichever comes first.
    #[serde(default)]
    pub maintenance_every_months: Option<u32>,
    #[serde(default)]
    pub last_maintenance_on: Option<NaiveDate>,
    /// The odometer at the last service (none on record: the distance counts from 0 km).
    #[serde(default)]
    pub last_maintenance_km: Option<f64>,
    /// In the workshop: never dispatched, and its status shows `maintenance`.
    #[serde(default)]
    pub in_maintenance: bool,
}

/// Longest maintenance interval by distance, km.
pub const MAX_MAINTENANCE_EVERY_KM: f64 = 100_000.0;
/// Highest odometer reading taken as real, km.
pub const MAX_ODOMETER_KM: f64 = 2_000_000.0;

impl VehicleFile {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(km) = self.maintenance_every_km
            && !(km.is_finite() && (100.0..=MAX_MAINTENANCE_EVERY_KM).contains(&km))
        {
            return Err(ValidationError::new("maintenance_every_km", "must be 100 to 100,000"));
        }
        if let Some(m) = self.maintenance_every_months
            && !(1..=120).contains(&m)
        {
            return Err(ValidationError::new("maintenance_every_months", "must be 1 to 120"));
        }
        if let Some(km) = self.last_maintenance_km
            && !(km.is_finite() && (0.0..=MAX_ODOMETER_KM).contains(&km))
        {
            return Err(ValidationError::new("last_maintenance_km", "must be 0 to 2,000,000"));
        }
        Ok(())
    }
}

/// A vehicle to register (or a vehicle's writable fields after an edit), as received.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewVehicle {
    pub vin: String,
    pub plate: String,
    pub model: String,
    pub seats: i32,
    pub battery_kwh: f64,
    pub consumption_kwh_per_100km: f64,
    pub unit_id: Option<String>,
    /// The JT/T 808 terminal's phone number, as printed on it (leading zeros are dropped).
    #[serde(default)]
    pub terminal_phone: Option<String>,
    #[serde(flatten)]
    pub file: VehicleFile,
}

/// Longest phone number a JT/T 808 header can carry (2019 edition: BCD\[10\]).
pub const TERMINAL_PHONE_MAX_DIGITS: usize = 20;

/// A JT/T 808 terminal's phone number as the registry keeps it: the digits without leading
/// zeros, which is how a terminal's header reads once its BCD padding (to 12 or 20 digits) is
/// taken off. So `013912345678` and `13912345678` name one terminal.
pub fn terminal_phone(text: &str) -> Result<String, ValidationError> {
    let text = text.trim();
    let ok = !text.is_empty() && text.len() <= TERMINAL_PHONE_MAX_DIGITS && text.bytes().all(|b| b.is_ascii_digit());
    let digits = text.trim_start_matches('0');
    if !ok || digits.is_empty() {
        return Err(ValidationError::new("terminal_phone", "1 to 20 digits, not all zeros"));
    }
    Ok(digits.to_owned())
}

/// The one-character province abbreviations that open a mainland Chinese plate.
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// Validates a mainland plate: province, issuing-office letter, then 5 characters (petrol
/// cars) or 6 (new-energy cars, green plates), optionally with a "·" after the letter.
pub fn validate_plate(plate: &str) -> Result<(), ValidationError> {
    let bad = || {
        ValidationError::new(
            "plate",
            "expected a mainland plate such as 浙L·D12345: province, letter, 5 or 6 letters/digits",
        )
    };
    let mut chars = plate.chars();
    let province = chars.next().ok_or_else(bad)?;
    if !PROVINCES.contains(province) {
        return Err(bad());
    }
    let office = chars.next().ok_or_else(bad)?;
    if !office.is_ascii_uppercase() {
        return Err(bad());
    }
    let rest: String = chars.collect();
    let rest = rest.strip_prefix('·').unwrap_or(&rest);
    let ok = (5..=6).contains(&rest.chars().count())
        && rest.chars().all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && c != 'I' && c != 'O'));
    if ok { Ok(()) } else { Err(bad()) }
}

impl NewVehicle {
    /// Checks every field and gives the parsed VIN.
    pub fn validate(&self) -> Result<Vin, ValidationError> {
        let vin = Vin::parse(&self.vin).map_err(|e| ValidationError::new("vin", e.to_string()))?;
        validate_plate(&self.plate)?;
        validate_name("model", &self.model, 100)?;
        if !(1..=60).contains(&self.seats) {
            return Err(ValidationError::new("seats", "must be 1 to 60"));
        }
        if !self.battery_kwh.is_finite() || !(1.0..=1000.0).contains(&self.battery_kwh) {
            return Err(ValidationError::new("battery_kwh", "must be 1 to 1000"));
        }
        let c = self.consumption_kwh_per_100km;
        if !c.is_finite() || !(1.0..=200.0).contains(&c) {
            return Err(ValidationError::new("consumption_kwh_per_100km", "must be 1 to 200"));
        }
        if let Some(u) = &self.unit_id {
            validate_id("unit_id", u)?;
        }
        if let Some(p) = &self.terminal_phone {
            terminal_phone(p)?;
        }
        self.file.validate()?;
        Ok(vin)
    }
}

/// A driver, possibly bound to one car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub id: String,
    pub name: String,
    pub phone: String,
    pub vehicle_vin: Option<Vin>,
    /// Out of service: never dispatched, still named by history and statistics.
    pub retired: bool,
}

/// A driver to register (or a driver's writable fields after an edit), as received.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewDriver {
    pub id: Option<String>,
    pub name: String,
    pub phone: String,
    pub vehicle_vin: Option<String>,
}

impl NewDriver {
    /// Checks the fields and gives the parsed VIN of the bound car, if any.
    pub fn validate(&self) -> Result<Option<Vin>, ValidationError> {
        if let Some(id) = &self.id {
            validate_id("id", id)?;
        }
        validate_name("name", &self.name, 50)?;
        let digits = self.phone.chars().filter(char::is_ascii_digit).count();
        let phone_ok =
            (5..=20).contains(&digits) && self.phone.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c));
        if !phone_ok {
            return Err(ValidationError::new("phone", "5 to 20 digits, with '+', '-' or spaces"));
        }
        self.vehicle_vin
            .as_deref()
            .map(Vin::parse)
            .transpose()
            .map_err(|e| ValidationError::new("vehicle_vin", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vehicle() -> NewVehicle {
        NewVehicle {
            vin: "LSJA24U66NS000001".into(),
            plate: "浙LD12345".into(),
            model: "BYD Han EV".into(),
            seats: 5,
            battery_kwh: 76.9,
            consumption_kwh_per_100km: 15.0,
            unit_id: None,
            terminal_phone: None,
            file: VehicleFile::default(),
        }
    }

    #[test]
    fn terminal_phones_lose_their_padding_zeros_and_must_be_digits() {
        assert_eq!(terminal_phone("013912345678").unwrap(), "13912345678");
        assert_eq!(terminal_phone(" 13912345678 ").unwrap(), "13912345678");
        assert_eq!(terminal_phone("00000000000000000001").unwrap(), "1");
        for bad in ["", "0000", "139-1234", "１３９", "123456789012345678901"] {
            assert_eq!(terminal_phone(bad).unwrap_err().field, "terminal_phone", "{bad:?}");
        }
        let mut v = vehicle();
        v.terminal_phone = Some("13912x".into());
        assert_eq!(v.validate().unwrap_err().field, "terminal_phone");
    }

    #[test]
    fn accepts_green_and_blue_plates() {
        for p in ["浙LD12345", "浙L·D12345", "浙L12345", "沪AF0001X"] {
            assert_eq!(validate_plate(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_malformed_plates() {
        for p in ["", "浙", "XLD12345", "浙lD12345", "浙LD1234567", "浙LD1I345", "浙L1234"] {
            assert!(validate_plate(p).is_err(), "{p}");
        }
    }

    #[test]
    fn rejects_vehicles_with_bad_fields() {
        assert!(vehicle().validate().is_ok());
        let mut v = vehicle();
        v.vin = "BAD".into();
        assert_eq!(v.validate().unwrap_err().field, "vin");
        let mut v = vehicle();
        v.seats = 0;
        assert_eq!(v.validate().unwrap_err().field, "seats");
        let mut v = vehicle();
        v.battery_kwh = f64::INFINITY;
        assert_eq!(v.validate().unwrap_err().field, "battery_kwh");
        let mut v = vehicle();
        v.file.maintenance_every_km = Some(50.0);
        assert_eq!(v.validate().unwrap_err().field, "maintenance_every_km");
        let mut v = vehicle();
        v.file.maintenance_every_months = Some(0);
        assert_eq!(v.validate().unwrap_err().field, "maintenance_every_months");
        let mut v = vehicle();
        v.file.last_maintenance_km = Some(f64::NAN);
        assert_eq!(v.validate().unwrap_err().field, "last_maintenance_km");
    }

    #[test]
    fn the_vehicle_file_reads_dates_and_defaults_to_empty() {
        let v: NewVehicle = serde_json::from_value(serde_json::json!({
            "vin": "LSJA24U66NS000001", "plate": "浙LD12345", "model": "m", "seats": 5,
            "battery_kwh": 60.0, "consumption_kwh_per_100km": 15.0, "unit_id": null,
            "insurance_until": "2027-03-31", "maintenance_every_km": 10000.0
        }))
        .unwrap();
        assert_eq!(v.file.insurance_until, NaiveDate::from_ymd_opt(2027, 3, 31));
        assert_eq!(v.file.maintenance_every_km, Some(10_000.0));
        assert!(!v.file.in_maintenance && v.file.inspection_due.is_none());
        let bad = serde_json::json!({
            "vin": "LSJA24U66NS000001", "plate": "浙LD12345", "model": "m", "seats": 5,
            "battery_kwh": 60.0, "consumption_kwh_per_100km": 15.0, "insurance_until": "31/03/2027"
        });
        assert!(serde_json::from_value::<NewVehicle>(bad).is_err());
    }

    #[test]
    fn unit_contact_addresses_are_checked() {
        for ok in ["office@zhoushan.gov.cn", "a.b+c@d.org"] {
            assert_eq!(validate_email("contact_email", ok), Ok(()), "{ok}");
        }
        for bad in ["", "office", "@zhoushan.gov.cn", "a@b", "a@.cn", "a b@c.cn", "a@b.cn>", "a@b@c.cn"] {
            assert!(validate_email("contact_email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_drivers_with_bad_phone_or_vin() {
        let mut d = NewDriver { name: "王师傅".into(), phone: "13800000000".into(), ..NewDriver::default() };
        assert!(d.validate().is_ok());
        d.phone = "call me".into();
        assert_eq!(d.validate().unwrap_err().field, "phone");
        d.phone = "13800000000".into();
        d.vehicle_vin = Some("X".into());
        assert_eq!(d.validate().unwrap_err().field, "vehicle_vin");
    }
}
