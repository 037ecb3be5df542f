//! The embedded MQTT broker (rumqttd), the quick start's default: fleetd connects to it over
//! TCP like to any broker, so the same ingest code runs against Mosquitto or EMQX in
//! production. It keeps persistent sessions in memory only (no disk): a real deployment uses
//! an external broker (`deploy/mosquitto/`).

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Largest message the embedded broker passes on. Above ingest's own 256 KiB limit, so that a
/// too-large message reaches ingest and is dead-lettered with its reason.
pub const EMBEDDED_MAX_PAYLOAD: usize = 1024 * 1024;
/// Unacknowledged QoS 1 messages in flight to one client.
pub const EMBEDDED_MAX_INFLIGHT: usize = 10_000;

/// Starts the broker on `addr` (port 0 picks a free port) in its own threads and waits until
/// it accepts connections. Returns the bound address.
#[cfg(feature = "embedded-broker")]
pub fn start(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    use std::collections::HashMap;

    // rumqttd binds inside its own thread and cannot report the port, so check the address
    // here first (a clear error when it is taken) and resolve port 0.
    let addr = {
        let probe = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} for the embedded MQTT broker"))?;
        probe.local_addr()?
    };
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: EMBEDDED_MAX_PAYLOAD,
        max_inflight_count: EMBEDDED_MAX_INFLIGHT,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "v4".to_owned(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 20_010,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .context("cannot start the embedded broker thread")?;
    // Wait until the broker holds the port (binding it ourselves then fails). A test
    // connection would do too, but the broker logs every half-open connection as an error.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpListener::bind(addr).is_ok() {
        if Instant::now() > deadline {
            bail!("the embedded MQTT broker did not start listening on {addr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(addr)
}

#[cfg(not(feature = "embedded-broker"))]
pub fn start(_addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    bail!("this build has no embedded broker (feature `embedded-broker`); set FLEET_MQTT_URL")
}
