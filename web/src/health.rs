//! `/healthz` (is the database reachable and the broker connected?) and `/metrics`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

/// How long the database ping may take before the database counts as down (a health check
/// must answer quickly, not wait out the pool's acquire timeout).
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct HealthReport {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// `ok` or `down`, per dependency.
    database: &'static str,
    mqtt: &'static str,
}

impl HealthReport {
    /// `mqtt_up` is `None` on an instance that does not ingest: it needs no broker.
    fn new(database_up: bool, mqtt_up: Option<bool>) -> Self {
        let word = |up| if up { "ok" } else { "down" };
        Self {
            status: if database_up && mqtt_up != Some(false) { "ok" } else { "unavailable" },
            database: word(database_up),
            mqtt: mqtt_up.map_or("not_used", word),
        }
    }

    fn status_code(&self) -> StatusCode {
        if self.status == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
    }
}

/// `GET /healthz`: 200 when the database answers and the broker connection is up, else 503
/// naming what is down.
pub(crate) async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let database_up = match tokio::time::timeout(PING_TIMEOUT, state.health.store.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database ping failed");
            false
        }
        Err(_) => {
            tracing::warn!(timeout_ms = PING_TIMEOUT.as_millis() as u64, "health check: database ping timed out");
            false
        }
    };
    let mqtt_up = state.health.mqtt_connected.as_ref().map(|c| c.load(Ordering::Relaxed));
    let report = HealthReport::new(database_up, mqtt_up);
    (report.status_code(), [(header::CACHE_CONTROL, "no-store")], Json(report))
}

/// `GET /metrics`: the Prometheus text; with a metrics token configured, only for a request
/// that carries it as a bearer token.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &state.metrics_access.token {
        let given = crate::auth::bearer_token(&headers).unwrap_or_default();
        if !same_secret(given.as_bytes(), expected.expose().as_bytes()) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], (state.metrics)()))
}

/// Compares two secrets in time that depends on their lengths only, not on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd") && !same_secret(b"abc", b"ab") && !same_secret(b"", b"a"));
    }

    #[test]
    fn healthy_only_when_both_dependencies_are_up() {
        assert_eq!(HealthReport::new(true, Some(true)).status_code(), StatusCode::OK);
        let r = HealthReport::new(true, Some(false));
        assert_eq!(r.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!((r.database, r.mqtt), ("ok", "down"));
        assert_eq!(HealthReport::new(false, Some(true)).database, "down");
    }

    #[test]
    fn an_instance_without_ingest_needs_no_broker() {
        let r = HealthReport::new(true, None);
        assert_eq!((r.status_code(), r.mqtt), (StatusCode::OK, "not_used"));
        assert_eq!(HealthReport::new(false, None).status_code(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
