//! Messages built byte by byte from the layouts of JT/T 808-2013 and JT/T 808-2019 (not with
//! our encoder), and the tests that decode them.

mod framing;
mod messages;
mod properties;
mod replies;
mod samples;

use chrono::{NaiveDate, NaiveDateTime};

/// The phone number every test terminal has.
pub(super) const PHONE: &str = "13912345678";
/// [`PHONE`] as BCD\[6\] (2013).
pub(super) const PHONE_2013: [u8; 6] = [0x01, 0x39, 0x12, 0x34, 0x56, 0x78];
/// [`PHONE`] as BCD\[10\] (2019).
pub(super) const PHONE_2019: [u8; 10] = [0, 0, 0, 0, 0x01, 0x39, 0x12, 0x34, 0x56, 0x78];

pub(super) fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, s).unwrap()
}

/// A 2013 message (id, properties with the body length, phone, serial, body) with its check
/// code, escaped and delimited.
pub(super) fn frame_2013(id: u16, serial: u16, body: &[u8]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(&PHONE_2013);
    m.extend_from_slice(&serial.to_be_bytes());
    m.extend_from_slice(body);
    wrap(m)
}

/// A 2019 message: properties with the version flag (bit 14), protocol version 1, BCD\[10\].
pub(super) fn frame_2019(id: u16, serial: u16, body: &[u8]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&(0x4000 | body.len() as u16).to_be_bytes());
    m.push(0x01);
    m.extend_from_slice(&PHONE_2019);
    m.extend_from_slice(&serial.to_be_bytes());
    m.extend_from_slice(body);
    wrap(m)
}

/// Appends the XOR check code, escapes 0x7e and 0x7d, adds the delimiters.
pub(super) fn wrap(mut message: Vec<u8>) -> Vec<u8> {
    let check = message.iter().fold(0u8, |acc, b| acc ^ b);
    message.push(check);
    let mut frame = vec![0x7e];
    for b in message {
        match b {
            0x7e => frame.extend_from_slice(&[0x7d, 0x02]),
            0x7d => frame.extend_from_slice(&[0x7d, 0x01]),
            _ => frame.push(b),
        }
    }
    frame.push(0x7e);
    frame
}

/// A location body: ACC on and a fix; 30.016500°N 122.106800°E (Dinghai, Zhoushan), 12 m,
/// 42.5 km/h, heading 90°, 2025-03-01 08:30:15 Beijing time; mileage 12345.6 km, signal
/// strength (0x30) 31 and 12 satellites (0x31).
pub(super) const LOCATION: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, // alarm
    0x00, 0x00, 0x00, 0x03, // status: ACC, fix
    0x01, 0xCA, 0x03, 0xF4, // latitude 30016500
    0x07, 0x47, 0x33, 0xB0, // longitude 122106800
    0x00, 0x0C, // altitude 12 m
    0x01, 0xA9, // speed 425 = 42.5 km/h
    0x00, 0x5A, // direction 90
    0x25, 0x03, 0x01, 0x08, 0x30, 0x15, // time
    0x01, 0x04, 0x00, 0x01, 0xE2, 0x40, // mileage 123456 = 12345.6 km
    0x30, 0x01, 0x1F, // signal strength
    0x31, 0x01, 0x0C, // satellites
];

/// [`LOCATION`] with its status word replaced.
pub(super) fn location_with_status(status: u32) -> Vec<u8> {
    let mut body = LOCATION.to_vec();
    body[4..8].copy_from_slice(&status.to_be_bytes());
    body
}
