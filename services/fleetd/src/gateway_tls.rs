//! TLS on the GB/T 32960 gateway (`FLEET_GBT32960_TLS_CERT` / `FLEET_GBT32960_TLS_KEY`): the
//! server certificate chain and key, read and checked once at start.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::config::ConfigError;

/// The rustls server configuration of a gateway from a PEM certificate chain and its key
/// (both or neither; neither: plain TCP).
pub fn load(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<Arc<ServerConfig>>, ConfigError> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => {
            return Err(ConfigError::new("FLEET_GBT32960_TLS_KEY", "needed with FLEET_GBT32960_TLS_CERT"));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new("FLEET_GBT32960_TLS_CERT", "needed with FLEET_GBT32960_TLS_KEY"));
        }
    };
    let chain = fleet_broker::pem_certificates(cert).map_err(|p| ConfigError::new("FLEET_GBT32960_TLS_CERT", p))?;
    let key = fleet_broker::pem_private_key(key).map_err(|p| ConfigError::new("FLEET_GBT32960_TLS_KEY", p))?;
    // ring, as for the broker connection (see fleet-broker's TLS notes).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("FLEET_GBT32960_TLS_CERT", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            ConfigError::new(
                "FLEET_GBT32960_TLS_CERT",
                format!("{}: cannot be used with its key ({e})", cert.display()),
            )
        })?;
    Ok(Some(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_needs_its_key_and_unreadable_files_are_named() {
        assert!(load(None, None).unwrap().is_none());
        assert_eq!(load(Some(Path::new("c.pem")), None).unwrap_err().setting, "FLEET_GBT32960_TLS_KEY");
        assert_eq!(load(None, Some(Path::new("k.pem"))).unwrap_err().setting, "FLEET_GBT32960_TLS_CERT");
        let e = load(Some(Path::new("/nonexistent/c.pem")), Some(Path::new("/nonexistent/k.pem"))).unwrap_err();
        assert_eq!(e.setting, "FLEET_GBT32960_TLS_CERT");
        assert!(e.problem.contains("/nonexistent/c.pem"), "{e}");
    }
}
