//! TLS to a broker (`mqtts://`): the trusted roots and the optional client certificate, read
//! once from PEM files at start, as the rustls client configuration every client here uses
//! (fleetd's ingest session, the simulator's links).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Which of the TLS files a problem is with (the binary names its setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// The trusted roots (or the system's, when no file is given).
    Ca,
    ClientCert,
    ClientKey,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{problem}")]
pub struct MqttTlsError {
    pub file: TlsFile,
    pub problem: String,
}

impl MqttTlsError {
    fn new(file: TlsFile, problem: impl Into<String>) -> Self {
        Self { file, problem: problem.into() }
    }
}

/// A broker connection's TLS: the roots its certificate must chain to and, if the broker asks
/// for one, the client certificate and key. Cheap to clone; its `Debug` shows no key.
#[derive(Clone)]
pub struct MqttTls {
    config: Arc<ClientConfig>,
    system_roots: bool,
    client_cert: bool,
}

impl MqttTls {
    /// Reads the roots from `ca` (PEM; `None`: the system's), and the client certificate
    /// chain and private key from `client` (PEM, both or neither).
    pub fn load(ca: Option<&Path>, client: Option<(&Path, &Path)>) -> Result<Self, MqttTlsError> {
        let mut roots = RootCertStore::empty();
        match ca {
            Some(path) => {
                for cert in certificates(path, TlsFile::Ca)? {
                    roots.add(cert).map_err(|e| {
                        MqttTlsError::new(TlsFile::Ca, format!("{}: not a usable CA certificate ({e})", path.display()))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                    return Err(MqttTlsError::new(
                        TlsFile::Ca,
                        format!("no trusted roots found on this system{why}; name a PEM file of CA certificates"),
                    ));
                }
            }
        }
        // ring, not rustls' default aws-lc-rs, which builds a large C library. rustls marks
        // ring's provider deprecated for lacking post-quantum key exchange (only aws-lc-rs has
        // it); the classical exchanges it offers are what brokers speak today.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MqttTlsError::new(TlsFile::Ca, e.to_string()))?
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(cert, TlsFile::ClientCert)?;
                let key = private_key(key)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    MqttTlsError::new(
                        TlsFile::ClientCert,
                        format!("{}: cannot be used with its key ({e})", cert.display()),
                    )
                })?
            }
        };
        Ok(Self { config: Arc::new(config), system_roots: ca.is_none(), client_cert: client.is_some() })
    }

    /// The rustls client configuration (the server name to check is the broker URL's host).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }
}

impl fmt::Debug for MqttTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttTls")
            .field("system_roots", &self.system_roots)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

/// Every certificate of a PEM file, at least one; the error names the file, in words for
/// a configuration error. Also read by fleetd for its gateways' server certificates.
pub fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The one private key of a PEM file (PKCS#8, PKCS#1 or SEC1). The error names the file,
/// never its content.
pub fn pem_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{}: holds no usable PEM private key ({e})", path.display()))
}

fn certificates(path: &Path, file: TlsFile) -> Result<Vec<CertificateDer<'static>>, MqttTlsError> {
    pem_certificates(path).map_err(|problem| MqttTlsError::new(file, problem))
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, MqttTlsError> {
    pem_private_key(path).map_err(|problem| MqttTlsError::new(TlsFile::ClientKey, problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_and_empty_files_are_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("fleet-broker-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = MqttTls::load(Some(&missing), None).unwrap_err();
        assert_eq!(e.file, TlsFile::Ca);
        assert!(e.problem.contains("missing.pem"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = MqttTls::load(Some(&empty), None).unwrap_err();
        assert!(e.problem.contains("no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
