//! `POST /api/v1/orders/import`: a major event's orders as CSV (docs/dispatch.md). Each row is
//! validated and stored on its own: bad rows are reported by line, good rows are kept
//! whatever the bad ones.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use fleet_domain::{NewOrder, Place, Role};
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;

/// The header row the import expects, in this order.
pub const COLUMNS: [&str; 10] = [
    "unit_id",
    "passengers",
    "pickup_name",
    "pickup_lat",
    "pickup_lon",
    "dropoff_name",
    "dropoff_lat",
    "dropoff_lon",
    "pickup_at",
    "purpose",
];
/// Most rows one import may carry.
pub const MAX_ROWS: usize = 20_000;

#[derive(Serialize, Debug)]
pub(crate) struct RowError {
    /// The line in the file (the header is line 1).
    pub(crate) line: u64,
    pub(crate) message: String,
}

#[derive(Serialize, Debug)]
pub(crate) struct ImportResult {
    created: Vec<String>,
    errors: Vec<RowError>,
}

/// `POST /api/v1/orders/import` (`text/csv`, UTF-8, optional BOM).
pub(crate) async fn import(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportResult>, ApiError> {
    if !matches!(auth.user.role, Role::Admin | Role::Dispatcher | Role::Unit) {
        return Err(ApiError::Forbidden);
    }
    let text = csv_text(&headers, &body)?;
    let now = Utc::now();
    let rows = parse(text, now)?;
    let units: HashMap<String, fleet_domain::Unit> =
        state.store.units().list().await?.into_iter().map(|u| (u.id.clone(), u)).collect();
    let mut result = ImportResult { created: Vec::new(), errors: Vec::new() };
    for row in rows {
        let (line, new, pickup_at) = match row {
            Ok(ok) => ok,
            Err(e) => {
                result.errors.push(e);
                continue;
            }
        };
        let refuse = |message: String| RowError { line, message };
        if auth.user.role == Role::Unit && auth.user.unit_id.as_deref() != Some(new.unit_id.as_str()) {
            result.errors.push(refuse(format!("unit_id: {:?} is not your unit", new.unit_id)));
            continue;
        }
        let Some(unit) = units.get(&new.unit_id) else {
            result.errors.push(refuse(format!("unit_id: no unit has the id {:?}", new.unit_id)));
            continue;
        };
        match super::orders::create_order(&state, &auth, &new, pickup_at, unit, now).await {
            Ok(record) => result.created.push(record.order.id),
            Err(ApiError::Unavailable(e)) => return Err(ApiError::Unavailable(e)),
            Err(e) => result.errors.push(refuse(e.to_string())),
        }
    }
    tracing::info!(
        user.id = auth.user.id,
        created = result.created.len(),
        errors = result.errors.len(),
        "orders imported"
    );
    Ok(Json(result))
}

type Row = Result<(u64, NewOrder, DateTime<Utc>), RowError>;

/// The body of a CSV upload as text: `text/csv` (or `application/csv`, `text/plain`), UTF-8,
/// a byte-order mark dropped; anything else → 400.
pub(crate) fn csv_text<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<&'a str, ApiError> {
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !matches!(essence.as_str(), "text/csv" | "application/csv" | "text/plain") {
        return Err(ApiError::BadRequest(format!("expected Content-Type: text/csv, got {mime:?}")));
    }
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest(format!("the file is not UTF-8: {e}")))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Parses the order file: a wrong header or too many rows refuse the whole file (400); a bad
/// row is reported by its line.
pub(crate) fn parse(text: &str, now: DateTime<Utc>) -> Result<Vec<Row>, ApiError> {
    let rows = parse_rows(text, &COLUMNS, |r| row(r, now))?;
    Ok(rows.into_iter().map(|r| r.map(|(line, (new, at))| (line, new, at))).collect())
}

/// A row of a CSV file with its line, or what is wrong with it.
pub(crate) type ParsedRow<T> = Result<(u64, T), RowError>;

/// Parses a CSV file whose header row must be `columns`, each row by `row` (which answers
/// what is wrong with it): a wrong header or more than [`MAX_ROWS`] rows refuse the whole file
/// (400); blank rows are skipped; every other row comes back with its line (the header is 1).
pub(crate) fn parse_rows<T>(
    text: &str,
    columns: &[&str],
    row: impl Fn(&csv::StringRecord) -> Result<T, String>,
) -> Result<Vec<ParsedRow<T>>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| ApiError::BadRequest(format!("cannot read the header row: {e}")))?;
    let found: Vec<&str> = header.iter().collect();
    if found != columns {
        return Err(ApiError::BadRequest(format!("the header row must be {}", columns.join(","))));
    }
    let mut lines = Lines::new(text);
    let mut rows = Vec::new();
    for record in reader.records() {
        if rows.len() >= MAX_ROWS {
            return Err(ApiError::BadRequest(format!("at most {MAX_ROWS} rows per import")));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.at(p.byte()));
                rows.push(Err(RowError { line, message: format!("unreadable row: {e}") }));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.at(p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != columns.len() {
            let message = format!("{} fields, {} expected", record.len(), columns.len());
            rows.push(Err(RowError { line, message }));
            continue;
        }
        rows.push(row(&record).map(|t| (line, t)).map_err(|message| RowError { line, message }));
    }
    Ok(rows)
}

