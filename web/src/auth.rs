//! Authentication: login (argon2 verify, throttled by address and username), bearer tokens (random,
//! stored hashed, expiring, revocable), logout, password change, and the [`AuthUser`]
//! extractor every protected route takes.

mod password;
mod throttle;
mod token;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use fleet_bus::{Event, Revocation, RevokeReason};
use fleet_domain::User;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access;
use crate::error::ApiError;
use crate::extract::ApiJson;

pub use password::hash_password;
pub(crate) use throttle::LoginThrottle;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub(crate) struct AuthUser {
    pub user: User,
    /// The hash of the token the request came with (to revoke it on logout).
    token_hash: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let user = authenticate(state, token).await?;
        if !access::may_send(user.role, &parts.method, parts.uri.path()) {
            return Err(ApiError::Forbidden);
        }
        Ok(Self { user, token_hash: token::token_hash(token) })
    }
}

/// The user holding `token`, if it is live (known, unexpired, unrevoked).
pub(crate) async fn authenticate(state: &AppState, token: &str) -> Result<User, ApiError> {
    // A string that cannot be a token costs no database round trip.
    if !token::is_well_formed(token) {
        return Err(ApiError::Unauthorized);
    }
    state.store.tokens().user(&token::token_hash(token), Utc::now()).await?.ok_or(ApiError::Unauthorized)
}

/// The user holding `token` if it is live, and when it expires (the live feed closes then).
pub(crate) async fn authenticate_session(state: &AppState, token: &str) -> Result<(User, DateTime<Utc>), ApiError> {
    if !token::is_well_formed(token) {
        return Err(ApiError::Unauthorized);
    }
    state.store.tokens().session(&token::token_hash(token), Utc::now()).await?.ok_or(ApiError::Unauthorized)
}

/// What is stored of a token (its SHA-256, hex).
pub(crate) fn token_hash(token: &str) -> String {
    token::token_hash(token)
}

