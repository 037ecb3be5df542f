//! `fleetd mqtt-passwd`: the broker's password file from the registry (docs/mqtt.md). One
//! account per vehicle that was issued a secret (username = VIN, its stored `$7$` line) and
//! fleetd's own account (the user and password of `FLEET_MQTT_URL`, hashed here). The file
//! is replaced atomically, so a broker reloading at any moment reads the old file or the new
//! one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use fleet_domain::Vin;
use fleet_storage::{MqttAccount, Store};

use crate::cli::MqttPasswdArgs;
use crate::config::{self, ConfigError, MqttUrl};

/// The user the shipped ACL (`deploy/mosquitto/acl`) grants fleetd's reads to.
pub const ACL_FLEETD_USER: &str = "fleetd";
/// Mode of the written file: it holds password hashes, for the broker's eyes only.
pub const FILE_MODE: u32 = 0o600;

/// fleetd's own account on the broker.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetdAccount {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for FleetdAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetdAccount").field("username", &self.username).finish_non_exhaustive()
    }
}

impl FleetdAccount {
    /// The account in a broker URL, `mqtt://user:pass@host[:port]` (`mqtts://` too). Both
    /// parts are required, and the user must not be a VIN: the vehicles' ACL pattern would
    /// let such an account publish as that vehicle.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let url = MqttUrl::parse_any(url)?;
        let shape = "needs fleetd's user and password: mqtt://user:pass@host[:port]";
        let (Some(username), Some(password)) = (url.username, url.password) else {
            return Err(ConfigError::new("FLEET_MQTT_URL", shape));
        };
        let password = password.expose().to_owned();
        if password.is_empty() {
            return Err(ConfigError::new("FLEET_MQTT_URL", shape));
        }
        if !fleet_web::is_valid_mqtt_username(&username) {
            return Err(ConfigError::new(
                "FLEET_MQTT_URL",
                "the user must not be empty, start with '#' or hold ':' or control characters",
            ));
        }
        if Vin::parse(&username).is_ok() {
            return Err(ConfigError::new(
                "FLEET_MQTT_URL",
                "the user must not be a VIN (vehicles' accounts are named by VIN)",
            ));
        }
        Ok(Self { username, password })
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    /// Vehicle accounts in the file (fleetd's own comes on top).
    pub vehicles: usize,
}

/// `fleetd mqtt-passwd --output FILE [--database-url …] [--mqtt-url …]`.
pub async fn run(args: MqttPasswdArgs) -> anyhow::Result<()> {
    let url = args.mqtt_url.as_deref().ok_or_else(|| {
        ConfigError::new(
            "FLEET_MQTT_URL",
            "not set: fleetd's own account comes from its user and password (mqtt://user:pass@host[:port])",
        )
    })?;
    let fleetd = FleetdAccount::from_url(url)?;
    config::check_database_url(args.db.database_url.expose())?;
    require_existing_sqlite(args.db.database_url.expose())?;
    let store = Store::connect(args.db.database_url.expose()).await.context("opening the database")?;
    // The same migrations `run` applies: the accounts table may be newer than the database.
    store.migrate().await.context("migrating the database")?;
    let written = write_password_file(&store, &fleetd, &args.output).await;
    store.close().await;
    let written = written?;
    println!(
        "wrote {} accounts ({} vehicles and {}) to {}",
        written.vehicles + 1,
        written.vehicles,
        fleetd.username,
        written.path.display()
    );
    eprintln!("reload the broker to apply it: systemctl reload mosquitto, or kill -HUP <mosquitto pid>");
    if fleetd.username != ACL_FLEETD_USER {
        eprintln!(
            "note: deploy/mosquitto/acl grants fleetd's reads to user {ACL_FLEETD_USER:?}; name {:?} there instead",
            fleetd.username
        );
    }
    Ok(())
}

