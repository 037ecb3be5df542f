//! A value that must never reach a log line or `Debug` output: a password, a token, a
//! connection URL with credentials in it.

use std::fmt;

/// What `Debug` and `Display` print in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// A secret string. Its `Debug` and `Display` print [`REDACTED`]; the value is read only
/// through [`Secret::expose`], so every place that uses it is easy to find. It is not
/// `Serialize`: a secret leaves the process only where code hands it on explicitly.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a login, a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A connection URL (`postgres://user:pass@host/db`, `mqtt://user:pass@host:1883`) whose
/// password is a secret: `Debug` and `Display` show the URL with the password replaced by
/// [`REDACTED`] (so a log still says which server is meant), [`SecretUrl::expose`] gives the URL
/// whole.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL as it may be shown: its password (between `user:` and `@` in the authority)
    /// replaced by [`REDACTED`].
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let authority_start = url.find("://").map_or(0, |i| i + 3);
        let rest = &url[authority_start..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let Some(at) = authority.rfind('@') else { return url.clone() };
        let Some(colon) = authority[..at].find(':') else { return url.clone() };
        format!("{}{}{}{}", &url[..authority_start], &authority[..=colon], REDACTED, &url[authority_start + at..])
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::str::FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_or_display() {
        let s = Secret::new("hunter2-long");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{:?}", Some(s.clone())), format!("Some({REDACTED})"));
        assert_eq!(s.expose(), "hunter2-long");
    }

    #[test]
    fn a_url_shows_its_server_but_not_its_password() {
        let u = SecretUrl::new("postgres://fleet:p%40ss:w@db.example:5432/fleet?sslmode=require");
        let shown = format!("{u} {u:?}");
        assert!(!shown.contains("p%40ss"), "{shown}");
        assert!(!shown.contains(":w@"), "{shown}");
        assert_eq!(u.redacted(), "postgres://fleet:[redacted]@db.example:5432/fleet?sslmode=require");
        assert_eq!(u.expose(), "postgres://fleet:p%40ss:w@db.example:5432/fleet?sslmode=require");
    }

    #[test]
    fn a_url_without_a_password_shows_as_it_is() {
        for url in ["sqlite://./fleet-data/fleet.db", "postgres://postgres@127.0.0.1/x", "mqtt://host:1883", "a@b:c"] {
            assert_eq!(SecretUrl::new(url).redacted(), url);
        }
    }
}
