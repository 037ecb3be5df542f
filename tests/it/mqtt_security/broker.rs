//! The harness of the MQTT security tests: a private Mosquitto on the shipped configuration
//! (killed on drop), throwaway TLS certificates, and MQTT 3.1.1 clients that log in, publish
//! and watch for the broker dropping them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use fleet_tests::TestApp;
use fleetd::config::MqttUrl;
use fleetd::mqtt_passwd::{self, FleetdAccount};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// fleetd's account on the private broker (the shipped ACL names user `fleetd`).
pub(super) const FLEETD_USER: &str = "fleetd";
pub(super) const FLEETD_PASSWORD: &str = "fleetd-broker-secret";
/// How long a broker-side change (start, reload) may take to show.
pub(super) const DEADLINE: Duration = Duration::from_secs(15);

pub(super) fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mosquitto")
}

pub(super) fn fleetd_account() -> FleetdAccount {
    FleetdAccount { username: FLEETD_USER.into(), password: FLEETD_PASSWORD.into() }
}

pub(super) fn random_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Runs a command to completion, failing with its output when it fails.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(out.status.success(), "{cmd:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the commands
/// of deploy/mosquitto/README.md.
pub(crate) fn make_certs(dir: &Path, ca_name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let ssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={ca_name}"),
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])?;
    signed_cert(dir, "server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
}

/// A key `STEM.key` and a certificate `STEM.crt` for `cn`, signed by the CA `make_certs` left
/// in `dir`, with the X.509 v3 extensions `ext` (rustls takes no v1 certificate).
fn signed_cert(dir: &Path, stem: &str, cn: &str, ext: &str) -> anyhow::Result<()> {
    let ssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    let (key, csr, ext_file, crt) =
        (format!("{stem}.key"), format!("{stem}.csr"), format!("{stem}.ext"), format!("{stem}.crt"));
    ssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        &key,
        "-out",
        &csr,
    ])?;
    std::fs::write(dir.join(&ext_file), ext)?;
    ssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext_file,
        "-out",
        &crt,
    ])
}

/// A client certificate (`client.crt`, `client.key`) signed by the CA `make_certs` left in `dir`.
pub(super) fn make_client_cert(dir: &Path, name: &str) -> anyhow::Result<()> {
    signed_cert(dir, "client", name, "extendedKeyUsage=clientAuth\n")
}

/// Two free TCP ports on loopback (a broker that loses the race for one is started again).
pub(super) fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

/// The shipped mosquitto.conf with its listeners and paths moved into `dir`. Every line it
/// expects must be there exactly once, so a change to the shipped file shows here.
pub(super) fn shipped_config(dir: &Path, port: u16, tls_port: u16) -> anyhow::Result<String> {
    let mut conf = std::fs::read_to_string(deploy_dir().join("mosquitto.conf"))?;
    let d = dir.display();
    for (from, to) in [
        ("listener 1883 127.0.0.1\n", format!("listener {port} 127.0.0.1\n")),
        ("listener 8883\n", format!("listener {tls_port} 127.0.0.1\n")),
        ("password_file /etc/mosquitto/fleet/passwd\n", format!("password_file {d}/passwd\n")),
        ("acl_file /etc/mosquitto/fleet/acl\n", format!("acl_file {d}/acl\n")),
        ("persistence_location /var/lib/mosquitto/\n", format!("persistence_location {d}/\n")),
        ("cafile /etc/mosquitto/certs/ca.crt\n", format!("cafile {d}/certs/ca.crt\n")),
        ("certfile /etc/mosquitto/certs/server.crt\n", format!("certfile {d}/certs/server.crt\n")),
        ("keyfile /etc/mosquitto/certs/server.key\n", format!("keyfile {d}/certs/server.key\n")),
        ("allow_anonymous false\n", "allow_anonymous false\n".to_owned()),
    ] {
        anyhow::ensure!(conf.matches(from).count() == 1, "the shipped mosquitto.conf should have {from:?} once");
        conf = conf.replace(from, &to);
    }
    // As root Mosquitto would switch to user `mosquitto`, who cannot read this folder (as
    // anyone else the line does nothing). The log shows the broker's own refusals.
    conf.push_str(&format!("\nuser root\nlog_dest file {d}/mosquitto.log\nlog_type all\n"));
    Ok(conf)
}

