//! Start-up binds every listener before it spawns a service: a listener that cannot be bound
//! fails the start and leaves nothing running (the embedded broker's port free and closed,
//! no broker thread, the database ready for the next start).

use std::net::{SocketAddr, TcpListener, TcpStream};

use fleet_tests::{Db, TestDb, test_settings};
use fleetd::{App, MqttTarget, Settings};

/// A port that was free a moment ago.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address")
}

/// Threads of this process named like rumqttd's (the test runner gives each test a
/// process of its own).
fn broker_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| matches!(name.trim(), "mqtt-broker" | "v4" | "router-0"))
        .count()
}

/// Settings with the embedded broker on `broker`.
fn embedded(db: &TestDb, broker: SocketAddr) -> Settings {
    let mut s = test_settings(&db.url, "fleetd-startup-test");
    s.mqtt = MqttTarget::Embedded(broker);
    s
}

/// Nothing listens on `addr` and it can be bound again.
fn closed_and_free(addr: SocketAddr) {
    assert!(TcpStream::connect(addr).is_err(), "nothing accepts connections on {addr} after the failed start");
    drop(TcpListener::bind(addr).unwrap_or_else(|e| panic!("{addr} is free again: {e}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_http_or_metrics_port_fails_the_start_and_leaves_nothing_running() {
    let db = TestDb::create(Db::Sqlite).await;
    let broker = free_port();
    let threads_before = broker_threads();

    // The HTTP port is taken.
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let taken_addr = taken.local_addr().expect("its address");
    let mut settings = embedded(&db, broker);
    settings.http_addr = taken_addr;
    let err = App::start(settings).await.err().expect("the start fails on a taken HTTP port");
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("cannot listen on {taken_addr} for HTTP")), "{msg}");
    closed_and_free(broker);
    assert_eq!(broker_threads(), threads_before, "no broker thread was started");

    // The metrics port is taken: the HTTP listener, bound before it, is let go too.
    let http = free_port();
    let mut settings = embedded(&db, broker);
    settings.http_addr = http;
    settings.metrics.addr = Some(taken_addr);
    let err = App::start(settings).await.err().expect("the start fails on a taken metrics port");
    let msg = format!("{err:#}");
    assert!(msg.contains("FLEET_METRICS_ADDR"), "{msg}");
    closed_and_free(broker);
    closed_and_free(http);
    assert_eq!(broker_threads(), threads_before, "no broker thread was started");
    drop(taken);

    // Everything it held is free: the same database, broker port and HTTP port start.
    let mut settings = embedded(&db, broker);
    settings.http_addr = http;
    let app = App::start(settings).await.expect("fleetd starts on what the failed starts let go");
    assert_eq!(app.mqtt_addr(), Some(broker));
    reqwest::get(format!("http://{http}/healthz")).await.expect("fleetd answers on the HTTP port");
    app.stop().await.expect("fleetd stops cleanly");
    // The embedded broker stopped with it.
    closed_and_free(broker);
}
