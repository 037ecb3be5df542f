//! The feed as a hand-written client on a raw socket sees it: a large snapshot in fragments,
//! and a client that never reads, which is dropped without holding up anyone else.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fleet_domain::OrderStatus;
use fleet_tests::live::{LiveClient, vehicle_in};
use fleet_tests::{Publisher, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{at, car_in, order};

/// Opens a WebSocket by hand on a socket with a tiny receive buffer and never reads from it.
async fn stuck_client(app: &TestApp, token: &str) -> anyhow::Result<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(2048)?;
    let mut stream = socket.connect(addr).await?;
    let req = format!(
        "GET /api/v1/live?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    // Read the 101 answer's head only, byte by byte, and then nothing more, ever.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await?);
    }
    anyhow::ensure!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    Ok(stream)
}

/// Reads one server frame (RFC 6455 §5.2; server frames are unmasked): FIN, opcode, payload.
async fn read_frame(stream: &mut tokio::net::TcpStream) -> anyhow::Result<(bool, u8, Vec<u8>)> {
    let b0 = stream.read_u8().await?;
    let b1 = stream.read_u8().await?;
    anyhow::ensure!(b1 & 0x80 == 0, "a server frame must not be masked");
    let len = match b1 & 0x7F {
        126 => u64::from(stream.read_u16().await?),
        127 => stream.read_u64().await?,
        n => u64::from(n),
    };
    let mut payload = vec![0; usize::try_from(len)?];
    stream.read_exact(&mut payload).await?;
    Ok((b0 & 0x80 != 0, b0 & 0x0F, payload))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_snapshot_goes_out_in_fragments_that_make_one_message() -> anyhow::Result<()> {
    let app = TestApp::spawn(fleet_tests::Db::Sqlite).await;
    let admin = app.admin_token().await;
    // About 140 bytes a car: 900 cars make a snapshot of about 125 KB.
    let cars = 900;
    let plates: Vec<String> = (0..cars).map(|i| format!("浙L·F{i:04}")).collect();
    for chunk in plates.chunks(30) {
        let posts = chunk.iter().map(|plate| car_in(&app, &admin, None, plate));
        for r in futures_util::future::join_all(posts).await {
            r?;
        }
    }
    // Raw frames, as they come off the socket.
    let mut raw = stuck_client(&app, &admin).await?;
    let mut frames = Vec::new();
    loop {
        let (fin, opcode, payload) = tokio::time::timeout(Duration::from_secs(20), read_frame(&mut raw)).await??;
        if opcode >= 0x8 {
            continue; // a control frame may come between fragments
        }
        frames.push((opcode, payload));
        if fin {
            break;
        }
    }
    assert!(frames.len() >= 2, "{} frame(s)", frames.len());
    assert_eq!(frames[0].0, 0x1, "a text frame first");
    assert!(frames[1..].iter().all(|(op, _)| *op == 0x0), "then continuation frames");
    assert!(frames.iter().all(|(_, p)| p.len() <= 64 * 1024), "each fragment at most 64 KiB");
    let whole: Vec<u8> = frames.into_iter().flat_map(|(_, p)| p).collect();
    let snapshot: Value = serde_json::from_slice(&whole)?;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["vehicles"].as_array().map(Vec::len), Some(cars));
    // A WebSocket client library gets it as one message.
    let mut client = LiveClient::connect(&app.live_url(&admin, "")).await?;
    assert_eq!(client.snapshot().await?.len(), cars);
    Ok(())
}

async fn dropped_clients(app: &TestApp) -> anyhow::Result<f64> {
    let text = app.http.get(app.url("/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("fleet_live_clients_dropped_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_delays_neither_other_clients_nor_ingest_and_is_dropped() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, |s| s.live_send_timeout = Duration::from_secs(2)).await;
    let admin = app.admin_token().await;
    let mut cars = Vec::new();
    for i in 0..40 {
        cars.push(car_in(&app, &admin, None, &format!("浙L·D4{i:04}")).await?);
    }
    let _stuck = stuck_client(&app, &admin).await?;
    let mut reader = LiveClient::connect(&app.live_url(&admin, "")).await?;
    reader.snapshot().await?;
    let mut p = Publisher::connect().await?;
    let mut published = 0i64;
    let mut round = 0u32;
    // Keep the fleet moving until the stuck client is dropped; every round, the reading
    // client sees every car's newest position and ingest stores every sample. Bulky order
    // changes (as dispatch will announce them on the bus) fill the kernel's socket buffers
    // of the stuck connection within a few rounds.
    while dropped_clients(&app).await? < 1.0 {
        round += 1;
        anyhow::ensure!(round <= 60, "the stuck client was never dropped");
        for i in 0..20 {
            let mut o = order(&format!("bulk-{round}-{i}"), "u", OrderStatus::Approved, None, None);
            o.purpose = "大型会议接送".repeat(4000);
            app.bus().publish(fleet_bus::Event::OrderChanged(Arc::new(o)));
        }
        let lat = 30.0 + f64::from(round) * 0.0001;
        for car in &cars {
            p.json(
                car,
                &json!({"ts": (Utc::now()).to_rfc3339(), "lat": lat, "lon": 122.1, "speed_kmh": 40.0, "soc_pct": 70.0,
                                "padding_to_fill_buffers": "x".repeat(64)}),
            )
            .await?;
            published += 1;
        }
        let mut waiting: HashSet<&str> = cars.iter().map(String::as_str).collect();
        reader
            .wait_for(&format!("round {round} on the reading client"), |m| {
                for v in m["vehicles"].as_array().into_iter().flatten() {
                    if v["lat"].as_f64() == Some(lat) {
                        waiting.remove(v["vin"].as_str().unwrap_or_default());
                    }
                }
                waiting.is_empty().then_some(())
            })
            .await?;
    }
    app.wait_until("every sample stored", || async { Ok(app.store.telemetry().count(None).await? == published) })
        .await?;
    // The reading client is still served after the drop.
    p.json(&cars[0], &at(29.5, 122.2, 0, 50.0)).await?;
    reader.wait_for("a move after the drop", |m| vehicle_in(m, &cars[0]).filter(|v| v["lat"] == 29.5).cloned()).await?;
    Ok(())
}
