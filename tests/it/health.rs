//! `/healthz` follows the broker connection; ingest reconnects by itself.

use std::time::Duration;

use fleet_tests::{Db, TestDb, test_settings};
use fleetd::App;
use fleetd::config::{MqttTarget, MqttUrl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_while_the_broker_is_unreachable_and_200_once_it_is_up() {
    let db = TestDb::create(Db::Sqlite).await;
    // A port with nothing listening yet; the embedded broker is started on it later.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut settings = test_settings(&db.url, "fleetd-health-test");
    settings.mqtt =
        MqttTarget::External(MqttUrl { host: "127.0.0.1".into(), port, username: None, password: None, tls: false });
    let app = App::start(settings).await.expect("fleetd starts without its broker");
    let url = format!("http://{}/healthz", app.http_addr());
    let client = reqwest::Client::new();
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.to_string().contains("mqtt"), "says which part is down: {body}");

    fleet_broker::start_open(format!("127.0.0.1:{port}").parse().unwrap()).expect("broker starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if client.get(&url).send().await.unwrap().status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ingest did not reconnect within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await.expect("fleetd stops cleanly");
}
