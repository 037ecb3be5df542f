//! The JT/T 808 side of one connection: registration and authentication by the terminal's
//! phone number, then heartbeats and location reports, each answered with the platform's
//! general response (0x8001) once it is due.

use std::net::SocketAddr;

use fleet_domain::{DeadLetter, DeadLetterReason, Vin};
use fleet_jt808::{
    Body, FrameReader, GeneralResult, Header, Location, RegisterResult, decode_packet, encode_general_response,
    encode_register_response, id, location_sample,
};
use fleet_storage::{StorageError, Store};
use rand::Rng;
use tokio::time::Instant;

use crate::gateway::{Answers, Protocol, reject};
use crate::intake::{IntakeClosed, Submitter};

/// Length of the authentication codes given at registration.
const AUTH_CODE_LEN: usize = 16;
/// Invalid locations of one message named in its dead letter's detail.
const DETAIL_MAX_ERRORS: usize = 10;

/// A terminal that authenticated: its phone and the vehicle it belongs to.
#[derive(Debug, Clone)]
struct Terminal {
    phone: String,
    vin: Vin,
}

pub(crate) struct Jt808 {
    peer: SocketAddr,
    store: Store,
    intake: Submitter,
    reader: FrameReader,
    /// Bytes the reader had skipped when last counted (its count is cumulative).
    skipped: u64,
    terminal: Option<Terminal>,
    /// The serial number of the platform's next message on this connection.
    serial: u16,
}

impl Protocol for Jt808 {
    const NAME: &'static str = "jt808";

    fn new(peer: SocketAddr, store: Store, intake: Submitter) -> Self {
        Self { peer, store, intake, reader: FrameReader::default(), skipped: 0, terminal: None, serial: 0 }
    }

    async fn read(&mut self, bytes: Vec<u8>, answers: &mut Answers) -> Result<(), IntakeClosed> {
        self.reader.push(&bytes);
        drop(bytes);
        let skipped = self.reader.skipped_bytes();
        if skipped > self.skipped {
            metrics::counter!("fleet_gateway_bytes_skipped_total", "listener" => "jt808")
                .increment(skipped - self.skipped);
            self.skipped = skipped;
        }
        while let Some(frame) = self.reader.next_frame() {
            self.frame(frame, answers).await?;
            if answers.closing() {
                break;
            }
        }
        Ok(())
    }
}

impl Jt808 {
    fn next_serial(&mut self) -> u16 {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        serial
    }

    async fn frame(&mut self, frame: Vec<u8>, answers: &mut Answers) -> Result<(), IntakeClosed> {
        let packet = match decode_packet(&frame) {
            Ok(p) => p,
            // A bad check code or escape: nothing in it can be trusted, not even the serial
            // to answer. The terminal sends it again.
            Err(e) => return self.reject(&frame, e.reason(), e.to_string()).await,
        };
        let header = packet.header;
        let body = match Body::decode(&header, &packet.body) {
            Ok(b) => b,
            Err(e) => return self.reject(&frame, e.reason(), e.to_string()).await,
        };
        match (header.id, body) {
            (id::REGISTER, Body::Register(_)) => self.register(&header, answers).await,
            (id::AUTHENTICATION, Body::Authentication(auth)) => self.authenticate(&header, &auth.code, answers).await,
            (_, body) => {
                let Some(terminal) = self.terminal.clone() else {
                    let detail = "a message before the terminal authenticated";
                    return self.reject(&frame, DeadLetterReason::NotLoggedIn, detail).await;
                };
                if fleet_domain::terminal_phone(&header.phone).ok().as_deref() != Some(terminal.phone.as_str()) {
                    let detail = format!("the connection authenticated as terminal {}", terminal.phone);
                    return self.reject(&frame, DeadLetterReason::VinMismatch, detail).await;
                }
                self.message(&frame, &header, body, &terminal, answers).await
            }
        }
    }

    /// A message of an authenticated terminal.
    async fn message(
        &mut self,
        frame: &[u8],
        header: &Header,
        body: Body,
        terminal: &Terminal,
        answers: &mut Answers,
    ) -> Result<(), IntakeClosed> {
        match body {
            Body::Heartbeat => {
                self.respond(header, GeneralResult::Success, answers);
                Ok(())
            }
            Body::Logout => {
                self.terminal = None;
                self.respond(header, GeneralResult::Success, answers);
                Ok(())
            }
            Body::Location(location) => self.locations(frame, header, &[location], &terminal.vin, answers).await,
            Body::LocationBatch(batch) => self.locations(frame, header, &batch.locations, &terminal.vin, answers).await,
            // The terminal answers a command of ours; we send none yet.
            Body::TerminalResponse(_) => Ok(()),
            Body::Fragment(_) => {
                self.respond(header, GeneralResult::Unsupported, answers);
                let detail = format!("message {:#06x} in parts: parts are not joined", header.id);
                self.reject(frame, DeadLetterReason::UnsupportedCommand, detail).await
            }
            Body::Other(_)
            | Body::Register(_)
            | Body::Authentication(_)
            | Body::PlatformResponse(_)
            | Body::RegisterResponse(_) => {
                self.respond(header, GeneralResult::Unsupported, answers);
                let detail = format!("message {:#06x} is not taken by the gateway", header.id);
                self.reject(frame, DeadLetterReason::UnsupportedCommand, detail).await
            }
        }
    }

