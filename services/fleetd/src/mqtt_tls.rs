//! The TLS settings of fleetd's broker connection (`mqtts://`), shared by `run` and
//! `simulate`: read and checked once at start, each problem a configuration error naming its
//! variable.

use std::path::PathBuf;

use clap::Args;
use fleet_broker::{MqttTls, MqttTlsError, TlsFile};

use crate::config::ConfigError;

/// The certificate files of an `mqtts://` broker connection.
#[derive(Debug, Clone, Default, Args)]
pub struct MqttTlsArgs {
    /// CA certificates (PEM) the mqtts:// broker's certificate must chain to. Unset: the
    /// system's trusted roots.
    #[arg(long, env = "FLEET_MQTT_CA_FILE", value_name = "FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for a broker that asks for one; needs FLEET_MQTT_CLIENT_KEY.
    #[arg(long, env = "FLEET_MQTT_CLIENT_CERT", value_name = "FILE")]
    pub mqtt_client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs FLEET_MQTT_CLIENT_CERT.
    #[arg(long, env = "FLEET_MQTT_CLIENT_KEY", value_name = "FILE")]
    pub mqtt_client_key: Option<PathBuf>,
}

impl MqttTlsArgs {
    /// The TLS of a connection to `url`'s broker: `None` for `mqtt://`, where a certificate
    /// file is a mistake (it would be silently unused).
    pub fn load(&self, tls: bool) -> Result<Option<MqttTls>, ConfigError> {
        let client = match (&self.mqtt_client_cert, &self.mqtt_client_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new("FLEET_MQTT_CLIENT_KEY", "needed with FLEET_MQTT_CLIENT_CERT"));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new("FLEET_MQTT_CLIENT_CERT", "needed with FLEET_MQTT_CLIENT_KEY"));
            }
        };
        if !tls {
            return match (&self.mqtt_ca_file, client) {
                (None, None) => Ok(None),
                (Some(_), _) => {
                    Err(ConfigError::new("FLEET_MQTT_CA_FILE", "only used with an mqtts:// FLEET_MQTT_URL"))
                }
                (None, Some(_)) => {
                    Err(ConfigError::new("FLEET_MQTT_CLIENT_CERT", "only used with an mqtts:// FLEET_MQTT_URL"))
                }
            };
        }
        MqttTls::load(self.mqtt_ca_file.as_deref(), client).map(Some).map_err(ConfigError::from)
    }
}

impl From<MqttTlsError> for ConfigError {
    fn from(e: MqttTlsError) -> Self {
        let setting = match e.file {
            TlsFile::Ca => "FLEET_MQTT_CA_FILE",
            TlsFile::ClientCert => "FLEET_MQTT_CLIENT_CERT",
            TlsFile::ClientKey => "FLEET_MQTT_CLIENT_KEY",
        };
        Self::new(setting, e.problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_needs_its_key_and_tls_files_need_mqtts() {
        let cert = MqttTlsArgs { mqtt_client_cert: Some("c.pem".into()), ..Default::default() };
        assert_eq!(cert.load(true).unwrap_err().setting, "FLEET_MQTT_CLIENT_KEY");
        let key = MqttTlsArgs { mqtt_client_key: Some("k.pem".into()), ..Default::default() };
        assert_eq!(key.load(true).unwrap_err().setting, "FLEET_MQTT_CLIENT_CERT");
        let ca = MqttTlsArgs { mqtt_ca_file: Some("ca.pem".into()), ..Default::default() };
        assert_eq!(ca.load(false).unwrap_err().setting, "FLEET_MQTT_CA_FILE");
        assert!(MqttTlsArgs::default().load(false).unwrap().is_none());
        let missing = MqttTlsArgs { mqtt_ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let e = missing.load(true).unwrap_err();
        assert_eq!(e.setting, "FLEET_MQTT_CA_FILE");
        assert!(e.problem.contains("/nonexistent/ca.pem"), "{e}");
    }
}
