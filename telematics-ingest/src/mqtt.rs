//! The broker connection: one task owns the socket of fleetd's persistent MQTT 3.1.1 session.
//! It reads publishes and forwards them to the batcher, and writes the acknowledgements the
//! writer hands it after each commit, all of a batch in one write.
//!
//! Over TLS (`mqtts://`) the same bytes go through rustls on the TCP stream.
//!
//! The session is spoken here on rumqttc's packet codec rather than through rumqttc's event
//! loop, which writes and flushes every manual acknowledgement on its own: one event-loop
//! round and one `write` per message, where a committed batch of thousands needs one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use fleet_domain::{DeadLetter, DeadLetterReason};
use rumqttc::mqttbytes::Error as CodecError;
use rumqttc::{
    ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, QoS, Subscribe, SubscribeFilter, SubscribeReasonCode,
    Unsubscribe,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::delivery::{Content, Delivery, Receipt};
use crate::in_hand::InHand;
use crate::{Config, EmqxGateways, EmqxTopic, GBT32960_TOPIC_FILTER, JSON_TOPIC_FILTER, MAX_MESSAGE_BYTES};

/// Messages in hand (forwarded, not yet acknowledged) at which the connection stops reading
/// until commits bring it back under: fleetd's own flow control, by TCP back-pressure. A
/// broker's in-flight window cannot be relied on for it: Mosquitto 2.0.11 keeps to
/// `max_inflight_messages` only until acknowledgements come back in batches, then sends past
/// it (measured: 10,000 configured, 54,000-108,000 in hand during a 200,000-message burst).
/// Four full batches (16,000 messages on PostgreSQL, 64,000 on SQLite by default): the batcher's queue and the commits in
/// flight stay fed.
fn max_in_hand(cfg: &Config) -> u64 {
    4 * cfg.max_batch.max(1) as u64
}

/// Largest incoming packet read off the wire. Larger than `MAX_MESSAGE_BYTES` so an oversized
/// message is read and dead-lettered as `too_large` instead of breaking the connection (and
/// being redelivered forever); brokers should cap messages below this (deploy/mosquitto).
const MAX_INCOMING_PACKET: usize = 16 * 1024 * 1024;
/// Keep-alive announced in CONNECT. A ping goes out when nothing was written for half of it;
/// a broker silent for one and a half times it is taken for dead.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Longest wait for the TCP connection and the CONNACK, and for one write to complete.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect delays grow from the first to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Room kept free in the read buffer before each read.
const READ_CHUNK: usize = 64 * 1024;
/// Packet ids of our SUBSCRIBE and UNSUBSCRIBE (the only packet ids we choose).
const SUBSCRIBE_PKID: u16 = 1;
const UNSUBSCRIBE_PKID: u16 = 2;

/// What acknowledges one delivered message: the connection it came on and its packet id.
/// An acknowledgement is written only on the connection the message came on; after a
/// reconnect the broker delivers unacknowledged messages again (stored once: samples are
/// deduplicated), and a packet id of the old connection may already name another message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MqttReceipt {
    link: u64,
    pkid: u16,
    qos: QoS,
}

/// When the task stops forwarding messages (`intake`: shutdown begins) and when it stops
/// altogether (`polling`: the writer is done). It also stops once the writer has dropped
/// its acknowledgement sender, after writing what it sent.
pub(crate) struct Stops {
    pub intake: CancellationToken,
    pub polling: CancellationToken,
}

/// The connection task's inputs and outputs.
pub(crate) struct Link {
    pub cfg: Config,
    pub deliveries: mpsc::UnboundedSender<Delivery>,
    pub acks: mpsc::UnboundedReceiver<Vec<MqttReceipt>>,
    pub in_hand: InHand,
    pub connected: Arc<AtomicBool>,
    pub stops: Stops,
}

/// The connection's byte stream: plain TCP, or TLS over it.
trait Wire: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Wire for T {}

