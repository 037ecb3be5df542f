//! Entry points for the fuzz targets in `fuzz/` (and their regression tests): the private
//! parsers reached from outside the crate, with nothing of the request around them. Not an
//! API; hidden from the docs.

use chrono::{DateTime, Utc};

/// The instant the order import's parser is run at. Fixed, so that a failing input replays
/// the same way on any day (whether a `pickup_at` is in the past or too far ahead depends
/// on it).
const NOW: DateTime<Utc> = DateTime::from_timestamp_nanos(1_767_225_600_000_000_000); // 2026-01-01T00:00:00Z

/// Runs an order-import CSV file's text through the import's parser as
/// `POST /api/v1/orders/import` does (BOM stripped), without storing anything. Answers the
/// number of rows reported (created or refused), or 0 when the whole file is refused.
pub fn parse_order_csv(text: &str) -> usize {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    crate::api::import::parse(text, NOW).map_or(0, |rows| rows.len())
}
