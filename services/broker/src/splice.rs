//! One vehicle's connection after its login: bytes go between the vehicle and the internal
//! broker as they come, framed by the MQTT fixed header only, and the few packets the ACL
//! cares about are looked into on the way.
//!
//! Vehicle → broker: a PUBLISH outside the vehicle's own tree is dropped and answered as
//! Mosquitto answers an ACL refusal to an MQTT 3.1.1 client (PUBACK for QoS 1, PUBREC then
//! PUBCOMP for QoS 2: the protocol has no way to say no); a SUBSCRIBE's refused filters are
//! taken out and answered 0x80 in the SUBACK; anything else passes untouched. Only a
//! PUBLISH's topic (at most 64 KiB) and a whole SUBSCRIBE are ever held: payloads stream
//! through. Broker → vehicle: passes untouched but for the SUBACKs of rewritten SUBSCRIBEs.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::FixedHeader;
use rumqttc::{Packet, SubAck, Subscribe, SubscribeReasonCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{EMBEDDED_MAX_PAYLOAD, acl, refused};

/// Room kept free in a read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;
/// Largest SUBSCRIBE taken (it is held whole to be checked); a larger one ends the connection.
const MAX_SUBSCRIBE_BYTES: usize = 64 * 1024;
/// Largest SUBACK held whole to be rewritten (one code per filter of a SUBSCRIBE above).
const MAX_SUBACK_BYTES: usize = MAX_SUBSCRIBE_BYTES;
/// SUBSCRIBEs with refused filters awaiting their SUBACK; a client with more outstanding
/// is not waiting for answers, and its connection ends.
const MAX_PENDING_REWRITES: usize = 32;
/// Answers of our own (to refused publishes and subscriptions) queued for the vehicle. When
/// full, reading from the vehicle waits: a client that does not read its answers slows
/// itself down only.
const ANSWER_QUEUE: usize = 64;

/// Why a connection was ended from our side.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpliceError {
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("packet of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("{0} SUBSCRIBEs left unanswered")]
    TooManyPending(usize),
}

/// For each SUBSCRIBE forwarded without some of its filters (by packet id): which of the
/// original filters were forwarded, in order.
type Rewrites = Mutex<HashMap<u16, Vec<bool>>>;

/// Relays between `client` (logged in as `vin`) and `broker` until either side closes.
/// `pending` holds what the client sent after its CONNECT.
pub(crate) async fn run(
    mut client: TcpStream,
    mut broker: TcpStream,
    pending: BytesMut,
    vin: &str,
) -> Result<(), SpliceError> {
    let (client_read, client_write) = client.split();
    let (broker_read, broker_write) = broker.split();
    let rewrites = Rewrites::default();
    let (answers, answers_rx) = mpsc::channel(ANSWER_QUEUE);
    let up = Upstream { vin, rewrites: &rewrites, answers, dropped_qos2: HashSet::new(), warned: false };
    tokio::select! {
        r = up.run(client_read, broker_write, pending) => r,
        r = downstream(broker_read, client_write, &rewrites, answers_rx) => r,
    }
}

/// A frame's fixed header: the first byte, the header's length and the remaining length.
/// `None` until the header is whole.
pub(crate) fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, SpliceError> {
    let Some(&byte1) = buf.first() else { return Ok(None) };
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else { return Ok(None) };
        remaining |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((byte1, 2 + i, remaining)));
        }
    }
    Err(SpliceError::Malformed("remaining length over four bytes"))
}

/// The rest of the frame being relayed: passed on, or dropped.
#[derive(Clone, Copy)]
enum Rest {
    Pass(usize),
    Skip(usize),
}

struct Upstream<'a> {
    vin: &'a str,
    rewrites: &'a Rewrites,
    answers: mpsc::Sender<Bytes>,
    /// Packet ids of refused QoS 2 publishes answered PUBREC, whose PUBREL we answer too
    /// (the broker never saw them).
    dropped_qos2: HashSet<u16>,
    /// A refusal is logged once per connection; the metric counts each.
    warned: bool,
}

