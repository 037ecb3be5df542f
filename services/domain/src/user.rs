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
    /// Out of service: cannot log in.
    #[serde(default)]
    pub retired: bool,
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
pub const MIN_PASSWORD_LEN: usize = 8;

impl NewUser {
    /// Validates everything, the password policy included ([`validate_new_password`]).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_account()?;
        validate_new_password(&self.password, &self.username, None)
    }

    /// Validates all but the password policy: for the demo's documented accounts, whose
    /// password (`demo`) is shorter than any user may choose.
    pub fn validate_account(&self) -> Result<(), ValidationError> {
        let u = &self.username;
        let ok = (1..=64).contains(&u.len()) && u.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
        if !ok {
            return Err(ValidationError::new("username", "1 to 64 of a-z, A-Z, 0-9, '-', '_', '.', '@'"));
        }
        if self.password.len() > MAX_PASSWORD_BYTES {
            return Err(ValidationError::new("password", format!("at most {MAX_PASSWORD_BYTES} bytes")));
        }
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

/// Longest password accepted (argon2's cost grows with it).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// A password must be long enough and not absurdly long.
pub fn validate_password(p: &str) -> Result<(), ValidationError> {
    if p.chars().count() < MIN_PASSWORD_LEN || p.len() > MAX_PASSWORD_BYTES {
        return Err(ValidationError::new("password", format!("{MIN_PASSWORD_LEN} to {MAX_PASSWORD_BYTES} characters")));
    }
    Ok(())
}

/// The policy for a password a user sets: [`validate_password`], not the username (in any
/// case), and, when changing, not the old password.
pub fn validate_new_password(p: &str, username: &str, old: Option<&str>) -> Result<(), ValidationError> {
    validate_password(p)?;
    if p.to_lowercase() == username.to_lowercase() {
        return Err(ValidationError::new("password", "must not be the username"));
    }
    if old == Some(p) {
        return Err(ValidationError::new("password", "must differ from the old password"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user(username: &str, password: &str) -> NewUser {
        NewUser {
            username: username.into(),
            password: password.into(),
            role: Role::Dispatcher,
            unit_id: None,
            driver_id: None,
        }
    }

    #[test]
    fn a_password_is_at_least_8_characters_and_not_the_username() {
        assert!(new_user("alice", "s3cret-pw").validate().is_ok());
        assert_eq!(new_user("alice", "short").validate().unwrap_err().field, "password");
        assert_eq!(
            new_user("alice", "七个汉字的密码").validate().unwrap_err().field,
            "password",
            "7 characters, 21 bytes"
        );
        assert!(new_user("alice", "八个汉字组成密码").validate().is_ok(), "characters are counted, not bytes");
        assert_eq!(new_user("dispatcher", "Dispatcher").validate().unwrap_err().field, "password");
        assert_eq!(new_user("x", &"a".repeat(257)).validate().unwrap_err().field, "password");
        // The demo's accounts skip the policy, not the rest.
        assert!(new_user("admin", "demo").validate_account().is_ok());
        assert!(new_user("bad name", "demo").validate_account().is_err());
    }

    #[test]
    fn a_changed_password_differs_from_the_old_one() {
        assert!(validate_new_password("new-secret", "alice", Some("old-secret")).is_ok());
        let e = validate_new_password("old-secret", "alice", Some("old-secret")).unwrap_err();
        assert!(e.problem.contains("old password"), "{e}");
    }
}
