//! The pages and their files, embedded in the binary from `web/assets` (read from disk in
//! debug builds, so a page can be edited without rebuilding).

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// `GET /`: the dispatcher's page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).unwrap_or_else(|| ApiError::NotFound("page").into_response())
}

/// `GET /driver`: the driver's mobile page.
pub(crate) async fn driver(headers: HeaderMap) -> Response {
    serve("driver.html", &headers).unwrap_or_else(|| ApiError::NotFound("page").into_response())
}

/// `GET /stats`: the monthly statistics page.
pub(crate) async fn stats(headers: HeaderMap) -> Response {
    serve("stats.html", &headers).unwrap_or_else(|| ApiError::NotFound("page").into_response())
}

/// Every path no route claims: an embedded file, else 404 in the API's error shape.
pub(crate) async fn fallback(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        return ApiError::NotFound("route").into_response();
    }
    let file = path.trim_start_matches('/');
    // Directories and dot-files are never served.
    if file.is_empty() || file.ends_with('/') || file.split('/').any(|seg| seg.starts_with('.')) {
        return ApiError::NotFound("page").into_response();
    }
    serve(file, &headers).unwrap_or_else(|| ApiError::NotFound("page").into_response())
}

fn serve(file: &str, headers: &HeaderMap) -> Option<Response> {
    let asset = Assets::get(file)?;
    let etag = format!("\"{}\"", hex(&asset.metadata.sha256_hash()[..16]));
    let etag = HeaderValue::from_str(&etag).ok()?;
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag) {
        return Some((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let mime = asset.metadata.mimetype();
    let mime = if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    let mime = HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // Revalidate every time: the ETag makes that a cheap 304 and a new release shows at once.
    let cache = HeaderValue::from_static("no-cache");
    Some(
        ([(header::CONTENT_TYPE, mime), (header::ETAG, etag), (header::CACHE_CONTROL, cache)], asset.data.into_owned())
            .into_response(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
