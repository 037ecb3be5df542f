//! `GET /api/v1/stats/monthly?month=YYYY-MM[&unit_id=][&format=csv|xlsx][&view=][&lang=]`:
//! a month's use of the fleet per unit, car and driver, with the month before for comparison.
//! The figures and the tables of a download are `fleet_stats::{monthly, export}`; here are who
//! may see which unit, and the answer written as JSON, CSV or a workbook.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use fleet_domain::Role;
use fleet_domain::trips::month_of;
use fleet_stats::export::{Cell, Lang, Table, tables};
use fleet_stats::monthly::Monthly;
use serde::Deserialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;

#[derive(Deserialize)]
pub(crate) struct MonthlyQuery {
    month: Option<String>,
    unit_id: Option<String>,
    format: Option<String>,
    /// For CSV: `units` (default), `vehicles` or `drivers`.
    view: Option<String>,
    /// Column titles of downloads: `zh` (default) or `en`.
    lang: Option<String>,
}

/// The month's statistics of what the caller sees: a unit user their own unit only, a driver
/// nothing.
pub(crate) async fn monthly_stats(
    state: &AppState,
    auth: &AuthUser,
    month: &str,
    unit_filter: Option<&str>,
) -> Result<Monthly, ApiError> {
    let own_unit = match auth.user.role {
        Role::Driver => return Err(ApiError::Forbidden),
        Role::Unit => Some(auth.user.unit_id.clone().unwrap_or_default()),
        _ => None,
    };
    if let (Some(own), Some(f)) = (&own_unit, unit_filter)
        && own != f
    {
        return Err(ApiError::NotFound("unit"));
    }
    let unit_filter = own_unit.as_deref().or(unit_filter);
    Ok(fleet_stats::monthly::monthly(&state.store, month, unit_filter, state.co2, Utc::now()).await?)
}

/// `GET /api/v1/stats/monthly`.
pub(crate) async fn monthly(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<MonthlyQuery>,
) -> Result<Response, ApiError> {
    let month = match q.month {
        Some(m) => super::trips::parse_month(&m)?,
        None => month_of(Utc::now()),
    };
    let lang = match q.lang.as_deref() {
        None | Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        Some(other) => return Err(ApiError::BadRequest(format!("lang must be zh or en, got {other:?}"))),
    };
    let stats = monthly_stats(&state, &auth, &month, q.unit_id.as_deref()).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(stats).into_response()),
        Some("csv") => {
            let view = q.view.as_deref().unwrap_or("units");
            let table = tables(&stats, lang).into_iter().find(|t| t.view == view).ok_or_else(|| {
                ApiError::BadRequest(format!("view must be units, vehicles or drivers, got {view:?}"))
            })?;
            let body = csv_of(&table).map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
            Ok(download(body, "text/csv; charset=utf-8", &format!("fleet-{}-{month}.csv", table.view)))
        }
        Some("xlsx") => {
            let body = xlsx_of(&tables(&stats, lang)).map_err(|e| ApiError::Internal(format!("writing XLSX: {e}")))?;
            Ok(download(
                body,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                &format!("fleet-{month}.xlsx"),
            ))
        }
        Some(other) => Err(ApiError::BadRequest(format!("format must be json, csv or xlsx, got {other:?}"))),
    }
}

fn download(body: Vec<u8>, mime: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// CSV for Excel in China: UTF-8 with a byte-order mark. Text cells are made inert for
/// spreadsheet programs ([`inert_text`]); numbers are written as numbers.
fn csv_of(t: &Table) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    w.write_record(&t.columns)?;
    for row in &t.rows {
        w.write_record(row.iter().map(|c| match c {
            Cell::Text(s) => inert_text(s).into_owned(),
            Cell::Num(x) => x.to_string(),
        }))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// A text cell a spreadsheet program shows as text, never runs as a formula: one that
/// begins with `=`, `+`, `-`, `@`, a tab or a carriage return (what Excel, LibreOffice and
/// Sheets take for the start of a formula; OWASP "CSV Injection") gets a leading `'`,
/// which they show as text and do not display.
fn inert_text(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// One worksheet per table.
fn xlsx_of(tables: &[Table]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for t in tables {
        let sheet = book.add_worksheet();
        sheet.set_name(t.title)?;
        for (c, title) in t.columns.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            sheet.write_string_with_format(0, c, *title, &bold)?;
            sheet.set_column_width(c, 14)?;
        }
        for (r, row) in t.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    Cell::Text(s) => sheet.write_string(r, c, s)?,
                    Cell::Num(x) => sheet.write_number(r, c, *x)?,
                };
            }
        }
    }
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cells_that_a_spreadsheet_would_run_as_formulas_are_made_inert() {
        for bad in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(inert_text(bad), format!("'{bad}"), "{bad:?}");
        }
        for fine in ["市委办公室", "浙L·D7001", "a=b", "", "1-2"] {
            assert_eq!(inert_text(fine), fine);
        }
        let t = Table {
            view: "units",
            title: "t",
            columns: vec!["名称", "km"],
            rows: vec![vec![Cell::Text("=1+1".into()), Cell::Num(-3.5)]],
        };
        let csv = String::from_utf8(csv_of(&t).unwrap()).unwrap();
        assert_eq!(csv.trim_start_matches('\u{feff}'), "名称,km\n'=1+1,-3.5\n", "numbers stay numbers");
    }
}
