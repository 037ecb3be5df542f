//! A `fleetd run` child process, so that its CPU and memory are its own.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Password of the child's `admin` user (a bench database is made for the run and removed).
pub(crate) const ADMIN_PASSWORD: &str = "bench-admin";

pub(crate) struct Fleetd {
    child: Child,
    pub http: SocketAddr,
}

impl Fleetd {
    /// Starts `fleetd run` on the given database and broker, with a free HTTP port, and waits
    /// for its "http listening on" line.
    pub(crate) async fn spawn(database_url: &str, mqtt_url: &str, client_id: &str) -> anyhow::Result<Self> {
        Self::spawn_with(database_url, mqtt_url, client_id, &[]).await
    }

    /// Like `spawn`, with more `FLEET_*` settings in the child's environment.
    pub(crate) async fn spawn_with(
        database_url: &str,
        mqtt_url: &str,
        client_id: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the fleetd binary")?;
        let mut child = Command::new(exe)
            .args(["run", "--http-addr", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("FLEET_DATABASE_URL", database_url)
            .env("FLEET_MQTT_URL", mqtt_url)
            .env("FLEET_MQTT_CLIENT_ID", client_id)
            .env("FLEET_ADMIN_PASSWORD", ADMIN_PASSWORD)
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
        self.memory_mib("VmHWM:")
    }

    /// Resident memory now (VmRSS), in MiB.
    pub(crate) fn rss_mib(&self) -> Option<f64> {
        self.memory_mib("VmRSS:")
    }

    /// Resident memory of the process's own allocations (RssAnon; the rest of RSS is mapped
    /// files: the binary, SQLite's shared-memory index), in MiB.
    pub(crate) fn rss_anon_mib(&self) -> Option<f64> {
        self.memory_mib("RssAnon:")
    }

    fn memory_mib(&self, field: &str) -> Option<f64> {
        memory_mib_of(self.pid()?, field)
    }

    /// Starts the peak resident memory (VmHWM) again from the present RSS, so that a later
    /// [`peak_rss_mib`](Self::peak_rss_mib) is the peak of what followed; false when the
    /// kernel would not (`/proc/PID/clear_refs`, Linux 4.0 and later).
    pub(crate) fn reset_peak_rss(&self) -> bool {
        self.pid().is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }

    /// CPU time (user + system) used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds_of(&self.pid()?.to_string())
    }

    /// One HTTP/1.1 request to fleetd (`Connection: close`); gives the status and the body.
    /// Enough for the few plain, unchunked responses a bench needs.
    async fn http(&self, method: &str, path: &str, json_body: Option<&str>) -> anyhow::Result<(u16, String)> {
        self.request(method, path, None, json_body).await
    }

    /// Like `http`, as the holder of `bearer` when given.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        json_body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: fleetd\r\nConnection: close\r\n");
        if let Some(token) = bearer {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = json_body {
            request
                .push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
        } else {
            request.push_str("\r\n");
        }
        let fetch = async {
            let mut conn = tokio::net::TcpStream::connect(self.http).await.context("connecting to fleetd")?;
            conn.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            conn.read_to_end(&mut response).await?;
            Ok::<_, anyhow::Error>(String::from_utf8_lossy(&response).into_owned())
        };
        let response = tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .with_context(|| format!("{method} {path} timed out"))??;
        let (head, body) =
            response.split_once("\r\n\r\n").with_context(|| format!("{method} {path}: no end of headers"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{method} {path}: no status"))?;
        Ok((status, body.to_owned()))
    }

    /// A JSON API call as the holder of `token` that must answer `expect`; gives the answer.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
        expect: u16,
    ) -> anyhow::Result<serde_json::Value> {
        let body = body.map(serde_json::Value::to_string);
        let (status, answer) = self.request(method, path, Some(token), body.as_deref()).await?;
        anyhow::ensure!(status == expect, "{method} {path} answered {status}, not {expect}: {answer}");
        serde_json::from_str(&answer).with_context(|| format!("{method} {path}: the answer is not JSON"))
    }

    /// fleetd's /metrics page (Prometheus text).
    pub(crate) async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self.http("GET", "/metrics", None).await?.1)
    }

    /// The heap fleetd's allocator reports: (allocated, resident) in MiB, from `/metrics`.
    pub(crate) async fn heap_mib(&self) -> anyhow::Result<(f64, f64)> {
        let body = self.metrics().await?;
        let mib = |name: &str| -> anyhow::Result<f64> {
            Ok(metric_value(&body, name)?.with_context(|| format!("{name} is not on /metrics"))? / (1024.0 * 1024.0))
        };
        Ok((mib("fleet_memory_heap_allocated_bytes")?, mib("fleet_memory_heap_resident_bytes")?))
    }

    /// fleetd's count of committed samples (`fleet_ingest_samples_stored_total` on /metrics).
    pub(crate) async fn samples_stored(&self) -> anyhow::Result<u64> {
        Ok(self.ingest_progress().await?.0)
    }

    /// Samples committed so far and the messages in hand (received, not yet acknowledged),
    /// from one read of `/metrics`.
    pub(crate) async fn ingest_progress(&self) -> anyhow::Result<(u64, u64)> {
        let body = self.metrics().await?;
        // A counter or gauge not yet touched is not on the page yet: 0.
        let value = |name: &str| -> anyhow::Result<f64> { Ok(metric_value(&body, name)?.unwrap_or(0.0)) };
        Ok((value("fleet_ingest_samples_stored_total")? as u64, value("fleet_ingest_messages_in_hand")? as u64))
    }

