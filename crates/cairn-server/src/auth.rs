//! API keys and who may touch what.
//!
//! Clients authenticate with HTTP Basic `api:KEY` (W&B's scheme) on GraphQL and the
//! filestream. Keys are stored as their SHA-256: a key is 40+ random characters, so a
//! plain hash cannot be searched, and lookups stay one indexed read per request.
//!
//! Access: a user reaches the entities they are a member of (their own, and their teams);
//! admins reach every entity. Writing to an entity that does not exist yet creates it as a
//! team with the writer as its first member (W&B's "entity created on first use").

use axum::http::HeaderMap;
use base64::Engine as _;
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::checks;
use crate::db::{self, EntityRow, UserRow};
use crate::error::ApiError;

/// The message W&B's SDK shows for a rejected key.
pub(crate) const INVALID_KEY: &str = "invalid api key";

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new key in the on-prem form W&B's client accepts: `local-` and 40 random characters.
pub fn generate_key() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("local-{body}")
}

/// Checks a key given by an operator (`CAIRN_ADMIN_API_KEY`) the way W&B's client will:
/// after the first `-`, at least 40 characters of `[A-Za-z0-9_-]`.
pub(crate) fn check_key_format(key: &str) -> Result<(), String> {
    let secret = key.split_once('-').map_or(key, |(_, rest)| rest);
    if secret.len() < 40 {
        return Err(format!(
            "API key must have 40+ characters after its prefix, has {}",
            secret.len()
        ));
    }
    if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("API key may only hold letters, digits, `_` and `-`".to_owned());
    }
    Ok(())
}

/// The key of a Basic `Authorization` header (the password; the user name is ignored).
pub(crate) fn basic_key(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_, key) = decoded.split_once(':')?;
    Some(key.to_owned())
}

/// The user whose key the request carries, or 401.
pub(crate) async fn authenticate(
    conn: &mut AnyConnection,
    headers: &HeaderMap,
) -> Result<UserRow, ApiError> {
    let key = basic_key(headers).ok_or_else(|| ApiError::Unauthorized(INVALID_KEY.to_owned()))?;
    let user = db::accounts::user_by_key_hash(conn, &hash_key(&key))
        .await?
        .ok_or_else(|| ApiError::Unauthorized(INVALID_KEY.to_owned()))?;
    crate::trace::record_user(&user.name);
    Ok(user)
}

/// Whether `user` may read and write `entity`.
pub(crate) async fn may_access(
    conn: &mut AnyConnection,
    user: &UserRow,
    entity: &EntityRow,
) -> Result<bool, ApiError> {
    Ok(user.admin || db::accounts::is_member(conn, entity.id, user.id).await?)
}

/// Fails unless `user` may read and write the entity with id `id` (403).
pub(crate) async fn check_entity_id(
    conn: &mut AnyConnection,
    user: &UserRow,
    id: i64,
) -> Result<(), ApiError> {
    let entity = db::accounts::entity_by_id(conn, id)
        .await?
        .ok_or_else(|| forbidden(&format!("#{id}")))?;
    if may_access(conn, user, &entity).await? {
        Ok(())
    } else {
        Err(forbidden(&entity.name))
    }
}

/// The entity a request names (`None` or `""`: the user's own), if it exists; 403 when the
/// user may not access it.
pub(crate) async fn readable_entity(
    conn: &mut AnyConnection,
    user: &UserRow,
    name: Option<&str>,
) -> Result<Option<EntityRow>, ApiError> {
    let name = entity_name(user, name);
    let Some(entity) = db::accounts::entity_by_name(conn, name).await? else {
        return Ok(None);
    };
    if !may_access(conn, user, &entity).await? {
        return Err(forbidden(name));
    }
    Ok(Some(entity))
}

/// The entity a write names, created as a team of `user` when missing; 403 when it exists
/// and `user` is not a member.
pub(crate) async fn writable_entity(
    conn: &mut AnyConnection,
    user: &UserRow,
    name: Option<&str>,
) -> Result<EntityRow, ApiError> {
    let name = entity_name(user, name);
    if let Some(entity) = readable_entity(conn, user, Some(name)).await? {
        return Ok(entity);
    }
    checks::check_entity_name(name)?;
    Ok(db::accounts::create_team(conn, name, user.id).await?)
}

/// The entity name a request means: the given one, or the user's own for `None` / `""`.
pub(crate) fn entity_name<'a>(user: &'a UserRow, name: Option<&'a str>) -> &'a str {
    match name {
        Some(name) if !name.is_empty() => name,
        _ => &user.name,
    }
}

pub(crate) fn forbidden(entity: &str) -> ApiError {
    ApiError::Forbidden(format!("permission denied: no access to entity {entity}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_pass_wandbs_check() {
        let key = generate_key();
        assert!(key.starts_with("local-"));
        check_key_format(&key).unwrap();
        assert!(check_key_format("local-short").is_err());
        assert!(check_key_format(&format!("local-{}", "a!".repeat(30))).is_err());
    }

    #[test]
    fn basic_header_yields_the_key() {
        let mut headers = HeaderMap::new();
        let value = base64::engine::general_purpose::STANDARD.encode("api:local-abc");
        headers.insert("authorization", format!("Basic {value}").parse().unwrap());
        assert_eq!(basic_key(&headers).as_deref(), Some("local-abc"));
        headers.insert("authorization", "Basic !!!".parse().unwrap());
        assert_eq!(basic_key(&headers), None);
    }
}
