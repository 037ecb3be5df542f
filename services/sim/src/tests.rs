use std::collections::HashSet;
use std::net::TcpListener;

use super::places::{ZHOUSHAN_BBOX, graph};
use super::*;

fn config(port: u16, vehicles: usize, interval: Duration) -> SimConfig {
    SimConfig {
        via: Via::Mqtt,
        broker_host: "127.0.0.1".to_owned(),
        broker_port: port,
        login: SimLogin::Anonymous,
        client_id_prefix: format!("sim-test-{port}"),
        vehicles: sim_vins(vehicles)
            .into_iter()
            .map(|vin| SimVehicle { vin, battery_kwh: 60.0, consumption_kwh_per_100km: 15.0, terminal_phone: None })
            .collect(),
        interval,
        gbt32960_share: 0.5,
        seed: 7,
        tls: None,
        control: None,
    }
}

#[test]
fn gbt_cars_are_spread_through_the_fleet_in_the_requested_share() {
    let count = |share: f64| (0..1_000).filter(|&i| picks(i, share)).count();
    assert_eq!(count(0.0), 0);
    assert_eq!(count(0.3), 300);
    assert_eq!(count(1.0), 1_000);
    let cfg = config(1, 10, Duration::from_secs(5));
    let editions: Vec<Protocol> = fleet(&cfg, |_| Utc::now()).iter().map(|c| c.uplink.protocol()).collect();
    assert_eq!(editions.iter().filter(|p| **p == Protocol::Json).count(), 5);
    assert_eq!(editions.iter().filter(|p| **p == Protocol::Gbt32960(Edition::V2016)).count(), 3);
    assert_eq!(editions.iter().filter(|p| **p == Protocol::Gbt32960(Edition::V2025)).count(), 2);
}

#[test]
fn a_car_seed_depends_on_the_run_seed_and_the_vin() {
    let vins = sim_vins(2);
    assert_eq!(car_seed(1, &vins[0]), car_seed(1, &vins[0]));
    assert_ne!(car_seed(1, &vins[0]), car_seed(2, &vins[0]));
    assert_ne!(car_seed(1, &vins[0]), car_seed(1, &vins[1]));
}

#[tokio::test]
async fn rejects_a_zero_interval() {
    let cfg = config(1, 1, Duration::ZERO);
    assert!(run(cfg, CancellationToken::new()).await.is_err());
}

#[tokio::test]
async fn keeps_retrying_an_unreachable_broker_and_stops_when_told() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(config(port, 300, Duration::from_millis(100)), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    shutdown.cancel();
    let stats = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    assert_eq!(stats.published, 0);
    assert!(stats.errors >= 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_decodable_telemetry_of_both_kinds_to_a_real_broker() {
    use fleet_domain::Sample;
    use fleet_gbt32960::{Command, decode_frame, report_sample};
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let addr = fleet_broker::start_open("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut options = MqttOptions::new("sim-test-listener", addr.ip().to_string(), addr.port());
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (listener, mut eventloop) = AsyncClient::new(options, 10);
    listener.subscribe("fleet/v1/vehicles/#", QoS::AtLeastOnce).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    let listen = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed_tx.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), subscribed).await.unwrap().unwrap();

    let cfg = config(addr.port(), 12, Duration::from_millis(200));
    let vins: HashSet<String> = cfg.vehicles.iter().map(|v| v.vin.to_string()).collect();
    let shutdown = CancellationToken::new();
    let sim = tokio::spawn(run(cfg, shutdown.clone()));

    let mut json_samples: Vec<Sample> = Vec::new();
    let mut frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (json_samples.len() < 30 || frames.len() < 30) && Instant::now() < deadline {
        let Ok(Some((topic, payload))) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await else {
            continue;
        };
        let parts: Vec<&str> = topic.split('/').collect();
        assert_eq!(parts[..3], ["fleet", "v1", "vehicles"]);
        assert!(vins.contains(parts[3]), "{topic}");
        let vin = Vin::parse(parts[3]).unwrap();
        match parts[4] {
            "telemetry" => {
                for s in fleet_ingest::decode::json::decode(&vin, &payload).unwrap() {
                    json_samples.push(s.unwrap());
                }
            }
            "gbt32960" => frames.push((vin, decode_frame(&payload).unwrap())),
            other => panic!("unexpected topic kind {other}"),
        }
    }
    shutdown.cancel();
    let stats = tokio::time::timeout(Duration::from_secs(10), sim).await.unwrap().unwrap().unwrap();
    listen.abort();

    assert!(
        json_samples.len() >= 30 && frames.len() >= 30,
        "{} JSON samples, {} frames",
        json_samples.len(),
        frames.len()
    );
    assert!(stats.published >= 60, "{stats:?}");
    for s in &json_samples {
        s.validate().unwrap();
        assert!(ZHOUSHAN_BBOX.contains(geo::LatLon::new(s.lat, s.lon)));
    }
    let editions: HashSet<Edition> = frames.iter().map(|(_, f)| f.edition).collect();
    assert_eq!(editions.len(), 2, "both editions on the wire");
    assert!(frames.iter().any(|(_, f)| f.command == Command::Login));
    for (vin, f) in frames.iter().filter(|(_, f)| f.command == Command::RealtimeReport) {
        let s = report_sample(f, vin).unwrap().unwrap();
        let near = graph()
            .distance_to_roads_m(geo::LatLon::new(s.lat, s.lon))
            .min(graph().distance_to_ferry_m(geo::LatLon::new(s.lat, s.lon)));
        assert!(near < 100.0, "{s:?}");
    }
}
