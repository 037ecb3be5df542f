//! One live-feed connection: a snapshot, then the hub's frames filtered for its view.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::{MissedTickBehavior, timeout};

use super::hub::{positions_message, vehicles_message};
use super::socket::{CloseFrame, Message, Socket, Utf8Bytes};
use super::view::View;
use super::{Frame, Live, PING_INTERVAL};

/// Close code "going away": the server is shutting down.
const CLOSE_GOING_AWAY: u16 = 1001;

/// Why a connection ended.
enum End {
    /// The peer closed, or its socket failed.
    Peer,
    /// The socket did not take a message within the send timeout.
    Slow,
    /// The server is shutting down.
    Shutdown,
}

/// Serves one connection until the peer leaves, is too slow, or the server stops.
pub(crate) async fn serve(live: Arc<Live>, view: View, mut socket: Socket) {
    metrics::gauge!("fleet_live_clients").increment(1.0);
    let end = run(&live, &view, &mut socket).await;
    metrics::gauge!("fleet_live_clients").decrement(1.0);
    match end {
        End::Slow => {
            metrics::counter!("fleet_live_clients_dropped_total", "reason" => "slow").increment(1);
            tracing::info!("live feed client dropped: it did not keep up");
        }
        End::Shutdown => {
            let close = CloseFrame { code: CLOSE_GOING_AWAY.into(), reason: Utf8Bytes::from_static("server shutting down") };
            let _ = timeout(live.send_timeout, socket.send(Message::Close(Some(close)))).await;
        }
        End::Peer => {}
    }
}

async fn run(live: &Live, view: &View, socket: &mut Socket) -> End {
    // Subscribed before the snapshot is taken: nothing between the two is missed.
    let mut frames = live.frames.subscribe();
    if let Err(end) = send(live, socket, Message::Text(snapshot(live, view))).await {
        return end;
    }
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        let msg = tokio::select! {
            () = live.stop.cancelled() => return End::Shutdown,
            frame = frames.recv() => match frame {
                Ok(frame) => match message_for(view, &frame) {
                    Some(FrameMessage::Text(text)) => Message::Text(text),
                    Some(FrameMessage::Snapshot) => {
                        metrics::counter!("fleet_live_resyncs_total").increment(1);
                        Message::Text(snapshot(live, view))
                    }
                    None => continue,
                },
                Err(RecvError::Lagged(_)) => {
                    metrics::counter!("fleet_live_resyncs_total").increment(1);
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
}

/// What a frame means for one view: a message, a snapshot, or nothing to send.
fn message_for(view: &View, frame: &Frame) -> Option<FrameMessage> {
    match frame {
        Frame::Resync => Some(FrameMessage::Snapshot),
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
