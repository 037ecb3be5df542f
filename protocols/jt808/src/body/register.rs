//! Terminal registration (0x0100): where the vehicle is registered, who made the terminal,
//! and the vehicle's plate. The 2019 edition widened the maker, model and terminal id fields.

use super::super::reader::Reader;
use super::super::{Edition, EncodeError, FrameError, GbkText};
use super::put_field;

/// Terminal registration (0x0100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// Province code (the first two digits of the administrative division code, GB/T 2260).
    pub province: u16,
    /// City or county code (the last four digits).
    pub city: u16,
    /// Terminal maker id: 5 bytes in 2013, 11 in 2019.
    pub maker: GbkText,
    /// Terminal model: 20 bytes in 2013, 30 in 2019.
    pub model: GbkText,
    /// Terminal id: 7 bytes in 2013, 30 in 2019.
    pub terminal_id: GbkText,
    /// Plate colour (JT/T 697.7): 0 when the vehicle has no plate yet, then [`Self::plate`]
    /// holds its VIN.
    pub plate_colour: u8,
    /// The plate number, or the VIN of a vehicle without one.
    pub plate: GbkText,
}

/// Widths of the maker, model and terminal id fields.
fn widths(edition: Edition) -> (usize, usize, usize) {
    match edition {
        Edition::V2013 => (5, 20, 7),
        Edition::V2019 => (11, 30, 30),
    }
}

impl Register {
    /// The VIN, when the vehicle has no plate (colour 0) and the field holds 17 ASCII
    /// letters and digits.
    pub fn vin(&self) -> Option<&str> {
        let bytes = self.plate.as_bytes();
        let vin = self.plate_colour == 0 && bytes.len() == 17 && bytes.iter().all(u8::is_ascii_alphanumeric);
        vin.then(|| std::str::from_utf8(bytes).ok()).flatten()
    }

    pub(super) fn decode(edition: Edition, r: &mut Reader<'_>) -> Result<Self, FrameError> {
        let (maker, model, terminal_id) = widths(edition);
        Ok(Self {
            province: r.u16("province")?,
            city: r.u16("city")?,
            maker: GbkText::from_field(r.take(maker, "maker id")?),
            model: GbkText::from_field(r.take(model, "terminal model")?),
            terminal_id: GbkText::from_field(r.take(terminal_id, "terminal id")?),
            plate_colour: r.u8("plate colour")?,
            // The plate is the rest of the body.
            plate: GbkText::from_field(r.rest()),
        })
    }

    pub(super) fn encode(&self, edition: Edition, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (maker, model, terminal_id) = widths(edition);
        out.extend_from_slice(&self.province.to_be_bytes());
        out.extend_from_slice(&self.city.to_be_bytes());
        put_field(out, self.maker.as_bytes(), maker, "maker id")?;
        put_field(out, self.model.as_bytes(), model, "terminal model")?;
        put_field(out, self.terminal_id.as_bytes(), terminal_id, "terminal id")?;
        out.push(self.plate_colour);
        out.extend_from_slice(self.plate.as_bytes());
        Ok(())
    }
}
