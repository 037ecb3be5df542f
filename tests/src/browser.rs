//! A headless Chromium driven through chromedriver (WebDriver), for the page tests. Each
//! browser gets its own chromedriver on a free port, killed when the browser is dropped.
//! Screenshots go to `target/test-artifacts/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::DEFAULT_DEADLINE;

/// The browser binary (Debian package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server (Debian package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running headless browser.
pub struct Browser {
    pub client: Client,
    /// The chromedriver's base URL, for its Chromium-only endpoints.
    driver_url: String,
    _driver: tokio::process::Child,
}

/// Where screenshots are saved.
pub fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`×`height` window.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        Self::launch(width, height, None).await
    }

    /// A phone: Chromium's mobile emulation with a `width`×`height` CSS-pixel viewport, pixel
    /// ratio 2 and touch. (A headless window cannot be narrower than 500 px; emulation can.)
    pub async fn start_phone(width: u32, height: u32) -> anyhow::Result<Self> {
        let metrics = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true}});
        Self::launch(width, height, Some(metrics)).await
    }

    async fn launch(width: u32, height: u32, mobile_emulation: Option<Value>) -> anyhow::Result<Self> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is required for the page tests; run tests/run, which installs it"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let deadline = Instant::now() + DEFAULT_DEADLINE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        let mut options = json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--lang=zh-CN", "--hide-scrollbars"],
        });
        if let Some(m) = mobile_emulation {
            options["mobileEmulation"] = m;
        }
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a Chromium session")?;
        Ok(Self { client, driver_url: format!("http://127.0.0.1:{port}"), _driver: driver })
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and answers its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.client.execute(script, args).await.with_context(|| format!("running {script}"))
    }

    /// Polls `script` until it returns something truthy (not null/false/0/""), within the
    /// default deadline; answers that value.
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        let deadline = Instant::now() + DEFAULT_DEADLINE;
        loop {
            let v = self.js(script, args.clone()).await?;
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                let shot = self
                    .screenshot(&format!("timeout-{}", what.replace(|c: char| !c.is_ascii_alphanumeric(), "-")))
                    .await
                    .ok();
                anyhow::bail!("timed out waiting for {what} (last value {v}; screenshot {shot:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types into the element matching `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self
            .client
            .wait()
            .at_most(DEFAULT_DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))?;
        el.clear().await?;
        el.send_keys(text).await.with_context(|| format!("typing into {css}"))
    }

    /// Clicks the element matching `css` once it exists.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let el = self
            .client
            .wait()
            .at_most(DEFAULT_DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))?;
        el.click().await.with_context(|| format!("clicking {css}"))
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let el = self
            .client
            .wait()
            .at_most(DEFAULT_DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))?;
        Ok(el.text().await?)
    }

    /// Saves a PNG screenshot as `target/test-artifacts/<name>.png`; answers its path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Cuts the page off the network (`true`) or gives it back (`false`), as a phone losing
    /// its signal: chromedriver's Chromium-only `network_conditions` endpoint, which emulates
    /// an offline network in the page's DevTools session (requests fail at once, the page
    /// sees `navigator.onLine === false` and the `offline`/`online` events). The server keeps
    /// running, so what it records shows whether a tap got through. It does not reach a
    /// service worker's own fetches: to test a page served from its worker's cache, stop the
    /// server instead.
    pub async fn set_offline(&self, offline: bool) -> anyhow::Result<()> {
        let session = self.client.session_id().await?.context("no WebDriver session")?;
        let url = format!("{}/session/{session}/chromium/network_conditions", self.driver_url);
        let body = json!({"network_conditions": {"offline": offline, "latency": 0, "download_throughput": -1, "upload_throughput": -1}});
        let res = reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .context("asking chromedriver for network conditions")?;
        let status = res.status();
        anyhow::ensure!(
            status.is_success(),
            "chromedriver network_conditions: {status} {}",
            res.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// Ends the browser session.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        Ok(())
    }
}
