//! What the batcher takes in, and how each message is settled once its batch is committed:
//! by an MQTT acknowledgement written on the broker connection it came on, or by a completion
//! fired in process for a message handed over by a TCP gateway.

use fleet_domain::{DeadLetter, DeadLetterReason, Sample};
use rumqttc::Publish;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::mqtt::MqttReceipt;

/// A message as the batcher receives it.
pub(crate) struct Delivery {
    pub content: Content,
    pub receipt: Receipt,
}

impl Delivery {
    pub(crate) fn publish(publish: Publish, receipt: Receipt) -> Self {
        Self { content: Content::Publish(publish), receipt }
    }
}

/// What a delivery carries.
pub(crate) enum Content {
    /// A message as published on the broker (or built as if it had been, for a gateway's frame):
    /// decoded by its topic.
    Publish(Publish),
    /// Input a gateway rejected before it could become a message (a frame whose BCC does not
    /// match, a report before login): stored as it is.
    Rejected(DeadLetter),
    /// Samples a gateway decoded itself (a JT/T 808 location report names its vehicle by the
    /// terminal's phone, known to the connection only), with the dead letter of the part
    /// that was refused, if any. The vehicle is registered (the connection authenticated).
    Decoded { samples: Vec<Sample>, dead: Option<DeadLetter> },
}

/// What settles a delivery after its batch is committed.
pub(crate) enum Receipt {
    /// An acknowledgement for the broker connection (`mqtt`).
    Mqtt(MqttReceipt),
    /// A completion for a gateway connection, fired directly by the writer.
    Completion(Completion),
}

/// How a message handed over in process fared: durable either way once this arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// The dead-letter reason, when the message was rejected instead of stored as samples.
    pub rejected: Option<DeadLetterReason>,
}

/// The completion of one in-process delivery. It holds the delivery's place in the intake's
/// window ([`crate::intake`]) until it is fired or dropped; dropped unfired (shutdown before
/// the commit), its receiver sees the sender gone and nothing is answered.
pub(crate) struct Completion {
    tx: oneshot::Sender<Settled>,
    rejected: Option<DeadLetterReason>,
    _place: OwnedSemaphorePermit,
}

impl Completion {
    pub(crate) fn new(tx: oneshot::Sender<Settled>, place: OwnedSemaphorePermit) -> Self {
        Self { tx, rejected: None, _place: place }
    }

    /// Fires after the commit. The connection may have gone meanwhile: nothing to tell then.
    pub(crate) fn fire(self) {
        let _ = self.tx.send(Settled { rejected: self.rejected });
    }
}

impl Receipt {
    /// Notes that the message became a dead letter (reported to an in-process sender).
    pub(crate) fn note_rejected(&mut self, reason: DeadLetterReason) {
        if let Self::Completion(c) = self {
            c.rejected.get_or_insert(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    #[tokio::test]
    async fn a_completion_tells_the_first_rejection_and_gives_its_place_back() {
        let places = Arc::new(Semaphore::new(1));
        let (tx, rx) = oneshot::channel();
        let mut receipt = Receipt::Completion(Completion::new(tx, places.clone().try_acquire_owned().unwrap()));
        assert_eq!(places.available_permits(), 0, "the delivery holds its place");
        receipt.note_rejected(DeadLetterReason::BadChecksum);
        receipt.note_rejected(DeadLetterReason::MalformedFrame);
        let Receipt::Completion(c) = receipt else { panic!("not a completion") };
        c.fire();
        assert_eq!(rx.await.unwrap(), Settled { rejected: Some(DeadLetterReason::BadChecksum) });
        assert_eq!(places.available_permits(), 1, "fired, the place is free again");

        // Dropped unfired (shut down before the commit): the receiver hears nothing came.
        let (tx, rx) = oneshot::channel();
        drop(Completion::new(tx, places.clone().try_acquire_owned().unwrap()));
        assert!(rx.await.is_err());
        assert_eq!(places.available_permits(), 1);
    }
}
