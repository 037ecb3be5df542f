//! Samples into PostgreSQL by `COPY … FROM STDIN (FORMAT binary)`.
//!
//! COPY inserts rows in groups and skips the per-row conflict check that `INSERT … ON
//! CONFLICT DO NOTHING` makes (a speculative insertion with an index probe before it). It
//! cannot skip duplicates, though: one stored (VIN, ts) fails the whole COPY with a unique
//! violation, and the transaction with it. Duplicates are rare (a redelivery after a crash
//! or a reconnect), so the batch is tried by COPY first and, when it meets one, again in a
//! new transaction by the INSERT that skips them.
//!
//! The binary format is PostgreSQL's (documentation, "COPY", "Binary Format"): an 11-byte
//! signature, a flags word and a header-extension length, then per row a 16-bit field count
//! and each field as a 32-bit length (−1 for NULL) and its bytes in the type's binary send
//! format (big-endian IEEE 754 for `float8`, one byte for `bool`, UTF-8 for `text`, raw bytes
//! for `bytea`, microseconds since 2000-01-01 UTC as a 64-bit integer for `timestamptz`), and
//! a 16-bit −1 at the end.

use chrono::{DateTime, NaiveDate, Utc};
use fleet_domain::Sample;

use super::columns::{PG_SAMPLE_COLUMNS, SampleValues, column_list, push_sample};

