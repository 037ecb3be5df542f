//! The terminals against in-test gateways on real sockets, each answering (or not) as a
//! test needs: sessions, acknowledgements, re-issues after a dropped connection, overdue
//! answers, refusals, heartbeats.

mod gbt;
mod jt808;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{SimVehicle, Via, sim_phone, sim_vins};

/// How long a test waits for what it expects before failing.
const DEADLINE: Duration = Duration::from_secs(20);

/// What the in-test gateway does with a frame.
pub(super) enum Act {
    Answer(Vec<u8>),
    Silent,
    /// Close the connection without answering.
    Close,
}

/// Where a frame came: the connection's number (from 0) and the frame's on it (from 0).
#[derive(Debug, Clone, Copy)]
pub(super) struct At {
    pub conn: usize,
    pub nth: usize,
}

type Handler = Arc<dyn Fn(At, &[u8]) -> Act + Send + Sync>;
type Splitter = Box<dyn FnMut(&[u8]) -> Vec<Vec<u8>> + Send>;

/// An in-test gateway: every frame each connection sent, in order.
pub(super) struct Gateway {
    pub addr: SocketAddr,
    frames: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
}

impl Gateway {
    pub async fn start(splitter: fn() -> Splitter, handler: impl Fn(At, &[u8]) -> Act + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frames: Arc<Mutex<Vec<Vec<Vec<u8>>>>> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let all = Arc::clone(&frames);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let conn = {
                    let mut all = all.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                let (all, handler, mut split) = (Arc::clone(&all), Arc::clone(&handler), splitter());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    'read: while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        for frame in split(&buf[..n]) {
                            let nth = {
                                let mut all = all.lock().unwrap();
                                all[conn].push(frame.clone());
                                all[conn].len() - 1
                            };
                            match handler(At { conn, nth }, &frame) {
                                Act::Answer(bytes) => {
                                    if stream.write_all(&bytes).await.is_err() {
                                        break 'read;
                                    }
                                }
                                Act::Silent => {}
                                Act::Close => break 'read,
                            }
                        }
                    }
                });
            }
        });
        Self { addr, frames }
    }

    /// The frames of every connection so far.
    pub fn frames(&self) -> Vec<Vec<Vec<u8>>> {
        self.frames.lock().unwrap().clone()
    }

    /// The frames of every connection, once `done` holds for them (what a terminal wrote
    /// last may still be on its way when the simulator has stopped).
    pub async fn frames_when(&self, what: &str, done: impl Fn(&[Vec<Vec<u8>>]) -> bool) -> Vec<Vec<Vec<u8>>> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let frames = self.frames();
            if done(&frames) {
                return frames;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Short clocks, so that the tests' reconnections are quick.
pub(super) fn quick() -> TcpTiming {
    TcpTiming {
        connect_timeout: Duration::from_secs(5),
        reply_timeout: Duration::from_secs(5),
        heartbeat_every: Duration::from_secs(60),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        drain_grace: Duration::from_secs(5),
    }
}

/// A running simulator.
pub(super) struct Sim {
    pub stats: Arc<TcpStats>,
    stop: CancellationToken,
    task: JoinHandle<Result<SimStats, SimError>>,
}

impl Sim {
    /// `cars` terminals of `protocol` reporting every `interval` to `gateway`.
    pub fn start(
        protocol: TcpProtocol,
        gateway: SocketAddr,
        cars: usize,
        interval: Duration,
        timing: TcpTiming,
    ) -> Self {
        let mut tcp = TcpConfig::new(protocol, gateway.to_string());
        tcp.timing = timing;
        Self::start_with(tcp, cars, interval)
    }

    /// `cars` terminals as `tcp` says, reporting every `interval`.
    pub fn start_with(tcp: TcpConfig, cars: usize, interval: Duration) -> Self {
        let stats = Arc::clone(&tcp.stats);
        let vehicles = sim_vins(cars)
            .into_iter()
            .enumerate()
            .map(|(i, vin)| SimVehicle {
                vin,
                battery_kwh: 60.0,
                consumption_kwh_per_100km: 15.0,
                terminal_phone: Some(sim_phone(i)),
            })
            .collect();
        let cfg = SimConfig::over_tcp(tcp, vehicles, interval, 11);
        let stop = CancellationToken::new();
        let task = tokio::spawn(crate::run(cfg, stop.clone()));
        Self { stats, stop, task }
    }

    /// Polls the counters until `done` holds.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&TcpCounts) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let counts = self.stats.counts();
            if done(&counts) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {counts:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the run and answers its result.
    pub async fn stop(self) -> SimStats {
        self.stop.cancel();
        tokio::time::timeout(DEADLINE, self.task).await.expect("the simulator stops").unwrap().unwrap()
    }
}

#[tokio::test]
async fn a_jt808_run_refuses_cars_without_a_usable_phone() {
    let cfg_phone = |phone: Option<&str>| {
        let tcp = TcpConfig::new(TcpProtocol::Jt808 { v2019_share: 0.5 }, "127.0.0.1:1");
        let vin = sim_vins(1).remove(0);
        let vehicle = SimVehicle {
            vin,
            battery_kwh: 60.0,
            consumption_kwh_per_100km: 15.0,
            terminal_phone: phone.map(str::to_owned),
        };
        SimConfig::over_tcp(tcp, vec![vehicle], Duration::from_secs(1), 1)
    };
    let run = |cfg| crate::run(cfg, CancellationToken::new());
    assert!(matches!(run(cfg_phone(None)).await, Err(SimError::NoTerminalPhone(_))));
    assert!(matches!(run(cfg_phone(Some("139-0000"))).await, Err(SimError::BadTerminalPhone(..))));
    let mut bad_share = cfg_phone(Some("13900000000"));
    bad_share.via = Via::Tcp(TcpConfig::new(TcpProtocol::Jt808 { v2019_share: 1.5 }, "127.0.0.1:1"));
    assert!(matches!(run(bad_share).await, Err(SimError::Jt808Share)));
}