/// A private Mosquitto on the shipped configuration, killed on drop.
pub(super) struct Broker {
    pub(super) dir: PathBuf,
    pub(super) port: u16,
    pub(super) tls_port: u16,
    pub(super) child: Child,
}

impl Broker {
    /// Starts with a password file holding fleetd's account only (what `fleetd mqtt-passwd`
    /// writes for a registry without secrets).
    pub(super) async fn start() -> anyhow::Result<Self> {
        Self::start_with(false).await
    }

    /// [`Broker::start`], the TLS listener asking every client for a certificate of its CA
    /// when `require_certificate`.
    pub(super) async fn start_with(require_certificate: bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("fleet-mosquitto-{}", random_tag()));
        std::fs::create_dir_all(&dir)?;
        make_certs(&dir.join("certs"), "fleet test CA")?;
        std::fs::copy(deploy_dir().join("acl"), dir.join("acl"))?;
        let text = mqtt_passwd::render(&[], &fleetd_account())?;
        mqtt_passwd::write_atomically(&dir.join("passwd"), text.as_bytes())?;
        let mut last = String::new();
        for _ in 0..5 {
            let (port, tls_port) = free_ports();
            let mut conf = shipped_config(&dir, port, tls_port)?;
            if require_certificate {
                let last_tls_line = "tls_version tlsv1.2\n";
                anyhow::ensure!(
                    conf.matches(last_tls_line).count() == 1,
                    "the TLS listener ends with {last_tls_line:?}"
                );
                conf = conf.replace(last_tls_line, &format!("{last_tls_line}require_certificate true\n"));
            }
            std::fs::write(dir.join("mosquitto.conf"), conf)?;
            // Debian puts the broker in /usr/sbin, which a non-root PATH may lack.
            let exe = if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" };
            let child = Command::new(exe)
                .arg("-c")
                .arg(dir.join("mosquitto.conf"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("stderr.log"))?)
                .spawn()
                .context("starting mosquitto (Debian package mosquitto; tests/run installs it)")?;
            let mut broker = Self { dir: dir.clone(), port, tls_port, child };
            let deadline = Instant::now() + DEADLINE;
            while Instant::now() < deadline {
                if let Some(status) = broker.child.try_wait()? {
                    last = format!("mosquitto exited with {status}: {}", broker.log());
                    break;
                }
                let both_up = [port, tls_port].iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
                if both_up {
                    return Ok(broker);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            // Lost a port to another process, or too slow: try other ports.
            drop(broker);
            std::fs::create_dir_all(&dir)?;
        }
        anyhow::bail!("the private Mosquitto did not start: {last}")
    }

    pub(super) fn passwd(&self) -> PathBuf {
        self.dir.join("passwd")
    }

    pub(super) fn ca(&self) -> PathBuf {
        self.dir.join("certs/ca.crt")
    }

    /// The broker's log (and what it printed before it opened the log).
    pub(super) fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        read("stderr.log") + &read("mosquitto.log")
    }

    /// SIGHUP: Mosquitto re-reads the password file and the ACL.
    pub(super) fn reload(&self) -> anyhow::Result<()> {
        run(Command::new("kill").args(["-HUP", &self.child.id().to_string()]))
    }

    /// Regenerates the password file from `app`'s registry, as `fleetd mqtt-passwd` does, and
    /// reloads the broker.
    pub(super) async fn apply_registry(&self, app: &TestApp) -> anyhow::Result<()> {
        mqtt_passwd::write_password_file(&app.store, &fleetd_account(), &self.passwd()).await?;
        self.reload()
    }

    /// fleetd's settings for this broker.
    pub(super) fn fleetd_url(&self) -> MqttUrl {
        MqttUrl {
            host: "127.0.0.1".into(),
            port: self.port,
            username: Some(FLEETD_USER.into()),
            password: Some(FLEETD_PASSWORD.into()),
            tls: false,
        }
    }

