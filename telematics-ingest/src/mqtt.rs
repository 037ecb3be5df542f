//! The broker connection: the one task that polls the rumqttc event loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Config, GBT32960_TOPIC_FILTER, JSON_TOPIC_FILTER, MAX_MESSAGE_BYTES};

/// Capacity of the client's request channel, which carries our acks to the event loop. The
/// poll task never waits on anything but the event loop, so this channel always drains; its
/// size only decides how long the writer may wait to queue an ack.
const REQUEST_CAPACITY: usize = 65_536;
/// Messages in hand (forwarded, not yet acknowledged) above which a warning is logged: the
/// broker lets too many unacknowledged messages be in flight to fleetd (Mosquitto:
/// `max_inflight_messages`/`max_inflight_bytes`, see deploy/mosquitto).
const IN_HAND_WARNING: u64 = 100_000;
/// Largest incoming packet read off the wire. Larger than `MAX_MESSAGE_BYTES` so an oversized
/// message is read and dead-lettered as `too_large` instead of breaking the connection (and
/// being redelivered forever); brokers should cap messages below this (deploy/mosquitto).
const MAX_INCOMING_PACKET: usize = 16 * 1024 * 1024;
/// Reconnect delays grow from the first to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

pub(crate) fn client(cfg: &Config) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    o.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_INCOMING_PACKET.max(MAX_MESSAGE_BYTES), 64 * 1024)
        .set_request_channel_capacity(REQUEST_CAPACITY);
    if let Some(user) = &cfg.username {
        o.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    AsyncClient::new(o, REQUEST_CAPACITY)
}

/// When the poll task stops forwarding messages (`intake`: shutdown begins) and when it
/// stops polling (`polling`: the writer's last acks are out).
pub(crate) struct Stops {
    pub intake: CancellationToken,
    pub polling: CancellationToken,
}

/// Polls the event loop: forwards publishes to the batcher, (re)subscribes on every
/// connection, reconnects with capped backoff. Stops forwarding at `shutdown` (messages not
/// forwarded stay unacked and come back after a restart) and stops polling at `stop`.
///
/// It never waits on the batcher: the same event loop that reads messages also sends our
/// acks, so a poll task blocked on a full queue would stop the acks that would free it
/// (a deadlock once a broker floods us). The flow control is the broker's in-flight window
/// for fleetd's session (unacked messages in flight to us), which bounds `in_hand`.
pub(crate) async fn poll(
    mut eventloop: EventLoop,
    client: AsyncClient,
    prefix: String,
    tx: mpsc::UnboundedSender<Publish>,
    in_hand: Arc<AtomicU64>,
    connected: Arc<AtomicBool>,
    stops: Stops,
) {
    let Stops { intake: shutdown, polling: stop } = stops;
    let mut backoff = BACKOFF_FIRST;
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected.store(true, Ordering::Relaxed);
                backoff = BACKOFF_FIRST;
                tracing::info!(mqtt.session_present = ack.session_present, "connected to the MQTT broker");
                let topics = [JSON_TOPIC_FILTER, GBT32960_TOPIC_FILTER]
                    .map(|t| rumqttc::SubscribeFilter::new(format!("{prefix}{t}"), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(topics) {
                    tracing::error!(error = %e, "cannot queue the subscription");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) {
                    tracing::error!("the broker refused a subscription: check the account's ACL");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                metrics::counter!("fleet_ingest_messages_received_total").increment(1);
                if shutdown.is_cancelled() {
                    // Leave the message unacked: the broker redelivers it after the restart.
                    continue;
                }
                let n = in_hand.fetch_add(1, Ordering::Relaxed) + 1;
                // Set on arrival too, not only after commits: messages piling up while
                // commits fail (a database outage) must show.
                metrics::gauge!("fleet_ingest_messages_in_hand").set(n as f64);
                if n == IN_HAND_WARNING {
                    tracing::warn!(ingest.in_hand = n, "the broker sends far more unacknowledged messages than fleetd can commit; limit its in-flight window for fleetd");
                }
                // An error means the batcher is gone (shutting down): the message stays unacked.
                let _ = tx.send(p);
            }
            Ok(_) => {}
            Err(e) if shutdown.is_cancelled() => {
                // Our own disconnect at shutdown, or the broker going away meanwhile.
                connected.store(false, Ordering::Relaxed);
                tracing::debug!(error = %e, "MQTT connection closed while shutting down");
                break;
            }
            Err(e) => {
                connected.store(false, Ordering::Relaxed);
                metrics::counter!("fleet_ingest_connection_errors_total").increment(1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_CAP);
            }
        }
    }
    connected.store(false, Ordering::Relaxed);
}
