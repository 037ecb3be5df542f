//! The `fleetd` binary as a user runs it: exit codes, listener lines, clean shutdown.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::io::{BufRead, BufReader};

/// The fleetd binary beside this test binary (`tests/run` builds it first).
fn fleetd() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("fleetd");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p fleetd` (tests/run does)", bin.display());
    bin
}

fn temp_db() -> (tempdir::Dir, String) {
    let d = tempdir::Dir::new();
    let url = format!("sqlite://{}/fleet.db", d.0.display());
    (d, url)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("fleet-cli-{}-{}", std::process::id(), rand::random::<u64>()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(fleetd());
    c.args(args).env_remove("FLEET_DATABASE_URL").env_remove("FLEET_MQTT_URL").env_remove("FLEET_HTTP_ADDR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("running fleetd")
}

#[test]
fn bad_configuration_exits_64_with_one_line_naming_the_setting() {
    for (env, setting) in [
        (("FLEET_HTTP_ADDR", "not-an-address"), "FLEET_HTTP_ADDR"),
        (("FLEET_DATABASE_URL", "mysql://x"), "FLEET_DATABASE_URL"),
        (("FLEET_MQTT_URL", "http://broker"), "FLEET_MQTT_URL"),
        (("FLEET_MQTT_CLIENT_ID", "has space"), "FLEET_MQTT_CLIENT_ID"),
        (("FLEET_SERVICES", "ingest,stats"), "FLEET_SERVICES"),
        // Instances that share work share PostgreSQL: the default SQLite file is refused.
        (("FLEET_SERVICES", "web"), "FLEET_SERVICES"),
        (("FLEET_CLUSTER", "true"), "FLEET_CLUSTER"),
        (("FLEET_MQTT_SHARE_GROUP", "fleetd"), "FLEET_MQTT_SHARE_GROUP"),
        (("FLEET_INGEST_MAX_BATCH", "0"), "FLEET_INGEST_MAX_BATCH"),
        (("FLEET_EMQX_GATEWAYS", "gbt32960,mqtt"), "FLEET_EMQX_GATEWAYS"),
        // EMQX's gateways publish on EMQX, never on the embedded broker.
        (("FLEET_EMQX_GATEWAYS", "jt808"), "FLEET_EMQX_GATEWAYS"),
        (("FLEET_DEMO_ORDERS_PER_MIN", "-3"), "FLEET_DEMO_ORDERS_PER_MIN"),
    ] {
        let out = run_with(&["run"], &[env]);
        assert_eq!(out.status.code(), Some(64), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("bad configuration")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains(setting), "{err}");
    }
    // Anonymous access to an embedded broker reachable from the network.
    let out = run_with(&["run"], &[("FLEET_EMBEDDED_MQTT_ANONYMOUS", "1"), ("FLEET_EMBEDDED_MQTT_ADDR", "0.0.0.0:0")]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("bad configuration")).collect();
    assert!(lines.len() == 1 && lines[0].contains("FLEET_EMBEDDED_MQTT_ANONYMOUS"), "{err}");
    let out = run_with(&["run", "--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn simulate_refuses_bad_flags_naming_them() {
    for (args, setting) in [
        (&["simulate", "--via", "gbt32960-tcp"][..], "--gateway-addr"),
        (&["simulate", "--via", "jt808-tcp", "--gateway-addr", "localhost"][..], "--gateway-addr"),
        (
            &["simulate", "--via", "jt808-tcp", "--gateway-addr", "127.0.0.1:6808", "--jt808-2019-share", "1.5"][..],
            "--jt808-2019-share",
        ),
        (&["simulate", "--gateway-addr", "127.0.0.1:32960"][..], "--gateway-addr"),
        // Orders need the registry's cars and an account's password, over plain HTTP.
        (&["simulate", "--orders-per-min", "5", "--api-password", "x"][..], "--orders-per-min"),
        (&["simulate", "--orders-per-min", "5", "--database-url", "sqlite:///nowhere/x.db"][..], "--api-password"),
        (
            &[
                "simulate",
                "--orders-per-min",
                "5",
                "--database-url",
                "sqlite:///nowhere/x.db",
                "--api-password",
                "x",
                "--api-url",
                "ftp://h",
            ][..],
            "--api-url",
        ),
        (&["simulate", "--orders-per-min=-1"][..], "--orders-per-min"),
    ] {
        let out = run_with(args, &[]);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("bad configuration")).collect();
        assert!(lines.len() == 1 && lines[0].contains(setting), "{args:?}: {err}");
    }
}

#[test]
fn help_is_available_for_every_subcommand() {
    for sub in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["migrate", "--help"],
        vec!["simulate", "--help"],
        vec!["bench", "ingest", "--help"],
    ] {
        let out = run_with(&sub, &[]);
        assert_eq!(out.status.code(), Some(0), "{sub:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{sub:?}");
    }
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let (dir, url) = temp_db();
    let out = run_with(&["migrate"], &[("FLEET_DATABASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.0.join("fleet.db").exists());
}

#[test]
fn run_prints_its_listeners_serves_and_stops_cleanly_on_sigterm() {
    let (_dir, url) = temp_db();
    let mut child = Command::new(fleetd())
        .args(["run", "--http-addr", "127.0.0.1:0", "--embedded-mqtt-addr", "127.0.0.1:0"])
        .env("FLEET_DATABASE_URL", &url)
        .env_remove("FLEET_MQTT_URL")
        .env_remove("FLEET_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting fleetd");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut http = None;
    let mut broker = false;
    let mut password = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("mqtt broker listening on ") {
            broker = true;
        }
        if let Some(p) = line.strip_prefix("created user admin with password ") {
            password = p.split_whitespace().next().map(str::to_owned);
        }
        if let Some(a) = line.strip_prefix("http listening on http://") {
            http = Some(a.to_owned());
            break;
        }
    }
    let http = http.expect("an http listening line");
    assert!(broker, "the embedded broker line comes first");
    let password = password.expect("a generated admin password is printed once");
    // The server answers, and the generated password works.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut ok = false;
        for _ in 0..200 {
            if let Ok(r) = c.get(format!("http://{http}/healthz")).send().await
                && r.status() == 200
            {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, "/healthz turns 200 once the broker connection is up");
        let r = c
            .post(format!("http://{http}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = wait_timeout(&mut child, Duration::from_secs(20)).expect("fleetd exits after SIGTERM");
    assert_eq!(code, Some(0));
}

fn wait_timeout(child: &mut std::process::Child, t: Duration) -> Option<Option<i32>> {
    let deadline = std::time::Instant::now() + t;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s.code());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_service_that_fails_stops_fleetd_with_exit_1_and_one_line_naming_it() {
    let (_dir, url) = temp_db();
    let out = run_with(&["migrate"], &[("FLEET_DATABASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // A database damaged by hand: the table ingest loads its registry of vehicles from is
    // gone. Start-up itself does not read it, so fleetd starts, and ingest fails at once.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&url).await.expect("opening the database");
        sqlx::query("ALTER TABLE vehicles RENAME TO vehicles_moved").execute(&mut db).await.expect("renaming");
        db.close().await.expect("closing the database");
    });
    let mut child = Command::new(fleetd())
        .args(["run", "--http-addr", "127.0.0.1:0", "--embedded-mqtt-addr", "127.0.0.1:0"])
        .env("FLEET_DATABASE_URL", &url)
        .env_remove("FLEET_MQTT_URL")
        .env("FLEET_ADMIN_PASSWORD", "a-long-admin-password")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting fleetd");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    let code = wait_timeout(&mut child, Duration::from_secs(30)).expect("fleetd exits by itself");
    let err = reader.join().expect("reading fleetd's errors");
    assert_eq!(code, Some(1), "{err:#?}");
    let lines: Vec<&String> = err.iter().filter(|l| l.starts_with("fleetd: ")).collect();
    assert_eq!(lines.len(), 1, "{err:#?}");
    assert!(lines[0].starts_with("fleetd: service ingest stopped: "), "{}", lines[0]);
    assert!(lines[0].contains("vehicles"), "says why: {}", lines[0]);
}
