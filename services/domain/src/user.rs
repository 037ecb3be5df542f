//! Users and their roles.

use serde::{Deserialize, Serialize};

use crate::registry::{ValidationError, validate_id};

/// The five roles of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users and the registry.
    Admin,
    /// Watches the fleet and drives dispatch.
    Dispatcher,
    /// Drives one car; sees only their own assignments and car.
    Driver,
    /// A department's applicant and approver; sees only its own orders and vehicles.
    Unit,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Dispatcher, Role::Driver, Role::Unit, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Driver => "driver",
            Role::Unit => "unit",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A user as others see it (never with the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub unit_id: Option<String>,
    pub driver_id: Option<String>,
}

/// A user to create, as received.
#[derive(Debug, Clone, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    pub unit_id: Option<String>,
    pub driver_id: Option<String>,
}

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 4;

impl NewUser {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let u = &self.username;
        let ok = (1..=64).contains(&u.len())
            && u.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
        if !ok {
            return Err(ValidationError::new("username", "1 to 64 of a-z, A-Z, 0-9, '-', '_', '.', '@'"));
        }
        validate_password(&self.password)?;
        match (self.role, &self.unit_id, &self.driver_id) {
            (Role::Unit, None, _) => Err(ValidationError::new("unit_id", "a unit user needs unit_id")),
            (Role::Driver, _, None) => Err(ValidationError::new("driver_id", "a driver user needs driver_id")),
            _ => {
                if let Some(u) = &self.unit_id {
                    validate_id("unit_id", u)?;
                }
                if let Some(d) = &self.driver_id {
                    validate_id("driver_id", d)?;
                }
                Ok(())
            }
        }
    }
}

/// A password must be long enough and not absurdly long (argon2 cost grows with it).
pub fn validate_password(p: &str) -> Result<(), ValidationError> {
    if p.chars().count() < MIN_PASSWORD_LEN || p.len() > 256 {
        return Err(ValidationError::new("password", format!("{MIN_PASSWORD_LEN} to 256 characters")));
    }
    Ok(())
}
