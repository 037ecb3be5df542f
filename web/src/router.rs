//! Every route of the server, in one table, and the layers around them.

use axum::Router;
use axum::routing::{MethodRouter, delete, get, patch, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::{AppState, api, assets, audit, auth, health, idempotency, layers, live, map};

/// What an instance without the web service still serves.
const OPERATIONS_ROUTES: [&str; 2] = ["/healthz", "/metrics"];

/// Every route: path template and handlers. The OpenAPI test walks this same table, so a
/// route cannot be added without being documented.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(assets::index)),
        ("/driver", get(assets::driver)),
        ("/stats", get(assets::stats)),
        ("/healthz", get(health::healthz)),
        ("/metrics", get(health::metrics)),
        ("/api/v1/openapi.json", get(api::openapi)),
        ("/api/v1/auth/login", post(auth::login)),
        ("/api/v1/auth/logout", post(auth::logout)),
        ("/api/v1/auth/password", post(auth::change_password)),
        ("/api/v1/me", get(api::users::me)),
        ("/api/v1/users", get(api::users::list).post(api::users::create)),
        ("/api/v1/users/{id}", patch(api::users::patch)),
        ("/api/v1/users/{id}/retire", post(api::users::retire)),
        ("/api/v1/units", get(api::units::list).post(api::units::create)),
        ("/api/v1/units/{id}", get(api::units::get).patch(api::units::patch)),
        ("/api/v1/units/{id}/budget", get(api::trips::budget)),
        ("/api/v1/trips", get(api::trips::list)),
        ("/api/v1/stats/monthly", get(api::stats::monthly)),
        ("/api/v1/alarms", get(api::alarms::alarms)),
        ("/api/v1/alarms/{id}/acknowledge", post(api::alarms::acknowledge)),
        ("/api/v1/alarms/misuse", get(api::misuse::list)),
        ("/api/v1/geofences", get(api::alarms::list).post(api::alarms::create)),
        ("/api/v1/geofences/{id}", delete(api::alarms::delete)),
        ("/api/v1/webhooks", get(api::alarms::webhooks).post(api::alarms::create_webhook)),
        ("/api/v1/webhooks/{id}", delete(api::alarms::delete_webhook)),
        ("/api/v1/working-hours", get(api::alarms::working_hours).put(api::alarms::put_working_hours)),
        ("/api/v1/audit", get(audit::list)),
        ("/api/v1/vehicles", get(api::vehicles::list).post(api::vehicles::create)),
        ("/api/v1/vehicles/states", get(api::vehicles::states)),
        ("/api/v1/vehicles/{vin}", get(api::vehicles::get).patch(api::vehicles::patch)),
        ("/api/v1/vehicles/{vin}/retire", post(api::vehicles::retire)),
        ("/api/v1/vehicles/{vin}/maintenance", get(api::upkeep::list).post(api::upkeep::record)),
        ("/api/v1/reminders", get(api::upkeep::reminders_list)),
        ("/api/v1/tariff", get(api::costs::tariff).put(api::costs::put_tariff)),
        ("/api/v1/costs", get(api::costs::list).post(api::costs::create)),
        (
            "/api/v1/costs/import",
            post(api::costs::import).layer(axum::extract::DefaultBodyLimit::max(layers::IMPORT_MAX_BODY_BYTES)),
        ),
        ("/api/v1/vehicles/{vin}/track", get(api::vehicles::track)),
        ("/api/v1/vehicles/{vin}/mqtt-secret", post(api::vehicles::mqtt_secret)),
        ("/api/v1/drivers", get(api::drivers::list).post(api::drivers::create)),
        ("/api/v1/drivers/{id}", get(api::drivers::get).patch(api::drivers::patch)),
        ("/api/v1/drivers/{id}/retire", post(api::drivers::retire)),
        ("/api/v1/dead-letters", get(api::dead_letters::list)),
        ("/api/v1/platforms", get(api::platforms::list).post(api::platforms::create)),
        ("/api/v1/charging-stations", get(api::stations::list)),
        ("/api/v1/orders", get(api::orders::list).post(api::orders::create)),
        (
            "/api/v1/orders/import",
            post(api::import::import).layer(axum::extract::DefaultBodyLimit::max(layers::IMPORT_MAX_BODY_BYTES)),
        ),
        ("/api/v1/orders/{id}", get(api::orders::get)),
        ("/api/v1/orders/{id}/approve", post(api::orders::approve)),
        ("/api/v1/orders/{id}/reject", post(api::orders::reject)),
        ("/api/v1/orders/{id}/cancel", post(api::orders::cancel)),
        ("/api/v1/orders/{id}/accept", post(api::orders::accept)),
        ("/api/v1/orders/{id}/decline", post(api::orders::decline)),
        ("/api/v1/orders/{id}/pickup", post(api::orders::pickup)),
        ("/api/v1/orders/{id}/complete", post(api::orders::complete)),
        ("/api/v1/orders/{id}/assign", post(api::orders::assign)),
        ("/api/v1/live", get(live::live)),
        ("/api/v1/map/config", get(map::config)),
    ]
}