type Stream = Box<dyn Wire>;

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("network: {0}")]
    Io(std::io::Error),
    /// The handshake failed or the peer ended the TLS session with an alert: a broker
    /// certificate the roots do not vouch for or not naming the host, a client certificate
    /// the broker refused. Retrying alone rarely mends it.
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the broker closed the connection")]
    Closed,
    #[error("the broker refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("malformed packet from the broker: {0}")]
    Codec(CodecError),
    #[error("unexpected packet from the broker: {0}")]
    Unexpected(&'static str),
    #[error("the broker sent nothing for {0:?}")]
    Silent(Duration),
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        // rustls' own errors travel inside the I/O errors tokio-rustls returns.
        if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) { Self::Tls(e) } else { Self::Io(e) }
    }
}

/// Runs the connection until shutdown: connects, subscribes on every connection (the
/// session is persistent, but a broker may have lost it), forwards publishes, writes acks,
/// and reconnects with capped backoff.
///
/// It never waits on the batcher: the same task that reads messages also writes our acks, so
/// waiting on a full queue would hold back the acks that would free it. Instead it stops
/// reading while [`max_in_hand`] messages are in hand and goes on writing acks; the broker
/// holds the rest (its queue for our session), and the broker's own in-flight window, where
/// it keeps to it, bounds what we hold further.
pub(crate) async fn run(mut link: Link) {
    let mut backoff = BACKOFF_FIRST;
    let mut generation = 0u64;
    // A TLS failure is logged once, as an error, until it changes or the connection is made.
    let mut tls_failure: Option<String> = None;
    loop {
        if link.stops.intake.is_cancelled() && link.acks.is_closed() {
            // Shut down while disconnected: nothing is left to acknowledge.
            break;
        }
        let outcome = tokio::select! {
            () = link.stops.polling.cancelled() => break,
            opened = open(&link.cfg) => opened,
        };
        let ended = match outcome {
            Ok((stream, buf, session_present)) => {
                generation += 1;
                tls_failure = None;
                link.connected.store(true, Ordering::Relaxed);
                backoff = BACKOFF_FIRST;
                tracing::info!(mqtt.session_present = session_present, "connected to the MQTT broker");
                let ended = session(&mut link, stream, buf, generation).await;
                link.connected.store(false, Ordering::Relaxed);
                ended
            }
            Err(e) => Err(e),
        };
        match ended {
            // Shutdown: the writer is done or polling was stopped.
            Ok(()) => break,
            Err(e) if link.stops.intake.is_cancelled() => {
                tracing::debug!(error = %e, "MQTT connection closed while shutting down");
                break;
            }
            Err(e @ LinkError::Tls(_)) => {
                metrics::counter!("fleet_ingest_connection_errors_total").increment(1);
                let text = e.to_string();
                if tls_failure.as_ref() == Some(&text) {
                    tracing::debug!(error = %text, "TLS to the MQTT broker failed again");
                } else {
                    tracing::error!(
                        error = %text,
                        mqtt.host = %link.cfg.host,
                        "TLS to the MQTT broker failed (check FLEET_MQTT_CA_FILE, the broker's certificate and host name, the client certificate); retrying"
                    );
                    tls_failure = Some(text);
                }
            }
            Err(e) => {
                metrics::counter!("fleet_ingest_connection_errors_total").increment(1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
            }
        }
        tokio::select! {
            () = link.stops.polling.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
    link.connected.store(false, Ordering::Relaxed);
}

/// Connects and logs in with a persistent session; returns the stream, what was read past
/// the CONNACK, and whether the broker kept our session.
async fn open(cfg: &Config) -> Result<(Stream, BytesMut, bool), LinkError> {
    let tcp = within(TcpStream::connect((cfg.host.as_str(), cfg.port))).await??;
    tcp.set_nodelay(true)?;
    let mut stream: Stream = match &cfg.tls {
        None => Box::new(tcp),
        Some(tls) => {
            let name = ServerName::try_from(cfg.host.clone())
                .map_err(|e| LinkError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
            Box::new(within(connector.connect(name, tcp)).await??)
        }
    };
    let mut connect = rumqttc::Connect::new(cfg.client_id.clone());
    connect.keep_alive = KEEP_ALIVE.as_secs() as u16;
    connect.clean_session = false;
    if let Some(user) = &cfg.username {
        connect.set_login(user.clone(), cfg.password.as_ref().map(|p| p.expose().to_owned()).unwrap_or_default());
    }
    let mut out = BytesMut::new();
    encode(&Packet::Connect(connect), &mut out);
    within(stream.write_all(&out)).await??;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let ack = loop {
        if let Some(packet) = next_packet(&mut buf)? {
            break packet;
        }
        buf.reserve(READ_CHUNK);
        if within(stream.read_buf(&mut buf)).await?? == 0 {
            return Err(LinkError::Closed);
        }
    };
    match ack {
        Packet::ConnAck(a) if a.code == ConnectReturnCode::Success => Ok((stream, buf, a.session_present)),
        Packet::ConnAck(a) => Err(LinkError::Refused(a.code)),
        _ => Err(LinkError::Unexpected("expected CONNACK")),
    }
}

/// One connection's life after the CONNACK.
async fn session(link: &mut Link, mut stream: Stream, mut buf: BytesMut, generation: u64) -> Result<(), LinkError> {
    let prefix = &link.cfg.subscription_prefix;
    let emqx = link.cfg.emqx_gateways;
    let filters = [JSON_TOPIC_FILTER, GBT32960_TOPIC_FILTER]
        .into_iter()
        .chain(emqx.filters(true))
        .map(|t| SubscribeFilter::new(format!("{prefix}{t}"), QoS::AtLeastOnce));
    let mut subscribe = Subscribe::new_many(filters);
    subscribe.pkid = SUBSCRIBE_PKID;
    let mut out = BytesMut::new();
    encode(&Packet::Subscribe(subscribe), &mut out);
    // The session is persistent: an EMQX gateway read before and turned off since would
    // still be delivered. Dropping a subscription the session does not have is harmless.
    let unread = emqx.filters(false);
    if !unread.is_empty() {
        let topics = unread.into_iter().map(|t| format!("{prefix}{t}")).collect();
        encode(&Packet::Unsubscribe(Unsubscribe { pkid: UNSUBSCRIBE_PKID, topics }), &mut out);
    }
    send(&mut stream, &mut out).await?;
    let mut last_write = Instant::now();
    let mut last_read = Instant::now();
    let mut tick = tokio::time::interval(KEEP_ALIVE / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut paused = false;
    loop {
        // Packets already read (the CONNACK's leftovers, or the last read's) first.
        while let Some(packet) = next_packet(&mut buf)? {
            incoming(link, packet, generation, &mut out)?;
        }
        if !out.is_empty() {
            send(&mut stream, &mut out).await?;
            last_write = Instant::now();
        }
        let full = link.in_hand.get() >= max_in_hand(&link.cfg);
        if full && !paused {
            metrics::counter!("fleet_ingest_read_pauses_total").increment(1);
        }
        paused = full;
        if paused {
            // Not reading is our choice, not the broker's silence.
            last_read = Instant::now();
        }
        tokio::select! {
            // Acks first: they free the broker's window for the next messages.
            biased;
            batch = link.acks.recv() => {
                let Some(batch) = batch else {
                    // The writer is done (shutdown): everything it acked is written.
                    disconnect(&mut stream).await;
                    return Ok(());
                };
                let mut n = encode_acks(&batch, generation, &mut out);
                while let Ok(more) = link.acks.try_recv() {
                    n += encode_acks(&more, generation, &mut out);
                }
                if n > 0 {
                    metrics::counter!("fleet_ingest_acks_written_total").increment(n as u64);
                    metrics::counter!("fleet_ingest_ack_writes_total").increment(1);
                }
            }
            () = link.stops.polling.cancelled() => {
                disconnect(&mut stream).await;
                return Ok(());
            }
            read = stream.read_buf(reserve(&mut buf)), if !paused => {
                if read? == 0 {
                    return Err(LinkError::Closed);
                }
                last_read = Instant::now();
            }
            _ = tick.tick() => {
                let silent = last_read.elapsed();
                if silent > KEEP_ALIVE + KEEP_ALIVE / 2 {
                    return Err(LinkError::Silent(silent));
                }
                if last_write.elapsed() >= KEEP_ALIVE / 2 {
                    encode(&Packet::PingReq, &mut out);
                }
            }
        }
    }
}

/// Handles one packet read on an open session; replies go to `out`.
fn incoming(link: &Link, packet: Packet, generation: u64, out: &mut BytesMut) -> Result<(), LinkError> {
    match packet {
        Packet::Publish(p) => {
            metrics::counter!("fleet_ingest_messages_received_total").increment(1);
            if link.stops.intake.is_cancelled() {
                // Left unacknowledged: the broker delivers it again after the restart.
                return Ok(());
            }
            let n = link.in_hand.received();
            // Set on arrival too, not only after commits: messages piling up while commits
            // fail (a database outage) must show.
            metrics::gauge!("fleet_ingest_messages_in_hand").set(n as f64);
            let receipt = Receipt::Mqtt(MqttReceipt { link: generation, pkid: p.pkid, qos: p.qos });
            let delivery = match unread_gateway(link.cfg.emqx_gateways, &p) {
                Some(dead) => Delivery { content: Content::Rejected(dead), receipt },
                None => Delivery::publish(p, receipt),
            };
            // An error means the batcher is gone (shutting down): the message stays unacked.
            let _ = link.deliveries.send(delivery);
        }
        // Second half of a QoS 2 delivery (we answered its PUBLISH with PUBREC after the
        // commit): the broker releases the packet id.
        Packet::PubRel(r) => encode(&Packet::PubComp(PubComp::new(r.pkid)), out),
        Packet::SubAck(ack) => {
            if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                tracing::error!("the broker refused a subscription: check the account's ACL");
            }
        }
        Packet::PingResp => {}
        // Acks of packets we never publish: nothing to do.
        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) | Packet::UnsubAck(_) => {}
        Packet::ConnAck(_) => return Err(LinkError::Unexpected("a second CONNACK")),
        Packet::Connect(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) | Packet::PingReq | Packet::Disconnect => {
            return Err(LinkError::Unexpected("a client-to-server packet"));
        }
    }
    Ok(())
}

/// The dead letter of a message from an EMQX gateway fleetd does not read: delivered before
/// the session's old subscription to it was dropped (see `session`). It is acknowledged
/// like any rejected message, and not read.
fn unread_gateway(read: EmqxGateways, p: &Publish) -> Option<DeadLetter> {
    let topic = EmqxTopic::parse(&p.topic).filter(|t| !read.reads(*t))?;
    let (vin, gateway) = match topic {
        EmqxTopic::Gbt32960 { vin, .. } => (Some(vin), "gbt32960"),
        EmqxTopic::Jt808 { .. } => (None, "jt808"),
    };
    let detail = format!("EMQX's {gateway} gateway is not read here (FLEET_EMQX_GATEWAYS)");
    Some(DeadLetter::new(&p.topic, vin, DeadLetterReason::BadTopic, detail, &p.payload))
}

/// Appends the acknowledgements of this connection's messages to `out`; returns how many.
/// QoS 0 messages need none; QoS 2 ones get their PUBREC.
fn encode_acks(receipts: &[MqttReceipt], generation: u64, out: &mut BytesMut) -> usize {
    let mut n = 0;
    for r in receipts.iter().filter(|r| r.link == generation) {
        match r.qos {
            QoS::AtMostOnce => continue,
            QoS::AtLeastOnce => encode(&Packet::PubAck(PubAck::new(r.pkid)), out),
            QoS::ExactlyOnce => encode(&Packet::PubRec(PubRec::new(r.pkid)), out),
        }
        n += 1;
    }
    n
}

/// The next whole packet in `buf`, if one is there.
fn next_packet(buf: &mut BytesMut) -> Result<Option<Packet>, LinkError> {
    match Packet::read(buf, MAX_INCOMING_PACKET.max(MAX_MESSAGE_BYTES)) {
        Ok(p) => Ok(Some(p)),
        Err(CodecError::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(LinkError::Codec(e)),
    }
}

fn reserve(buf: &mut BytesMut) -> &mut BytesMut {
    buf.reserve(READ_CHUNK);
    buf
}

/// Serializes a packet we build ourselves (small, well-formed: cannot fail).
fn encode(packet: &Packet, out: &mut BytesMut) {
    if let Err(e) = packet.write(out, usize::MAX) {
        tracing::error!(error = %e, "cannot encode an MQTT packet");
    }
}

async fn send(stream: &mut Stream, out: &mut BytesMut) -> Result<(), LinkError> {
    within(stream.write_all(out)).await??;
    out.clear();
    Ok(())
}

/// Best effort: tells the broker we leave on purpose (no will, the session stays).
async fn disconnect(stream: &mut Stream) {
    let mut out = BytesMut::new();
    encode(&Packet::Disconnect, &mut out);
    let _ = within(stream.write_all(&out)).await;
    let _ = within(stream.shutdown()).await;
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> Result<T, LinkError> {
    tokio::time::timeout(NETWORK_TIMEOUT, f).await.map_err(|_| LinkError::Timeout(NETWORK_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use rumqttc::Publish;

    use super::*;

    fn receipt(link: u64, pkid: u16, qos: QoS) -> MqttReceipt {
        MqttReceipt { link, pkid, qos }
    }

    #[test]
    fn acks_are_written_only_for_this_connection_and_by_qos() {
        let receipts = [
            receipt(2, 7, QoS::AtLeastOnce),
            receipt(1, 8, QoS::AtLeastOnce),
            receipt(2, 9, QoS::AtMostOnce),
            receipt(2, 10, QoS::ExactlyOnce),
            receipt(2, 300, QoS::AtLeastOnce),
        ];
        let mut out = BytesMut::new();
        assert_eq!(encode_acks(&receipts, 2, &mut out), 3);
        // MQTT 3.1.1 §3.4 PUBACK = 0x40 0x02 id; §3.5 PUBREC = 0x50 0x02 id (ids big-endian).
        assert_eq!(&out[..], &[0x40, 2, 0, 7, 0x50, 2, 0, 10, 0x40, 2, 0x01, 0x2C]);
        let mut none = BytesMut::new();
        assert_eq!(encode_acks(&receipts, 3, &mut none), 0, "acks of an earlier connection are dropped");
        assert!(none.is_empty());
    }

    #[test]
    fn messages_of_an_emqx_gateway_not_read_are_dead_lettered_as_a_bad_topic() {
        let publish = |topic: &str| Publish::new(topic, QoS::AtLeastOnce, b"{}".to_vec());
        let jt808 = publish("jt808/13912345678/13912345678/up");
        let dead = unread_gateway(EmqxGateways { gbt32960: true, jt808: false }, &jt808).expect("jt808 is not read");
        assert_eq!((dead.reason, dead.vin.as_deref()), (DeadLetterReason::BadTopic, None));
        assert!(dead.detail.contains("FLEET_EMQX_GATEWAYS"), "{}", dead.detail);
        assert!(unread_gateway(EmqxGateways::ALL, &jt808).is_none());
        let gbt = publish("gbt32960/LSJA24U66NS000001/upstream/reinfo");
        let dead = unread_gateway(EmqxGateways::default(), &gbt).expect("gbt32960 is not read");
        assert_eq!(dead.vin.as_deref(), Some("LSJA24U66NS000001"));
        let own = publish("fleet/v1/vehicles/LSJA24U66NS000001/telemetry");
        assert!(unread_gateway(EmqxGateways::default(), &own).is_none(), "fleetd's own topics are always read");
    }

    #[test]
    fn packets_are_taken_whole_from_the_read_buffer() {
        let mut wire = BytesMut::new();
        let mut p = Publish::new("fleet/v1/vehicles/LSVAU2180N2183294/telemetry", QoS::AtLeastOnce, vec![b'x'; 300]);
        p.pkid = 42;
        encode(&Packet::Publish(p), &mut wire);
        encode(&Packet::PingResp, &mut wire);
        let whole = wire.clone();
        // Byte by byte: nothing until the publish is complete, then exactly it.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in whole.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(packet) = next_packet(&mut buf).unwrap() {
                got.push(packet);
            }
        }
        assert_eq!(got.len(), 2);
        match &got[0] {
            Packet::Publish(p) => assert_eq!((p.pkid, p.payload.len(), p.qos), (42, 300, QoS::AtLeastOnce)),
            other => panic!("expected the publish, got {other:?}"),
        }
        assert!(matches!(got[1], Packet::PingResp));
        assert!(buf.is_empty());
        // A packet type no broker sends is an error, not a stall.
        let mut bad = BytesMut::from(&[0xF0u8, 0x00][..]);
        assert!(next_packet(&mut bad).is_err());
    }
}
