//! A broker's address as fleetd, the simulator and the benches are given it:
//! `mqtt://[user:pass@]host[:port]`, or `mqtts://` for TLS (port 8883 by default).

use fleet_domain::Secret;

/// Why a broker URL cannot be used (the binary reports it as a `FLEET_MQTT_URL` problem).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct MqttUrlError(pub String);

/// A parsed `mqtt://user:pass@host:port` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: bool,
}

impl MqttUrl {
    /// A URL fleetd can connect to: `mqtt://` in clear, `mqtts://` over TLS ([`crate::MqttTls`]).
    pub fn parse(s: &str) -> Result<Self, MqttUrlError> {
        Self::parse_any(s)
    }

    /// Any well-formed URL (`mqtt-passwd` reads only the account from it).
    pub fn parse_any(s: &str) -> Result<Self, MqttUrlError> {
        let bad = |p: &str| MqttUrlError(format!("{p} (expected mqtt[s]://[user:pass@]host[:port])"));
        let url = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(bad(&format!("unknown scheme {other:?}"))),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?.to_owned();
        let username = (!url.username().is_empty()).then(|| decode(url.username()));
        let password = url.password().map(|p| Secret::new(decode(p)));
        Ok(Self { host, port: url.port().unwrap_or(if tls { 8883 } else { 1883 }), username, password, tls })
    }
}

/// Percent-decodes a URL's user or password. A `+` stays a `+` there (only form data turns
/// it into a space), so it is protected before the form decoder sees it.
fn decode(s: &str) -> String {
    let s = s.replace('+', "%2B");
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plus_in_a_url_password_stays_a_plus() {
        let u = MqttUrl::parse("mqtt://fleetd:a+b%2Bc%20d@broker.example").unwrap();
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("a+b+c d"));
    }

    #[test]
    fn parses_mqtt_urls_with_and_without_credentials() {
        let u = MqttUrl::parse("mqtt://fleetd:s%40cret@broker.example:1883").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.username.as_deref(), u.password.as_ref().map(Secret::expose)),
            ("broker.example", 1883, Some("fleetd"), Some("s@cret"))
        );
        let u = MqttUrl::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!((u.port, u.username, u.tls), (1883, None, false));
        let u = MqttUrl::parse("mqtts://broker.example").unwrap();
        assert_eq!((u.port, u.tls), (8883, true));
    }
}
