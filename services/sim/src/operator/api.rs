//! The few calls of fleetd's HTTP API the operator makes, each as a named account, logging in
//! when it has no token (or its token was refused).

use std::collections::HashMap;
use std::time::Duration;

use fleet_domain::{NewOrder, Order};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status: `code` from its error body.
    #[error("{status} {code}: {message}")]
    Refused { status: StatusCode, code: String, message: String },
    #[error("cannot reach fleetd: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("the account {0} has no password here")]
    NoAccount(String),
}

impl ApiError {
    /// The error code of a refusal (`budget_exhausted`, `invalid_transition`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

#[derive(Deserialize)]
struct Orders {
    orders: Vec<Order>,
}

/// A unit as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct UnitEntry {
    pub id: String,
}

#[derive(Deserialize)]
struct Units {
    units: Vec<UnitEntry>,
}

#[derive(Serialize)]
struct Reason<'a> {
    reason: &'a str,
}

/// fleetd's API as a set of accounts.
pub struct Api {
    base: String,
    http: reqwest::Client,
    /// Username → password.
    passwords: HashMap<String, String>,
    /// Username → token, once logged in.
    tokens: Mutex<HashMap<String, String>>,
}

impl Api {
    /// `base`: `http://host:port`; `passwords`: the accounts it may act as.
    pub fn new(base: &str, passwords: HashMap<String, String>) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), http, passwords, tokens: Mutex::default() })
    }

    async fn token(&self, user: &str) -> Result<String, ApiError> {
        if let Some(t) = self.tokens.lock().await.get(user) {
            return Ok(t.clone());
        }
        let password = self.passwords.get(user).ok_or_else(|| ApiError::NoAccount(user.to_owned()))?;
        let body = serde_json::json!({ "username": user, "password": password });
        let resp = self.http.post(format!("{}/api/v1/auth/login", self.base)).json(&body).send().await?;
        let login: Login = decode(resp).await?;
        self.tokens.lock().await.insert(user.to_owned(), login.token.clone());
        Ok(login.token)
    }

    /// One call as `user`; a refused token is dropped and the call made once more after a
    /// fresh login (tokens expire, and a restarted demo may have revoked them).
    async fn call<T: DeserializeOwned>(
        &self,
        user: &str,
        method: Method,
        path: &str,
        body: Option<&(dyn erased::Body + Sync)>,
    ) -> Result<T, ApiError> {
        for attempt in 0..2 {
            let token = self.token(user).await?;
            let mut req = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&token);
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(b.to_json());
            }
            let resp = req.send().await?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.tokens.lock().await.remove(user);
                continue;
            }
            return decode(resp).await;
        }
        unreachable!("the loop returns on its second turn")
    }

    pub async fn units(&self, user: &str) -> Result<Vec<UnitEntry>, ApiError> {
        Ok(self.call::<Units>(user, Method::GET, "/api/v1/units", None).await?.units)
    }

    /// Orders in the statuses named (comma-separated), as `user` sees them.
    pub async fn orders(&self, user: &str, statuses: &str) -> Result<Vec<Order>, ApiError> {
        let path = format!("/api/v1/orders?status={statuses}&limit=5000");
        Ok(self.call::<Orders>(user, Method::GET, &path, None).await?.orders)
    }

    pub async fn create_order(&self, user: &str, order: &NewOrder) -> Result<Order, ApiError> {
        self.call(user, Method::POST, "/api/v1/orders", Some(order)).await
    }

    /// `POST /api/v1/orders/{id}/{action}`, with a reason when given.
    pub async fn act(&self, user: &str, id: &str, action: &str, reason: Option<&str>) -> Result<Order, ApiError> {
        let path = format!("/api/v1/orders/{id}/{action}");
        match reason {
            Some(reason) => self.call(user, Method::POST, &path, Some(&Reason { reason })).await,
            None => self.call(user, Method::POST, &path, None).await,
        }
    }
}

async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ApiError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.json().await?);
    }
    let bytes = resp.bytes().await?;
    Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(b) => ApiError::Refused { status, code: b.error.code, message: b.error.message },
        Err(_) => ApiError::Refused {
            status,
            code: String::new(),
            message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        },
    })
}

/// A request body of any serializable type, behind a reference.
mod erased {
    pub trait Body {
        fn to_json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Body for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}
