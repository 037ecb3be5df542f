//! The published-sample count: a plain MQTT subscriber beside fleetd that decodes every
//! vehicle message with ingest's own decoders and keeps the distinct (car, ts) pairs, the
//! key storage dedupes on. The simulator counts messages, not samples (a JSON batch carries
//! many, a GB/T login none), so this is what "published" means when the bench compares it
//! with the rows stored. It is complete when it has seen at least as many messages as the
//! broker acknowledged to the simulator; the bench checks that before trusting the count.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use fleet_domain::Vin;
use fleet_gbt32960 as gbt32960;
use fleet_ingest::decode::json;
use fleet_ingest::{GBT32960_TOPIC_FILTER, JSON_TOPIC_FILTER, TopicKind, parse_topic};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};

use crate::bench_index;

/// Largest message the tap accepts: above the simulator's 200 KiB JSON batches.
const MAX_PACKET_BYTES: usize = 1024 * 1024;

/// What the tap has seen so far.
#[derive(Debug, Default)]
struct Seen {
    messages: u64,
    /// (bench car number, ts in epoch ms) of every valid sample.
    samples: HashSet<(u32, i64)>,
    /// Samples ingest refuses as invalid (dead letters, never rows): should be none.
    invalid: u64,
    /// Messages neither decoder could read, or not from a bench car: should be none.
    unreadable: u64,
}

/// Counts so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TapCounts {
    pub messages: u64,
    pub samples: u64,
    pub invalid: u64,
    pub unreadable: u64,
}

pub(super) struct Tap {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<anyhow::Error>,
}

impl Tap {
    /// Subscribes to both vehicle topics and returns once the broker has acknowledged.
    pub(super) async fn start(host: &str, port: u16, credentials: Option<(String, String)>) -> anyhow::Result<Self> {
        let mut o = MqttOptions::new(format!("bench-soak-tap-{}", std::process::id()), host, port);
        o.set_clean_session(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(MAX_PACKET_BYTES, 64 * 1024);
        if let Some((user, pass)) = credentials {
            o.set_credentials(user, pass);
        }
        let (client, mut eventloop) = AsyncClient::new(o, 10);
        let filters =
            [JSON_TOPIC_FILTER, GBT32960_TOPIC_FILTER].map(|f| SubscribeFilter::new(f.to_owned(), QoS::AtLeastOnce));
        client.subscribe_many(filters).await?;
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => anyhow::bail!("tap connection: {e}"),
                }
            }
        })
        .await
        .context("the tap's subscription timed out")??;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                match eventloop.poll().await {
                    // Decoding is a few microseconds: done here, in the one polling task.
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        s.lock().unwrap_or_else(|e| e.into_inner()).absorb(&p.topic, &p.payload)
                    }
                    Ok(_) => {}
                    Err(e) => return anyhow::anyhow!("tap connection: {e}"),
                }
            }
        });
        Ok(Self { seen, task })
    }

    pub(super) fn counts(&self) -> TapCounts {
        let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        TapCounts {
            messages: s.messages,
            samples: s.samples.len() as u64,
            invalid: s.invalid,
            unreadable: s.unreadable,
        }
    }

    /// The tap's connection failed: it missed messages from then on.
    pub(super) fn failed(&self) -> bool {
        self.task.is_finished()
    }

    pub(super) fn stop(self) {
        self.task.abort();
    }
}

impl Seen {
    fn absorb(&mut self, topic: &str, payload: &[u8]) {
        self.messages += 1;
        let Some((vin, kind)) = parse_topic(topic) else {
            self.unreadable += 1;
            return;
        };
        let (Ok(vin), Some(car)) = (Vin::parse(vin), bench_index(vin).and_then(|i| u32::try_from(i).ok())) else {
            self.unreadable += 1;
            return;
        };
        let samples = match kind {
            TopicKind::Json => match json::decode(&vin, payload) {
                Ok(samples) => samples,
                Err(_) => {
                    self.unreadable += 1;
                    return;
                }
            },
            TopicKind::Gbt32960 => match gbt32960::decode_frame(payload) {
                // Login, logout and heartbeat frames carry no sample.
                Ok(frame) => gbt32960::report_sample(&frame, &vin).into_iter().collect(),
                Err(_) => {
                    self.unreadable += 1;
                    return;
                }
            },
        };
        for s in samples {
            match s {
                Ok(s) => {
                    self.samples.insert((car, s.ts.timestamp_millis()));
                }
                Err(_) => self.invalid += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use fleet_domain::{Sample, SampleSource};

    use super::*;
    use crate::bench_vin;

    #[test]
    fn counts_distinct_samples_of_json_objects_batches_and_gbt_reports() {
        let vin = bench_vin(7);
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap();
        let mut seen = Seen::default();
        let json_topic = format!("fleet/v1/vehicles/{vin}/telemetry");
        let gbt_topic = format!("fleet/v1/vehicles/{vin}/gbt32960");
        seen.absorb(&json_topic, br#"{"ts":"2026-11-26T08:00:00.000Z","lat":30.0,"lon":122.1}"#);
        // A redelivery and a batch holding the same sample and a new one.
        seen.absorb(&json_topic, br#"{"ts":"2026-11-26T08:00:00.000Z","lat":30.0,"lon":122.1}"#);
        seen.absorb(
            &json_topic,
            br#"[{"ts":1795680000000,"lat":30.0,"lon":122.1},{"ts":1795680005000,"lat":30.0,"lon":122.1}]"#,
        );
        assert_eq!(Utc.timestamp_millis_opt(1_795_680_000_000).unwrap(), t);
        let s = Sample::at(vin.clone(), t + chrono::Duration::seconds(10), 30.0, 122.1, SampleSource::Gbt2016);
        seen.absorb(&gbt_topic, &fleet_sim::terminal::encode_sample(gbt32960::Edition::V2016, false, &s));
        seen.absorb(&gbt_topic, &gbt32960::encode_heartbeat(gbt32960::Edition::V2016, &vin));
        seen.absorb(&json_topic, br#"{"ts":1795680000000,"lat":95.0,"lon":122.1}"#);
        seen.absorb(&json_topic, b"{");
        seen.absorb("fleet/v1/vehicles/LSVAU2180N2183294/telemetry", br#"{"ts":1,"lat":30.0,"lon":122.1}"#);
        assert_eq!((seen.messages, seen.samples.len(), seen.invalid, seen.unreadable), (8, 3, 1, 2));
    }
}
