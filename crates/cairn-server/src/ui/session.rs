//! Sign-in for the web UI: passwords (argon2id), session cookies and their CSRF tokens.
//!
//! `POST /api/login` takes a user name and password, or an API key, and answers the user
//! and a CSRF token with a `cairn_session` cookie (HttpOnly, SameSite=Strict, 30 days).
//! The cookie's token is random; the database keeps its SHA-256 only, like API keys. A
//! login from another site is refused by its `Origin` (and by `Sec-Fetch-Site` where the
//! browser sends it), so a page elsewhere cannot sign a visitor in as someone else.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{UiError, UiResult, Viewer};
use crate::App;
use crate::auth;
use crate::db::{self, UserRow};
use crate::error::ApiError;

/// The session cookie's name.
const COOKIE: &str = "cairn_session";
/// How long a session lasts.
const SESSION_SECS: i64 = 30 * 24 * 3600;
/// The shortest password `cairn user passwd` accepts.
pub const MIN_PASSWORD_LEN: usize = 8;

/// The argon2id PHC string of `password`, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|err| format!("cannot make a salt: {err}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| format!("cannot hash the password: {err}"))
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// The hex SHA-256 under which a session token is stored.
pub(super) fn token_hash(token: &str) -> String {
    auth::hash_key(token)
}

/// Compares two secrets in time that does not depend on where they differ.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session token of the request's `Cookie` header, if any.
pub(super) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What `POST /api/login` takes: a user name and password, or an API key.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Login {
    username: Option<String>,
    password: Option<String>,
    api_key: Option<String>,
}

fn user_json(user: &UserRow, csrf: &str) -> serde_json::Value {
    json!({ "user": { "name": user.name, "admin": user.admin }, "csrf": csrf })
}

/// Refuses a login posted by a page of another site.
fn check_same_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site");
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let foreign_origin = origin.is_some_and(|origin| {
        let origin = origin.trim_end_matches('/');
        let same_host = origin
            .split_once("://")
            .is_some_and(|(_, host)| Some(host) == host_of(headers));
        origin != app.base_url(headers) && !same_host
    });
    if cross_site || foreign_origin {
        return Err(ApiError::Forbidden(
            "sign-in from another site is refused".to_owned(),
        ));
    }
    Ok(())
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

/// `POST /api/login`.
pub(super) async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> UiResult<Response> {
    check_same_origin(&app, &headers)?;
    let Json(login) = body.map_err(|err| {
        UiError(ApiError::BadRequest(format!(
            "sign-in needs {{\"username\",\"password\"}} or {{\"apiKey\"}}: {}",
            err.body_text()
        )))
    })?;
    let refused = || UiError(ApiError::Unauthorized("wrong user name or password".into()));
    let user = {
        let mut conn = app.db.conn().await?;
        match (&login.api_key, &login.username, &login.password) {
            (Some(key), _, _) => db::accounts::user_by_key_hash(&mut conn, &auth::hash_key(key))
                .await?
                .ok_or_else(|| UiError(ApiError::Unauthorized(auth::INVALID_KEY.into())))?,
            (None, Some(name), Some(password)) => {
                let found = db::accounts::user_with_password(&mut conn, name).await?;
                drop(conn);
                let Some((user, phc)) = found else {
                    return Err(refused());
                };
                let password = password.clone();
                // Hashing takes tens of milliseconds of CPU: keep it off the I/O threads.
                let ok = tokio::task::spawn_blocking(move || password_matches(&password, &phc))
                    .await
                    .unwrap_or(false);
                if !ok {
                    return Err(refused());
                }
                user
            }
            _ => {
                return Err(UiError(ApiError::BadRequest(
                    "sign-in needs a user name and password, or an API key".into(),
                )));
            }
        }
    };
    let token = random_token();
    let csrf = random_token();
    {
        let mut tx = app.db.write().await?;
        let expires = db::seconds_ago(-SESSION_SECS);
        db::accounts::create_session(tx.conn(), &token_hash(&token), user.id, &csrf, &expires)
            .await?;
        tx.commit().await?;
    }
    let secure = app
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"));
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(user_json(&user, &csrf)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /api/logout`: ends the session and clears the cookie.
pub(super) async fn logout(
    State(app): State<App>,
    _viewer: Viewer,
    headers: HeaderMap,
) -> UiResult<Response> {
    if let Some(token) = cookie_token(&headers) {
        let mut tx = app.db.write().await?;
        db::accounts::delete_session(tx.conn(), &token_hash(&token)).await?;
        tx.commit().await?;
    }
    let mut response = Json(json!({})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cairn_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

/// `GET /api/me`: who is signed in, and the CSRF token for writes.
pub(super) async fn me(viewer: Viewer) -> Json<serde_json::Value> {
    Json(user_json(
        &viewer.user,
        viewer.csrf.as_deref().unwrap_or(""),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &phc));
        assert!(!password_matches("correct horsf", &phc));
        assert!(!password_matches("correct horse", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; cairn_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, "cairn_session=".parse().unwrap());
        assert_eq!(cookie_token(&headers), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
