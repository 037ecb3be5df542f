//! Webhooks (issue 21): a real HTTP receiver on loopback gets each new alarm of the kinds it
//! asked for, signed with its secret; failed deliveries are tried again from the outbox in the
//! database (a restart in between loses nothing) until a 2xx, and never after it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_tests::{Publisher, Settings, both_with};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::orders::{get, post, world};

fn quick(s: &mut Settings) {
    s.stats.interval = Duration::from_millis(200);
    s.dispatch.batch_interval = Duration::from_secs(3600);
}

/// What the receiver got: headers (lower-case names) and body, and the status it answered.
#[derive(Debug, Clone)]
struct Got {
    headers: Vec<(String, String)>,
    body: String,
    status: u16,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 receiver: answers 500 to the first `failures` requests, 200 after.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    async fn start(failures: usize) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/fleet-hook", listener.local_addr()?);
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let seen = got.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, mut body) = loop {
                        let Ok(n) = sock.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break (String::from_utf8_lossy(&buf[..at]).to_string(), buf[at + 4..].to_vec());
                        }
                    };
                    let headers: Vec<(String, String)> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(n, _)| n == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    while body.len() < len {
                        let Ok(n) = sock.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    let status = {
                        let mut seen = seen.lock().unwrap();
                        let status = if seen.len() < failures { 500 } else { 200 };
                        seen.push(Got { headers, body: String::from_utf8_lossy(&body).to_string(), status });
                        status
                    };
                    let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        Ok(Self { url, got })
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

both_with!(alarms_reach_a_webhook_signed_retried_through_a_restart_and_only_once, quick, |app: TestApp| async move {
    let mut app = app;
    let w = world(&app, 1).await?;
    let vin = w.cars[0].0.clone();
    let receiver = Receiver::start(2).await?;
    let other = Receiver::start(0).await?;
    let secret = "zhoushan-hook-secret-1";
    let (s, hook) = post(
        &app,
        &w.admin,
        "/api/v1/webhooks",
        json!({"url": receiver.url, "kinds": ["zone_entered"], "secret": secret}),
    )
    .await?;
    assert_eq!(s, 201, "{hook}");
    assert!(hook.get("secret").is_none(), "the secret is never read back: {hook}");
    let (s, _) = post(
        &app,
        &w.admin,
        "/api/v1/webhooks",
        json!({"url": other.url, "kinds": ["left_service_area"], "secret": secret}),
    )
    .await?;
    assert_eq!(s, 201);
    for (bad, field) in [
        (json!({"url": "ftp://example.org/x", "kinds": ["zone_entered"], "secret": secret}), "url"),
        (json!({"url": "http://", "kinds": ["zone_entered"], "secret": secret}), "url"),
        (json!({"url": "https://hooks.example.org/fleet", "kinds": ["zone_entered"], "secret": secret}), "url"),
        (json!({"url": receiver.url, "kinds": [], "secret": secret}), "kinds"),
        (json!({"url": receiver.url, "kinds": ["fire"], "secret": secret}), "kinds"),
        (json!({"url": receiver.url, "kinds": ["zone_entered"], "secret": "short"}), "secret"),
    ] {
        let (s, v) = post(&app, &w.admin, "/api/v1/webhooks", bad.clone()).await?;
        let named = v["error"]["message"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_owned();
        assert_eq!((s.as_u16(), named.as_str()), (422, field), "{bad}: {v}");
    }
    let (s, _) = post(
        &app,
        &w.dispatcher,
        "/api/v1/webhooks",
        json!({"url": receiver.url, "kinds": ["zone_entered"], "secret": secret}),
    )
    .await?;
    assert_eq!(s, 403);
    let (_, hooks) = get(&app, &w.admin, "/api/v1/webhooks").await?;
    assert_eq!(hooks["webhooks"].as_array().map(Vec::len), Some(2), "{hooks}");

    // The car drives into a zone: one zone_entered alarm.
    let zone = json!({"name": "临城商圈", "kind": "zone", "geometry": {"type": "Point", "coordinates": [122.22, 29.99]}, "radius_m": 300.0});
    let (s, _) = post(&app, &w.admin, "/api/v1/geofences", zone).await?;
    assert_eq!(s, 201);
    let now = chrono::Utc::now();
    let at = |secs: i64| (now - chrono::Duration::seconds(secs)).to_rfc3339();
    let batch = json!([
        {"ts": at(120), "lat": 29.99, "lon": 122.21, "speed_kmh": 30.0},
        {"ts": at(60), "lat": 29.99, "lon": 122.22, "speed_kmh": 30.0},
    ]);
    Publisher::connect().await?.json(&vin, &batch).await?;
    app.wait_until("two failed deliveries", || async { Ok(receiver.got().len() >= 2) }).await?;
    // fleetd restarts with the delivery still owed: it comes from the outbox.
    app.restart().await;
    app.wait_until("a delivery answered 200", || async { Ok(receiver.got().iter().any(|g| g.status == 200)) }).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.got();
    assert_eq!(got.iter().map(|g| g.status).collect::<Vec<_>>(), [500, 500, 200], "never again after the 2xx");
    let alarm: Value = serde_json::from_str(&got[2].body)?;
    assert_eq!((alarm["kind"].as_str(), alarm["vin"].as_str()), (Some("zone_entered"), Some(vin.as_str())), "{alarm}");
    assert!(got.iter().all(|g| g.body == got[0].body), "the same alarm each time");
    for g in &got {
        assert_eq!(g.header("x-fleet-signature"), Some(fleet_notify::signature(secret, &g.body).as_str()));
        assert_eq!(g.header("content-type"), Some("application/json"));
    }
    let admin = app.admin_token().await;
    let (_, listed) = get(&app, &admin, "/api/v1/alarms?kind=zone_entered").await?;
    assert_eq!(listed["alarms"][0]["id"], alarm["id"], "the body is the alarm as listed");
    assert!(other.got().is_empty(), "a hook gets only its kinds");

    // Deleted, a hook gets nothing more.
    let r = app.http.delete(app.url(&format!("/api/v1/webhooks/{}", hook["id"]))).bearer_auth(&admin).send().await?;
    assert_eq!(r.status(), 204);
    let r = app.http.delete(app.url(&format!("/api/v1/webhooks/{}", hook["id"]))).bearer_auth(&admin).send().await?;
    assert_eq!(r.status(), 404);
    Ok(())
});
