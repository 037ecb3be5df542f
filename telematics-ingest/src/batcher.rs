//! Decodes messages and gathers them into batches for the writer.

use std::time::Duration;

use fleet_domain::{DeadLetter, DeadLetterReason, Sample, Vin};
use rumqttc::Publish;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::ClockCheck;
use crate::decode::{gbt32960, json};
use crate::delivery::{Content, Delivery, Receipt};
use crate::registry::Registry;
use crate::{MAX_MESSAGE_BYTES, TopicKind, parse_topic};

/// Pause between attempts to reach storage for a registry lookup.
const REGISTRY_RETRY: Duration = Duration::from_millis(500);
/// How long a batch waits for the next message when none is at hand and the writer is free.
/// Under load messages come microseconds apart, and the batch fills for up to the batch delay
/// (a burst of 50,000 messages a second otherwise went as thousands of commits of a dozen
/// messages each, every one a transaction and a WAL flush); at a fleet's normal rate the gap
/// is longer, and a batch costs its messages at most this much latency (tokio's timer rounds
/// up to the next millisecond).
const LINGER: Duration = Duration::from_millis(1);

/// Invalid samples of one message named in its dead letter's detail.
const DETAIL_MAX_ERRORS: usize = 10;

/// Decoded messages ready to commit together.
#[derive(Default)]
pub(crate) struct Batch {
    pub samples: Vec<Sample>,
    pub dead: Vec<DeadLetter>,
    /// The messages to acknowledge once the batch is committed.
    pub acks: Vec<Receipt>,
}

pub(crate) async fn run(
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    tx: mpsc::Sender<Batch>,
    mut registry: Registry,
    max_batch: usize,
    max_delay: Duration,
    mut clock: ClockCheck,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            () = shutdown.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut batch = Batch::default();
        if !add(&mut batch, first, &mut registry, &mut clock, &tx).await {
            return;
        }
        // Gather up to the batch size; hand the batch over when nothing more comes within
        // `LINGER` or it is `max_delay` old, if the writer can take it. While the writer is
        // busy (the batch before waits in the queue), go on gathering until it can: batches
        // grow with the load, and a burst is committed in few large transactions instead of
        // many small ones (each a WAL flush; on PostgreSQL a batch under `COPY_MIN_ROWS` goes
        // by the slower INSERT). A broker that holds back all but a few unacked messages does
        // not stall this: the writer's progress frees the queue, and the batch goes then.
        let deadline = Instant::now() + max_delay;
        while batch.acks.len() < max_batch {
            let writer_free = tx.capacity() > 0;
            if writer_free && Instant::now() >= deadline {
                break;
            }
            let msg = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::task::yield_now().await;
                    rx.try_recv().ok()
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            let msg = match msg {
                Some(m) => m,
                // The writer is free. A stream that goes on (the next message within
                // `LINGER`) fills the batch up to its age; one that paused is committed now.
                None if tx.capacity() > 0 => match tokio::time::timeout(LINGER, rx.recv()).await {
                    Ok(Some(m)) => m,
                    Ok(None) | Err(_) => break,
                },
                // The writer is busy: the next message or a free queue, whichever comes first.
                None => tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => m,
                        None => break,
                    },
                    _ = tx.reserve() => break,
                    () = shutdown.cancelled() => break,
                },
            };
            if !add(&mut batch, msg, &mut registry, &mut clock, &tx).await {
                return;
            }
        }
        metrics::histogram!("fleet_ingest_batch_messages").record(batch.acks.len() as f64);
        if tx.send(batch).await.is_err() {
            return;
        }
    }
    // Shutting down: what is already queued is committed; later messages stay unacked and
    // are redelivered after the restart.
    let mut batch = Batch::default();
    while let Ok(msg) = rx.try_recv() {
        if !add(&mut batch, msg, &mut registry, &mut clock, &tx).await {
            return;
        }
    }
    if !batch.acks.is_empty() {
        let _ = tx.send(batch).await;
    }
}

/// Decodes one message into the batch. False when the writer is gone.
async fn add(
    batch: &mut Batch,
    msg: Delivery,
    registry: &mut Registry,
    clock: &mut ClockCheck,
    tx: &mpsc::Sender<Batch>,
) -> bool {
    let Delivery { content, mut receipt } = msg;
    let decoded = match content {
        Content::Publish(publish) => decode(&publish, registry, tx).await,
        Content::Rejected(dead) => Some(Decoded { samples: Vec::new(), dead: Some(dead) }),
        Content::Decoded { samples, dead } => Some(Decoded { samples, dead }),
    };
    match decoded {
        Some(Decoded { mut samples, dead }) => {
            // Received now: the message waited at most microseconds since it was read.
            clock.check(&mut samples, chrono::Utc::now());
            if let Some(d) = &dead {
                receipt.note_rejected(d.reason);
            }
            batch.samples.extend(samples);
            batch.dead.extend(dead);
            batch.acks.push(receipt);
            true
        }
        None => false,
    }
}

