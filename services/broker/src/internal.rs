//! The internal broker: rumqttd's router and one MQTT 3.1.1 server, in threads of their own.
//!
//! rumqttd's `Broker::start` runs its servers in threads that never end. Here its server is
//! run on a runtime of our own, in a thread we can stop: at stop the server's accept loop is
//! dropped (the port is free again), the runtime with it (its connections close), and the
//! thread ends. rumqttd's connections make blocking channel calls to the router, which is why
//! they stay off fleetd's runtime. The router thread waits idle for the life of the process:
//! rumqttd keeps a sender to itself, so nothing can end it; it holds no socket.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{BrokerError, InternalLogin};

/// What tells the starter whether the broker holds its port (or why not).
pub(super) type Ready = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A free loopback address (port 0 resolved): rumqttd binds inside its thread and cannot
/// report the port it got.
pub(super) fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    let probe = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    probe.local_addr()
}

/// A running internal broker.
pub(super) struct Running {
    stop: CancellationToken,
    /// Sent when the server's thread ends: `Ok` after a stop, the reason otherwise.
    ended: oneshot::Receiver<Result<(), String>>,
}

impl Running {
    /// Waits until the broker ends by itself, and says why.
    pub(super) async fn ended(&mut self) -> String {
        match (&mut self.ended).await {
            Ok(Ok(())) => "it stopped".to_owned(),
            Ok(Err(e)) => e,
            Err(_) => "its thread ended".to_owned(),
        }
    }

    /// Stops the server and waits until its port is closed and its connections are gone.
    pub(super) async fn stop(mut self) {
        self.stop.cancel();
        let _ = (&mut self.ended).await;
    }

    /// Leaves the broker running for the life of the process.
    pub(super) fn detach(self) {}
}

/// Starts rumqttd on `addr`, taking only `login` when given; `ready` hears whether it holds
/// the port.
pub(super) fn spawn(
    addr: SocketAddr,
    login: Option<InternalLogin>,
    ready: impl FnOnce(Result<(), String>) + Send + 'static,
) -> Result<Running, BrokerError> {
    let stop = CancellationToken::new();
    let (ended_tx, ended) = oneshot::channel();
    start(addr, login, stop.clone(), Box::new(ready), ended_tx)?;
    Ok(Running { stop, ended })
}

#[cfg(feature = "embedded")]
fn start(
    addr: SocketAddr,
    login: Option<InternalLogin>,
    stop: CancellationToken,
    ready: Ready,
    ended: oneshot::Sender<Result<(), String>>,
) -> Result<(), BrokerError> {
    use std::collections::HashMap;
    use std::task::Poll;

    use rumqttd::protocol::v4::V4;
    use rumqttd::{LinkType, Router, Server};

    use super::{EMBEDDED_MAX_INFLIGHT, EMBEDDED_MAX_PAYLOAD, MAX_CLIENT_CONNECTIONS};

    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: EMBEDDED_MAX_PAYLOAD,
        max_inflight_count: EMBEDDED_MAX_INFLIGHT,
        auth: login.map(|l| HashMap::from([(l.username, l.password)])),
        external_auth: None,
        dynamic_filters: true,
    };
    let settings = rumqttd::ServerSettings {
        name: "v4".to_owned(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let router = rumqttd::RouterConfig {
        max_connections: MAX_CLIENT_CONNECTIONS + 10,
        max_outgoing_packet_count: 1000,
        max_segment_size: 100 * 1024 * 1024,
        max_segment_count: 10,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(BrokerError::Thread)?;
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            let router_tx = Router::new(0, router).spawn();
            let mut server = Server::new(settings, router_tx, V4);
            let outcome = runtime.block_on(async {
                let mut serving = std::pin::pin!(server.start(LinkType::Remote));
                // The server binds its listener on its first poll and then waits in its accept
                // loop: pending means it holds the port.
                let bound = match futures_util::poll!(serving.as_mut()) {
                    Poll::Pending => Ok(()),
                    Poll::Ready(Err(e)) => Err(e.to_string()),
                    Poll::Ready(Ok(())) => Err("it stopped at once".to_owned()),
                };
                ready(bound.clone());
                bound?;
                tokio::select! {
                    served = serving => Err(match served {
                        Ok(()) => "its server returned".to_owned(),
                        Err(e) => e.to_string(),
                    }),
                    () = stop.cancelled() => Ok(()),
                }
            });
            // Dropping the runtime drops the connections' tasks, which closes their sockets.
            drop(runtime);
            if let Err(e) = &outcome {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
            let _ = ended.send(outcome);
        })
        .map_err(BrokerError::Thread)?;
    Ok(())
}

#[cfg(not(feature = "embedded"))]
fn start(
    _addr: SocketAddr,
    _login: Option<InternalLogin>,
    _stop: CancellationToken,
    _ready: Ready,
    _ended: oneshot::Sender<Result<(), String>>,
) -> Result<(), BrokerError> {
    Err(BrokerError::NotBuilt)
}
