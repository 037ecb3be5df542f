//! Platform login (0x05) and logout (0x06): a carmaker's or regional platform that forwards
//! many vehicles' frames on one connection opens and closes its session with them. Their
//! layout is the same in both editions.

use chrono::NaiveDateTime;
use fleet_domain::Secret;

use super::frame::logout;
use super::header::Header;
use super::reader::Reader;
use super::{ENCRYPTION_NONE, Edition, FrameError, Logout};

/// The platform login command byte.
pub const PLATFORM_LOGIN: u8 = 0x05;
/// The platform logout command byte.
pub const PLATFORM_LOGOUT: u8 = 0x06;

/// A decoded platform login or logout frame.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformFrame {
    pub edition: Edition,
    /// The response flag as sent.
    pub response: u8,
    /// The 17 bytes of the VIN field, one char per byte: the sending platform's own code.
    pub vin: String,
    pub body: PlatformBody,
}

/// A platform session frame's data unit, by command.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformBody {
    Login(PlatformLogin),
    /// Same layout as a vehicle logout: the time and the serial of the session's login.
    Logout(Logout),
}

/// Platform login (0x05).
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformLogin {
    /// Login time as sent (GMT+8).
    pub time: NaiveDateTime,
    /// Login serial number; the matching logout repeats it.
    pub serial: u16,
    /// The 12-byte account name, trailing NUL padding dropped.
    pub username: String,
    /// The 20-byte password, trailing NUL padding dropped; redacted in `Debug`.
    pub password: Secret,
    /// The encryption the platform will use for its data units (0x01 none, 0x02 RSA,
    /// 0x03 AES-128; the 2025 edition adds 0x04 SM2 and 0x05 SM4), as sent.
    pub encryption_rule: u8,
}

/// Decodes a whole platform login or logout frame, with the same outside-in checks as
/// [`decode_frame`](super::decode_frame): envelope, command, encryption, then the body. The
/// body is read by its command's layout whatever the response flag, so an answer (whose data
/// unit is a bare time) fails as truncated.
pub fn decode_platform_frame(bytes: &[u8]) -> Result<PlatformFrame, FrameError> {
    let (header, data) = Header::parse(bytes)?;
    if !matches!(header.command, PLATFORM_LOGIN | PLATFORM_LOGOUT) {
        return Err(FrameError::UnsupportedCommand(header.command));
    }
    if header.encryption != ENCRYPTION_NONE {
        return Err(FrameError::Encrypted(header.encryption));
    }
    let body = if header.command == PLATFORM_LOGIN {
        PlatformBody::Login(platform_login(data)?)
    } else {
        PlatformBody::Logout(logout(data)?)
    };
    Ok(PlatformFrame { edition: header.edition, response: header.response, vin: header.vin(), body })
}

fn platform_login(data: &[u8]) -> Result<PlatformLogin, FrameError> {
    let mut r = Reader::new(data);
    let login = PlatformLogin {
        time: r.time()?,
        serial: r.u16("platform login serial")?,
        username: r.text(12, "platform username")?,
        password: Secret::new(r.text(20, "platform password")?),
        encryption_rule: r.u8("encryption rule")?,
    };
    r.finish("the platform login body")?;
    Ok(login)
}

#[cfg(test)]
mod tests {
    use super::super::decode_frame;
    use super::super::tests::{TIME_2016, TIME_2025, at, hand_frame};
    use super::*;

    /// A platform login data unit: time, serial, NUL-padded username and password, rule.
    fn login_data(time: [u8; 6], serial: u16, username: &[u8], password: &[u8], rule: u8) -> Vec<u8> {
        let mut data = time.to_vec();
        data.extend_from_slice(&serial.to_be_bytes());
        data.extend(username.iter().copied().chain(std::iter::repeat(0)).take(12));
        data.extend(password.iter().copied().chain(std::iter::repeat(0)).take(20));
        data.push(rule);
        data
    }