    /// fleetd's settings for this broker's TLS listener (`mqtts://`).
    pub(super) fn fleetd_tls_url(&self) -> MqttUrl {
        MqttUrl { port: self.tls_port, tls: true, ..self.fleetd_url() }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One MQTT 3.1.1 login: Ok once the broker accepts it (then disconnects), the refusal or
/// network error otherwise.
pub(super) async fn login(port: u16, credentials: Option<(&str, &str)>) -> Result<(), ConnectionError> {
    login_as(port, &format!("login-{}", random_tag()), credentials).await
}

/// [`login`] with a given client id.
pub(super) async fn login_as(
    port: u16,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<(), ConnectionError> {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    if let Some((u, p)) = credentials {
        o.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(o, 10);
    loop {
        match eventloop.poll().await? {
            Event::Incoming(Packet::ConnAck(_)) => {
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
                return Ok(());
            }
            _ => continue,
        }
    }
}

/// Whether a login was refused by the broker as not authorized (Mosquitto answers CONNACK 5
/// to a wrong password, an unknown user and an anonymous client alike).
pub(super) fn refused(r: &Result<(), ConnectionError>) -> bool {
    matches!(
        r,
        Err(ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
        ))
    )
}

/// Polls `login` until `expect` holds for its outcome.
pub(super) async fn login_until(
    port: u16,
    credentials: (&str, &str),
    what: &str,
    expect: fn(&Result<(), ConnectionError>) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = login(port, Some(credentials)).await;
        if expect(&r) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for: {what} (last: {r:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connected MQTT 3.1.1 client: QoS 1 publishes that return on the broker's PUBACK, the
/// messages of its subscriptions, and whether the broker has dropped it.
pub(super) struct Client {
    pub(super) client: AsyncClient,
    pub(super) acks: mpsc::UnboundedReceiver<()>,
    pub(super) subacks: mpsc::UnboundedReceiver<Vec<SubscribeReasonCode>>,
    pub(super) messages: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    pub(super) closed: CancellationToken,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Client {
    pub(super) async fn connect(port: u16, user: &str, password: &str) -> anyhow::Result<Self> {
        Self::open(port, Some((user, password))).await
    }

    /// A client with an account, or an anonymous one.
    pub(super) async fn open(port: u16, credentials: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let user = credentials.map_or("anonymous", |c| c.0);
        let mut o = MqttOptions::new(format!("{user}-{}", random_tag()), "127.0.0.1", port);
        o.set_clean_session(true);
        if let Some((user, password)) = credentials {
            o.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(o, 100);
        let connack = async {
            loop {
                if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
                    return Ok::<_, ConnectionError>(());
                }
            }
        };
        tokio::time::timeout(DEADLINE, connack)
            .await
            .context("no CONNACK")?
            .with_context(|| format!("{user} logs in"))?;
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        let (msg_tx, messages) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let on_close = closed.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        let _ = ack_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let _ = sub_tx.send(ack.return_codes);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = msg_tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    // No reconnecting: a dropped connection is what some tests look for.
                    Err(_) => break,
                }
            }
            on_close.cancel();
        });
        Ok(Self { client, acks, subacks, messages, closed, task })
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK.
    pub(super) async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await?;
        tokio::time::timeout(DEADLINE, self.acks.recv()).await.context("no PUBACK")?.context("connection closed")?;
        Ok(())
    }

    /// Subscribes and answers the SUBACK's return codes.
    pub(super) async fn subscribe(&mut self, filter: &str) -> anyhow::Result<Vec<SubscribeReasonCode>> {
        self.subscribe_many(&[filter]).await
    }

    /// One SUBSCRIBE with several filters; answers the SUBACK's return codes.
    pub(super) async fn subscribe_many(&mut self, filters: &[&str]) -> anyhow::Result<Vec<SubscribeReasonCode>> {
        self.client
            .subscribe_many(filters.iter().map(|f| rumqttc::SubscribeFilter::new((*f).to_owned(), QoS::AtLeastOnce)))
            .await?;
        tokio::time::timeout(DEADLINE, self.subacks.recv()).await.context("no SUBACK")?.context("connection closed")
    }

    /// The next message of a subscription.
    pub(super) async fn next_message(&mut self) -> anyhow::Result<(String, Vec<u8>)> {
        tokio::time::timeout(DEADLINE, self.messages.recv()).await.context("no message")?.context("connection closed")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}
