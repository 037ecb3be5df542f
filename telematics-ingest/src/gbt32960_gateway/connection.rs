//! One terminal's (or platform's) connection: frames in, answers out, in the order the
//! frames came.

use std::net::SocketAddr;

use chrono::{NaiveDateTime, Utc};
use fleet_domain::{DeadLetter, DeadLetterReason, Vin};
use fleet_gbt32960::{
    Ack, FrameSplitter, Header, PLATFORM_LOGIN, PLATFORM_LOGOUT, Piece, PlatformBody, PlatformFrame, RESPONSE_COMMAND,
    decode_frame, decode_platform_frame, encode_reply,
};
use fleet_storage::Store;
use tokio::time::Instant;

use crate::gateway::{Answers, Protocol, reject};
use crate::intake::{IntakeClosed, Submitter};

/// Who the connection speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Session {
    None,
    /// A vehicle's terminal logged in with this VIN: its reports only.
    Vehicle(String),
    /// A platform logged in: reports of any registered vehicle.
    Platform,
}

/// The GB/T 32960 side of one connection.
pub(crate) struct Gbt32960 {
    peer: SocketAddr,
    store: Store,
    intake: Submitter,
    session: Session,
    splitter: FrameSplitter,
}

impl Protocol for Gbt32960 {
    const NAME: &'static str = "gbt32960";

    fn new(peer: SocketAddr, store: Store, intake: Submitter) -> Self {
        Self { peer, store, intake, session: Session::None, splitter: FrameSplitter::new() }
    }

    async fn read(&mut self, mut bytes: Vec<u8>, answers: &mut Answers) -> Result<(), IntakeClosed> {
        loop {
            // The splitter takes the whole read unless a long frame fills it; only what it
            // did not take is kept meanwhile (usually nothing: the read buffer goes now).
            let taken = self.splitter.push(&bytes);
            bytes = bytes.split_off(taken);
            while let Some(piece) = self.splitter.pop() {
                self.piece(piece, answers).await?;
                if answers.closing() {
                    return Ok(());
                }
            }
            if bytes.is_empty() {
                return Ok(());
            }
        }
    }
}

impl Gbt32960 {
    async fn piece(&mut self, piece: Piece, answers: &mut Answers) -> Result<(), IntakeClosed> {
        match piece {
            Piece::Frame(frame) => self.frame(frame, answers).await,
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
        }
    }

    async fn frame(&mut self, frame: Vec<u8>, answers: &mut Answers) -> Result<(), IntakeClosed> {
        let header = match Header::parse(&frame) {
            Ok((h, _)) => h,
            Err(e) => return self.reject(&frame, e.reason(), e.to_string()).await,
        };
        if header.response != RESPONSE_COMMAND {
            // An answer to a command we never send: nothing to do.
            return Ok(());
        }
        match header.command {
            0x01 => self.vehicle_login(frame, header, answers).await,
            0x02 | 0x03 => self.report(frame, header, answers).await,
            0x04 => {
                if let Err(e) = decode_frame(&frame) {
                    return self.reject(&frame, e.reason(), e.to_string()).await;
                }
                if matches!(self.session, Session::Vehicle(_)) {
                    self.session = Session::None;
                }
                self.answer(&frame, Ack::Success, answers).await
            }
            PLATFORM_LOGIN => self.platform_login(frame, answers).await,
            PLATFORM_LOGOUT => {
                if let Err(e) = decode_platform_frame(&frame) {
                    return self.reject(&frame, e.reason(), e.to_string()).await;
                }
                if self.session == Session::Platform {
                    self.session = Session::None;
                }
                self.answer(&frame, Ack::Success, answers).await
            }
            0x07 | 0x08 => self.answer(&frame, Ack::Success, answers).await,
            other => {
                let detail = format!("command {other:#04x} is not taken by the gateway");
                self.reject(&frame, DeadLetterReason::UnsupportedCommand, detail).await
            }
        }
    }

    async fn vehicle_login(
        &mut self,
        frame: Vec<u8>,
        header: Header,
        answers: &mut Answers,
    ) -> Result<(), IntakeClosed> {
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
                self.answer(&frame, Ack::Success, answers).await
            }
            Ok(false) => {
                tracing::info!(peer = %self.peer, vin = %vin, "gbt32960 login of an unregistered VIN refused");
                self.answer(&frame, Ack::Error, answers).await?;
                // A platform's other vehicles go on; a terminal is shown the door.
                if self.session != Session::Platform {
                    answers.close();
                }
                Ok(())
            }
            Err(e) => {
                // Unanswered: the terminal logs in again, on a new connection.
                tracing::warn!(peer = %self.peer, error = %e, "gbt32960 login: registry lookup failed; closing");
                answers.close();
                Ok(())
            }
        }
    }

    async fn platform_login(&mut self, frame: Vec<u8>, answers: &mut Answers) -> Result<(), IntakeClosed> {
        let login = match decode_platform_frame(&frame) {
            Ok(PlatformFrame { body: PlatformBody::Login(login), .. }) => login,
            Ok(_) => return Ok(()),
            Err(e) => return self.reject(&frame, e.reason(), e.to_string()).await,
        };
        let hash = match self.store.platforms().password_hash(&login.username).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "gbt32960 platform login: lookup failed; closing");
                answers.close();
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
            self.answer(&frame, Ack::Success, answers).await
        } else {
            tracing::info!(peer = %self.peer, platform = %login.username, "gbt32960 platform login refused");
            self.answer(&frame, Ack::Error, answers).await?;
            answers.close();
            Ok(())
        }
    }

    async fn report(&mut self, frame: Vec<u8>, header: Header, answers: &mut Answers) -> Result<(), IntakeClosed> {
        let received = Instant::now();
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
        answers.later(async move {
            match settled.await {
                // Durable as a sample (or a duplicate of one): answered.
                Ok(s) if s.rejected.is_none() => {
                    metrics::counter!("fleet_gateway_reports_durable_total", "listener" => "gbt32960").increment(1);
                    metrics::histogram!("fleet_gateway_report_seconds", "listener" => "gbt32960")
                        .record(received.elapsed().as_secs_f64());
                    reply(&frame, Ack::Success)
                }
                // Dead-lettered, or never committed (shutdown): no answer.
                _ => None,
            }
        });
        Ok(())
    }

    /// Queues an answer behind those in hand.
    async fn answer(&mut self, frame: &[u8], ack: Ack, answers: &mut Answers) -> Result<(), IntakeClosed> {
        match encode_reply(frame, ack, beijing_now()) {
            Ok(bytes) => {
                answers.now(bytes);
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
        let vin = frame.get(4..21).map(|b| b.iter().map(|&c| char::from(c)).collect::<String>());
        let vin = vin.filter(|v| Vin::parse(v).is_ok());
        let topic = format!("gbt32960/tcp/{}", self.peer);
        reject(&self.intake, Self::NAME, DeadLetter::new(&topic, vin.as_deref(), reason, detail, frame)).await
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
