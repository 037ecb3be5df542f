//! One terminal's (or platform's) connection: frames in, answers out, in the order the
//! frames came.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use fleet_domain::{DeadLetter, DeadLetterReason, Vin};
use fleet_gbt32960::{
    Ack, FrameSplitter, Header, PLATFORM_LOGIN, PLATFORM_LOGOUT, Piece, PlatformBody, PlatformFrame, RESPONSE_COMMAND,
    decode_frame, decode_platform_frame, encode_reply,
};
use fleet_storage::Store;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::GatewayConfig;
use crate::intake::{IntakeClosed, Submitter};

/// Answers waiting for their turn: past this many the connection stops reading until the
/// oldest are written (a platform forwarding many vehicles keeps commits in flight).
const MAX_PENDING: usize = 256;
/// Longest wait for one answer to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown begins, longest wait for the answers in hand.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 4096;

/// An answer in the making: its bytes once due, or nothing to send.
type Pending = Pin<Box<dyn std::future::Future<Output = Option<Vec<u8>>> + Send>>;

/// Who the connection speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Session {
    None,
    /// A vehicle's terminal logged in with this VIN: its reports only.
    Vehicle(String),
    /// A platform logged in: reports of any registered vehicle.
    Platform,
}

pub(super) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    cfg: GatewayConfig,
    store: Store,
    intake: Submitter,
    session: Session,
    pending: FuturesOrdered<Pending>,
    /// Close once the answers in hand are written.
    closing: bool,
}

enum Step {
    Go,
    /// The intake is closed (shutting down): stop reading.
    Stop,
}