/// The application: routes, fallbacks and layers (innermost first: body limit, refusal of
/// declared-oversized bodies, 408 for a body too slow, panic catching, security headers, metrics, tracing).
///
/// Without `api` (an instance running only ingest or dispatch), only the operations routes
/// `/healthz` and `/metrics` are served.
pub(crate) fn router(state: AppState, api: bool) -> Router {
    let mut router = Router::new();
    let metrics_elsewhere = state.metrics_access.addr.is_some();
    for (path, methods) in routes() {
        if path == "/metrics" && metrics_elsewhere {
            continue;
        }
        if api || OPERATIONS_ROUTES.contains(&path) {
            router = router.route(path, methods);
        }
    }
    router
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(assets::fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::idempotent))
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        // The hard cap is the import's; every other route's extractors stop at 1 MiB
        // (`DefaultBodyLimit`, raised on the import route itself).
        .layer(axum::extract::DefaultBodyLimit::max(layers::MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(layers::IMPORT_MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(layers::reject_oversized))
        // A body that missed its deadline answers 408, whatever the handler made of it.
        .layer(axum::middleware::from_fn(crate::serve::body_timeout))
        .layer(CatchPanicLayer::custom(layers::panic_response))
        .layer(axum::middleware::from_fn_with_state(state.clone(), layers::harden))
        .layer(axum::middleware::from_fn(layers::observe))
        // Pages, scripts and JSON go out gzipped to clients that accept it (phones on patchy
        // island coverage); the WebSocket upgrade and small answers are left alone.
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(layers::request_span).on_failure(()))
        .with_state(state)
}

/// `/metrics` alone, for its own listener (`FLEET_METRICS_ADDR`).
pub(crate) fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(CatchPanicLayer::custom(layers::panic_response))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use fleet_storage::Store;
    use tower::ServiceExt;

    use super::*;
    use crate::{Config, Deps, Health};

    /// A router over a fresh SQLite file; the caller removes the file.
    async fn test_router() -> (Router, Store, std::path::PathBuf) {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let file = std::env::temp_dir().join(format!("fleet-web-router-{}-{nanos}.db", std::process::id()));
        let store = Store::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        store.migrate().await.unwrap();
        let deps = Deps {
            store: store.clone(),
            bus: fleet_bus::Bus::new(),
            health: Health { store: store.clone(), mqtt_connected: Some(Arc::new(AtomicBool::new(true))) },
            metrics: Arc::new(String::new),
        };
        (router(AppState::new(&Config::default(), deps), true), store, file)
    }

    async fn remove(store: Store, file: std::path::PathBuf) {
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }

    const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

    #[tokio::test]
    async fn every_route_and_method_served_is_in_the_openapi_document_and_nothing_else() {
        let (app, store, file) = test_router().await;
        let mut served = BTreeSet::new();
        for (path, _) in routes() {
            let uri = path.replace("{vin}", "LSJA24U66NS000001").replace("{id}", "x");
            for method in METHODS {
                let req = Request::builder().method(method.clone()).uri(&uri).body(Body::empty()).unwrap();
                let status = app.clone().oneshot(req).await.unwrap().status();
                if status != StatusCode::METHOD_NOT_ALLOWED {
                    served.insert((path.to_owned(), method.as_str().to_ascii_lowercase()));
                }
            }
        }
        remove(store, file).await;

        let doc: serde_json::Value = serde_json::from_str(api::OPENAPI).unwrap();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| METHODS.iter().any(|m| m.as_str().eq_ignore_ascii_case(k)))
                    .map(move |m| (path.clone(), m.clone()))
            })
            .collect();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let phantom: Vec<_> = documented.difference(&served).collect();
        assert!(undocumented.is_empty(), "served but missing from openapi.json: {undocumented:?}");
        assert!(phantom.is_empty(), "in openapi.json but not served: {phantom:?}");
    }

    #[tokio::test]
    async fn every_response_carries_the_security_headers_and_errors_have_the_documented_shape() {
        let (app, store, file) = test_router().await;
        let req = Request::builder().uri("/api/v1/nowhere").body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        assert!(res.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "not_found");

        let req = Request::builder().method(Method::DELETE).uri("/api/v1/units").body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(res.headers().contains_key("content-security-policy"));

        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login")
            .header("content-type", "application/json")
            .header("content-length", (layers::MAX_BODY_BYTES + 1).to_string())
            .body(Body::from(vec![b' '; layers::MAX_BODY_BYTES + 1]))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "too_large");
        remove(store, file).await;
    }

    async fn post_json(app: &Router, uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn malformed_json_is_400_and_a_wrong_shape_is_422_naming_the_field() {
        let (app, store, file) = test_router().await;
        let (status, body) = post_json(&app, "/api/v1/auth/login", "{\"username\": ").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("malformed JSON: "), "{body}");

        let (status, body) = post_json(&app, "/api/v1/auth/login", "{\"username\": 5, \"password\": \"x\"}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(body["error"]["message"].as_str().unwrap().contains("username"), "{body}");

        let (status, body) = post_json(&app, "/api/v1/auth/login", "{\"username\": \"admin\"}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"]["message"].as_str().unwrap().contains("password"), "{body}");
        remove(store, file).await;
    }
}
