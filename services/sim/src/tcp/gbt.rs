//! GB/T 32960.3 as a vehicle terminal speaks it over TCP: a vehicle login (0x01) with its
//! VIN opens the session; real-time (0x02) and re-issued (0x03) reports, one sample each,
//! are answered with the report's 6-byte time; heartbeats (0x07) keep an idle connection;
//! a logout (0x04) with the login's serial ends it. The frames are the ones the MQTT path
//! sends ([`crate::terminal`]).

use std::collections::VecDeque;

use chrono::Utc;
use fleet_domain::{Sample, Vin};
use fleet_gbt32960::{Edition, FrameSplitter, Header, Piece, RESPONSE_COMMAND, encode_heartbeat, encode_logout};

use super::dialect::{Dialect, Encoded, Handshake, Reply};
use crate::payload::beijing_naive;
use crate::terminal::{LoginSerials, encode_login, encode_sample};

const LOGIN: u8 = 0x01;
const REALTIME_REPORT: u8 = 0x02;
const REISSUE_REPORT: u8 = 0x03;
const HEARTBEAT: u8 = 0x07;
/// Response flags of the platform's answers.
const SUCCESS: u8 = 0x01;
const ERROR: u8 = 0x02;
/// Where a frame's data unit starts: a report's (and a login's) 6-byte time comes first.
const DATA_START: usize = 24;

/// A GB/T 32960 terminal of one edition. See the module documentation.
#[derive(Debug)]
pub(super) struct Gbt32960 {
    edition: Edition,
    vin: Vin,
    serials: LoginSerials,
    splitter: FrameSplitter,
    /// Frames read and not taken yet.
    ready: VecDeque<Vec<u8>>,
}

impl Gbt32960 {
    pub(super) fn new(edition: Edition, vin: Vin) -> Self {
        Self { edition, vin, serials: LoginSerials::default(), splitter: FrameSplitter::new(), ready: VecDeque::new() }
    }
}

/// A 6-byte time as a key.
fn time_key(time: &[u8]) -> Option<u64> {
    let time: [u8; 6] = time.get(..6)?.try_into().ok()?;
    Some(time.iter().fold(0, |k, &b| k << 8 | u64::from(b)))
}

impl Dialect for Gbt32960 {
    fn reset_stream(&mut self) {
        self.splitter = FrameSplitter::new();
        self.ready = VecDeque::new();
    }

    fn push(&mut self, bytes: &[u8]) {
        for piece in self.splitter.feed(bytes) {
            match piece {
                Piece::Frame(frame) => self.ready.push_back(frame),
                // Garbage from a gateway: nothing a terminal can do about it.
                Piece::BadChecksum(_) | Piece::Skipped(_) => {}
            }
        }
    }

    fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    fn open(&mut self) -> Result<Vec<u8>, String> {
        let now = Utc::now();
        let serial = self.serials.next(now);
        Ok(encode_login(self.edition, &self.vin, beijing_naive(now), serial))
    }

    fn handshake(&mut self, frame: &[u8]) -> Handshake {
        match Header::parse(frame) {
            Ok((h, _)) if h.command == LOGIN && h.response == SUCCESS => Handshake::Ready,
            Ok((h, _)) if h.command == LOGIN && h.response == ERROR => {
                Handshake::Refused("the gateway refused the vehicle login".to_owned())
            }
            _ => Handshake::Ignore,
        }
    }

    fn max_batch(&self, _reissue: bool) -> usize {
        1
    }

    fn report(&mut self, samples: &[&Sample], reissue: bool) -> Result<Encoded, String> {
        let sample = samples.first().ok_or("no sample to report")?;
        let frame = encode_sample(self.edition, reissue, sample);
        let key = frame.get(DATA_START..).and_then(time_key).ok_or("the report frame has no time")?;
        Ok(Encoded { frame, key })
    }

    fn heartbeat(&mut self) -> Vec<u8> {
        encode_heartbeat(self.edition, &self.vin)
    }