/// Writes the password file at `path` from the registry's vehicle accounts and `fleetd`'s.
pub async fn write_password_file(store: &Store, fleetd: &FleetdAccount, path: &Path) -> anyhow::Result<Written> {
    let vehicles = store.mqtt_secrets().list().await.context("reading the vehicles' MQTT accounts")?;
    let contents = render(&vehicles, fleetd)?;
    write_atomically(path, contents.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(Written { path: path.to_owned(), vehicles: vehicles.len() })
}

/// The password file's text: a comment, fleetd's line (freshly salted), then each vehicle's
/// stored line, one account a line.
pub fn render(vehicles: &[MqttAccount], fleetd: &FleetdAccount) -> anyhow::Result<String> {
    let mut out = String::with_capacity(160 * (vehicles.len() + 2));
    out.push_str("# Written by `fleetd mqtt-passwd` from the registry; edits are lost when it runs again.\n");
    out.push_str(&fleet_web::mosquitto_password_line(&fleetd.username, &fleetd.password));
    out.push('\n');
    for account in vehicles {
        let line = account.password_line.trim_end();
        // A line that is not this vehicle's would give its holder another account.
        let prefix = format!("{}:$7$", account.vin);
        anyhow::ensure!(
            line.starts_with(&prefix) && !line.contains('\n'),
            "the stored MQTT account of {} is not a Mosquitto $7$ line for it; issue it a new secret",
            account.vin
        );
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// Replaces `path` with `contents` atomically: a temporary file beside it (mode 0600, the
/// owner and group of the file it replaces, best effort), synced, renamed over it, and the
/// directory synced. On failure the old file is untouched and the temporary file removed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the output path names no file"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    // A leftover of a crashed run with the same process id.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, FILE_MODE);
        let mut file = opts.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        keep_owner(path, &tmp);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Gives `tmp` the owner and group of the file at `path`, if there is one: a password file
/// chowned to the broker's user stays readable by the broker after it is regenerated.
#[cfg(unix)]
fn keep_owner(path: &Path, tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(old) = fs::metadata(path) else { return };
    if let Err(e) = std::os::unix::fs::chown(tmp, Some(old.uid()), Some(old.gid())) {
        tracing::warn!(
            error = %e,
            file.uid = old.uid(),
            file.gid = old.gid(),
            "cannot keep the owner of the file being replaced; make sure the broker can still read it"
        );
    }
}

#[cfg(not(unix))]
fn keep_owner(_path: &Path, _tmp: &Path) {}

/// A SQLite URL must name an existing database: connecting would otherwise create an empty
/// one, and the file would hold fleetd's account alone.
fn require_existing_sqlite(url: &str) -> Result<(), ConfigError> {
    let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Ok(());
    };
    let path = path.split('?').next().unwrap_or(path);
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(ConfigError::new("FLEET_DATABASE_URL", format!("no database at {path}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(vin: &str, line: &str) -> MqttAccount {
        MqttAccount { vin: Vin::parse(vin).unwrap(), password_line: line.to_owned(), created_at: chrono::Utc::now() }
    }

    fn fleetd() -> FleetdAccount {
        FleetdAccount { username: "fleetd".into(), password: "s3cret".into() }
    }

    #[test]
    fn the_file_holds_fleetds_account_then_each_vehicles_line() {
        let vin = "LSJA24U66NS000001";
        let line = fleet_web::mosquitto_password_line(vin, "pw");
        let text = render(&[account(vin, &line)], &fleetd()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with('#'));
        assert!(lines[1].starts_with("fleetd:$7$101$"));
        assert!(fleet_web::mosquitto_password_matches(lines[1], "s3cret"));
        assert_eq!(lines[2], line);
        assert!(!text.contains("s3cret"), "never the plain password");
    }

    #[test]
    fn a_stored_line_for_another_user_is_refused() {
        let line = fleet_web::mosquitto_password_line("LSJA24U66NS000002", "pw");
        let e = render(&[account("LSJA24U66NS000001", &line)], &fleetd()).unwrap_err();
        assert!(e.to_string().contains("LSJA24U66NS000001"), "{e}");
        let e = render(&[account("LSJA24U66NS000001", "LSJA24U66NS000001:plain")], &fleetd()).unwrap_err();
        assert!(e.to_string().contains("$7$"), "{e}");
    }

    #[test]
    fn fleetds_account_needs_a_user_and_password_that_fit_the_file() {
        let ok = FleetdAccount::from_url("mqtt://fleetd:s%40cret@broker:1883").unwrap();
        assert_eq!((ok.username.as_str(), ok.password.as_str()), ("fleetd", "s@cret"));
        assert!(FleetdAccount::from_url("mqtts://fleetd:x@broker").is_ok(), "TLS URLs name an account too");
        for bad in [
            "mqtt://broker",
            "mqtt://fleetd@broker",
            "mqtt://fleetd:@broker",
            "mqtt://LSJA24U66NS000001:x@broker",
            "http://a:b@c",
        ] {
            assert_eq!(FleetdAccount::from_url(bad).unwrap_err().setting, "FLEET_MQTT_URL", "{bad}");
        }
        assert!(!format!("{ok:?}").contains("s@cret"), "Debug hides the password");
    }

    #[test]
    fn writes_replace_the_file_atomically_with_mode_0600() {
        let dir =
            std::env::temp_dir().join(format!("fleet-mqtt-passwd-{}-{}", std::process::id(), rand::random::<u64>()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("passwd");
        fs::write(&path, "old\n").unwrap();
        write_atomically(&path, b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, FILE_MODE);
        }
        let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        assert!(write_atomically(&dir.join("missing-dir/passwd"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_sqlite_database_is_a_configuration_error() {
        assert!(require_existing_sqlite("sqlite:///nonexistent/fleet.db").is_err());
        assert!(require_existing_sqlite("postgres://db/fleet").is_ok());
    }
}