struct Decoded {
    samples: Vec<Sample>,
    dead: Option<DeadLetter>,
}

impl Decoded {
    fn reject(msg: &Publish, vin: Option<&str>, reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        Self { samples: Vec::new(), dead: Some(DeadLetter::new(&msg.topic, vin, reason, detail, &msg.payload)) }
    }
}

/// Turns a message into samples and at most one dead letter. None only when storage cannot
/// be reached and the writer has gone away meanwhile (shutting down).
async fn decode(msg: &Publish, registry: &mut Registry, tx: &mpsc::Sender<Batch>) -> Option<Decoded> {
    let payload = &msg.payload[..];
    let Some((vin_text, kind)) = parse_topic(&msg.topic) else {
        return Some(Decoded::reject(
            msg,
            None,
            DeadLetterReason::BadTopic,
            "expected fleet/v1/vehicles/{vin}/telemetry or …/gbt32960",
        ));
    };
    if payload.len() > MAX_MESSAGE_BYTES {
        let detail = format!("{} bytes; the limit is {MAX_MESSAGE_BYTES}", payload.len());
        return Some(Decoded::reject(msg, Some(vin_text), DeadLetterReason::TooLarge, detail));
    }
    let vin = match Vin::parse(vin_text) {
        Ok(v) => v,
        Err(e) => {
            return Some(Decoded::reject(
                msg,
                Some(vin_text),
                DeadLetterReason::UnknownVehicle,
                format!("topic VIN: {e}"),
            ));
        }
    };
    loop {
        match registry.is_registered(vin.as_str()).await {
            Ok(true) => break,
            Ok(false) => {
                return Some(Decoded::reject(
                    msg,
                    Some(vin_text),
                    DeadLetterReason::UnknownVehicle,
                    "no vehicle with this VIN is registered",
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "registry lookup failed; retrying");
                if tx.is_closed() {
                    return None;
                }
                tokio::time::sleep(REGISTRY_RETRY).await;
            }
        }
    }
    Some(match kind {
        TopicKind::Json => decode_json(msg, &vin),
        TopicKind::Gbt32960 => decode_gbt(msg, &vin),
    })
}

fn decode_json(msg: &Publish, vin: &Vin) -> Decoded {
    match json::decode(vin, &msg.payload) {
        Err(e) => Decoded::reject(msg, Some(vin.as_str()), e.reason(), e.to_string()),
        Ok(results) => {
            let total = results.len();
            let mut samples = Vec::with_capacity(total);
            let mut errors = Vec::new();
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(s) => samples.push(s),
                    Err(e) => errors.push((i, e)),
                }
            }
            let dead = (!errors.is_empty()).then(|| {
                let mut detail = format!("{} of {total} samples invalid:", errors.len());
                for (i, e) in errors.iter().take(DETAIL_MAX_ERRORS) {
                    detail.push_str(&format!(" [{i}] {e};"));
                }
                DeadLetter::new(&msg.topic, Some(vin.as_str()), DeadLetterReason::InvalidSample, detail, &msg.payload)
            });
            Decoded { samples, dead }
        }
    }
}

fn decode_gbt(msg: &Publish, vin: &Vin) -> Decoded {
    let frame = match gbt32960::decode_frame(&msg.payload) {
        Ok(f) => f,
        Err(e) => return Decoded::reject(msg, Some(vin.as_str()), e.reason(), e.to_string()),
    };
    if frame.vin != vin.as_str() {
        let detail = format!("frame VIN {:?} differs from the topic's", frame.vin);
        return Decoded::reject(msg, Some(vin.as_str()), DeadLetterReason::VinMismatch, detail);
    }
    match gbt32960::report_sample(&frame, vin) {
        Some(Ok(mut sample)) => {
            // The frame is what the sample keeps of its other blocks: smaller than any
            // re-encoding of them, and decoded only when someone reads it.
            sample.frame = Some(msg.payload.to_vec());
            Decoded { samples: vec![sample], dead: None }
        }
        Some(Err(e)) => Decoded::reject(msg, Some(vin.as_str()), DeadLetterReason::InvalidSample, e.to_string()),
        // Login, logout, heartbeat, time sync: accepted, nothing to store.
        None => Decoded { samples: Vec::new(), dead: None },
    }
}