/// The statement the encoded rows go with: the column order [`encode`] writes.
pub(super) fn statement() -> String {
    format!("COPY telemetry_samples ({}) FROM STDIN (FORMAT binary)", column_list())
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Fields a row carries: one per column.
const FIELDS: i16 = PG_SAMPLE_COLUMNS.len() as i16;

/// The rows of `samples`, received at `received`, in COPY's binary format.
pub(super) fn encode(samples: &[Sample], received: DateTime<Utc>) -> Vec<u8> {
    let frames: usize = samples.iter().filter_map(|s| s.frame.as_ref()).map(|f| f.len()).sum();
    let mut out = Rows(Vec::with_capacity(19 + samples.len() * 200 + frames + 2));
    out.0.extend_from_slice(SIGNATURE);
    out.0.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    out.0.extend_from_slice(&0i32.to_be_bytes()); // no header extension
    for s in samples {
        out.0.extend_from_slice(&FIELDS.to_be_bytes());
        push_sample(s, received, &mut out);
    }
    out.0.extend_from_slice(&(-1i16).to_be_bytes());
    out.0
}

/// Microseconds since PostgreSQL's epoch, computed as sqlx computes it for a bound
/// `DateTime<Utc>`, so that a sample stored by COPY and the same one offered again by the
/// INSERT path meet on the same key.
fn micros(t: DateTime<Utc>) -> i64 {
    let epoch =
        NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("a valid date").and_utc();
    // ±292,000 years fit; a sample's time was checked long before it got here.
    (t - epoch).num_microseconds().unwrap_or(i64::MAX)
}

struct Rows(Vec<u8>);

impl Rows {
    fn null(&mut self) {
        self.0.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn int(&mut self, v: i64) {
        self.0.extend_from_slice(&8i32.to_be_bytes());
        self.0.extend_from_slice(&v.to_be_bytes());
    }
}

impl SampleValues<'_> for Rows {
    fn text(&mut self, v: &str) {
        self.bytes(Some(v.as_bytes()));
    }

    fn float(&mut self, v: Option<f64>) {
        match v {
            Some(x) => {
                self.0.extend_from_slice(&8i32.to_be_bytes());
                self.0.extend_from_slice(&x.to_be_bytes());
            }
            None => self.null(),
        }
    }

    fn bool(&mut self, v: Option<bool>) {
        match v {
            Some(x) => {
                self.0.extend_from_slice(&1i32.to_be_bytes());
                self.0.push(u8::from(x));
            }
            None => self.null(),
        }
    }

    fn time(&mut self, v: DateTime<Utc>) {
        self.int(micros(v));
    }

    fn bytes(&mut self, v: Option<&[u8]>) {
        match v {
            // Field lengths are 32-bit; a frame is at most 65,535 bytes by its own length field.
            Some(b) => {
                self.0.extend_from_slice(&(b.len() as i32).to_be_bytes());
                self.0.extend_from_slice(b);
            }
            None => self.null(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use fleet_domain::{SampleSource, Vin};

    use super::*;

    #[test]
    fn encodes_pg_epoch_as_zero_and_a_later_time_in_microseconds() {
        assert_eq!(micros(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()), 0);
        assert_eq!(
            micros(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap() + chrono::Duration::milliseconds(250)),
            1_250_000
        );
        assert_eq!(micros(Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap()), -1_000_000);
    }

    /// The fields of the first row of `out`: each one's bytes, None for NULL.
    fn first_row(out: &[u8]) -> Vec<Option<&[u8]>> {
        let count = i16::from_be_bytes([out[19], out[20]]);
        let mut at = 21;
        (0..count)
            .map(|_| {
                let len = i32::from_be_bytes(out[at..at + 4].try_into().unwrap());
                at += 4;
                let Ok(len) = usize::try_from(len) else { return None };
                at += len;
                Some(&out[at - len..at])
            })
            .collect()
    }

    #[test]
    fn a_row_holds_one_field_per_column_in_the_columns_order() {
        use super::super::columns::PgType;
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut s = Sample::at(vin, t, 30.0, 122.1, SampleSource::Gbt2016);
        s.soc_pct = Some(70.5);
        s.charging = Some(false);
        s.frame = Some(vec![0x23, 0x23, 0x02]);
        let received = t + chrono::Duration::seconds(2);
        let out = encode(&[s], received);
        let row = first_row(&out);
        assert_eq!(row.len(), PG_SAMPLE_COLUMNS.len());
        let value = |name: &str| {
            let i = PG_SAMPLE_COLUMNS.iter().position(|(n, _)| *n == name).expect("a column");
            row[i]
        };
        for ((name, ty), field) in PG_SAMPLE_COLUMNS.iter().zip(&row) {
            let width = match ty {
                PgType::Float8 | PgType::Timestamptz => Some(8),
                PgType::Bool => Some(1),
                PgType::Text | PgType::Bytea => None,
            };
            if let (Some(w), Some(f)) = (width, field) {
                assert_eq!(f.len(), w, "{name}");
            }
        }
        assert_eq!(value("vin"), Some(&b"LSJA24U66NS000001"[..]));
        assert_eq!(value("lon"), Some(&122.1f64.to_be_bytes()[..]));
        assert_eq!(value("soc_pct"), Some(&70.5f64.to_be_bytes()[..]));
        assert_eq!(value("speed_kmh"), None);
        assert_eq!(value("charging"), Some(&[0u8][..]));
        assert_eq!(value("source"), Some(&b"gbt2016"[..]));
        assert_eq!(value("clock_ahead"), Some(&[0u8][..]));
        assert_eq!(value("ts"), Some(&micros(t).to_be_bytes()[..]));
        assert_eq!(value("frame"), Some(&[0x23, 0x23, 0x02][..]));
        assert_eq!(value("received_at"), Some(&micros(received).to_be_bytes()[..]));
        // Nothing after the row but the trailer.
        assert_eq!(out.len(), 21 + row.iter().map(|f| 4 + f.map_or(0, <[u8]>::len)).sum::<usize>() + 2);
    }

    #[test]
    fn lays_out_header_rows_and_trailer_as_postgres_reads_them() {
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut s = Sample::at(vin, t, 30.0, 122.1, SampleSource::Json);
        s.soc_pct = Some(70.5);
        let out = encode(&[s.clone(), s], t);
        assert_eq!(&out[..11], SIGNATURE);
        assert_eq!(&out[11..19], &[0; 8]);
        // One row: field count, then the VIN's length and bytes.
        assert_eq!(&out[19..21], &19i16.to_be_bytes());
        assert_eq!(&out[21..25], &17i32.to_be_bytes());
        assert_eq!(&out[25..42], b"LSJA24U66NS000001");
        // lat as 8 big-endian bytes.
        assert_eq!(&out[42..46], &8i32.to_be_bytes());
        assert_eq!(&out[46..54], &30.0f64.to_be_bytes());
        // Both rows the same length, the trailer last.
        let row = (out.len() - 19 - 2) / 2;
        assert_eq!(out[19..19 + row], out[19 + row..19 + 2 * row]);
        assert_eq!(&out[out.len() - 2..], &(-1i16).to_be_bytes());
        // speed, heading: NULL; soc: 70.5 (after lon and position_valid).
        let fields = &out[54..];
        let (lon, rest) = fields.split_at(12);
        assert_eq!(&lon[4..], &122.1f64.to_be_bytes());
        let (valid, rest) = rest.split_at(5);
        assert_eq!(valid, &[0, 0, 0, 1, 1]);
        assert_eq!(&rest[..8], &[0xff; 8]);
        assert_eq!(&rest[8..12], &8i32.to_be_bytes());
        assert_eq!(&rest[12..20], &70.5f64.to_be_bytes());
    }
}
