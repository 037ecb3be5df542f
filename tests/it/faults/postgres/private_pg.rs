//! A private PostgreSQL cluster for one test: `initdb` into a temporary folder, served on a
//! free port of 127.0.0.1 and stopped and started with `pg_ctl`. The shared server on :5432
//! must keep running for the other tests, so a test that takes the database away brings its
//! own. PostgreSQL refuses to run as root (the tests do), so its tools run as `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The OS account the server runs as.
const OS_USER: &str = "postgres";
/// Where Debian installs the server binaries, one folder per major version.
const PG_LIB: &str = "/usr/lib/postgresql";
/// How long `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT_S: &str = "60";

/// A running (or stopped) private cluster; stopped and removed when dropped.
pub(super) struct PrivatePg {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePg {
    /// Creates and starts a cluster; panics saying what is missing when it cannot.
    pub(super) fn start() -> Self {
        let bin = server_bin();
        let ok = Command::new("id").args(["-u", OS_USER]).output().is_ok_and(|o| o.status.success());
        assert!(ok, "the OS user {OS_USER:?} is missing (it comes with the postgresql package; tests/run installs it)");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let dir = std::env::temp_dir().join(format!("fleet-faults-pg-{port}-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        // From here on, Drop removes the folder whatever fails.
        let me = Self { port, dir, bin };
        run(Command::new("chown").arg("-R").arg(format!("{OS_USER}:{OS_USER}")).arg(&me.dir), "chown");
        // --no-sync: a throwaway cluster needs no fsync of its initial files (the server's own
        // fsync stays on).
        me.tool("initdb", |c| {
            c.arg("-D").arg(me.data()).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]);
        });
        let conf = format!(
            "\n# fleet fault test\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             shared_buffers = 16MB\nmax_connections = 60\n",
            me.port,
            me.dir.display()
        );
        append(&me.data().join("postgresql.conf"), &conf);
        // Only what the tests use: the superuser, on loopback and on the private socket.
        let hba = "local all postgres trust\nhost all postgres 127.0.0.1/32 trust\n";
        std::fs::write(me.data().join("pg_hba.conf"), hba).expect("writing pg_hba.conf");
        me.resume();
        me
    }

    /// The URL of its `postgres` database.
    pub(super) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as an operator would for maintenance: `pg_ctl stop -m fast` (open
    /// sessions are ended, their transactions rolled back), waiting until it is down.
    pub(super) fn stop(&self) {
        self.tool("pg_ctl", |c| {
            c.arg("-D").arg(self.data()).args(["-m", "fast", "-w", "-t", PG_CTL_WAIT_S, "stop"]);
        });
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub(super) fn resume(&self) {
        self.tool("pg_ctl", |c| {
            c.arg("-D").arg(self.data()).arg("-l").arg(self.log()).args(["-w", "-t", PG_CTL_WAIT_S, "start"]);
        });
    }

    /// The end of the server's log, for a failing test's message.
    pub(super) fn log_tail(&self) -> String {
        tail(&self.log(), 30)
    }

    /// A folder of the cluster's where the test may keep files of its own (fleetd's log).
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Runs one of the server's tools as the `postgres` user, panicking with its output on
    /// failure.
    fn tool(&self, name: &str, args: impl FnOnce(&mut Command)) {
        let mut c = Command::new("runuser");
        c.args(["-u", OS_USER, "--"]).arg(self.bin.join(name)).current_dir(&self.dir);
        args(&mut c);
        run(&mut c, name);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        // Immediate: nothing in a throwaway cluster needs a clean shutdown. Fails harmlessly
        // when the server is already down.
        let _ = Command::new("runuser")
            .args(["-u", OS_USER, "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .current_dir(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed server's `bin` folder (`/usr/lib/postgresql/<version>/bin`).
fn server_bin() -> PathBuf {
    let entries = std::fs::read_dir(PG_LIB).unwrap_or_else(|e| {
        panic!("PostgreSQL server binaries are required under {PG_LIB} ({e}); install postgresql (tests/run does)")
    });
    let version = |name: &str| -> Option<Vec<u32>> { name.split('.').map(|p| p.parse().ok()).collect() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((version(e.file_name().to_str()?)?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .max()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| {
            panic!("no {PG_LIB}/<version>/bin with initdb and pg_ctl; install postgresql (tests/run does)")
        })
}

fn run(c: &mut Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("cannot run {what} ({c:?}): {e}; runuser comes with util-linux"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    f.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The last `n` lines of a text file (empty when it cannot be read).
pub(super) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