    /// Logs in as `admin`; gives the bearer token.
    pub(crate) async fn admin_token(&self) -> anyhow::Result<String> {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Logs in as `username`; gives the bearer token.
    pub(crate) async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"username": username, "password": password}).to_string();
        let (status, body) = self.http("POST", "/api/v1/auth/login", Some(&body)).await?;
        anyhow::ensure!(status == 200, "{username}'s login answered {status}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).context("login response")?;
        Ok(v["token"].as_str().context("login response without a token")?.to_owned())
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let status =
            tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.context("fleetd did not stop")??;
        anyhow::ensure!(status.success(), "fleetd exited with {status}");
        Ok(())
    }
}

/// A memory figure of process `pid` (a `/proc/PID/status` field such as `VmRSS:`), in MiB.
pub(crate) fn memory_mib_of(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time (user + system) a process has used so far, in seconds; `pid` may be `self`.
pub(crate) fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_S)
}

/// The kernel's USER_HZ, in which /proc reports CPU times (100 on Linux everywhere).
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// CPU time the whole machine has spent busy (everything but idle and iowait), in seconds
/// summed over cores.
pub(crate) fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<f64> = cpu.split_whitespace().map(|t| t.parse().unwrap_or(0.0)).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let busy: f64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    Some(busy / CLOCK_TICKS_PER_S)
}

/// A quantile of a summary on a /metrics page (`name{…quantile="q"…} value`), if present.
pub(crate) fn summary_quantile(metrics: &str, name: &str, quantile: &str) -> Option<f64> {
    summary_quantile_with(metrics, name, &[], quantile)
}

/// Like [`summary_quantile`], of the series that also carries each of `labels`
/// (`listener="jt808"`).
pub(crate) fn summary_quantile_with(metrics: &str, name: &str, labels: &[&str], quantile: &str) -> Option<f64> {
    let label = format!("quantile=\"{quantile}\"");
    metrics
        .lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')))
        .find(|l| l.contains(&label) && labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The sum of a counter over all its labels (or its one unlabelled value) in Prometheus
/// text; 0 when it is absent (a counter not touched yet is not on the page).
pub(crate) fn metric_sum(body: &str, name: &str) -> anyhow::Result<f64> {
    let mut sum = 0.0;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let value = match rest.as_bytes().first() {
            Some(b' ') => rest,
            Some(b'{') => rest.rsplit_once('}').map_or("", |(_, v)| v),
            _ => continue,
        };
        sum += value.trim().parse::<f64>().with_context(|| format!("{name} on /metrics: {line}"))?;
    }
    Ok(sum)
}

/// The value of an unlabelled counter or gauge in Prometheus text; None when it is absent.
pub(crate) fn metric_value(body: &str, name: &str) -> anyhow::Result<Option<f64>> {
    let Some(v) = body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')) else { return Ok(None) };
    Ok(Some(v.trim().parse::<f64>().with_context(|| format!("{name} on /metrics: {v}"))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_metric_is_read_absent_or_rejected_when_unreadable() {
        let text = "# TYPE fleet_ingest_messages_in_hand gauge\nfleet_ingest_messages_in_hand 16200\nfleet_ingest_messages_in_hand_max 3\nbad x1\n";
        assert_eq!(metric_value(text, "fleet_ingest_messages_in_hand").unwrap(), Some(16200.0));
        assert_eq!(metric_value(text, "fleet_memory_heap_allocated_bytes").unwrap(), None);
        assert!(metric_value(text, "bad").is_err());
    }

    #[test]
    fn a_counter_is_summed_over_its_labels_and_absent_is_zero() {
        let text = "# TYPE fleet_ingest_dead_letters_total counter\n\
                    fleet_ingest_dead_letters_total{reason=\"bad_json\"} 3\n\
                    fleet_ingest_dead_letters_total{reason=\"unknown_vin\"} 4\n\
                    fleet_ingest_dead_letters_total_x 100\n\
                    fleet_ingest_samples_stored_total 12\n\
                    fleet_broken{a=\"b\"} x\n";
        assert_eq!(metric_sum(text, "fleet_ingest_dead_letters_total").unwrap(), 7.0);
        assert_eq!(metric_sum(text, "fleet_ingest_samples_stored_total").unwrap(), 12.0);
        assert_eq!(metric_sum(text, "fleet_gateway_rejected_total").unwrap(), 0.0);
        assert!(metric_sum(text, "fleet_broken").is_err());
    }

    #[test]
    fn a_summary_quantile_is_read_from_prometheus_text() {
        let text = "# TYPE fleet_ingest_commit_seconds summary\n\
                    fleet_ingest_commit_seconds{quantile=\"0.5\"} 0.0042\n\
                    fleet_ingest_commit_seconds{quantile=\"0.99\"} 0.031\n\
                    fleet_ingest_commit_seconds_sum 12.5\n\
                    fleet_ingest_commit_seconds_x{quantile=\"0.5\"} 9\n";
        assert_eq!(summary_quantile(text, "fleet_ingest_commit_seconds", "0.5"), Some(0.0042));
        assert_eq!(summary_quantile(text, "fleet_ingest_commit_seconds", "0.99"), Some(0.031));
        assert_eq!(summary_quantile(text, "fleet_ingest_commit_seconds", "0.9"), None);
        assert_eq!(summary_quantile(text, "fleet_ingest_batch_messages", "0.5"), None);

        let text = "fleet_gateway_report_seconds{listener=\"gbt32960\",quantile=\"0.5\"} 0.02\n\
                    fleet_gateway_report_seconds{listener=\"jt808\",quantile=\"0.5\"} 0.03\n";
        let of = |listener: &str| summary_quantile_with(text, "fleet_gateway_report_seconds", &[listener], "0.5");
        assert_eq!(of("listener=\"jt808\""), Some(0.03));
        assert_eq!(of("listener=\"gbt32960\""), Some(0.02));
        assert_eq!(of("listener=\"mqtt\""), None);
    }
}
