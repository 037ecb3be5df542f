//! The fleet: every car publishes one JSON sample per interval, the cars' reports spread
//! evenly over it, each stamped with the wall-clock time of its publishing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Window, now_ms};
use crate::bench_vin;
use crate::load::{Broker, publisher_options};

/// How often a publishing connection sends what has fallen due.
const PACE_TICK: Duration = Duration::from_millis(5);
/// After the last publish, every PUBACK must be in within this time.
const ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// What the fleet published.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Published {
    pub total: u64,
    /// Samples whose time lies in the measuring window.
    pub in_window: u64,
}

/// Running counts, readable while the fleet publishes.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    total: AtomicU64,
}

impl Counter {
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// The schedule: `vehicles` cars, one report each per `interval`, from `start` until `until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub vehicles: usize,
    pub interval: Duration,
    pub start: Instant,
    pub until: Instant,
}

/// Publishes on the schedule over `connections` connections (QoS 1) and returns once every
/// message is acknowledged by the broker.
pub(crate) async fn run(
    broker: &Broker,
    schedule: Schedule,
    connections: usize,
    window: Window,
    counter: Arc<Counter>,
) -> anyhow::Result<Published> {
    let mut tasks = Vec::new();
    for c in 0..connections {
        // Connection c drives cars c, c + connections, …
        let cars: Vec<usize> = (c..schedule.vehicles).step_by(connections).collect();
        if cars.is_empty() {
            continue;
        }
        let (client, eventloop) =
            AsyncClient::new(publisher_options(&broker.host, broker.port, "bench-live", c), 10_000);
        tasks.push(tokio::spawn(connection(client, eventloop, cars, schedule, window, counter.clone())));
    }
    let mut out = Published::default();
    for t in tasks {
        let p = t.await??;
        out.total += p.total;
        out.in_window += p.in_window;
    }
    Ok(out)
}

async fn connection(
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    cars: Vec<usize>,
    schedule: Schedule,
    window: Window,
    counter: Arc<Counter>,
) -> anyhow::Result<Published> {
    let acked = Arc::new(AtomicU64::new(0));
    let acks = acked.clone();
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => return anyhow::anyhow!("publisher connection: {e}"),
            }
        }
    });
    let topics: Vec<String> = cars.iter().map(|&i| format!("fleet/v1/vehicles/{}/telemetry", bench_vin(i))).collect();
    // This connection's k-th report is due at start + k × gap.
    let gap = schedule.interval.as_secs_f64() / cars.len() as f64;
    let mut published = Published::default();
    let mut tick = tokio::time::interval_at(schedule.start, PACE_TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut k: u64 = 0;
    'publishing: loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= schedule.until {
            break;
        }
        let due = ((now - schedule.start).as_secs_f64() / gap).floor() as u64 + 1;
        while k < due {
            if Instant::now() >= schedule.until {
                break 'publishing;
            }
            let slot = (k % cars.len() as u64) as usize;
            let round = k / cars.len() as u64;
            let ts = now_ms();
            let payload = sample(cars[slot], round, ts);
            client.publish(topics[slot].clone(), QoS::AtLeastOnce, false, payload).await.context("publishing")?;
            published.total += 1;
            published.in_window += u64::from(window.contains(ts));
            counter.total.fetch_add(1, Ordering::Relaxed);
            k += 1;
        }
        if poller.is_finished() {
            break;
        }
    }
    let deadline = Instant::now() + ACK_TIMEOUT;
    while acked.load(Ordering::Relaxed) < published.total {
        if poller.is_finished() {
            return Err(poller.await.map_err(anyhow::Error::from)?);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {} publishes acknowledged after 2 minutes",
            acked.load(Ordering::Relaxed),
            published.total
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    poller.abort();
    let _ = client.disconnect().await;
    Ok(published)
}

/// Report `round` of car `i` at `ts` (epoch ms): the car drives round an ellipse of its own
/// within Zhoushan (lat 29.9–30.1, lon 122.0–122.4), a little further each report.
fn sample(i: usize, round: u64, ts: i64) -> Vec<u8> {
    let phase = i as f64 * 0.618_034 + round as f64 * 0.02;
    let radius = 0.3 + 0.7 * ((i * 7919) % 1000) as f64 / 1000.0;
    let lat = 30.0 + 0.1 * radius * phase.sin();
    let lon = 122.2 + 0.2 * radius * phase.cos();
    let heading = (phase.to_degrees() + 180.0).rem_euclid(360.0);
    let speed = 20.0 + (i % 40) as f64;
    let soc = 90.0 - (round % 120) as f64 * 0.5;
    format!(
        "{{\"ts\":{ts},\"lat\":{lat:.6},\"lon\":{lon:.6},\"speed_kmh\":{speed:.1},\"heading_deg\":{heading:.1},\
         \"soc_pct\":{soc:.1},\"odometer_km\":{:.1},\"ignition\":true,\"charging\":false}}",
        10_000.0 + round as f64 * 0.07
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_sample_stays_in_zhoushan_and_decodes() {
        for i in [0, 1, 77, 9_999] {
            for round in [0, 1, 500] {
                let p = sample(i, round, 1_795_700_932_123);
                let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
                let (lat, lon) = (v["lat"].as_f64().unwrap(), v["lon"].as_f64().unwrap());
                assert!((29.9..=30.1).contains(&lat) && (122.0..=122.4).contains(&lon), "{lat} {lon}");
                assert_eq!(super::super::scan::integer_ts(&p), Some(1_795_700_932_123));
            }
        }
    }
}