    fn reply(&mut self, frame: &[u8]) -> Reply {
        let Ok((header, data)) = Header::parse(frame) else { return Reply::Other };
        if header.response == RESPONSE_COMMAND {
            // A command of the platform's, not an answer.
            return Reply::Other;
        }
        match header.command {
            REALTIME_REPORT | REISSUE_REPORT => match time_key(data) {
                Some(key) => Reply::Report { key, ok: header.response == SUCCESS },
                None => Reply::Other,
            },
            HEARTBEAT => Reply::Heartbeat,
            _ => Reply::Other,
        }
    }

    fn logout(&mut self) -> Option<Vec<u8>> {
        Some(encode_logout(self.edition, &self.vin, beijing_naive(Utc::now()), self.serials.current()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDateTime};
    use fleet_domain::SampleSource;
    use fleet_gbt32960::{Ack, Command, decode_frame, encode_reply};

    use super::*;

    fn vin() -> Vin {
        Vin::parse("LZSEVS1M0SZ000001").unwrap()
    }

    fn sample() -> Sample {
        Sample::at(vin(), DateTime::from_timestamp(1_740_789_015, 0).unwrap(), 30.0, 122.1, SampleSource::Gbt2025)
    }

    fn noon() -> NaiveDateTime {
        DateTime::from_timestamp(1_740_830_400, 0).unwrap().naive_utc()
    }

    #[test]
    fn logs_in_and_reads_the_gateways_verdict() {
        let mut t = Gbt32960::new(Edition::V2025, vin());
        let login = t.open().unwrap();
        assert_eq!(decode_frame(&login).unwrap().command, Command::Login);
        let ok = encode_reply(&login, Ack::Success, noon()).unwrap();
        assert_eq!(t.handshake(&ok), Handshake::Ready);
        let no = encode_reply(&login, Ack::Error, noon()).unwrap();
        assert!(matches!(t.handshake(&no), Handshake::Refused(_)));
        let heartbeat_answer = encode_reply(&t.heartbeat(), Ack::Success, noon()).unwrap();
        assert_eq!(t.handshake(&heartbeat_answer), Handshake::Ignore);
    }

    #[test]
    fn names_a_report_by_its_time_and_finds_it_in_the_answer() {
        let mut t = Gbt32960::new(Edition::V2016, vin());
        for reissue in [false, true] {
            let report = t.report(&[&sample()], reissue).unwrap();
            let decoded = decode_frame(&report.frame).unwrap();
            let want = if reissue { Command::ReissueReport } else { Command::RealtimeReport };
            assert_eq!(decoded.command, want);
            let answer = encode_reply(&report.frame, Ack::Success, noon()).unwrap();
            assert_eq!(t.reply(&answer), Reply::Report { key: report.key, ok: true });
            let refusal = encode_reply(&report.frame, Ack::Error, noon()).unwrap();
            assert_eq!(t.reply(&refusal), Reply::Report { key: report.key, ok: false });
        }
        let heartbeat_answer = encode_reply(&t.heartbeat(), Ack::Success, noon()).unwrap();
        assert_eq!(t.reply(&heartbeat_answer), Reply::Heartbeat);
        // A command frame (the terminal's own login, echoed) is no answer.
        assert_eq!(t.reply(&t.clone_login()), Reply::Other);
    }

    #[test]
    fn cuts_answers_out_of_a_stream_with_garbage_between() {
        let mut t = Gbt32960::new(Edition::V2016, vin());
        let answer = encode_reply(&t.heartbeat(), Ack::Success, noon()).unwrap();
        let mut stream = b"noise".to_vec();
        stream.extend(&answer);
        stream.extend(&answer);
        for chunk in stream.chunks(3) {
            t.push(chunk);
        }
        assert_eq!(t.next_frame(), Some(answer.clone()));
        assert_eq!(t.next_frame(), Some(answer));
        assert_eq!(t.next_frame(), None);
    }

    #[test]
    fn logs_out_with_the_serial_of_its_login() {
        let mut t = Gbt32960::new(Edition::V2016, vin());
        t.open().unwrap();
        t.open().unwrap();
        let logout = decode_frame(&t.logout().unwrap()).unwrap();
        let fleet_gbt32960::Body::Logout(l) = logout.body else { panic!("not a logout") };
        assert_eq!(l.serial, 2);
    }

    impl Gbt32960 {
        fn clone_login(&self) -> Vec<u8> {
            encode_login(self.edition, &self.vin, noon(), 1)
        }
    }
}
