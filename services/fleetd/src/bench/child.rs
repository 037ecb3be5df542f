//! A `fleetd run` child process, so that its CPU and memory are its own.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub(crate) struct Fleetd {
    child: Child,
    pub http: SocketAddr,
}

impl Fleetd {
    /// Starts `fleetd run` on the given database and broker, with a free HTTP port, and waits
    /// for its "http listening on" line.
    pub(crate) async fn spawn(database_url: &str, mqtt_url: &str, client_id: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the fleetd binary")?;
        let mut child = Command::new(exe)
            .args(["run", "--http-addr", "127.0.0.1:0"])
            .env("FLEET_DATABASE_URL", database_url)
            .env("FLEET_MQTT_URL", mqtt_url)
            .env("FLEET_MQTT_CLIENT_ID", client_id)
            .env("FLEET_ADMIN_PASSWORD", "bench-admin")
            .env("FLEET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting fleetd run")?;
        let stdout = child.stdout.take().context("fleetd stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let http = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.strip_prefix("http listening on http://") {
                    return Ok::<_, anyhow::Error>(addr.parse::<SocketAddr>()?);
                }
            }
            bail!("fleetd exited before listening")
        })
        .await
        .context("fleetd did not start within 60 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, http })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    pub(crate) fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }

    /// CPU time (user + system) used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / 100.0)
    }

    /// fleetd's count of committed samples (`fleet_ingest_samples_stored_total` on /metrics).
    pub(crate) async fn samples_stored(&self) -> anyhow::Result<u64> {
        let fetch = async {
            let mut conn = tokio::net::TcpStream::connect(self.http).await.context("connecting to fleetd")?;
            conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: fleetd\r\nConnection: close\r\n\r\n").await?;
            let mut body = Vec::new();
            conn.read_to_end(&mut body).await?;
            Ok::<_, anyhow::Error>(String::from_utf8_lossy(&body).into_owned())
        };
        let body = tokio::time::timeout(Duration::from_secs(10), fetch).await.context("fleetd /metrics timed out")??;
        let value = body
            .lines()
            .find_map(|l| l.strip_prefix("fleet_ingest_samples_stored_total "))
            .map(|v| v.trim().parse::<f64>())
            .transpose()?
            .unwrap_or(0.0);
        Ok(value as u64)
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.context("fleetd did not stop")??;
        anyhow::ensure!(status.success(), "fleetd exited with {status}");
        Ok(())
    }
}
