//! What a vehicle may do on the embedded broker, as the shipped Mosquitto ACL
//! (`deploy/mosquitto/acl`) allows it: publish only under its own VIN. It may also subscribe
//! under its own VIN (nothing is sent there yet; a later downlink would be), never to a
//! filter that could match another vehicle's topics or anything outside the fleet's tree.

/// Every vehicle topic starts with this, then the VIN.
const VEHICLES: &[u8] = b"fleet/v1/vehicles/";

/// Whether the vehicle `vin` may publish to `topic`: `fleet/v1/vehicles/{vin}` or below it.
/// Bytes, not text: the check runs on the wire before anything is decoded.
pub fn may_publish(vin: &str, topic: &[u8]) -> bool {
    topic
        .strip_prefix(VEHICLES)
        .and_then(|rest| rest.strip_prefix(vin.as_bytes()))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

/// Whether the vehicle `vin` may subscribe to `filter`: only filters whose first four levels
/// are literally `fleet/v1/vehicles/{vin}`, so that no wildcard can reach another vehicle's
/// topics. A shared subscription (`$share/{group}/{filter}`) is judged by its filter.
pub fn may_subscribe(vin: &str, filter: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((group, inner)) if !group.is_empty() && !group.contains(['+', '#']) => inner,
            _ => return false,
        },
        None => filter,
    };
    // Wildcards after the VIN stay within the vehicle's own tree.
    may_publish(vin, filter.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIN: &str = "LSJA24U66NS000001";
    const OTHER: &str = "LSJA24U66NS000002";

    #[test]
    fn a_vehicle_publishes_under_its_own_vin_only() {
        for ok in [
            format!("fleet/v1/vehicles/{VIN}/telemetry"),
            format!("fleet/v1/vehicles/{VIN}/gbt32960"),
            format!("fleet/v1/vehicles/{VIN}"),
        ] {
            assert!(may_publish(VIN, ok.as_bytes()), "{ok}");
        }
        for bad in [
            format!("fleet/v1/vehicles/{OTHER}/telemetry"),
            // A VIN that merely starts with this one's is another vehicle's.
            format!("fleet/v1/vehicles/{VIN}X/telemetry"),
            format!("fleet/v1/vehicles/{}/telemetry", &VIN[..16]),
            format!("/fleet/v1/vehicles/{VIN}/telemetry"),
            format!("fleet/v2/vehicles/{VIN}/telemetry"),
            "fleet/v1/vehicles/".to_owned(),
            "$SYS/broker".to_owned(),
            String::new(),
        ] {
            assert!(!may_publish(VIN, bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn a_vehicle_subscribes_to_nothing_that_reaches_another_vehicle() {
        for ok in [
            format!("fleet/v1/vehicles/{VIN}/telemetry"),
            format!("fleet/v1/vehicles/{VIN}/#"),
            format!("fleet/v1/vehicles/{VIN}/+"),
            format!("$share/g/fleet/v1/vehicles/{VIN}/#"),
        ] {
            assert!(may_subscribe(VIN, &ok), "{ok}");
        }
        for bad in [
            "#".to_owned(),
            "+/#".to_owned(),
            "fleet/#".to_owned(),
            "fleet/v1/vehicles/#".to_owned(),
            "fleet/v1/vehicles/+/telemetry".to_owned(),
            "fleet/+/vehicles/+/telemetry".to_owned(),
            format!("fleet/v1/vehicles/{OTHER}/telemetry"),
            format!("fleet/v1/+/{VIN}/telemetry"),
            "$share/g/#".to_owned(),
            format!("$share/+/fleet/v1/vehicles/{OTHER}/#"),
            format!("$share//fleet/v1/vehicles/{VIN}/#"),
            "$SYS/#".to_owned(),
        ] {
            assert!(!may_subscribe(VIN, &bad), "{bad}");
        }
    }
}