impl Upstream<'_> {
    async fn run(
        mut self,
        mut from: impl AsyncRead + Unpin,
        mut to: impl AsyncWrite + Unpin,
        mut buf: BytesMut,
    ) -> Result<(), SpliceError> {
        let mut rest = Rest::Pass(0);
        let mut out = BytesMut::new();
        loop {
            loop {
                match rest {
                    Rest::Pass(n) | Rest::Skip(n) if n > 0 => {
                        let k = n.min(buf.len());
                        if k == 0 {
                            break;
                        }
                        if let Rest::Pass(_) = rest {
                            out.extend_from_slice(&buf[..k]);
                            rest = Rest::Pass(n - k);
                        } else {
                            rest = Rest::Skip(n - k);
                        }
                        buf.advance(k);
                        continue;
                    }
                    _ => {}
                }
                match self.frame(&mut buf, &mut out).await? {
                    Some(next) => rest = next,
                    None => break,
                }
            }
            if !out.is_empty() {
                to.write_all(&out).await?;
                out.clear();
            }
            buf.reserve(READ_CHUNK);
            if from.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Looks at the frame starting `buf`: what to do with it, or `None` until more bytes
    /// are in. A frame handled whole here is consumed and `Skip(0)` returned.
    async fn frame(&mut self, buf: &mut BytesMut, out: &mut BytesMut) -> Result<Option<Rest>, SpliceError> {
        let Some((byte1, header, remaining)) = fixed_header(buf)? else { return Ok(None) };
        if remaining > EMBEDDED_MAX_PAYLOAD {
            return Err(SpliceError::TooLarge(remaining));
        }
        let whole = header + remaining;
        match byte1 >> 4 {
            // PUBLISH: the topic decides.
            3 => {
                let Some(len) = buf.get(header..header + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                else {
                    return Ok(None);
                };
                let qos = (byte1 >> 1) & 0b11;
                let need = 2 + len + if qos > 0 { 2 } else { 0 };
                if need > remaining {
                    return Err(SpliceError::Malformed("PUBLISH shorter than its topic"));
                }
                if buf.len() < header + need {
                    return Ok(None);
                }
                if acl::may_publish(self.vin, &buf[header + 2..header + 2 + len]) {
                    return Ok(Some(Rest::Pass(whole)));
                }
                self.refuse("foreign_publish");
                let pkid = || u16::from_be_bytes([buf[header + 2 + len], buf[header + 3 + len]]);
                match qos {
                    0 => {}
                    1 => self.answer(ack(0x40, pkid())).await,
                    _ => {
                        let id = pkid();
                        self.dropped_qos2.insert(id);
                        self.answer(ack(0x50, id)).await;
                    }
                }
                Ok(Some(Rest::Skip(whole)))
            }
            // PUBREL of a refused QoS 2 publish: ours to complete.
            6 if remaining == 2 => {
                if buf.len() < whole {
                    return Ok(None);
                }
                let id = u16::from_be_bytes([buf[header], buf[header + 1]]);
                if self.dropped_qos2.remove(&id) {
                    buf.advance(whole);
                    self.answer(ack(0x70, id)).await;
                    return Ok(Some(Rest::Skip(0)));
                }
                Ok(Some(Rest::Pass(whole)))
            }
            8 => {
                if whole > MAX_SUBSCRIBE_BYTES {
                    return Err(SpliceError::TooLarge(whole));
                }
                if buf.len() < whole {
                    return Ok(None);
                }
                let frame = buf.split_to(whole).freeze();
                self.subscribe(byte1, header, frame, out).await?;
                Ok(Some(Rest::Skip(0)))
            }
            1 => Err(SpliceError::Malformed("a second CONNECT")),
            _ => Ok(Some(Rest::Pass(whole))),
        }
    }

    /// A SUBSCRIBE: forwarded as is when every filter is allowed, without the refused ones
    /// otherwise (their SUBACK codes are put back on the way down), and answered here when
    /// none is allowed.
    async fn subscribe(
        &mut self,
        byte1: u8,
        header: usize,
        frame: Bytes,
        out: &mut BytesMut,
    ) -> Result<(), SpliceError> {
        let fixed = FixedHeader::new(byte1, header - 1, frame.len() - header);
        let sub = Subscribe::read(fixed, frame.clone()).map_err(|_| SpliceError::Malformed("SUBSCRIBE"))?;
        let allowed: Vec<bool> = sub.filters.iter().map(|f| acl::may_subscribe(self.vin, &f.path)).collect();
        if allowed.iter().all(|a| *a) {
            out.extend_from_slice(&frame);
            return Ok(());
        }
        self.refuse("foreign_subscribe");
        if !allowed.iter().any(|a| *a) {
            let codes = vec![SubscribeReasonCode::Failure; allowed.len()];
            self.answer(encode(&Packet::SubAck(SubAck::new(sub.pkid, codes)))).await;
            return Ok(());
        }
        let kept = sub.filters.iter().zip(&allowed).filter(|(_, a)| **a).map(|(f, _)| f.clone());
        let mut forwarded = Subscribe::new_many(kept);
        forwarded.pkid = sub.pkid;
        {
            let mut rewrites = self.rewrites.lock().unwrap_or_else(|e| e.into_inner());
            if rewrites.len() >= MAX_PENDING_REWRITES {
                return Err(SpliceError::TooManyPending(rewrites.len()));
            }
            // Registered before the SUBSCRIBE leaves, so the SUBACK always finds it.
            rewrites.insert(sub.pkid, allowed);
        }
        out.extend_from_slice(&encode(&Packet::Subscribe(forwarded)));
        Ok(())
    }

    fn refuse(&mut self, reason: &'static str) {
        refused(reason);
        if !self.warned {
            self.warned = true;
            tracing::warn!(vehicle.vin = %self.vin, reason, "refused a vehicle's publish or subscription outside its own topics (logged once per connection)");
        }
    }

    async fn answer(&self, packet: Bytes) {
        // Fails only when the way down has ended, and the connection with it.
        let _ = self.answers.send(packet).await;
    }
}

/// Broker → vehicle, with our own answers merged in.
async fn downstream(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    rewrites: &Rewrites,
    mut answers: mpsc::Receiver<Bytes>,
) -> Result<(), SpliceError> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::new();
    let mut rest = 0usize;
    loop {
        tokio::select! {
            biased;
            Some(answer) = answers.recv() => {
                to.write_all(&answer).await?;
                continue;
            }
            read = from.read_buf(&mut buf) => {
                if read? == 0 {
                    return Ok(());
                }
            }
        }
        loop {
            if rest > 0 {
                let k = rest.min(buf.len());
                if k == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..k]);
                buf.advance(k);
                rest -= k;
                continue;
            }
            let Some((byte1, header, remaining)) = fixed_header(&buf)? else { break };
            let whole = header + remaining;
            if byte1 >> 4 == 9 && whole <= MAX_SUBACK_BYTES && remaining >= 2 {
                if buf.len() < whole {
                    break;
                }
                let id = u16::from_be_bytes([buf[header], buf[header + 1]]);
                let mask = rewrites.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                if let Some(mask) = mask {
                    let frame = buf.split_to(whole);
                    out.extend_from_slice(&restore_suback(id, &frame[header + 2..], &mask));
                    continue;
                }
            }
            rest = whole;
        }
        if !out.is_empty() {
            to.write_all(&out).await?;
            out.clear();
        }
        buf.reserve(READ_CHUNK);
    }
}

