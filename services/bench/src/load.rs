//! MQTT load for the benches: pre-built messages published over a few connections, and a
//! plain subscriber as the baseline consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::time::Instant;

use super::progress;
use fleet_broker::MqttUrl;

/// The broker a bench talks to: the configured one, or an embedded one it started.
pub(crate) struct Broker {
    pub host: String,
    pub port: u16,
    pub url: String,
}

impl Broker {
    /// The broker at `mqtt_url`; without one, an embedded broker on a free port.
    pub(crate) fn start(mqtt_url: Option<&str>) -> anyhow::Result<Self> {
        match mqtt_url {
            Some(u) => {
                let p = MqttUrl::parse(u)?;
                if p.tls {
                    // The bench's publishers and taps speak plain MQTT only.
                    return Err(fleet_broker::MqttUrlError(
                        "the benches speak plain MQTT: use an mqtt:// broker URL".to_owned(),
                    )
                    .into());
                }
                Ok(Self { host: p.host, port: p.port, url: u.to_owned() })
            }
            None => {
                // A bare broker without accounts on loopback, a development set-up: the
                // bench's own publishers and the fleetd it starts are its only clients.
                let addr = fleet_broker::start_open("127.0.0.1:0".parse()?)?;
                progress(format!("embedded broker on {addr}"));
                Ok(Self { host: addr.ip().to_string(), port: addr.port(), url: format!("mqtt://{addr}") })
            }
        }
    }
}

/// One message to publish.
pub(crate) struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Unacknowledged publishes per connection (rumqttc's maximum window is u16).
const PUBLISH_INFLIGHT: u16 = 1000;

/// Publishes every message at QoS 1 over `connections` connections and waits for every
/// PUBACK. Returns when the broker has acknowledged them all.
pub(crate) async fn publish_all(
    host: &str,
    port: u16,
    messages: Arc<Vec<Message>>,
    connections: usize,
    tag: &str,
) -> anyhow::Result<()> {
    publish(host, port, messages, connections, tag, None).await
}

/// Like `publish_all`, but at most `rate_per_s` messages a second in all (a fleet reporting
/// on its schedule rather than a burst).
pub(crate) async fn publish_paced(
    host: &str,
    port: u16,
    messages: Arc<Vec<Message>>,
    connections: usize,
    tag: &str,
    rate_per_s: f64,
) -> anyhow::Result<()> {
    publish(host, port, messages, connections, tag, Some(rate_per_s)).await
}

/// Options of publishing connection `c` of a bench phase: clean session, a wide window.
pub(crate) fn publisher_options(host: &str, port: u16, tag: &str, c: usize) -> MqttOptions {
    let mut o = MqttOptions::new(format!("{tag}-pub-{c}-{}", std::process::id()), host, port);
    o.set_clean_session(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(PUBLISH_INFLIGHT)
        .set_max_packet_size(2 * 1024 * 1024, 2 * 1024 * 1024)
        .set_request_channel_capacity(10_000);
    o
}

/// Ticks of the paced publisher.
const PACE_TICK: Duration = Duration::from_millis(10);

async fn publish(
    host: &str,
    port: u16,
    messages: Arc<Vec<Message>>,
    connections: usize,
    tag: &str,
    rate_per_s: Option<f64>,
) -> anyhow::Result<()> {
    let mut handles = Vec::new();
    for c in 0..connections {
        let (client, mut eventloop) = AsyncClient::new(publisher_options(host, port, tag, c), 10_000);
        let messages = messages.clone();
        let expected = messages.iter().skip(c).step_by(connections).count() as u64;
        handles.push(tokio::spawn(async move {
            let acked = Arc::new(AtomicU64::new(0));
            let acked2 = acked.clone();
            let poller = tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            if acked2.fetch_add(1, Ordering::Relaxed) + 1 >= expected {
                                return Ok::<_, anyhow::Error>(());
                            }
                        }
                        Ok(_) => {}
                        Err(e) => return Err(anyhow::anyhow!("publisher connection: {e}")),
                    }
                }
            });
            let per_tick = rate_per_s.map(|r| (r / connections as f64 * PACE_TICK.as_secs_f64()).max(1.0) as usize);
            let mut tick = tokio::time::interval(PACE_TICK);
            for (n, m) in messages.iter().skip(c).step_by(connections).enumerate() {
                if let Some(k) = per_tick
                    && n % k == 0
                {
                    tick.tick().await;
                }
                client.publish(m.topic.clone(), QoS::AtLeastOnce, false, m.payload.clone()).await?;
            }
            if expected > 0 {
                tokio::time::timeout(Duration::from_secs(600), poller).await.context("publish acks timed out")???;
            }
            let _ = client.disconnect().await;
            Ok::<_, anyhow::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(())
}

/// A plain QoS 1 subscriber that counts messages: the baseline consumer (no storage). It may
/// also look at each message as it arrives (`start_with`).
pub(crate) struct CountingSubscriber {
    count: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl CountingSubscriber {
    /// Connects, subscribes to `filter` and returns once the subscription is acknowledged.
    pub(crate) async fn start(host: &str, port: u16, filter: &str, tag: &str) -> anyhow::Result<Self> {
        Self::start_with(host, port, filter, tag, |_| {}).await
    }

    /// Like `start`, and calls `on_message` with each message on receipt (in the task that
    /// polls the connection, so it must be quick).
    pub(crate) async fn start_with(
        host: &str,
        port: u16,
        filter: &str,
        tag: &str,
        mut on_message: impl FnMut(&Publish) + Send + 'static,
    ) -> anyhow::Result<Self> {
        let mut o = MqttOptions::new(format!("{tag}-sub-{}", std::process::id()), host, port);
        o.set_clean_session(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(2 * 1024 * 1024, 64 * 1024)
            .set_request_channel_capacity(10_000);
        let (client, mut eventloop) = AsyncClient::new(o, 10_000);
        client.subscribe(filter, QoS::AtLeastOnce).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), eventloop.poll())
                .await
                .context("subscribing timed out")?
            {
                Ok(Event::Incoming(Packet::SubAck(_))) => break,
                Ok(_) => {}
                Err(e) => anyhow::bail!("subscriber connection: {e}"),
            }
        }
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        on_message(&p);
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => return Err(anyhow::anyhow!("subscriber connection: {e}")),
                }
            }
        });
        Ok(Self { count, task })
    }

    /// Waits until `n` messages have arrived; gives the time they were all in.
    pub(crate) async fn wait_for(&self, n: u64, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count.load(Ordering::Relaxed) >= n {
                return Ok(Instant::now());
            }
            anyhow::ensure!(!self.task.is_finished(), "the baseline subscriber stopped");
            anyhow::ensure!(
                Instant::now() < deadline,
                "baseline subscriber got {} of {n}",
                self.count.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Messages received so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

/// Ends the persistent session of `client_id` on the broker (a clean-session connect does):
/// the session of a stopped bench fleetd would otherwise queue every later run's messages.
pub(crate) async fn forget_session(host: &str, port: u16, client_id: &str) -> anyhow::Result<()> {
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_clean_session(true).set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(o, 10);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => anyhow::bail!("connecting as {client_id}: {e}"),
            }
        }
    })
    .await
    .context("forgetting a broker session timed out")??;
    let _ = client.disconnect().await;
    // Let the DISCONNECT go out.
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
    Ok(())
}
