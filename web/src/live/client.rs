//! One live-feed connection: a snapshot, then the hub's frames filtered for its view.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleet_bus::RevokeReason;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{MissedTickBehavior, timeout};

use super::hub::{positions_message, vehicles_message};
use super::socket::{CloseFrame, Message, Socket, Utf8Bytes};
use super::view::View;
use super::{Frame, Live, PING_INTERVAL, TOKEN_RECHECK};

/// Close code "going away": the server is shutting down.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close codes (RFC 6455 §7.4.2 leaves 4000–4999 to applications) telling a client why its
/// token no longer holds, so that a page asks for a login instead of reconnecting.
pub(crate) const CLOSE_LOGGED_OUT: u16 = 4001;
pub(crate) const CLOSE_PASSWORD_CHANGED: u16 = 4002;
pub(crate) const CLOSE_TOKEN_EXPIRED: u16 = 4003;
pub(crate) const CLOSE_TOKEN_REVOKED: u16 = 4004;

/// The login a connection runs on.
pub(crate) struct Session {
    pub user_id: i64,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a connection ended.
enum End {
    /// The peer closed, or its socket failed.
    Peer,
    /// The socket did not take a message within the send timeout.
    Slow,
    /// The server is shutting down.
    Shutdown,
    /// The connection's token no longer holds: close code and reason.
    Unauthorized(u16, &'static str),
}

/// Serves one connection until the peer leaves, is too slow, its token is revoked or
/// expires, or the server stops.
pub(crate) async fn serve(live: Arc<Live>, view: View, session: Session, mut socket: Socket) {
    metrics::gauge!("fleet_live_clients").increment(1.0);
    let end = run(&live, &view, &session, &mut socket).await;
    metrics::gauge!("fleet_live_clients").decrement(1.0);
    let close = match end {
        End::Slow => {
            metrics::counter!("fleet_live_clients_dropped_total", "reason" => "slow").increment(1);
            tracing::info!("live feed client dropped: it did not keep up");
            None
        }
        End::Shutdown => Some((CLOSE_GOING_AWAY, "server shutting down")),
        End::Unauthorized(code, reason) => {
            metrics::counter!("fleet_live_clients_dropped_total", "reason" => reason).increment(1);
            tracing::info!(user.id = session.user_id, reason, "live feed client closed: its token no longer holds");
            Some((code, reason))
        }
        End::Peer => None,
    };
    if let Some((code, reason)) = close {
        let close = CloseFrame { code: code.into(), reason: Utf8Bytes::from_static(reason) };
        let _ = timeout(live.send_timeout, socket.send(Message::Close(Some(close)))).await;
    }
}

async fn run(live: &Live, view: &View, session: &Session, socket: &mut Socket) -> End {
    // Subscribed before the snapshot is taken: nothing between the two is missed.
    let mut frames = live.frames.subscribe();
    if let Err(end) = send(live, socket, Message::Text(snapshot(live, view))).await {
        return end;
    }
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.tick().await;
    let mut recheck = tokio::time::interval(TOKEN_RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    recheck.tick().await;
    let expiry = tokio::time::sleep((session.expires_at - Utc::now()).to_std().unwrap_or_default());
    tokio::pin!(expiry);
    loop {
        let msg = tokio::select! {
            () = live.stop.cancelled() => return End::Shutdown,
            () = &mut expiry => return End::Unauthorized(CLOSE_TOKEN_EXPIRED, "token expired"),
            _ = recheck.tick() => {
                if let Err(end) = check_token(live, session).await {
                    return end;
                }
                continue;
            }
            frame = frames.recv() => match frame {
                Ok(frame) => match message_for(view, session, &frame) {
                    Some(FrameMessage::Text(text)) => Message::Text(text),
                    Some(FrameMessage::Snapshot) => {
                        metrics::counter!("fleet_live_resyncs_total").increment(1);
                        // A revocation may have been among the events lost.
                        if let Err(end) = check_token(live, session).await {
                    return end;
                }
                        Message::Text(snapshot(live, view))
                    }
                    Some(FrameMessage::Close(code, reason)) => return End::Unauthorized(code, reason),
                    None => continue,
                },
                Err(RecvError::Lagged(_)) => {
                    metrics::counter!("fleet_live_resyncs_total").increment(1);
                    if let Err(end) = check_token(live, session).await {
                    return end;
                }
                    Message::Text(snapshot(live, view))
                }
                Err(RecvError::Closed) => return End::Shutdown,
            },
            incoming = socket.recv() => match incoming {
                // Whatever a client sends is ignored (pongs, pings are answered by the socket).
                Some(Ok(Message::Close(_)) | Err(_)) | None => return End::Peer,
                Some(Ok(_)) => continue,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        if let Err(end) = send(live, socket, msg).await {
            return end;
        }
    }
}

/// Checks in storage that the connection's token still holds. A storage error keeps the
/// connection (the database may be briefly away; the next check decides).
async fn check_token(live: &Live, session: &Session) -> Result<(), End> {
    match live.store.tokens().session(&session.token_hash, Utc::now()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(End::Unauthorized(CLOSE_TOKEN_REVOKED, "token revoked")),
        Err(e) => {
            tracing::warn!(error = %e, "live feed could not check a connection's token; checking again later");
            Ok(())
        }
    }
}

async fn send(live: &Live, socket: &mut Socket, msg: Message) -> Result<(), End> {
    match timeout(live.send_timeout, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Peer),
        Err(_) => Err(End::Slow),
    }
}

enum FrameMessage {
    Text(Utf8Bytes),
    /// Resynchronise with a fresh snapshot.
    Snapshot,
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
}

/// What a frame means for one connection: a message, a snapshot, a close, or nothing to send.
fn message_for(view: &View, session: &Session, frame: &Frame) -> Option<FrameMessage> {
    match frame {
        Frame::Resync => Some(FrameMessage::Snapshot),
        Frame::Revoked(r) if r.covers(session.user_id, &session.token_hash) => Some(match r.reason {
            RevokeReason::LoggedOut => FrameMessage::Close(CLOSE_LOGGED_OUT, "logged out"),
            RevokeReason::PasswordChanged => FrameMessage::Close(CLOSE_PASSWORD_CHANGED, "password changed"),
            RevokeReason::AccountChanged => FrameMessage::Close(CLOSE_TOKEN_REVOKED, "token revoked"),
        }),
        Frame::Revoked(_) => None,
        Frame::Order(order) => view.order_message(order).map(|msg| FrameMessage::Text(msg.clone())),
        Frame::Positions(p) if view.sees_all() => Some(FrameMessage::Text(p.all.clone())),
        Frame::Positions(p) => {
            let mut mine = p.cars.iter().filter(|c| view.wants(c)).peekable();
            mine.peek()?;
            Some(FrameMessage::Text(positions_message(mine.map(|c| &*c.json)).into()))
        }
    }
}

/// The `snapshot` message: every car in view (in the box, when there is one), by plate.
fn snapshot(live: &Live, view: &View) -> Utf8Bytes {
    let fleet = live.fleet.read().unwrap_or_else(|e| e.into_inner());
    let mut cars: Vec<_> = fleet
        .cars
        .values()
        .filter(|c| view.sees_car(&c.vehicle.vin, c.vehicle.unit_id.as_deref()) && view.in_box(c.pos()))
        .collect();
    cars.sort_unstable_by(|a, b| a.vehicle.plate.cmp(&b.vehicle.plate));
    vehicles_message("snapshot", cars.iter().map(|c| &*c.json)).into()
}
