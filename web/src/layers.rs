//! What wraps every route: body limit, panic catching, security headers, request metrics,
//! tracing spans.

use std::any::Any;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use axum::extract::State;

use crate::AppState;
use crate::error::ApiError;
use crate::map::TileLayer;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The order import's CSV may be this large.
pub const IMPORT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// The route that takes [`IMPORT_MAX_BODY_BYTES`].
pub const IMPORT_PATH: &str = "/api/v1/orders/import";

/// The body limit of a request path.
pub fn body_limit(path: &str) -> usize {
    if path == IMPORT_PATH { IMPORT_MAX_BODY_BYTES } else { MAX_BODY_BYTES }
}

/// A body declared too large is still read (and discarded) up to this size before the 413
/// goes out: a server that answers and closes while the client is still sending makes the
/// client see a broken pipe instead of the answer. Larger declarations are cut off.
pub const DRAIN_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// How long draining a refused body may take.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the pages may load: only this origin, plus inline styles and `data:` images (map
/// markers, chart exports), and the images of configured tile servers (`{tiles}`). Nothing
/// from a CDN.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:{tiles}; style-src 'self' 'unsafe-inline'; \
     script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The Content-Security-Policy for a server with these tile layers.
pub(crate) fn content_security_policy(tiles: &[TileLayer]) -> HeaderValue {
    let sources: String = tiles.iter().map(|t| format!(" {}", t.csp_source())).collect();
    let csp = CONTENT_SECURITY_POLICY.replace("{tiles}", &sources);
    // Tile URLs are validated at configuration; a value that still cannot be a header falls
    // back to the policy without them.
    HeaderValue::from_str(&csp)
        .unwrap_or_else(|_| HeaderValue::from_str(&CONTENT_SECURITY_POLICY.replace("{tiles}", "")).expect("static CSP"))
}

const SECURITY_HEADERS: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Adds the security headers to every response, keeps API answers out of caches (they
/// carry personal data), and gives the body-limit layer's plain-text 413 the API's shape.
pub(crate) async fn harden(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json(&response) {
        response = ApiError::TooLarge.into_response();
    }
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, state.csp.clone());
    if is_api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Refuses a request whose `Content-Length` is over [`MAX_BODY_BYTES`] with 413, after
/// draining its body (see [`DRAIN_MAX_BYTES`]) so the client reads the answer. A body without
/// a length is cut at the limit by `RequestBodyLimitLayer`, whose error the JSON extractor
/// maps to the same 413.
pub(crate) async fn reject_oversized(req: Request, next: Next) -> Response {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let limit = body_limit(req.uri().path()) as u64;
    let Some(declared) = declared.filter(|n| *n > limit) else {
        return next.run(req).await;
    };
    // A client waiting for `100 Continue` has sent nothing yet and sends nothing after a 413.
    let expects_continue =
        req.headers().get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if declared <= DRAIN_MAX_BYTES && !expects_continue {
        drain(req.into_body()).await;
    }
    ApiError::TooLarge.into_response()
}

async fn drain(mut body: Body) {
    let mut read = 0u64;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(frame)) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > DRAIN_MAX_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Counts every answer in `http_requests_total{method, route, status}` and times it in
/// `http_request_duration_seconds{method, route}`. `route` is the route's template
/// (`/api/v1/vehicles/{vin}`), never the raw path, so the label set stays small.
pub(crate) async fn observe(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_str().to_owned();
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "method" => method, "route" => route, "status" => status).increment(1);
    response
}

/// Standard methods by name, anything else as `other` (a client may invent methods).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A handler panicked: answer 500 in the API's shape (the panic is logged there, once).
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a handler panicked");
    ApiError::Internal(format!("panic: {detail}")).into_response()
}

/// The span of one request: method and path only. The query string may carry a token (the
/// live feed's `?token=`) and is never recorded.
pub(crate) fn request_span(req: &Request) -> tracing::Span {
    tracing::info_span!("http.request", http.method = %req.method(), http.path = %req.uri().path())
}
