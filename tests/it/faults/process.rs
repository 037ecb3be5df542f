//! The processes a fault test runs and kills: a private Mosquitto and `fleetd run` children.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_tests::ADMIN_PASSWORD;

/// The fleetd binary beside this test binary (`tests/run` builds it first).
pub(super) fn fleetd() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe.parent().and_then(|d| d.parent()).expect("target dir").join("fleetd");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p fleetd` (tests/run does)", bin.display());
    bin
}

/// A private Mosquitto with the shipped configuration's queue limits (anonymous, on a free
/// port): Debian's default broker keeps only 1,000 messages for an offline client, which a
/// fleet overflows in seconds, so the deployment raises it.
pub(super) struct Broker {
    pub(super) port: u16,
    pub(super) child: Child,
    dir: std::path::PathBuf,
}

impl Broker {
    pub(super) fn start() -> Self {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let dir = std::env::temp_dir().join(format!("fleet-faults-broker-{port}-{}", rand::random::<u32>()));
        Self::start_on(port, dir)
    }

    /// Stops the broker and starts it again on the same port (with its saved sessions).
    pub(super) fn restart(mut self) -> Self {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        let (port, dir) = (self.port, std::mem::take(&mut self.dir));
        std::mem::forget(self);
        Self::start_on(port, dir)
    }

    fn start_on(port: u16, dir: std::path::PathBuf) -> Self {
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
                 max_inflight_messages 10000\nmax_queued_messages 2000000\nmax_queued_bytes 0\nmessage_size_limit 1048576\n",
                dir.display()
            ),
        )
        .expect("writing the broker configuration");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the private broker did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child, dir }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fleetd child process, killed if the test ends early.
pub(super) struct Fleetd(pub(super) Child);

impl Fleetd {
    pub(super) fn id(&self) -> u32 {
        self.0.id()
    }

    pub(super) fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }

    /// Whether the process is still running (it has not exited by itself).
    pub(super) fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Fleetd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fleetd run` on `port`'s broker; answers the child once it serves.
pub(super) fn start(db_url: &str, client_id: &str, port: u16) -> Fleetd {
    start_at(db_url, client_id, port).0
}

/// Like [`start`], with the HTTP address it serves on.
pub(super) fn start_at(db_url: &str, client_id: &str, port: u16) -> (Fleetd, String) {
    start_configured(db_url, client_id, port, |_| {})
}

/// Like [`start_at`], with the command adjusted by `adjust` first (more settings, where its
/// log goes).
pub(super) fn start_configured(
    db_url: &str,
    client_id: &str,
    port: u16,
    adjust: impl FnOnce(&mut Command),
) -> (Fleetd, String) {
    let mut cmd = Command::new(fleetd());
    cmd.args(["run", "--http-addr", "127.0.0.1:0"])
        .env("FLEET_DATABASE_URL", db_url)
        .env("FLEET_MQTT_URL", format!("mqtt://127.0.0.1:{port}"))
        .env("FLEET_MQTT_CLIENT_ID", client_id)
        .env("FLEET_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("FLEET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    adjust(&mut cmd);
    let mut child = cmd.spawn().expect("starting fleetd");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut http = None;
    for line in lines.by_ref() {
        if let Some(a) = line.expect("a line").strip_prefix("http listening on ") {
            http = Some(a.to_owned());
            break;
        }
    }
    // The rest is read and dropped: a closed pipe would make fleetd's next line (a gateway's
    // listener, printed after the HTTP one) fail, and fleetd with it.
    std::thread::spawn(move || lines.for_each(drop));
    (Fleetd(child), http.expect("fleetd printed its http line"))
}