impl Connection {
    pub(super) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        cfg: GatewayConfig,
        store: Store,
        intake: Submitter,
    ) -> Self {
        Self {
            stream,
            peer,
            cfg,
            store,
            intake,
            session: Session::None,
            pending: FuturesOrdered::new(),
            closing: false,
        }
    }

    pub(super) async fn serve(mut self, shutdown: CancellationToken) {
        let mut splitter = FrameSplitter::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut last_heard = Instant::now();
        let mut drain_by: Option<Instant> = None;
        loop {
            if self.closing && self.pending.is_empty() {
                break;
            }
            let reading = !self.closing && self.pending.len() < MAX_PENDING;
            if !reading && !self.pending.is_empty() {
                // Waiting on our own answers is not the terminal's silence.
                last_heard = Instant::now();
            }
            let idle_at = last_heard + self.cfg.idle;
            let drain_at = drain_by.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                biased;
                Some(answer) = self.pending.next(), if !self.pending.is_empty() => {
                    if let Some(bytes) = answer
                        && !self.write(&bytes).await
                    {
                        break;
                    }
                }
                () = shutdown.cancelled(), if drain_by.is_none() => {
                    self.closing = true;
                    drain_by = Some(Instant::now() + DRAIN_TIMEOUT);
                }
                () = tokio::time::sleep_until(drain_at), if drain_by.is_some() => break,
                read = self.stream.read(&mut buf), if reading => {
                    let n = match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    last_heard = Instant::now();
                    for piece in splitter.feed(&buf[..n]) {
                        if let Step::Stop = self.piece(piece).await {
                            self.closing = true;
                            break;
                        }
                        if self.closing {
                            break;
                        }
                    }
                }
                () = tokio::time::sleep_until(idle_at), if reading => {
                    metrics::counter!("fleet_connections_timed_out_total", "listener" => "gbt32960", "reason" => "idle").increment(1);
                    tracing::debug!(peer = %self.peer, "gbt32960 connection idle; closed");
                    break;
                }
            }
        }
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.stream.shutdown()).await;
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        matches!(tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(bytes)).await, Ok(Ok(())))
    }

    async fn piece(&mut self, piece: Piece) -> Step {
        let result = match piece {
            Piece::Frame(frame) => self.frame(frame).await,
            Piece::BadChecksum(frame) => {
                let detail = match Header::parse(&frame) {
                    Err(e) => e.to_string(),
                    Ok(_) => "the BCC does not match".to_owned(),
                };
                self.reject(&frame, DeadLetterReason::BadChecksum, detail).await
            }
            Piece::Skipped(n) => {
                metrics::counter!("fleet_gateway_bytes_skipped_total", "listener" => "gbt32960").increment(n as u64);
                Ok(())
            }
        };
        match result {
            Ok(()) => Step::Go,
            Err(IntakeClosed) => Step::Stop,
        }
    }

    async fn frame(&mut self, frame: Vec<u8>) -> Result<(), IntakeClosed> {
        let header = match Header::parse(&frame) {
            Ok((h, _)) => h,
            Err(e) => return self.reject(&frame, e.reason(), e.to_string()).await,
        };
        if header.response != RESPONSE_COMMAND {
            // An answer to a command we never send: nothing to do.
            return Ok(());
        }
        match header.command {
            0x01 => self.vehicle_login(frame, header).await,
            0x02 | 0x03 => self.report(frame, header).await,
            0x04 => {
                if let Err(e) = decode_frame(&frame) {
                    return self.reject(&frame, e.reason(), e.to_string()).await;
                }
                if matches!(self.session, Session::Vehicle(_)) {
                    self.session = Session::None;
                }
                self.answer(&frame, Ack::Success).await
            }
            PLATFORM_LOGIN => self.platform_login(frame).await,
            PLATFORM_LOGOUT => {
                if let Err(e) = decode_platform_frame(&frame) {
                    return self.reject(&frame, e.reason(), e.to_string()).await;
                }
                if self.session == Session::Platform {
                    self.session = Session::None;
                }
                self.answer(&frame, Ack::Success).await
            }
            0x07 | 0x08 => self.answer(&frame, Ack::Success).await,
            other => {
                let detail = format!("command {other:#04x} is not taken by the gateway");
                self.reject(&frame, DeadLetterReason::UnsupportedCommand, detail).await
            }
        }
    }

    async fn vehicle_login(&mut self, frame: Vec<u8>, header: Header) -> Result<(), IntakeClosed> {
        if let Err(e) = decode_frame(&frame) {
            return self.reject(&frame, e.reason(), e.to_string()).await;
        }
        let vin = header.vin();
        let registered = match Vin::parse(&vin) {
            Err(_) => Ok(false),
            Ok(v) => self.store.vehicles().exists(v.as_str()).await,
        };
        match registered {
            Ok(true) => {
                if self.session != Session::Platform {
                    self.session = Session::Vehicle(vin);
                }
                self.answer(&frame, Ack::Success).await
            }
            Ok(false) => {
                tracing::info!(peer = %self.peer, vin = %vin, "gbt32960 login of an unregistered VIN refused");
                self.answer(&frame, Ack::Error).await?;
                // A platform's other vehicles go on; a terminal is shown the door.
                if self.session != Session::Platform {
                    self.closing = true;
                }
                Ok(())
            }
            Err(e) => {
                // Unanswered: the terminal logs in again, on a new connection.
                tracing::warn!(peer = %self.peer, error = %e, "gbt32960 login: registry lookup failed; closing");
                self.closing = true;
                Ok(())
            }
        }
    }

    async fn platform_login(&mut self, frame: Vec<u8>) -> Result<(), IntakeClosed> {
        let login = match decode_platform_frame(&frame) {
            Ok(PlatformFrame { body: PlatformBody::Login(login), .. }) => login,
            Ok(_) => return Ok(()),
            Err(e) => return self.reject(&frame, e.reason(), e.to_string()).await,
        };
        let hash = match self.store.platforms().password_hash(&login.username).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "gbt32960 platform login: lookup failed; closing");
                self.closing = true;
                return Ok(());
            }
        };
        let password = login.password.expose().to_owned();
        let valid = tokio::task::spawn_blocking(move || hash.is_some_and(|h| password_matches(&password, &h)))
            .await
            .unwrap_or(false);
        if valid {
            tracing::info!(peer = %self.peer, platform = %login.username, "gbt32960 platform logged in");
            self.session = Session::Platform;
            self.answer(&frame, Ack::Success).await
        } else {
            tracing::info!(peer = %self.peer, platform = %login.username, "gbt32960 platform login refused");
            self.answer(&frame, Ack::Error).await?;
            self.closing = true;
            Ok(())
        }
    }

    async fn report(&mut self, frame: Vec<u8>, header: Header) -> Result<(), IntakeClosed> {
        let vin = header.vin();
        match &self.session {
            Session::None => {
                let detail = "a report before the connection logged in";
                return self.reject(&frame, DeadLetterReason::NotLoggedIn, detail).await;
            }
            Session::Vehicle(own) if *own != vin => {
                let detail = format!("the connection logged in as {own}");
                return self.reject(&frame, DeadLetterReason::VinMismatch, detail).await;
            }
            Session::Vehicle(_) | Session::Platform => {}
        }
        if let Err(e) = Vin::parse(&vin) {
            return self.reject(&frame, DeadLetterReason::UnknownVehicle, format!("frame VIN: {e}")).await;
        }
        let settled = self.intake.gbt32960_frame(&vin, frame.clone()).await?;
        self.pending.push_back(Box::pin(async move {
            match settled.await {
                // Durable as a sample (or a duplicate of one): answered.
                Ok(s) if s.rejected.is_none() => reply(&frame, Ack::Success),
                // Dead-lettered, or never committed (shutdown): no answer.
                _ => None,
            }
        }));
        Ok(())
    }

    /// Queues an answer behind those in hand.
    async fn answer(&mut self, frame: &[u8], ack: Ack) -> Result<(), IntakeClosed> {
        match encode_reply(frame, ack, beijing_now()) {
            Ok(bytes) => {
                self.pending.push_back(Box::pin(std::future::ready(Some(bytes))));
                Ok(())
            }
            Err(e) => {
                let reason = match &e {
                    fleet_gbt32960::ReplyError::Frame(f) => f.reason(),
                    _ => DeadLetterReason::MalformedFrame,
                };
                self.reject(frame, reason, e.to_string()).await
            }
        }
    }

    /// Stores the frame as a dead letter; no answer.
    async fn reject(
        &mut self,
        frame: &[u8],
        reason: DeadLetterReason,
        detail: impl Into<String>,
    ) -> Result<(), IntakeClosed> {
        metrics::counter!("fleet_gateway_rejected_total", "listener" => "gbt32960", "reason" => reason.as_str())
            .increment(1);
        let vin = frame.get(4..21).map(|b| b.iter().map(|&c| char::from(c)).collect::<String>());
        let vin = vin.filter(|v| Vin::parse(v).is_ok());
        let topic = format!("gbt32960/tcp/{}", self.peer);
        let dead = DeadLetter::new(&topic, vin.as_deref(), reason, detail, frame);
        // Stored in the background of this connection: nothing waits for it.
        let _settled = self.intake.dead_letter(dead).await?;
        Ok(())
    }
}

/// Whether `password` matches an argon2 PHC string (as the web API stores it).
fn password_matches(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

fn reply(frame: &[u8], ack: Ack) -> Option<Vec<u8>> {
    encode_reply(frame, ack, beijing_now()).ok()
}

/// The time in Beijing (GMT+8), the frames' clock.
fn beijing_now() -> NaiveDateTime {
    (Utc::now() + chrono::Duration::hours(8)).naive_utc()
}
