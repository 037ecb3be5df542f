//! Slow and idle HTTP clients are cut off, and open connections are capped (issue 17): raw
//! TCP clients that behave as an attacker's would.

use std::time::Duration;

use fleet_tests::{Settings, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a test waits for the server to close a connection its limits should close.
const CLOSE_DEADLINE: Duration = Duration::from_secs(20);

async fn spawn(f: impl FnOnce(&mut Settings)) -> TestApp {
    TestApp::spawn_with(fleet_tests::Db::Sqlite, f).await
}

async fn connect(app: &TestApp) -> anyhow::Result<TcpStream> {
    Ok(TcpStream::connect(app.base.trim_start_matches("http://")).await?)
}

/// Whether the server has closed the connection: a read answers end of stream or an error
/// within `wait` (a read that times out means the connection is still open).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let until = Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // Bytes of an answer: keep reading to its end.
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends `GET /healthz` on a kept-alive connection and answers the status of its answer
/// (None if the connection is closed before one comes).
async fn get_healthz(stream: &mut TcpStream) -> Option<u16> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return head.split(' ').nth(1)?.parse().ok();
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_its_head_a_byte_a_second_is_cut_off() -> anyhow::Result<()> {
    let app = spawn(|s| s.http_connections.header_timeout = Duration::from_secs(2)).await;
    let mut stream = connect(&app).await?;
    // A head that never ends, one byte a second.
    let head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ";
    let started = Instant::now();
    for byte in head.iter().chain(std::iter::repeat(&b'a')) {
        if stream.write_all(&[*byte]).await.is_err() || closed_within(&mut stream, Duration::from_secs(1)).await {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < CLOSE_DEADLINE,
            "a head sent a byte a second kept its connection for {CLOSE_DEADLINE:?}"
        );
    }
    unreachable!("the byte stream is endless")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> anyhow::Result<()> {
    let app = spawn(|s| {
        s.http_connections.idle_timeout = Duration::from_secs(2);
        s.http_connections.header_timeout = Duration::from_secs(60);
    })
    .await;
    let mut stream = connect(&app).await?;
    assert_eq!(get_healthz(&mut stream).await, Some(200));
    // Still open right after the answer (kept alive), closed by the server once idle.
    assert_eq!(get_healthz(&mut stream).await, Some(200), "the connection is kept alive between requests");
    assert!(closed_within(&mut stream, CLOSE_DEADLINE).await, "an idle connection stayed open for {CLOSE_DEADLINE:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_answered_408_and_cut_off() -> anyhow::Result<()> {
    let app = spawn(|s| s.http_connections.body_timeout = Duration::from_secs(2)).await;
    let token = app.admin_token().await;
    let mut stream = connect(&app).await?;
    let head = format!(
        "POST /api/v1/units HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        anyhow::ensure!(
            started.elapsed() < CLOSE_DEADLINE,
            "a body sent a byte a second was read for {CLOSE_DEADLINE:?}"
        );
        // Writes may fail once the server has answered and closed; the answer is read anyway.
        let _ = stream.write_all(b" ").await;
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_and_a_freed_place_serves_again() -> anyhow::Result<()> {
    const CAP: usize = 8;
    let app = spawn(|s| {
        s.http_connections.max_connections = CAP;
        s.http_connections.idle_timeout = Duration::from_secs(5);
    })
    .await;
    // The harness's HTTP client keeps a connection of its own until it idles out: until
    // then one of the eight may be refused. Hold eight that each get an answer.
    let started = Instant::now();
    let mut held = loop {
        let mut held = Vec::new();
        for _ in 0..CAP {
            held.push(connect(&app).await?);
        }
        let mut all = true;
        for s in &mut held {
            all &= get_healthz(s).await == Some(200);
        }
        if all {
            break held;
        }
        anyhow::ensure!(started.elapsed() < CLOSE_DEADLINE, "{CAP} connections were never served together");
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut ninth = connect(&app).await?;
    assert!(closed_within(&mut ninth, Duration::from_secs(5)).await, "a connection past the cap was kept open");
    for s in &mut held {
        assert_eq!(get_healthz(s).await, Some(200), "a held connection still serves");
    }
    drop(held);
    app.wait_until("a new connection is served once places are free", || async {
        let mut s = connect(&app).await?;
        Ok(get_healthz(&mut s).await == Some(200))
    })
    .await?;
    Ok(())
}
