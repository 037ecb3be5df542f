//! A live-feed client for tests: a real WebSocket over TCP, reading JSON messages with a
//! deadline.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::DEFAULT_DEADLINE;

/// A connected live-feed client.
pub struct LiveClient {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

/// A refused connection: the HTTP status of the handshake's answer and its body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl LiveClient {
    /// Connects to `url` (`ws://…/api/v1/live?…`).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        match Self::try_connect(url).await? {
            Ok(c) => Ok(c),
            Err(r) => anyhow::bail!("live feed refused the connection: {} {}", r.status, r.body),
        }
    }

    /// Connects, answering the handshake's refusal (status and body) as a value.
    pub async fn try_connect(url: &str) -> anyhow::Result<Result<Self, Refused>> {
        use tokio_tungstenite::tungstenite::Error;
        match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => Ok(Ok(Self { ws })),
            Err(Error::Http(res)) => {
                let status = res.status().as_u16();
                let body = res.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                Ok(Err(Refused { status, body }))
            }
            Err(e) => Err(e).context("connecting to the live feed"),
        }
    }

    /// The next JSON text message (pings and pongs skipped); `None` when the server closed.
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<Option<Value>> {
        let deadline = Instant::now() + within;
        loop {
            let msg =
                tokio::time::timeout_at(deadline, self.ws.next()).await.context("no live-feed message in time")?;
            match msg {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(serde_json::from_str(&text).context("live-feed message is JSON")?));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e).context("reading the live feed"),
            }
        }
    }

    /// The first message, which must be a snapshot: its vehicles.
    pub async fn snapshot(&mut self) -> anyhow::Result<Vec<Value>> {
        let msg = self.next(DEFAULT_DEADLINE).await?.context("closed before the snapshot")?;
        anyhow::ensure!(msg["type"] == "snapshot", "first message is not a snapshot: {msg}");
        Ok(msg["vehicles"].as_array().cloned().unwrap_or_default())
    }

    /// The view after `snapshot` and whatever deltas arrive within `span`: the newest state
    /// of each car by VIN.
    pub async fn settle(
        &mut self,
        snapshot: Vec<Value>,
        span: Duration,
    ) -> anyhow::Result<std::collections::HashMap<String, Value>> {
        let mut view: std::collections::HashMap<String, Value> =
            snapshot.into_iter().map(|v| (v["vin"].as_str().unwrap_or_default().to_owned(), v)).collect();
        for msg in self.drain(span).await? {
            if msg["type"] == "snapshot" {
                view.clear();
            }
            for v in msg["vehicles"].as_array().into_iter().flatten() {
                view.insert(v["vin"].as_str().unwrap_or_default().to_owned(), v.clone());
            }
        }
        Ok(view)
    }

    /// Reads messages until `found` picks something out of one (checking each with `check`
    /// on the way), within the default deadline.
    pub async fn wait_for<T>(&mut self, what: &str, mut found: impl FnMut(&Value) -> Option<T>) -> anyhow::Result<T> {
        let deadline = Instant::now() + DEFAULT_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .next(left)
                .await
                .with_context(|| format!("waiting for {what}"))?
                .with_context(|| format!("closed while waiting for {what}"))?;
            if let Some(t) = found(&msg) {
                return Ok(t);
            }
        }
    }

    /// Reads until the server closes the connection, within the default deadline: the close
    /// frame's code and reason (text messages on the way are skipped).
    pub async fn closed(&mut self) -> anyhow::Result<(u16, String)> {
        let deadline = Instant::now() + DEFAULT_DEADLINE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .context("the server did not close the live feed in time")?;
            match msg {
                Some(Ok(Message::Close(Some(frame)))) => return Ok((frame.code.into(), frame.reason.to_string())),
                Some(Ok(Message::Close(None))) => anyhow::bail!("closed without a code"),
                None => anyhow::bail!("the connection ended without a close frame"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e).context("reading the live feed"),
            }
        }
    }

    /// Collects every message that arrives within `span`.
    pub async fn drain(&mut self, span: Duration) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + span;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return Ok(out),
                Ok(None | Some(Ok(Message::Close(_)))) => return Ok(out),
                Ok(Some(Ok(Message::Text(text)))) => out.push(serde_json::from_str(&text)?),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(e).context("reading the live feed"),
            }
        }
    }
}

/// The vehicle with `vin` in a message's `vehicles`, if there.
pub fn vehicle_in<'a>(msg: &'a Value, vin: &str) -> Option<&'a Value> {
    msg["vehicles"].as_array()?.iter().find(|v| v["vin"] == vin)
}
