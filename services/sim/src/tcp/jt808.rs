//! JT/T 808 as a Beidou terminal speaks it over TCP, in the 2013 or the 2019 header: it
//! registers (0x0100) once to get an authentication code (0x8100, result 0), then opens every
//! session by authenticating (0x0102) with that code (0x8001, result 0), registering again
//! only when the code is refused. Live positions go as location reports (0x0200), re-issued
//! ones as blind-area batch uploads (0x0704, type 1); each is answered by a platform general
//! response (0x8001) naming its serial. Heartbeats are 0x0002. JT/T 808 has no session
//! logout (0x0003 cancels the registration), so a stopping terminal just closes.

use std::collections::VecDeque;

use fleet_domain::{Sample, Vin};
use fleet_jt808::{
    Authentication, Body, Edition, FrameReader, GbkText, Header, Location, LocationBatch, Register, decode_message,
    encode_message, id, sample_location,
};

use super::dialect::{Dialect, Encoded, Handshake, Reply};

/// Locations in one batch upload: 25 items of 36 bytes stay within the 1023-byte body.
pub(super) const MAX_BATCH: usize = 25;
/// The longest frame read from the gateway (its answers are a few dozen bytes).
const MAX_REPLY_FRAME: usize = 1_024;
/// 0x0704 data type: positions kept while out of coverage.
const BLIND_AREA: u8 = 1;
/// Where the simulated cars are registered: Zhejiang (33), Zhoushan (330900).
const PROVINCE: u16 = 33;
const CITY: u16 = 900;
const MAKER: &str = "FLSIM";
const MODEL: &str = "FLEET-SIM-808";
const SOFTWARE_VERSION: &str = "fleet-sim";
/// A register's plate colour when the vehicle is named by its VIN instead of a plate.
const NO_PLATE: u8 = 0;

/// What the terminal waits for while its session opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Register {
        serial: u16,
    },
    /// `fresh`: the code was issued on this connection (a refusal then is no stale code).
    Authentication {
        serial: u16,
        fresh: bool,
    },
}

/// A JT/T 808 terminal. See the module documentation.
#[derive(Debug)]
pub(super) struct Jt808 {
    edition: Edition,
    phone: String,
    vin: Vin,
    serial: u16,
    /// Kept across connections, as a terminal keeps it in its memory.
    auth_code: Option<Vec<u8>>,
    waiting: Waiting,
    reader: FrameReader,
    ready: VecDeque<Vec<u8>>,
}

impl Jt808 {
    /// A terminal of `edition` with the SIM number `phone` (1 to 20 digits; over 12 only
    /// with 2019 headers) in the car `vin`.
    pub(super) fn new(edition: Edition, phone: String, vin: Vin) -> Self {
        Self {
            edition,
            phone,
            vin,
            serial: 0,
            auth_code: None,
            waiting: Waiting::Register { serial: 0 },
            reader: FrameReader::new(MAX_REPLY_FRAME),
            ready: VecDeque::new(),
        }
    }

    /// A message from the terminal under its next serial number: the frame and the serial.
    fn message(&mut self, id: u16, body: &Body) -> Result<(Vec<u8>, u16), String> {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        let header = Header::new(self.edition, id, self.phone.clone(), serial);
        let frame = encode_message(&header, body).map_err(|e| format!("encoding message {id:#06x}: {e}"))?;
        Ok((frame, serial))
    }

    fn register(&mut self) -> Result<Vec<u8>, String> {
        let tail = &self.phone[self.phone.len().saturating_sub(7)..];
        let body = Body::Register(Register {
            province: PROVINCE,
            city: CITY,
            maker: GbkText::from(MAKER),
            model: GbkText::from(MODEL),
            terminal_id: GbkText::from(tail),
            plate_colour: NO_PLATE,
            plate: GbkText::from(self.vin.as_str()),
        });
        let (frame, serial) = self.message(id::REGISTER, &body)?;
        self.waiting = Waiting::Register { serial };
        Ok(frame)
    }