/// The user `token` was issued to, live or not (None when unknown or on a storage error).
pub(crate) async fn authenticate_any(state: &AppState, token: &str) -> Option<User> {
    if !token::is_well_formed(token) {
        return None;
    }
    state.store.tokens().owner(&token::token_hash(token)).await.ok().flatten()
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `POST /api/v1/auth/login` body.
#[derive(Deserialize)]
pub(crate) struct LoginRequest {
    username: String,
    password: String,
}

/// `POST /api/v1/auth/login` answer.
#[derive(Serialize)]
pub(crate) struct LoginResponse {
    token: String,
    expires_at: DateTime<Utc>,
    user: User,
}

/// The client's address, as the login throttle counts it: the connection's peer, or, with
/// `trust_forwarded_for` (fleetd behind a reverse proxy), the last address in
/// `X-Forwarded-For` (the one the proxy itself appended; earlier ones are the client's say).
pub(crate) struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = || {
            let last = parts.headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
            last.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        };
        let ip = if state.trust_forwarded_for { forwarded().or(peer) } else { peer };
        Ok(Self(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// `POST /api/v1/auth/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let key = throttle_key(&req.username);
    if let Err(retry_after) = state.throttle.check(ip, &key, Instant::now()) {
        metrics::counter!("http_logins_total", "outcome" => "throttled").increment(1);
        tracing::warn!(retry_after_s = retry_after.as_secs(), "login refused: too many failures from this address");
        return Err(ApiError::TooManyAttempts { retry_after });
    }
    let found = state.store.users().credentials(&req.username).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let verified = check_password(req.password, hash).await?;
    // A retired account is refused as a wrong password is: the answer tells nothing more.
    let Some(user) = user.filter(|u| verified && !u.retired) else {
        state.throttle.record_failure(ip, &key, Instant::now());
        metrics::counter!("http_logins_total", "outcome" => "failed").increment(1);
        tracing::info!("login failed");
        return Err(ApiError::InvalidCredentials);
    };
    state.throttle.clear(ip, &key);
    let (token, expires_at) = issue_token(&state, user.id).await?;
    metrics::counter!("http_logins_total", "outcome" => "ok").increment(1);
    tracing::info!(user.id = user.id, user.role = user.role.as_str(), "login");
    Ok(Json(LoginResponse { token, expires_at, user }))
}

/// `POST /api/v1/auth/logout`: revokes the token the request came with.
pub(crate) async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    state.store.tokens().revoke(&auth.token_hash).await?;
    state.bus.publish(Event::TokensRevoked(Arc::new(Revocation {
        user_id: auth.user.id,
        token_hash: Some(auth.token_hash.clone()),
        except: None,
        reason: RevokeReason::LoggedOut,
    })));
    tracing::info!(user.id = auth.user.id, "logout");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/password` body.
#[derive(Deserialize)]
pub(crate) struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: checks the old password, stores the new one and revokes the
/// user's other tokens (this session stays logged in). Wrong old passwords count toward the
/// login throttle, so a stolen token cannot be used to guess the password.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: AuthUser,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let key = throttle_key(&auth.user.username);
    state.throttle.check(ip, &key, Instant::now()).map_err(|retry_after| ApiError::TooManyAttempts { retry_after })?;
    fleet_domain::user::validate_new_password(&req.new_password, &auth.user.username, Some(&req.old_password))
        .map_err(|e| ApiError::validation("new_password", e.problem))?;
    let hash = state.store.users().password_hash(auth.user.id).await?.ok_or(ApiError::Unauthorized)?;
    if !check_password(req.old_password, Some(hash)).await? {
        state.throttle.record_failure(ip, &key, Instant::now());
        return Err(ApiError::InvalidCredentials);
    }
    let new_hash = blocking(move || hash_password(&req.new_password)).await?;
    state.store.users().set_password_hash(auth.user.id, &new_hash).await?;
    state.store.tokens().revoke_all_for(auth.user.id, Some(&auth.token_hash)).await?;
    state.bus.publish(Event::TokensRevoked(Arc::new(Revocation {
        user_id: auth.user.id,
        token_hash: None,
        except: Some(auth.token_hash.clone()),
        reason: RevokeReason::PasswordChanged,
    })));
    tracing::info!(user.id = auth.user.id, "password changed; other sessions revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Hashes a password off the async threads (argon2 is deliberately slow); used by user
/// creation too.
pub(crate) async fn hash_password_blocking(password: String) -> Result<String, ApiError> {
    blocking(move || hash_password(&password)).await
}

/// Verifies off the async threads. Without a hash (unknown username) it verifies against a
/// decoy and fails, so both failures take the same time.
async fn check_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    blocking(move || match hash {
        Some(h) => password::verify_password(&password, &h),
        None => {
            let _ = password::verify_password(&password, password::decoy_hash());
            false
        }
    })
    .await
}

/// Password hashes (argon2id, default parameters: 19 MiB and tens of milliseconds of a core
/// each) computed at once. More would only share the same cores while multiplying the
/// memory: a burst of logins, or a flood from outside, waits its turn here instead of
/// filling the blocking pool (up to 512 threads, about 10 GiB of hashing memory).
pub(crate) const PASSWORD_HASHES_AT_ONCE: usize = 2;
static PASSWORD_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PASSWORD_HASHES_AT_ONCE);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let _turn =
        PASSWORD_WORK.acquire().await.map_err(|e| ApiError::Internal(format!("password hashing queue: {e}")))?;
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("password hashing task: {e}")))
}

async fn issue_token(state: &AppState, user_id: i64) -> Result<(String, DateTime<Utc>), ApiError> {
    let token = token::new_token();
    let ttl = chrono::Duration::from_std(state.token_ttl).unwrap_or(chrono::Duration::hours(12));
    let expires_at = Utc::now() + ttl;
    state.store.tokens().create(&token::token_hash(&token), user_id, expires_at).await?;
    Ok((token, expires_at))
}

/// Usernames are at most 64 characters; a longer guess is throttled under its prefix.
fn throttle_key(username: &str) -> String {
    username.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn reads_the_bearer_token_whatever_the_scheme_case() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
