//! The HTTP surface: routes, body limits, the GraphQL endpoint and the signed storage URLs.
//!
//! | route | what |
//! |---|---|
//! | `POST /graphql` | GraphQL (Basic `api:KEY`), see `graphql` |
//! | `POST /files/{entity}/{project}/{run}/file_stream` | a run's live data, see `filestream` |
//! | `PUT /storage/{key}?exp&sig` | upload to a signed URL (no credentials) |
//! | `GET /storage/{key}?exp&sig` | download from a signed URL (one `Range` honoured) |
//! | `GET /healthz` | liveness |
//! | `POST /sdk/otel/v1/{metrics,logs,traces}` | the SDK's own telemetry: 200, dropped |
//! | `/api/…`, `/assets/…`, the pages' paths | the web UI, see `ui` |
//! | anything else | 404, a JSON error |
//!
//! Oversized bodies are answered 413, malformed ones 400, both as JSON errors. Every
//! request runs in a span with an id (`trace`), and every failure is logged.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::App;
use crate::artifacts::uploads;
use crate::auth;
use crate::blob;
use crate::db;
use crate::error::ApiError;
use crate::filestream;
use crate::graphql::Session;
use crate::ui;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};

/// Largest GraphQL request body.
pub(crate) const GRAPHQL_BODY_LIMIT: usize = 32 << 20;
/// Largest filestream request body (the client stays under about 10 MiB).
pub(crate) const FILESTREAM_BODY_LIMIT: usize = 64 << 20;

/// The server's routes over `app`.
pub fn router(app: App) -> Router {
    Router::new()
        .route(
            "/graphql",
            post(graphql).layer(DefaultBodyLimit::max(GRAPHQL_BODY_LIMIT)),
        )
        .route(
            "/files/{entity}/{project}/{run}/file_stream",
            post(filestream::file_stream).layer(DefaultBodyLimit::max(FILESTREAM_BODY_LIMIT)),
        )
        .route(
            "/storage/{*key}",
            get(storage_get)
                .put(storage_put)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/healthz", get(|| async { "ok" }))
        // wandb-core 0.28+ exports its own telemetry here: acknowledged and dropped (an
        // empty OTLP answer is a valid one), so the SDK's log does not fill with errors.
        .route("/sdk/otel/v1/{signal}", post(otel_discard))
        .merge(ui::router())
        .fallback(ui::fallback)
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .compress_when(Compressible),
        )
        .layer(axum::middleware::from_fn(crate::trace::requests))
        .with_state(app)
}

/// The SDK's own telemetry (`/sdk/otel/v1/metrics`, `/sdk/otel/v1/logs`): not the user's
/// data, and not kept.
async fn otel_discard(Path(signal): Path<String>) -> Response {
    match signal.as_str() {
        "metrics" | "logs" | "traces" => StatusCode::OK.into_response(),
        _ => {
            ApiError::NotFound(format!("no such route: POST /sdk/otel/v1/{signal}")).into_response()
        }
    }
}

/// Compresses JSON and the UI's assets, not file transfers (already compressed, ranged,
/// or streamed to a client that wants them as they are).
#[derive(Clone, Copy, Debug)]
struct Compressible;

impl Predicate for Compressible {
    fn should_compress<B: axum::body::HttpBody>(&self, response: &axum::http::Response<B>) -> bool {
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        (kind.starts_with("application/json")
            || kind.starts_with("text/javascript")
            || kind.starts_with("text/css")
            || kind.starts_with("text/html"))
            && DefaultPredicate::new().should_compress(response)
    }
}

