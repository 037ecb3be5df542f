//! The live feed (docs/live-feed.md): `GET /api/v1/live` upgrades to a WebSocket that sends a
//! snapshot of every visible car, then coalesced position deltas at most every [`TICK`] and
//! order changes as they happen.
//!
//! One task (the [`hub`]) listens to the bus, keeps every car's current state in memory
//! ([`fleet`]) and, each tick, serializes each changed car once and broadcasts one shared
//! [`Frame`] to every connection. Each connection ([`client`]) filters the frame for its
//! [`view`] (role, unit, bounding box); a connection that sees everything sends the frame's
//! prepared message as is, so the bytes are shared between clients. The hub never waits for
//! a client: a client that falls more than [`FRAME_BACKLOG`] frames behind gets a fresh
//! snapshot instead (it loses intermediate positions, never the latest), and one whose
//! socket does not take a message within the send timeout is dropped.

mod client;
mod fleet;
mod hub;
mod socket;
mod view;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use fleet_domain::Vin;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppState;
use crate::access::VehicleScope;
use crate::error::ApiError;
use crate::extract::ApiQuery;

pub(crate) use hub::run as run_hub;
use socket::{Upgrade, Utf8Bytes};

/// Position deltas go out at most this often (one message per 250 ms).
pub const TICK: Duration = Duration::from_millis(250);
/// Frames kept for the slowest connection (about 16 s of ticks). A connection further behind
/// receives `Lagged` and is sent a fresh snapshot in place of what it missed.
pub const FRAME_BACKLOG: usize = 64;
/// A connection whose socket does not take one message within this time is closed: a stuck
/// dispatcher's page reconnects and resyncs from a snapshot.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer of a live-feed connection (its client only sends pongs and a close).
const CLIENT_READ_BUFFER: usize = 4096;
/// Largest message a live-feed client may send.
const CLIENT_MAX_MESSAGE: usize = 16 * 1024;

/// A ping goes to every connection this often, so dead peers are noticed.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Each connection checks its token in storage this often. A logout or password change
/// closes connections at once through the bus (on every instance); this check is the
/// backstop for revocations that reached no event (an instance's relay lost them).
pub const TOKEN_RECHECK: Duration = Duration::from_secs(30);

/// One broadcast from the hub to every connection.
#[derive(Debug)]
pub(crate) enum Frame {
    /// Cars that changed since the last tick.
    Positions(Positions),
    /// An order changed status.
    Order(OrderFrame),
    /// The hub lost events (it lagged behind the bus) and reloaded: every client resyncs
    /// (and checks its token again, in case a revocation was among the lost events).
    Resync,
    /// Login tokens were revoked: connections opened with them close.
    Revoked(Arc<fleet_bus::Revocation>),
}

/// Changed cars, each serialized once.
#[derive(Debug)]
pub(crate) struct Positions {
    pub cars: Vec<Changed>,
    /// The whole `positions` message with every changed car, for connections that see all.
    pub all: Utf8Bytes,
}

/// One changed car as a connection's filter needs it.
#[derive(Debug)]
pub(crate) struct Changed {
    pub vin: Vin,
    pub unit_id: Option<String>,
    /// Where the car is now and where it was at the previous tick (lat, lon): a car leaving
    /// a client's box is still sent once, so the client sees it go.
    pub pos: Option<(f64, f64)>,
    pub prev: Option<(f64, f64)>,
    /// The car's `VehicleState` JSON.
    pub json: Arc<str>,
}

/// An order change with what visibility needs.
#[derive(Debug)]
pub(crate) struct OrderFrame {
    pub unit_id: String,
    /// The order's driver, and the driver it had before this change (a decline or a
    /// timeout takes it away from them: they are told too).
    pub driver_id: Option<String>,
    pub previous_driver_id: Option<String>,
    /// The whole `order` message.
    pub msg: Utf8Bytes,
    /// The `order` message for the previous driver: the order without its new car and driver.
    pub for_previous: Option<Utf8Bytes>,
}

/// The feed's shared state: the cars, the frame channel, and its stop signal.
pub(crate) struct Live {
    pub(crate) fleet: RwLock<fleet::Fleet>,
    pub(crate) frames: broadcast::Sender<Arc<Frame>>,
    pub(crate) send_timeout: Duration,
    /// Cancelled when the server shuts down: every connection closes.
    pub(crate) stop: CancellationToken,
    /// The hub and every connection's task; the server waits for them when it stops.
    pub(crate) tasks: TaskTracker,
    /// Where connections check their token again ([`TOKEN_RECHECK`]).
    pub(crate) store: fleet_storage::Store,
}

impl Live {
    pub(crate) fn new(send_timeout: Duration, store: fleet_storage::Store) -> Self {
        Self {
            fleet: RwLock::new(fleet::Fleet::default()),
            frames: broadcast::channel(FRAME_BACKLOG).0,
            send_timeout,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            store,
        }
    }

    /// A car's order duty as the feed tracks it (off duty when unknown), so that the API
    /// derives the same status as the feed.
    pub(crate) fn duty(&self, vin: &Vin) -> fleet_domain::Duty {
        self.fleet.read().unwrap_or_else(|e| e.into_inner()).cars.get(vin).map(fleet::Car::duty).unwrap_or_default()
    }
}

/// `GET /api/v1/live` query.
#[derive(Deserialize)]
pub(crate) struct LiveQuery {
    token: Option<String>,
    bbox: Option<String>,
    unit_id: Option<String>,
}

/// `GET /api/v1/live`: checks the token (header or `?token=`) and the filters, then upgrades.
pub(crate) async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LiveQuery>,
    upgrade: Result<Upgrade, ApiError>,
) -> Result<Response, ApiError> {
    let token = crate::auth::bearer_token(&headers).or(q.token.as_deref()).ok_or(ApiError::Unauthorized)?;
    let (user, expires_at) = crate::auth::authenticate_session(&state, token).await?;
    let scope = VehicleScope::load(&state.store, &user).await?;
    let view = view::View::new(&user, scope, q.unit_id.as_deref(), q.bbox.as_deref())?;
    let upgrade = upgrade?;
    let live = state.live.clone();
    let session = client::Session { user_id: user.id, token_hash: crate::auth::token_hash(token), expires_at };
    tracing::debug!(user.id = user.id, "live feed connection");
    // Clients send nothing but control frames: a small read buffer (tungstenite clears its
    // whole read buffer before every read) and a small message cap.
    let tasks = live.tasks.clone();
    Ok(upgrade.on_upgrade(&tasks, CLIENT_READ_BUFFER, CLIENT_MAX_MESSAGE, move |socket| {
        client::serve(live, view, session, socket)
    }))
}