/// The SUBACK the vehicle expects: the broker's codes for the filters it was given, 0x80
/// for the ones taken out.
fn restore_suback(pkid: u16, codes: &[u8], forwarded: &[bool]) -> Bytes {
    let mut given = codes.iter();
    let codes = forwarded
        .iter()
        .map(|f| match (f, f.then(|| given.next()).flatten()) {
            (true, Some(&c)) => SubscribeReasonCode::try_from(c).unwrap_or(SubscribeReasonCode::Failure),
            _ => SubscribeReasonCode::Failure,
        })
        .collect();
    encode(&Packet::SubAck(SubAck::new(pkid, codes)))
}

/// A two-byte acknowledgement (PUBACK 0x40, PUBREC 0x50, PUBCOMP 0x70).
fn ack(byte1: u8, pkid: u16) -> Bytes {
    let mut b = BytesMut::with_capacity(4);
    b.put_u8(byte1);
    b.put_u8(2);
    b.put_u16(pkid);
    b.freeze()
}

/// Serializes a packet we build (well-formed and within limits: cannot fail).
pub(crate) fn encode(packet: &Packet) -> Bytes {
    let mut out = BytesMut::new();
    if let Err(e) = packet.write(&mut out, usize::MAX) {
        tracing::error!(error = %e, "cannot encode an MQTT packet");
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_headers_are_read_whole_or_not_at_all() {
        assert_eq!(fixed_header(&[]).unwrap(), None);
        assert_eq!(fixed_header(&[0x30]).unwrap(), None);
        assert_eq!(fixed_header(&[0x30, 0x05]).unwrap(), Some((0x30, 2, 5)));
        // 321 = 0xC1 0x02 (MQTT 3.1.1 §2.2.3).
        assert_eq!(fixed_header(&[0x30, 0xC1]).unwrap(), None);
        assert_eq!(fixed_header(&[0x30, 0xC1, 0x02]).unwrap(), Some((0x30, 3, 321)));
        assert!(fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    #[test]
    fn a_rewritten_suback_gets_0x80_where_filters_were_taken_out() {
        let b = restore_suback(7, &[0x01, 0x00], &[false, true, false, true]);
        assert_eq!(&b[..], &[0x90, 6, 0, 7, 0x80, 0x01, 0x80, 0x00]);
        // A broker answering fewer codes than it was given filters: the missing ones fail.
        let b = restore_suback(7, &[], &[true]);
        assert_eq!(&b[..], &[0x90, 3, 0, 7, 0x80]);
    }

    /// Runs the upstream side over in-memory pipes: what reaches the broker, what is
    /// answered to the vehicle.
    async fn upstream(vin: &str, wire: &[u8]) -> (Vec<u8>, Vec<Bytes>, Vec<u16>) {
        let rewrites = Rewrites::default();
        let (tx, mut rx) = mpsc::channel(ANSWER_QUEUE);
        let up = Upstream { vin, rewrites: &rewrites, answers: tx, dropped_qos2: HashSet::new(), warned: false };
        let mut to = Vec::new();
        up.run(wire, &mut to, BytesMut::new()).await.unwrap();
        let mut answers = Vec::new();
        while let Ok(a) = rx.try_recv() {
            answers.push(a);
        }
        let pending = rewrites.into_inner().unwrap().into_keys().collect();
        (to, answers, pending)
    }

    fn publish(topic: &str, qos: rumqttc::QoS, pkid: u16, payload: &[u8]) -> Bytes {
        let mut p = rumqttc::Publish::new(topic, qos, payload.to_vec());
        p.pkid = pkid;
        encode(&Packet::Publish(p))
    }

    #[tokio::test]
    async fn foreign_publishes_are_dropped_and_answered_own_ones_pass_byte_for_byte() {
        use rumqttc::QoS::*;
        let vin = "LSJA24U66NS000001";
        let own = publish(&format!("fleet/v1/vehicles/{vin}/telemetry"), AtLeastOnce, 1, &[b'x'; 40_000]);
        let wire = [
            own.clone(),
            publish("fleet/v1/vehicles/LSJA24U66NS000002/telemetry", AtLeastOnce, 2, b"forged"),
            publish("fleet/v1/vehicles/LSJA24U66NS000002/telemetry", AtMostOnce, 0, b"forged"),
            publish("fleet/v1/vehicles/LSJA24U66NS000002/telemetry", ExactlyOnce, 3, b"forged"),
            ack(0x62, 3),
            ack(0x62, 9),
            encode(&Packet::PingReq),
        ]
        .concat();
        let (to, answers, _) = upstream(vin, &wire).await;
        let expected = [own.to_vec(), ack(0x62, 9).to_vec(), vec![0xC0, 0]].concat();
        assert_eq!(to, expected, "the own publish, the unknown PUBREL and the ping pass; nothing forged does");
        assert_eq!(answers, vec![ack(0x40, 2), ack(0x50, 3), ack(0x70, 3)]);
    }

    #[tokio::test]
    async fn refused_filters_are_taken_out_of_a_subscribe() {
        use rumqttc::{QoS, SubscribeFilter};
        let vin = "LSJA24U66NS000001";
        let own = format!("fleet/v1/vehicles/{vin}/#");
        let sub = |pkid: u16, filters: &[&str]| {
            let mut s =
                Subscribe::new_many(filters.iter().map(|f| SubscribeFilter::new((*f).to_owned(), QoS::AtLeastOnce)));
            s.pkid = pkid;
            encode(&Packet::Subscribe(s))
        };
        let wire = [sub(1, &[&own]), sub(2, &["#", &own]), sub(3, &["fleet/v1/vehicles/+/telemetry"])].concat();
        let (to, answers, pending) = upstream(vin, &wire).await;
        assert_eq!(to, [sub(1, &[&own]), sub(2, &[&own])].concat());
        assert_eq!(answers, vec![encode(&Packet::SubAck(SubAck::new(3, vec![SubscribeReasonCode::Failure])))]);
        assert_eq!(pending, vec![2], "the SUBACK of the rewritten SUBSCRIBE is awaited");
    }
}
