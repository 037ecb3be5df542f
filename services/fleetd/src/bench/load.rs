//! MQTT load for the benches: pre-built messages published over a few connections, and a
//! plain subscriber as the baseline consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::time::Instant;

/// One message to publish.
pub(crate) struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Unacknowledged publishes per connection (rumqttc's maximum window is u16).
const PUBLISH_INFLIGHT: u16 = 1000;

/// Publishes every message at QoS 1 over `connections` connections and waits for every
/// PUBACK. Returns when the broker has acknowledged them all.
pub(crate) async fn publish_all(host: &str, port: u16, messages: Arc<Vec<Message>>, connections: usize, tag: &str) -> anyhow::Result<()> {
    publish(host, port, messages, connections, tag, None).await
}

/// Like `publish_all`, but at most `rate_per_s` messages a second in all (a fleet reporting
/// on its schedule rather than a burst).
pub(crate) async fn publish_paced(host: &str, port: u16, messages: Arc<Vec<Message>>, connections: usize, tag: &str, rate_per_s: f64) -> anyhow::Result<()> {
    publish(host, port, messages, connections, tag, Some(rate_per_s)).await
}

/// Ticks of the paced publisher.
const PACE_TICK: Duration = Duration::from_millis(10);

async fn publish(host: &str, port: u16, messages: Arc<Vec<Message>>, connections: usize, tag: &str, rate_per_s: Option<f64>) -> anyhow::Result<()> {
    let mut handles = Vec::new();
    for c in 0..connections {
        let mut o = MqttOptions::new(format!("{tag}-pub-{c}-{}", std::process::id()), host, port);
        o.set_clean_session(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_inflight(PUBLISH_INFLIGHT)
            .set_max_packet_size(2 * 1024 * 1024, 2 * 1024 * 1024)
            .set_request_channel_capacity(10_000);
        let (client, mut eventloop) = AsyncClient::new(o, 10_000);
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
                    && n % k == 0 {
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

/// A plain QoS 1 subscriber that counts messages: the baseline consumer (no storage).
pub(crate) struct CountingSubscriber {
    count: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl CountingSubscriber {
    /// Connects, subscribes to `filter` and returns once the subscription is acknowledged.
    pub(crate) async fn start(host: &str, port: u16, filter: &str, tag: &str) -> anyhow::Result<Self> {
        let mut o = MqttOptions::new(format!("{tag}-sub-{}", std::process::id()), host, port);
        o.set_clean_session(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(2 * 1024 * 1024, 64 * 1024)
            .set_request_channel_capacity(10_000);
        let (client, mut eventloop) = AsyncClient::new(o, 10_000);
        client.subscribe(filter, QoS::AtLeastOnce).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await.context("subscribing timed out")? {
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
                    Ok(Event::Incoming(Packet::Publish(_))) => {
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
            anyhow::ensure!(Instant::now() < deadline, "baseline subscriber got {} of {n}", self.count.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub(crate) fn stop(self) {
        self.task.abort();
    }
}
