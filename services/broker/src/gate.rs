//! The embedded broker's public listener: each client's CONNECT is read and judged here
//! before the internal broker hears of it. A vehicle logs in with username = VIN and its
//! issued secret, checked against the registry's stored line at each login (a replaced secret
//! stops working at once); fleetd's own client id is refused; anonymous clients only when
//! the development flag allows them. An accepted client is connected to the internal broker
//! under the internal account, its client id put in a namespace of its own (no client can
//! take over fleetd's session or another vehicle's), and relayed ([`super::splice`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fleet_domain::Vin;
use fleet_storage::Store;
use rumqttc::mqttbytes::{Error as CodecError, Protocol};
use rumqttc::{ConnAck, Connect, ConnectReturnCode, Login, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::splice::{self, encode};
use super::{InternalLogin, refused};

/// Longest wait for a client's CONNECT after it opened the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest CONNECT taken (its will message included).
const MAX_CONNECT_BYTES: usize = 64 * 1024;
/// Client connections open at once, logged in or not; past it a new one is closed at once.
/// Below the internal broker's own connection limit, which keeps room for fleetd's.
pub const MAX_CLIENT_CONNECTIONS: usize = 20_000;
/// Longest wait for the internal broker to take a connection.
const INTERNAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed accept (out of file descriptors, say), the wait before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Who a client is, once logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    /// No account, let in by the development flag: the internal broker's rules only.
    Anonymous,
    /// A vehicle: its own topics only.
    Vehicle(Vin),
}

/// What the gate needs to judge and forward logins.
pub(crate) struct Gate {
    pub store: Store,
    pub internal: SocketAddr,
    pub login: InternalLogin,
    /// fleetd's own client id: no one else may use it.
    pub reserved_client_id: String,
    pub anonymous: bool,
    pub password_matches: fn(&str, &str) -> bool,
}

impl Gate {
    /// Accepts clients on `listener` until `shutdown`; each connection is a task on `tasks`
    /// that ends with it or at `shutdown`.
    pub(crate) async fn run(self, listener: TcpListener, tasks: TaskTracker, shutdown: CancellationToken) {
        let gate = Arc::new(self);
        let slots = Arc::new(Semaphore::new(MAX_CLIENT_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "the embedded MQTT broker cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                refused("too_many_connections");
                continue;
            };
            let (gate, shutdown) = (Arc::clone(&gate), shutdown.clone());
            tasks.spawn(async move {
                let _slot = slot;
                metrics::gauge!("fleet_mqtt_client_connections").increment(1.0);
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = gate.serve(stream, peer) => {}
                }
                metrics::gauge!("fleet_mqtt_client_connections").decrement(1.0);
            });
        }
    }

    async fn serve(&self, mut client: TcpStream, peer: SocketAddr) {
        let _ = client.set_nodelay(true);
        let mut buf = BytesMut::with_capacity(1024);
        let connect = match tokio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut client, &mut buf)).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => return,
            Ok(Err(Refusal { reason, code })) => {
                refused(reason);
                tracing::debug!(client.addr = %peer, reason, "refused an MQTT connection");
                if let Some(code) = code {
                    connack(&mut client, code).await;
                }
                return;
            }
            Err(_) => {
                refused("connect_timeout");
                return;
            }
        };
        let access = match self.judge(&connect).await {
            Ok(a) => a,
            Err(Refusal { reason, code }) => {
                refused(reason);
                let user = connect.login.as_ref().map(|l| l.username.chars().take(64).collect::<String>());
                tracing::warn!(client.addr = %peer, mqtt.username = ?user, reason, "refused an MQTT login");
                if let Some(code) = code {
                    connack(&mut client, code).await;
                }
                return;
            }
        };
        let broker = match self.open_internal(connect, &access).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the internal MQTT broker");
                connack(&mut client, ConnectReturnCode::ServiceUnavailable).await;
                return;
            }
        };
        let ended = match &access {
            Access::Anonymous => relay_plain(client, broker, buf).await,
            Access::Vehicle(vin) => splice::run(client, broker, buf, vin.as_str()).await.map_err(|e| e.to_string()),
        };
        if let Err(e) = ended {
            tracing::debug!(client.addr = %peer, error = %e, "MQTT client connection ended");
        }
    }

    /// Whether the CONNECT may go on, and as whom.
    async fn judge(&self, connect: &Connect) -> Result<Access, Refusal> {
        if connect.client_id == self.reserved_client_id {
            return Err(Refusal::answer("reserved_client_id", ConnectReturnCode::NotAuthorized));
        }
        // rumqttd drops such a client id without a word, after registering the client's
        // will handler, and a second try with the same id then fails inside rumqttd: say
        // no here, as MQTT provides.
        if connect.client_id.contains(['+', '#', '$', '/']) {
            return Err(Refusal::answer("bad_client_id", ConnectReturnCode::BadClientId));
        }
        let Some(login) = &connect.login else {
            return if self.anonymous {
                Ok(Access::Anonymous)
            } else {
                Err(Refusal::answer("anonymous", ConnectReturnCode::NotAuthorized))
            };
        };
        // Mosquitto answers a wrong password, an unknown user and a user without a secret
        // alike (5, not authorized); so does this, so an answer tells nothing about accounts.
        let bad = || Refusal::answer("bad_credentials", ConnectReturnCode::NotAuthorized);
        let vin = Vin::parse(&login.username).map_err(|_| bad())?;
        let account = self.store.mqtt_secrets().get(vin.as_str()).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read a vehicle's MQTT account");
            Refusal::answer("registry_unavailable", ConnectReturnCode::ServiceUnavailable)
        })?;
        let Some(account) = account else { return Err(bad()) };
        if login.password.is_empty() || !(self.password_matches)(&account.password_line, &login.password) {
            return Err(bad());
        }
        // A will is published by the broker for the client: it must keep to the same rule.
        if let Some(will) = &connect.last_will
            && !super::acl::may_publish(vin.as_str(), will.topic.as_bytes())
        {
            return Err(Refusal::answer("foreign_will", ConnectReturnCode::NotAuthorized));
        }
        Ok(Access::Vehicle(vin))
    }

    /// Connects to the internal broker and sends the client's CONNECT there under the
    /// internal account and a namespaced client id.
    async fn open_internal(&self, mut connect: Connect, access: &Access) -> std::io::Result<TcpStream> {
        let mut broker = tokio::time::timeout(INTERNAL_CONNECT_TIMEOUT, TcpStream::connect(self.internal))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting to the internal broker"))??;
        broker.set_nodelay(true)?;
        // An empty id asks the broker for a throwaway session; it stays empty.
        if !connect.client_id.is_empty() {
            connect.client_id = match access {
                Access::Vehicle(vin) => format!("vehicle:{vin}:{}", connect.client_id),
                Access::Anonymous => format!("anonymous:{}", connect.client_id),
            };
        }
        connect.login = Some(Login::new(self.login.username.clone(), self.login.password.clone()));
        broker.write_all(&encode(&Packet::Connect(connect))).await?;
        Ok(broker)
    }
}