    /// 0x0100: a known phone gets its authentication code (the same one every time), an
    /// unknown one "no such terminal".
    async fn register(&mut self, header: &Header, answers: &mut Answers) -> Result<(), IntakeClosed> {
        let fresh = fresh_auth_code();
        let code = match self.lookup(self.store.vehicles().terminal_auth_code(&header.phone, &fresh).await, answers) {
            Some(c) => c,
            None => return Ok(()),
        };
        let serial = self.next_serial();
        let (result, code) = match code {
            Some(c) => (RegisterResult::Success, c),
            None => {
                tracing::info!(peer = %self.peer, terminal = %header.phone, "jt808 registration of an unknown terminal refused");
                (RegisterResult::NoSuchTerminal, String::new())
            }
        };
        if let Ok(bytes) = encode_register_response(header, serial, result, code.as_bytes()) {
            answers.now(bytes);
        }
        Ok(())
    }

    /// 0x0102: the code the registration gave authenticates the connection as the terminal.
    async fn authenticate(&mut self, header: &Header, code: &[u8], answers: &mut Answers) -> Result<(), IntakeClosed> {
        let code = String::from_utf8_lossy(code);
        let Some(matches) =
            self.lookup(self.store.vehicles().terminal_code_matches(&header.phone, &code).await, answers)
        else {
            return Ok(());
        };
        let vin = if matches {
            match self.lookup(self.store.vehicles().vin_of_terminal(&header.phone).await, answers) {
                None => return Ok(()),
                Some(v) => v.and_then(|v| Vin::parse(&v).ok()),
            }
        } else {
            None
        };
        match (vin, fleet_domain::terminal_phone(&header.phone)) {
            (Some(vin), Ok(phone)) => {
                tracing::debug!(peer = %self.peer, terminal = %phone, "jt808 terminal authenticated");
                self.terminal = Some(Terminal { phone, vin });
                self.respond(header, GeneralResult::Success, answers);
            }
            _ => {
                tracing::info!(peer = %self.peer, terminal = %header.phone, "jt808 authentication refused");
                self.respond(header, GeneralResult::Failure, answers);
            }
        }
        Ok(())
    }

    /// A registry answer, or `None` after closing the connection unanswered when the registry
    /// could not be read (the terminal tries again on a new connection).
    fn lookup<T>(&self, result: Result<T, StorageError>, answers: &mut Answers) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "jt808 registry lookup failed; closing");
                answers.close();
                None
            }
        }
    }

    /// 0x0200 and 0x0704: one sample per location, answered once durable; invalid locations
    /// go to the dead letters with the message. A message with no valid location at all is
    /// answered "bad message" once its dead letter is durable, so the terminal does not send
    /// it again and again.
    async fn locations(
        &mut self,
        frame: &[u8],
        header: &Header,
        locations: &[Location],
        vin: &Vin,
        answers: &mut Answers,
    ) -> Result<(), IntakeClosed> {
        let received = Instant::now();
        let mut samples = Vec::with_capacity(locations.len());
        let mut errors = Vec::new();
        for (i, location) in locations.iter().enumerate() {
            match location_sample(location, vin) {
                Ok(s) => samples.push(s),
                Err(e) => errors.push((i, e)),
            }
        }
        let result =
            if errors.is_empty() || !samples.is_empty() { GeneralResult::Success } else { GeneralResult::BadMessage };
        let dead = (!errors.is_empty()).then(|| {
            let mut detail = format!("{} of {} locations invalid:", errors.len(), locations.len());
            for (i, e) in errors.iter().take(DETAIL_MAX_ERRORS) {
                detail.push_str(&format!(" [{i}] {e};"));
            }
            metrics::counter!("fleet_gateway_rejected_total", "listener" => "jt808", "reason" => "invalid_sample")
                .increment(1);
            DeadLetter::new(&self.topic(), Some(vin.as_str()), DeadLetterReason::InvalidSample, detail, frame)
        });
        let stored = samples.len();
        let settled = self.intake.samples(samples, dead).await?;
        let serial = self.next_serial();
        let header = header.clone();
        answers.later(async move {
            // Durable (samples and dead letter alike) once settled; never settled (shutdown):
            // no answer, and the terminal sends it again.
            settled.await.ok()?;
            metrics::counter!("fleet_gateway_reports_durable_total", "listener" => "jt808").increment(stored as u64);
            metrics::histogram!("fleet_gateway_report_seconds", "listener" => "jt808")
                .record(received.elapsed().as_secs_f64());
            encode_general_response(&header, serial, result).ok()
        });
        Ok(())
    }

    /// Queues the general response to the message with `header`.
    fn respond(&mut self, header: &Header, result: GeneralResult, answers: &mut Answers) {
        let serial = self.next_serial();
        if let Ok(bytes) = encode_general_response(header, serial, result) {
            answers.now(bytes);
        }
    }

    fn topic(&self) -> String {
        format!("jt808/tcp/{}", self.peer)
    }

    /// Stores the frame as a dead letter; no answer.
    async fn reject(
        &mut self,
        frame: &[u8],
        reason: DeadLetterReason,
        detail: impl Into<String>,
    ) -> Result<(), IntakeClosed> {
        let vin = self.terminal.as_ref().map(|t| t.vin.as_str());
        reject(&self.intake, Self::NAME, DeadLetter::new(&self.topic(), vin, reason, detail, frame)).await
    }
}

/// A new authentication code: letters and digits, so that it is the same text in GBK.
fn fresh_auth_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..AUTH_CODE_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}
