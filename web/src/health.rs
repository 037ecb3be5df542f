//! `/healthz` (is the database reachable and the broker connected?) and `/metrics`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;

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
    fn new(database_up: bool, mqtt_up: bool) -> Self {
        let word = |up| if up { "ok" } else { "down" };
        Self {
            status: if database_up && mqtt_up { "ok" } else { "unavailable" },
            database: word(database_up),
            mqtt: word(mqtt_up),
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
    let mqtt_up = state.health.mqtt_connected.load(Ordering::Relaxed);
    let report = HealthReport::new(database_up, mqtt_up);
    (report.status_code(), [(header::CACHE_CONTROL, "no-store")], Json(report))
}

/// `GET /metrics`: the Prometheus text.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], (state.metrics)())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_when_both_dependencies_are_up() {
        assert_eq!(HealthReport::new(true, true).status_code(), StatusCode::OK);
        let r = HealthReport::new(true, false);
        assert_eq!(r.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!((r.database, r.mqtt), ("ok", "down"));
        assert_eq!(HealthReport::new(false, true).database, "down");
    }
}
