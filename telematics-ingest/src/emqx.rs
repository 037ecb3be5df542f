//! EMQX's GB/T 32960 and JT/T 808 gateways (docs/emqx.md): which of them fleetd reads
//! (`FLEET_EMQX_GATEWAYS`) and the topics they publish on.
//!
//! A site that runs EMQX may let its gateways take the terminals' TCP connections and
//! publish what they decode as JSON. fleetd then reads those topics besides its own; the
//! payloads are decoded by [`crate::decode::emqx_gbt32960`] and [`crate::decode::emqx_jt808`].

/// Real-time reports from EMQX's GB/T 32960 gateway (`gbt32960/{VIN}/upstream/info`).
pub const EMQX_GBT32960_INFO_FILTER: &str = "gbt32960/+/upstream/info";
/// Re-issued reports from EMQX's GB/T 32960 gateway (`gbt32960/{VIN}/upstream/reinfo`).
pub const EMQX_GBT32960_REINFO_FILTER: &str = "gbt32960/+/upstream/reinfo";
/// Every upstream message of EMQX's JT/T 808 gateway (`jt808/{client id}/{phone}/up`): its
/// default mount point and up topic, where the client id is the terminal's phone too.
pub const EMQX_JT808_FILTER: &str = "jt808/+/+/up";

/// A topic of one of EMQX's gateways, with the terminal it names (not yet validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmqxTopic<'a> {
    /// `gbt32960/{vin}/upstream/info`, or `…/reinfo` (a re-issued report).
    Gbt32960 { vin: &'a str, reissue: bool },
    /// `jt808/{client id}/{phone}/up`: the phone is the terminal's, as it sends it.
    Jt808 { phone: &'a str },
}

impl<'a> EmqxTopic<'a> {
    /// The EMQX gateway topic `topic` is, if it is one.
    pub fn parse(topic: &'a str) -> Option<Self> {
        let mut levels = topic.split('/');
        let parsed = match (levels.next()?, levels.next()?, levels.next()?, levels.next()?) {
            ("gbt32960", vin, "upstream", "info") => Self::Gbt32960 { vin, reissue: false },
            ("gbt32960", vin, "upstream", "reinfo") => Self::Gbt32960 { vin, reissue: true },
            ("jt808", client, phone, "up") if !client.is_empty() => Self::Jt808 { phone },
            _ => return None,
        };
        let named = match parsed {
            Self::Gbt32960 { vin, .. } => vin,
            Self::Jt808 { phone } => phone,
        };
        (levels.next().is_none() && !named.is_empty()).then_some(parsed)
    }
}

/// Which EMQX gateways' topics fleetd reads; none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmqxGateways {
    pub gbt32960: bool,
    pub jt808: bool,
}

/// A `FLEET_EMQX_GATEWAYS` value that names something else than the gateways.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmqxGatewaysError(String);

impl EmqxGateways {
    /// Both gateways.
    pub const ALL: Self = Self { gbt32960: true, jt808: true };

    /// A comma-separated list of `gbt32960` and `jt808`; empty (or only blanks) is none.
    pub fn parse(list: &str) -> Result<Self, EmqxGatewaysError> {
        let mut gateways = Self::default();
        if list.trim().is_empty() {
            return Ok(gateways);
        }
        for name in list.split(',').map(str::trim) {
            let slot = match name {
                "gbt32960" => &mut gateways.gbt32960,
                "jt808" => &mut gateways.jt808,
                other => {
                    return Err(EmqxGatewaysError(format!(
                        "{other:?} is not an EMQX gateway fleetd reads (gbt32960, jt808, comma-separated)"
                    )));
                }
            };
            if std::mem::replace(slot, true) {
                return Err(EmqxGatewaysError(format!("{name} is named twice")));
            }
        }
        Ok(gateways)
    }

    /// Whether fleetd reads this gateway topic.
    pub fn reads(self, topic: EmqxTopic<'_>) -> bool {
        match topic {
            EmqxTopic::Gbt32960 { .. } => self.gbt32960,
            EmqxTopic::Jt808 { .. } => self.jt808,
        }
    }

    /// The topic filters of the gateways read (`read = true`) or not read (`false`).
    pub fn filters(self, read: bool) -> Vec<&'static str> {
        let mut filters = Vec::new();
        if self.gbt32960 == read {
            filters.extend([EMQX_GBT32960_INFO_FILTER, EMQX_GBT32960_REINFO_FILTER]);
        }
        if self.jt808 == read {
            filters.push(EMQX_JT808_FILTER);
        }
        filters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_gateways_topics_and_nothing_else() {
        let vin = "LSJA24U66NS000001";
        assert_eq!(
            EmqxTopic::parse(&format!("gbt32960/{vin}/upstream/info")),
            Some(EmqxTopic::Gbt32960 { vin, reissue: false })
        );
        assert_eq!(
            EmqxTopic::parse(&format!("gbt32960/{vin}/upstream/reinfo")),
            Some(EmqxTopic::Gbt32960 { vin, reissue: true })
        );
        assert_eq!(
            EmqxTopic::parse("jt808/013912345678/013912345678/up"),
            Some(EmqxTopic::Jt808 { phone: "013912345678" })
        );
        for other in [
            "gbt32960/LSJA24U66NS000001/upstream/vlogin",
            "gbt32960//upstream/info",
            "gbt32960/X/upstream/info/more",
            "gbt32960/X/dnstream",
            "jt808/1/1/dn",
            "jt808//1/up",
            "jt808/1//up",
            "jt808/1/up",
            "fleet/v1/vehicles/X/telemetry",
            "",
        ] {
            assert_eq!(EmqxTopic::parse(other), None, "{other}");
        }
    }

    #[test]
    fn parses_the_gateway_list_and_refuses_anything_else() {
        assert_eq!(EmqxGateways::parse("gbt32960,jt808"), Ok(EmqxGateways::ALL));
        assert_eq!(EmqxGateways::parse(" jt808 , gbt32960 "), Ok(EmqxGateways::ALL));
        assert_eq!(EmqxGateways::parse("jt808"), Ok(EmqxGateways { gbt32960: false, jt808: true }));
        assert_eq!(EmqxGateways::parse("gbt32960"), Ok(EmqxGateways { gbt32960: true, jt808: false }));
        assert_eq!(EmqxGateways::parse(""), Ok(EmqxGateways::default()));
        assert_eq!(EmqxGateways::parse("  "), Ok(EmqxGateways::default()));
        for bad in ["gbt", "jt808,jt808", "gbt32960,", "mqtt", "JT808", "gbt32960;jt808"] {
            assert!(EmqxGateways::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn splits_the_filters_into_read_and_not_read() {
        let jt808 = EmqxGateways { gbt32960: false, jt808: true };
        assert_eq!(jt808.filters(true), vec![EMQX_JT808_FILTER]);
        assert_eq!(jt808.filters(false), vec![EMQX_GBT32960_INFO_FILTER, EMQX_GBT32960_REINFO_FILTER]);
        assert!(EmqxGateways::ALL.filters(false).is_empty());
        assert!(EmqxGateways::default().filters(true).is_empty());
        assert!(jt808.reads(EmqxTopic::Jt808 { phone: "1" }));
        assert!(!jt808.reads(EmqxTopic::Gbt32960 { vin: "X", reissue: false }));
    }
}
