//! Messages from EMQX's gateways (`crate::emqx`): the topic names the terminal, which must be
//! a registered vehicle (by its VIN for GB/T 32960; for JT/T 808, the vehicle whose
//! `terminal_phone` is the topic's phone), then the payload becomes samples like any other.

use fleet_domain::{DeadLetterReason, Vin};
use rumqttc::Publish;
use tokio::sync::mpsc;

use super::{Batch, Decoded, REGISTRY_RETRY, gather, registered};
use crate::decode::emqx_jt808::Upload;
use crate::decode::{emqx_gbt32960, emqx_jt808};
use crate::registry::Registry;
use crate::{EmqxTopic, MAX_MESSAGE_BYTES};

/// Turns a message of an EMQX gateway's topic into samples and at most one dead letter.
/// None only when storage cannot be reached and the writer has gone away meanwhile.
pub(super) async fn decode(
    msg: &Publish,
    topic: EmqxTopic<'_>,
    registry: &mut Registry,
    tx: &mpsc::Sender<Batch>,
) -> Option<Decoded> {
    if msg.payload.len() > MAX_MESSAGE_BYTES {
        let vin = match topic {
            EmqxTopic::Gbt32960 { vin, .. } => Some(vin),
            EmqxTopic::Jt808 { .. } => None,
        };
        let detail = format!("{} bytes; the limit is {MAX_MESSAGE_BYTES}", msg.payload.len());
        return Some(Decoded::reject(msg, vin, DeadLetterReason::TooLarge, detail));
    }
    match topic {
        EmqxTopic::Gbt32960 { vin, reissue } => gbt32960(msg, vin, reissue, registry, tx).await,
        EmqxTopic::Jt808 { phone } => jt808(msg, phone, registry, tx).await,
    }
}

async fn gbt32960(
    msg: &Publish,
    vin_text: &str,
    reissue: bool,
    registry: &mut Registry,
    tx: &mpsc::Sender<Batch>,
) -> Option<Decoded> {
    let vin = match Vin::parse(vin_text) {
        Ok(vin) => vin,
        Err(e) => {
            let detail = format!("topic VIN: {e}");
            return Some(Decoded::reject(msg, Some(vin_text), DeadLetterReason::UnknownVehicle, detail));
        }
    };
    if !registered(registry, &vin, tx).await? {
        let detail = "no vehicle with this VIN is registered";
        return Some(Decoded::reject(msg, Some(vin_text), DeadLetterReason::UnknownVehicle, detail));
    }
    Some(match emqx_gbt32960::decode(&vin, reissue, &msg.payload) {
        Ok(sample) => Decoded { samples: vec![sample], dead: None },
        Err(e) => Decoded::reject(msg, Some(vin.as_str()), e.reason(), e.to_string()),
    })
}

/// The message is read before the phone is looked up: most of what the gateway publishes
/// (heartbeats, registrations) is passed over without asking storage. A message that is
/// rejected is named by its vehicle when the phone is known.
async fn jt808(msg: &Publish, phone_text: &str, registry: &mut Registry, tx: &mpsc::Sender<Batch>) -> Option<Decoded> {
    let decoded = match emqx_jt808::decode(phone_text, &msg.payload) {
        Ok(Upload::Other { .. }) => return Some(Decoded { samples: Vec::new(), dead: None }),
        Ok(Upload::Locations(locations)) => Ok(locations),
        Err(e) => Err(e),
    };
    let phone = match (fleet_domain::terminal_phone(phone_text), &decoded) {
        (Ok(phone), _) => phone,
        (Err(_), Err(e)) => return Some(Decoded::reject(msg, None, e.reason(), e.to_string())),
        (Err(e), Ok(_)) => {
            let detail = format!("topic phone: {}", e.problem);
            return Some(Decoded::reject(msg, None, DeadLetterReason::UnknownVehicle, detail));
        }
    };
    let vin = loop {
        match registry.vin_of_phone(&phone).await {
            Ok(vin) => break vin,
            Err(e) => {
                tracing::warn!(error = %e, "registry lookup failed; retrying");
                if tx.is_closed() {
                    return None;
                }
                tokio::time::sleep(REGISTRY_RETRY).await;
            }
        }
    };
    Some(match (decoded, vin) {
        (Err(e), vin) => Decoded::reject(msg, vin.as_ref().map(Vin::as_str), e.reason(), e.to_string()),
        (Ok(_), None) => {
            let detail = format!("no vehicle has the terminal phone {phone}");
            Decoded::reject(msg, None, DeadLetterReason::UnknownVehicle, detail)
        }
        (Ok(locations), Some(vin)) => gather(msg, &vin, emqx_jt808::samples(&vin, locations)),
    })
}