    #[test]
    fn decodes_a_2016_platform_login_with_padded_credentials() {
        let data = login_data(TIME_2016, 3, b"zhoushan", b"s3cret", 0x01);
        assert_eq!(data.len(), 41);
        let frame = decode_platform_frame(&hand_frame(b'#', 0x05, 0xFE, 0x01, &data)).unwrap();
        assert_eq!((frame.edition, frame.response, frame.vin.as_str()), (Edition::V2016, 0xFE, "LSJA24U66NS000001"));
        let PlatformBody::Login(login) = frame.body else { panic!("not a login: {:?}", frame.body) };
        assert_eq!((login.time, login.serial), (at(2025, 3, 1, 8, 30, 15), 3));
        assert_eq!((login.username.as_str(), login.password.expose()), ("zhoushan", "s3cret"));
        assert_eq!(login.encryption_rule, 0x01);
        assert!(!format!("{login:?}").contains("s3cret"), "the password shows in Debug");
    }

    #[test]
    fn decodes_a_2025_platform_login_with_full_width_credentials() {
        let data = login_data(TIME_2025, 0x0102, b"ABCDEFGHIJKL", b"01234567890123456789", 0x05);
        let frame = decode_platform_frame(&hand_frame(b'$', 0x05, 0xFE, 0x01, &data)).unwrap();
        assert_eq!(frame.edition, Edition::V2025);
        let PlatformBody::Login(login) = frame.body else { panic!("not a login") };
        assert_eq!((login.time, login.serial), (at(2025, 11, 2, 14, 0, 0), 258));
        assert_eq!((login.username.as_str(), login.password.expose()), ("ABCDEFGHIJKL", "01234567890123456789"));
        assert_eq!(login.encryption_rule, 0x05);
    }

    #[test]
    fn rejects_a_platform_login_that_is_short_or_too_long() {
        let data = login_data(TIME_2016, 3, b"user", b"pass", 0x01);
        let short = hand_frame(b'#', 0x05, 0xFE, 0x01, &data[..40]);
        assert_eq!(
            decode_platform_frame(&short),
            Err(FrameError::Truncated { what: "encryption rule", needed: 1, remaining: 0 })
        );
        let long = hand_frame(b'$', 0x05, 0xFE, 0x01, &[&data[..], &[0]].concat());
        assert_eq!(
            decode_platform_frame(&long),
            Err(FrameError::TrailingBytes { what: "the platform login body", count: 1 })
        );
    }

    #[test]
    fn decodes_a_platform_logout_in_both_editions() {
        for (marker, edition) in [(b'#', Edition::V2016), (b'$', Edition::V2025)] {
            let frame =
                decode_platform_frame(&hand_frame(marker, 0x06, 0xFE, 0x01, &[25, 3, 1, 18, 0, 0, 0, 3])).unwrap();
            assert_eq!(frame.edition, edition);
            assert_eq!(frame.body, PlatformBody::Logout(Logout { time: at(2025, 3, 1, 18, 0, 0), serial: 3 }));
        }
    }

    #[test]
    fn leaves_vehicle_commands_and_encrypted_units_to_others() {
        let heartbeat = hand_frame(b'#', 0x07, 0xFE, 0x01, &[]);
        assert_eq!(decode_platform_frame(&heartbeat), Err(FrameError::UnsupportedCommand(0x07)));
        let encrypted = hand_frame(b'#', 0x06, 0xFE, 0x03, &[25, 3, 1, 18, 0, 0, 0, 3]);
        assert_eq!(decode_platform_frame(&encrypted), Err(FrameError::Encrypted(0x03)));
        // The vehicle decoder still turns platform frames away.
        let logout = hand_frame(b'#', 0x06, 0xFE, 0x01, &[25, 3, 1, 18, 0, 0, 0, 3]);
        assert_eq!(decode_frame(&logout), Err(FrameError::UnsupportedCommand(0x06)));
    }
}