async fn graphql(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match graphql_inner(app, headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn graphql_inner(
    app: App,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let viewer = {
        let mut conn = app.db.conn().await?;
        auth::authenticate(&mut conn, &headers).await?
    };
    let body = body?;
    let mut value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::BadRequest(format!("GraphQL request is not JSON: {err}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "GraphQL request must be a JSON object".to_owned(),
        ));
    };
    if object.get("variables").is_some_and(|v| v.is_null()) {
        object.remove("variables");
    }
    // `wandb.Api()` names some operations `""`: that means "the only one in the document".
    if object
        .get("operationName")
        .is_some_and(|v| v.is_null() || v.as_str() == Some(""))
    {
        object.remove("operationName");
    }
    let mut request: async_graphql::Request = serde_json::from_value(value)
        .map_err(|err| ApiError::BadRequest(format!("GraphQL request is malformed: {err}")))?;
    crate::graphql::fill_variable_defaults(&mut request);
    let operation = request.operation_name.clone();
    let session = Session {
        base_url: app.base_url(&headers),
        app: app.clone(),
        viewer,
    };
    let response = app.schema.execute(request.data(session)).await;
    // Answered with status 200, as GraphQL's errors are: logged here, each with its
    // operation and path (the span adds the request id and the user).
    for error in &response.errors {
        let path: Vec<String> = error
            .path
            .iter()
            .map(|segment| match segment {
                async_graphql::PathSegment::Field(name) => name.clone(),
                async_graphql::PathSegment::Index(index) => index.to_string(),
            })
            .collect();
        tracing::warn!(
            operation = operation.as_deref().unwrap_or("(unnamed)"),
            path = %path.join("."),
            error = %error.message,
            "GraphQL error"
        );
    }
    Ok(Json(response).into_response())
}

fn signed(
    app: &App,
    method: &str,
    key: &str,
    query: &HashMap<String, String>,
) -> Result<(), ApiError> {
    let expires = query.get("exp").and_then(|e| e.parse::<i64>().ok());
    let sig = query.get("sig");
    match (expires, sig) {
        (Some(expires), Some(sig)) if app.blobs.verify(method, key, expires, sig, unix_now()) => {
            Ok(())
        }
        _ => Err(ApiError::Forbidden(format!(
            "the URL for {key} is not valid or has expired"
        ))),
    }
}

async fn storage_put(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    signed(&app, "PUT", &key, &query)?;
    let stored = match blob::parse_artifact_key(&key) {
        Some(blob::ArtifactKey::Blob { entity, md5_hex }) => {
            let body = body.into_data_stream();
            uploads::put_blob(&app.db, &app.blobs, &key, entity, md5_hex, body).await?
        }
        Some(blob::ArtifactKey::Part { upload, part, .. }) => {
            let content_md5 = headers.get("content-md5").and_then(|v| v.to_str().ok());
            let body = body.into_data_stream();
            uploads::put_part(&app.db, &app.blobs, &key, upload, part, content_md5, body).await?
        }
        _ => app.blobs.put_stream(&key, body.into_data_stream()).await?,
    };
    if let Some((run, name)) = parse_run_file_key(&key) {
        let mut tx = app.db.write().await?;
        db::lines::file_stored(tx.conn(), run, name, stored.size as i64, &stored.md5).await?;
        tx.commit().await?;
    }
    let mut response = StatusCode::OK.into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", stored.md5_hex())) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

async fn storage_get(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    signed(&app, "GET", &key, &query)?;
    let wanted = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(wanted) = wanted else {
        let (size, stream) = app.blobs.get(&key).await?;
        return Ok(octet_stream(StatusCode::OK, size, stream, None));
    };
    // The size resolves `bytes=N-` and `bytes=-N`.
    let size = app.blobs.size(&key).await?;
    let Some(range) = parse_range(&wanted, size) else {
        let mut response = ApiError::RangeNotSatisfiable(format!(
            "range {wanted:?} is not satisfiable for {key} ({size} bytes)"
        ))
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        return Ok(response);
    };
    let (size, served, stream) = app.blobs.get_range(&key, Some(range)).await?;
    let content_range = format!("bytes {}-{}/{size}", served.start, served.end - 1);
    Ok(octet_stream(
        StatusCode::PARTIAL_CONTENT,
        served.end - served.start,
        stream,
        Some(content_range),
    ))
}

/// A streamed `application/octet-stream` answer of `len` bytes.
fn octet_stream(
    status: StatusCode,
    len: u64,
    stream: impl futures_util::Stream<Item = Result<Bytes, object_store::Error>> + Send + 'static,
    content_range: Option<String>,
) -> Response {
    let mut response = (status, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(value) = content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    response
}

/// A single `Range: bytes=…` of an object of `size` bytes, as start..end (exclusive);
/// `None` when it is malformed, asks for several ranges, or lies outside the object.
fn parse_range(header: &str, size: u64) -> Option<std::ops::Range<u64>> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        size.saturating_sub(suffix)..size
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            size
        } else {
            last.parse::<u64>().ok()?.saturating_add(1).min(size)
        };
        start..end
    };
    (range.start < range.end).then_some(range)
}

/// `runs/{id}/files/{name}` → (id, name).
fn parse_run_file_key(key: &str) -> Option<(i64, &str)> {
    let rest = key.strip_prefix("runs/")?;
    let (id, rest) = rest.split_once('/')?;
    let name = rest.strip_prefix("files/")?;
    blob::check_file_name(name).ok()?;
    Some((id.parse().ok()?, name))
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("bytes=100-1099", 10_000), Some(100..1100));
        assert_eq!(parse_range("bytes=9000-", 10_000), Some(9000..10_000));
        assert_eq!(parse_range("bytes=-500", 10_000), Some(9500..10_000));
        assert_eq!(parse_range("bytes=0-99999", 10_000), Some(0..10_000));
        for bad in [
            "bytes=10000-",
            "bytes=5-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=-0",
        ] {
            assert_eq!(parse_range(bad, 10_000), None, "{bad}");
        }
    }

    #[test]
    fn run_file_keys_parse() {
        assert_eq!(
            parse_run_file_key("runs/7/files/a/b.txt"),
            Some((7, "a/b.txt"))
        );
        assert_eq!(parse_run_file_key("runs/x/files/a"), None);
        assert_eq!(parse_run_file_key("runs/7/files/../a"), None);
        assert_eq!(parse_run_file_key("artifacts/7"), None);
    }
}