/// The line of a byte offset, counted in the text itself (the reader's own count skips
/// blank lines, and a record's offset may point at the blank lines before it).
///
/// Records come in file order, so counting resumes where the previous record's stopped: the
/// file is read once, not once per row (which made a 20,000-row file quadratic).
struct Lines<'a> {
    bytes: &'a [u8],
    /// Newlines before `counted_to`.
    newlines: u64,
    counted_to: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self { bytes: text.as_bytes(), newlines: 0, counted_to: 0 }
    }

    fn at(&mut self, byte: u64) -> u64 {
        let bytes = self.bytes;
        let mut at = usize::try_from(byte).unwrap_or(0).min(bytes.len());
        while at < bytes.len() && (bytes[at] == b'\n' || bytes[at] == b'\r') {
            at += 1;
        }
        if at < self.counted_to {
            // An offset behind the last one: count again from the start.
            (self.newlines, self.counted_to) = (0, 0);
        }
        self.newlines += bytes[self.counted_to..at].iter().filter(|b| **b == b'\n').count() as u64;
        self.counted_to = at;
        1 + self.newlines
    }
}

fn row(r: &csv::StringRecord, now: DateTime<Utc>) -> Result<(NewOrder, DateTime<Utc>), String> {
    let num = |i: usize| -> Result<f64, String> {
        r[i].parse::<f64>().map_err(|_| format!("{}: {:?} is not a number", COLUMNS[i], &r[i]))
    };
    let passengers = r[1].parse::<u32>().map_err(|_| format!("passengers: {:?} is not a whole number", &r[1]))?;
    let pickup_at = if r[8].is_empty() {
        None
    } else {
        Some(
            DateTime::parse_from_rfc3339(&r[8])
                .map_err(|_| {
                    format!("pickup_at: {:?} is not an RFC 3339 time (e.g. 2026-12-01T08:30:00+08:00)", &r[8])
                })?
                .with_timezone(&Utc),
        )
    };
    let new = NewOrder {
        unit_id: r[0].to_owned(),
        passengers,
        pickup: Place { name: r[2].to_owned(), lat: num(3)?, lon: num(4)? },
        dropoff: Place { name: r[5].to_owned(), lat: num(6)?, lon: num(7)? },
        pickup_at,
        purpose: r[9].to_owned(),
        override_budget: false,
    };
    let at = new.validate(now).map_err(|e| e.to_string())?;
    Ok((new, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "unit_id,passengers,pickup_name,pickup_lat,pickup_lon,dropoff_name,dropoff_lat,dropoff_lon,pickup_at,purpose\n";

    #[test]
    fn good_rows_parse_and_bad_ones_name_their_line_and_field() {
        let now = Utc::now();
        let csv = format!(
            "{HEADER}u01,2,普陀山机场,29.9342,122.3617,朱家尖会议中心,29.9050,122.3900,,大会接站\n\
             u01,x,a,30,122,b,30,122,,p\n\
             u01,1,a,30,122,b,300,122,,p\n\
             u01,1,a,30,122,b,30,122,yesterday,p\n\
             \n\
             u02,3,\"定海, 西门\",30.02,122.10,b,30.0,122.2,2030-01-01T08:00:00+08:00,p\n\
             u01,1,a\n"
        );
        let rows = parse(&csv, now).unwrap();
        let lines: Vec<(u64, Result<&str, &str>)> = rows
            .iter()
            .map(|r| match r {
                Ok((l, n, _)) => (*l, Ok(n.pickup.name.as_str())),
                Err(e) => (e.line, Err(e.message.as_str())),
            })
            .collect();
        assert_eq!(lines[0], (2, Ok("普陀山机场")));
        assert!(matches!(lines[1], (3, Err(m)) if m.starts_with("passengers")));
        assert!(matches!(lines[2], (4, Err(m)) if m.starts_with("dropoff")));
        assert!(matches!(lines[3], (5, Err(m)) if m.starts_with("pickup_at")));
        assert!(
            matches!(lines[4], (7, Err(m)) if m.starts_with("pickup_at")),
            "more than 90 days ahead: {:?}",
            lines[4]
        );
        assert!(matches!(lines[5], (8, Err(m)) if m.contains("3 fields")));
        assert_eq!(rows.len(), 6, "the blank line is skipped");
    }

    #[test]
    fn names_the_right_line_after_a_hundred_thousand_skipped_rows() {
        // Rows of empty fields are skipped, but each is located first: this used to count the
        // file's newlines from its start once per row (found by fuzzing, fuzz/README.md).
        let csv = format!("{HEADER}{}\r\n\nu01,x,a,30,122,b,30,122,,p\n", ",\r\n".repeat(100_000));
        let rows = parse(&csv, Utc::now()).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(
            matches!(&rows[0], Err(e) if e.line == 100_004 && e.message.starts_with("passengers")),
            "{:?}",
            rows[0]
        );
    }

    #[test]
    fn a_wrong_header_refuses_the_file() {
        assert!(matches!(parse("unit,passengers\nu01,1\n", Utc::now()), Err(ApiError::BadRequest(_))));
        assert!(matches!(parse("", Utc::now()), Err(ApiError::BadRequest(_))));
    }
}
