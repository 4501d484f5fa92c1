//! The web UI: its assets, its sign-in, and the JSON API its pages read (`/api/…`).
//!
//! The pages are a single-page app built from `ui/` into `ui/dist/` and embedded here
//! ([`assets`]); a GET of one of the app's own page paths ([`is_page_path`], the same
//! table as the browser-side router in `ui/src/router.js`) answers its `index.html`, so
//! links like `/{entity}/{project}/runs/{run}` work on reload. Every other path is a 404
//! with a JSON error: a client that downloads from a path cairn does not serve gets an
//! error, never a page that looks like data.
//!
//! Who is asking ([`Viewer`]): a session cookie set by `POST /api/login` ([`session`]), or
//! HTTP Basic `api:KEY` like the rest of the API (scripts, benchmarks). A request with a
//! cookie that is not a GET must carry the session's CSRF token in `X-CSRF-Token`; the
//! cookie is also `SameSite=Strict`. The contract between server and pages — routes, JSON
//! shapes, test ids — is `ui/README.md`.
//!
//! Chart data ([`series`]) is reduced on the server for the pixels a chart has, keeping
//! each bucket's first, last, minimum and maximum point, from a per-run column cache that
//! grows with the run.
//!
//! Errors are answered as `{"error": "message"}`. Nothing here holds state beyond the
//! series cache; it ends with the server.

mod api;
mod assets;
pub(crate) mod series;
mod session;

use axum::Json;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::App;
use crate::auth;
use crate::db::{self, UserRow};
use crate::error::ApiError;

pub(crate) use series::SeriesCache;
pub use session::{MIN_PASSWORD_LEN, hash_password};

/// The UI's routes: the JSON API and the assets. The SPA fallback is [`index`].
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/api/login", post(session::login))
        .route("/api/logout", post(session::logout))
        .route("/api/me", get(session::me))
        .route("/api/projects", get(api::projects))
        .route("/api/projects/{entity}/{project}/runs", get(api::runs))
        .route("/api/projects/{entity}/{project}/runs/{run}", get(api::run))
        .route(
            "/api/projects/{entity}/{project}/runs/{run}/series",
            get(api::series),
        )
        .route(
            "/api/projects/{entity}/{project}/runs/{run}/console",
            get(api::console),
        )
        .route(
            "/api/projects/{entity}/{project}/runs/{run}/files/{*name}",
            get(api::file),
        )
        .route(
            "/api/projects/{entity}/{project}/artifacts",
            get(api::artifacts),
        )
        .route("/api/artifacts/{id}", get(api::artifact))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .route("/assets/{name}", get(assets::asset))
}

/// Every request no route took: the app's page for a GET or HEAD of one of its page paths
/// (the browser-side router picks the view), a 404 JSON error for anything else.
pub(crate) async fn fallback(method: Method, uri: axum::http::Uri) -> Response {
    if (method == Method::GET || method == Method::HEAD) && is_page_path(uri.path()) {
        return assets::index();
    }
    ApiError::NotFound(format!("no such route: {method} {}", uri.path())).into_response()
}

/// Tabs of a run's page (`/{entity}/{project}/runs/{run}/{tab}`).
const RUN_TABS: [&str; 6] = ["overview", "charts", "system", "logs", "files", "artifacts"];

/// Whether `path` is one of the pages of `ui/README.md`'s route table.
pub(crate) fn is_page_path(path: &str) -> bool {
    let s: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match s.as_slice() {
        [] | ["login"] => true,
        [_entity, _project] => true,
        [_, _, "workspace" | "table" | "compare" | "artifacts"] => true,
        [_, _, "runs", _run] => true,
        [_, _, "runs", _run, tab] => RUN_TABS.contains(tab),
        [_, _, "artifacts", _type, _name, _version] => true,
        _ => false,
    }
}

async fn api_not_found() -> UiError {
    UiError(ApiError::NotFound("no such API route".to_owned()))
}

/// An [`ApiError`] answered in the UI API's shape, `{"error": "…"}`.
#[derive(Debug)]
pub(crate) struct UiError(pub(crate) ApiError);

impl<E: Into<ApiError>> From<E> for UiError {
    fn from(err: E) -> UiError {
        UiError(err.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        crate::trace::log_error(status, &self.0);
        let body = serde_json::json!({ "error": self.0.public_message() });
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(crate::trace::Logged);
        response
    }
}

pub(crate) type UiResult<T> = Result<T, UiError>;

/// The signed-in user of a request (see the module doc).
#[derive(Debug)]
pub(crate) struct Viewer {
    pub(crate) user: UserRow,
    /// The session's CSRF token, for cookie sessions.
    pub(crate) csrf: Option<String>,
}

impl FromRequestParts<App> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Viewer, UiError> {
        let mut conn = app.db.conn().await?;
        if auth::basic_key(&parts.headers).is_some() {
            let user = auth::authenticate(&mut conn, &parts.headers).await?;
            return Ok(Viewer { user, csrf: None });
        }
        let Some(token) = session::cookie_token(&parts.headers) else {
            return Err(UiError(ApiError::Unauthorized("not signed in".to_owned())));
        };
        let Some((user, csrf)) =
            db::accounts::session_user(&mut conn, &session::token_hash(&token)).await?
        else {
            return Err(UiError(ApiError::Unauthorized(
                "the session has ended: sign in again".to_owned(),
            )));
        };
        crate::trace::record_user(&user.name);
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !session::same_secret(sent, &csrf) {
                return Err(UiError(ApiError::Forbidden(
                    "missing or wrong X-CSRF-Token".to_owned(),
                )));
            }
        }
        Ok(Viewer {
            user,
            csrf: Some(csrf),
        })
    }
}