    fn authenticate(&mut self, code: Vec<u8>, fresh: bool) -> Result<Vec<u8>, String> {
        let (imei, software_version) = match self.edition {
            Edition::V2013 => (None, None),
            // A made-up IMEI of 15 digits from the phone number's last 13.
            Edition::V2019 => {
                let tail = &self.phone[self.phone.len().saturating_sub(13)..];
                (Some(GbkText::from(format!("86{tail:0>13}").as_str())), Some(GbkText::from(SOFTWARE_VERSION)))
            }
        };
        let body = Body::Authentication(Authentication { code, imei, software_version });
        let (frame, serial) = self.message(id::AUTHENTICATION, &body)?;
        self.waiting = Waiting::Authentication { serial, fresh };
        Ok(frame)
    }
}

impl Dialect for Jt808 {
    fn reset_stream(&mut self) {
        self.reader = FrameReader::new(MAX_REPLY_FRAME);
        self.ready = VecDeque::new();
    }

    fn push(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
        while let Some(frame) = self.reader.next_frame() {
            self.ready.push_back(frame);
        }
    }

    fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    fn open(&mut self) -> Result<Vec<u8>, String> {
        match self.auth_code.clone() {
            Some(code) => self.authenticate(code, false),
            None => self.register(),
        }
    }

    fn handshake(&mut self, frame: &[u8]) -> Handshake {
        let Ok(message) = decode_message(frame) else { return Handshake::Ignore };
        let step = match (self.waiting, message.body) {
            (Waiting::Register { serial }, Body::RegisterResponse(r)) if r.serial == serial => {
                if r.result != 0 {
                    return Handshake::Refused(format!("the gateway refused the registration (result {})", r.result));
                }
                self.auth_code = Some(r.auth_code.clone());
                self.authenticate(r.auth_code, true)
            }
            (Waiting::Authentication { serial, fresh }, Body::PlatformResponse(r))
                if r.serial == serial && r.id == id::AUTHENTICATION =>
            {
                if r.result == 0 {
                    return Handshake::Ready;
                }
                // The code is no good (the platform forgot the terminal, say): register again,
                // unless the code was just issued, which no new registration would fix.
                self.auth_code = None;
                if fresh {
                    let why = format!("the gateway refused the code it had just issued (result {})", r.result);
                    return Handshake::Refused(why);
                }
                self.register()
            }
            _ => return Handshake::Ignore,
        };
        match step {
            Ok(frame) => Handshake::Send(frame),
            Err(why) => Handshake::Refused(why),
        }
    }

    fn max_batch(&self, reissue: bool) -> usize {
        if reissue { MAX_BATCH } else { 1 }
    }

    fn report(&mut self, samples: &[&Sample], reissue: bool) -> Result<Encoded, String> {
        let (frame, serial) = match samples {
            [] => return Err("no sample to report".to_owned()),
            [live] if !reissue => self.message(id::LOCATION, &Body::Location(sample_location(live)))?,
            _ => {
                let locations: Vec<Location> = samples.iter().map(|s| sample_location(s)).collect();
                let batch = LocationBatch { kind: BLIND_AREA, locations };
                self.message(id::LOCATION_BATCH, &Body::LocationBatch(batch))?
            }
        };
        Ok(Encoded { frame, key: u64::from(serial) })
    }

    fn heartbeat(&mut self) -> Vec<u8> {
        // An empty body always encodes; a phone refused here was refused at start already.
        self.message(id::HEARTBEAT, &Body::Heartbeat).map(|(frame, _)| frame).unwrap_or_default()
    }

    fn reply(&mut self, frame: &[u8]) -> Reply {
        let Ok(message) = decode_message(frame) else { return Reply::Other };
        match message.body {
            Body::PlatformResponse(r) if r.id == id::LOCATION || r.id == id::LOCATION_BATCH => {
                Reply::Report { key: u64::from(r.serial), ok: r.result == 0 }
            }
            Body::PlatformResponse(r) if r.id == id::HEARTBEAT => Reply::Heartbeat,
            _ => Reply::Other,
        }
    }

    fn logout(&mut self) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(test)]
mod tests;
