//! The pages' settings (`GET /api/v1/map/config`): optional tile layers, alarm thresholds,
//! and the driver's time to accept. Without tile layers the page draws the embedded offline
//! land map only.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;

/// A car faster than this raises a speeding alarm on the map.
pub const DEFAULT_SPEED_LIMIT_KMH: f64 = 80.0;
/// A car below this state of charge raises a low-charge alarm on the map.
pub const DEFAULT_LOW_SOC_PCT: f64 = 20.0;

/// The coordinate system a tile layer is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TileCrs {
    /// Tianditu `_w` layers, OpenStreetMap: positions are drawn as they are.
    Wgs84,
    /// AMap, Tencent and other Chinese web maps: positions are shifted for display only.
    Gcj02,
}

/// A raster tile layer the page may offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileLayer {
    pub name: String,
    /// `https://…/{z}/{x}/{y}…`, with `{s}` for a subdomain.
    pub url: String,
    pub crs: TileCrs,
    pub attribution: String,
    pub subdomains: Option<String>,
    pub max_zoom: u8,
}

impl TileLayer {
    /// Checks the URL template: http(s), with `{z}`, `{x}` and `{y}`.
    pub fn validate(&self) -> Result<(), String> {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return Err(format!("tile URL {:?} has no scheme", self.url));
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!("tile URL {:?} must be http or https", self.url));
        }
        if rest.split('/').next().is_none_or(str::is_empty) {
            return Err(format!("tile URL {:?} has no host", self.url));
        }
        if let Some(missing) = ["{z}", "{x}", "{y}"].into_iter().find(|p| !self.url.contains(p)) {
            return Err(format!("tile URL {:?} lacks {missing}", self.url));
        }
        Ok(())
    }

    /// The CSP source that lets the page load this layer's images: its origin, with a
    /// `{s}` subdomain label as `*`.
    pub(crate) fn csp_source(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("https", &self.url));
        let host = rest.split('/').next().unwrap_or_default();
        let host: Vec<&str> = host.split('.').map(|label| if label.contains('{') { "*" } else { label }).collect();
        format!("{scheme}://{}", host.join("."))
    }
}

/// What the map page is configured with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapConfig {
    pub tiles: Vec<TileLayer>,
    pub low_soc_pct: f64,
    pub speed_limit_kmh: f64,
    /// A driver's time to accept an assignment (from the order's `assigned_at`), seconds.
    pub accept_timeout_s: u64,
}

impl Default for MapConfig {
    fn default() -> Self {
        Self {
            tiles: Vec::new(),
            low_soc_pct: DEFAULT_LOW_SOC_PCT,
            speed_limit_kmh: DEFAULT_SPEED_LIMIT_KMH,
            accept_timeout_s: 30,
        }
    }
}

/// What the pages are told: the map settings and the dispatch rule's numbers (the driver's
/// page warns with the same charge rule dispatch applies).
#[derive(Serialize)]
pub(crate) struct PageConfig {
    #[serde(flatten)]
    map: MapConfig,
    dispatch: fleet_domain::DispatchParams,
}

/// `GET /api/v1/map/config`.
pub(crate) async fn config(State(state): State<AppState>, _auth: AuthUser) -> Result<Json<PageConfig>, ApiError> {
    Ok(Json(PageConfig { map: state.map.clone(), dispatch: state.dispatch }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(url: &str) -> TileLayer {
        TileLayer {
            name: "t".into(),
            url: url.into(),
            crs: TileCrs::Wgs84,
            attribution: String::new(),
            subdomains: None,
            max_zoom: 18,
        }
    }

    #[test]
    fn a_tile_url_needs_a_scheme_a_host_and_the_three_placeholders() {
        assert!(layer("https://t{s}.tianditu.gov.cn/vec_w/wmts?x={x}&y={y}&l={z}").validate().is_ok());
        assert!(layer("ftp://a/{z}/{x}/{y}").validate().is_err());
        assert!(layer("https:///{z}/{x}/{y}").validate().is_err());
        assert!(layer("https://a/{z}/{x}.png").validate().is_err());
        assert!(layer("tiles/{z}/{x}/{y}").validate().is_err());
    }

    #[test]
    fn a_subdomain_placeholder_becomes_a_wildcard_in_the_csp() {
        assert_eq!(layer("https://t{s}.tianditu.gov.cn/x/{z}/{x}/{y}").csp_source(), "https://*.tianditu.gov.cn");
        assert_eq!(layer("http://10.0.0.5:8081/{z}/{x}/{y}.png").csp_source(), "http://10.0.0.5:8081");
    }
}
