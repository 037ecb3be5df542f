//! The registry: units (departments), vehicles and drivers, with the validation of new ones.

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
}

/// A unit to create, as received.
#[derive(Debug, Clone, Deserialize)]
pub struct NewUnit {
    pub id: Option<String>,
    pub name: String,
    pub monthly_energy_budget_kwh: f64,
    #[serde(default)]
    pub auto_approve: bool,
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
}

/// A vehicle to register, as received.
#[derive(Debug, Clone, Deserialize)]
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
}

/// A driver to register, as received.
#[derive(Debug, Clone, Deserialize)]
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
    }

    #[test]
    fn rejects_drivers_with_bad_phone_or_vin() {
        let mut d = NewDriver { id: None, name: "王师傅".into(), phone: "13800000000".into(), vehicle_vin: None };
        assert!(d.validate().is_ok());
        d.phone = "call me".into();
        assert_eq!(d.validate().unwrap_err().field, "phone");
        d.phone = "13800000000".into();
        d.vehicle_vin = Some("X".into());
        assert_eq!(d.validate().unwrap_err().field, "vehicle_vin");
    }
}
