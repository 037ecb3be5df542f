//! The vehicles' MQTT topics (docs/mqtt.md).

/// JSON telemetry from every vehicle.
pub const JSON_TOPIC_FILTER: &str = "fleet/v1/vehicles/+/telemetry";
/// GB/T 32960.3 frames from every vehicle.
pub const GBT32960_TOPIC_FILTER: &str = "fleet/v1/vehicles/+/gbt32960";

/// Which payload format a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Json,
    Gbt32960,
}

/// Splits `fleet/v1/vehicles/{vin}/{kind}` into the VIN text (not yet validated) and kind.
pub fn parse_topic(topic: &str) -> Option<(&str, TopicKind)> {
    let rest = topic.strip_prefix("fleet/v1/vehicles/")?;
    let (vin, kind) = rest.split_once('/')?;
    let kind = match kind {
        "telemetry" => TopicKind::Json,
        "gbt32960" => TopicKind::Gbt32960,
        _ => return None,
    };
    (!vin.is_empty()).then_some((vin, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_topic_kinds_and_rejects_others() {
        assert_eq!(parse_topic("fleet/v1/vehicles/ABC/telemetry"), Some(("ABC", TopicKind::Json)));
        assert_eq!(parse_topic("fleet/v1/vehicles/ABC/gbt32960"), Some(("ABC", TopicKind::Gbt32960)));
        assert_eq!(parse_topic("fleet/v1/vehicles//telemetry"), None);
        assert_eq!(parse_topic("fleet/v1/vehicles/ABC/other"), None);
        assert_eq!(parse_topic("fleet/v2/vehicles/ABC/telemetry"), None);
        assert_eq!(parse_topic("fleet/v1/vehicles/ABC/telemetry/x"), None);
    }
}