/// Why a connection is turned away: the metric's reason, and the CONNACK code answered
/// (none when the client is not speaking MQTT).
struct Refusal {
    reason: &'static str,
    code: Option<ConnectReturnCode>,
}

impl Refusal {
    fn answer(reason: &'static str, code: ConnectReturnCode) -> Self {
        Self { reason, code: Some(code) }
    }

    fn close(reason: &'static str) -> Self {
        Self { reason, code: None }
    }
}

/// Reads the client's first packet, which must be an MQTT 3.1.1 CONNECT. `None` when the
/// client left before sending one. What follows it stays in `buf`.
async fn read_connect(client: &mut TcpStream, buf: &mut BytesMut) -> Result<Option<Connect>, Refusal> {
    loop {
        if buf.first().is_some_and(|b| *b != 0x10) {
            return Err(Refusal::close("malformed"));
        }
        match Packet::read(buf, MAX_CONNECT_BYTES) {
            Ok(Packet::Connect(c)) if c.protocol == Protocol::V4 => return Ok(Some(c)),
            Ok(_) | Err(CodecError::InvalidProtocol | CodecError::InvalidProtocolLevel(_)) => {
                // MQTT 3.1 and 5 clients: the internal broker speaks 3.1.1 only.
                return Err(Refusal::answer("protocol_version", ConnectReturnCode::RefusedProtocolVersion));
            }
            Err(CodecError::InsufficientBytes(_)) => {}
            Err(_) => return Err(Refusal::close("malformed")),
        }
        buf.reserve(1024);
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Answers a refused CONNECT and closes (best effort: the client may be gone).
async fn connack(client: &mut TcpStream, code: ConnectReturnCode) {
    let _ = client.write_all(&encode(&Packet::ConnAck(ConnAck::new(code, false)))).await;
    let _ = client.shutdown().await;
}

/// An anonymous development client: nothing to check, bytes go both ways as they are.
async fn relay_plain(mut client: TcpStream, mut broker: TcpStream, pending: BytesMut) -> Result<(), String> {
    broker.write_all(&pending).await.map_err(|e| e.to_string())?;
    tokio::io::copy_bidirectional(&mut client, &mut broker).await.map(|_| ()).map_err(|e| e.to_string())
}
