//! Users, entities (a user's own and teams), memberships and API keys.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::{DbError, doing, flag, now};

/// A user of the server.
#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub admin: bool,
    pub created_at: String,
}

/// An entity: a user's own namespace or a team.
#[derive(Clone, Debug)]
pub struct EntityRow {
    pub id: i64,
    pub name: String,
    pub is_team: bool,
}

const USER_COLUMNS: &str = "users.id AS id, users.name AS name, users.email AS email, \
     users.admin AS admin, users.created_at AS created_at";

impl FromRow<'_, AnyRow> for UserRow {
    fn from_row(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
        Ok(UserRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            admin: flag(row, "admin")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

const ENTITY_COLUMNS: &str =
    "entities.id AS id, entities.name AS name, entities.is_team AS is_team";

impl FromRow<'_, AnyRow> for EntityRow {
    fn from_row(row: &AnyRow) -> Result<EntityRow, sqlx::Error> {
        Ok(EntityRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            is_team: flag(row, "is_team")?,
        })
    }
}

pub async fn count_users(conn: &mut AnyConnection) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(conn)
        .await
        .map_err(doing("counting users"))
}

/// Creates a user, the entity of the same name, and the membership between them.
pub async fn create_user(
    conn: &mut AnyConnection,
    name: &str,
    email: Option<&str>,
    admin: bool,
) -> Result<UserRow, DbError> {
    let created_at = now();
    let user: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (name, email, admin, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING {USER_COLUMNS}"
    ))
    .bind(name)
    .bind(email)
    .bind(i64::from(admin))
    .bind(&created_at)
    .fetch_one(&mut *conn)
    .await
    .map_err(doing("creating a user"))?;
    let entity = insert_entity(conn, name, false).await?;
    add_member(conn, entity.id, user.id).await?;
    Ok(user)
}

async fn insert_entity(
    conn: &mut AnyConnection,
    name: &str,
    is_team: bool,
) -> Result<EntityRow, DbError> {
    sqlx::query_as(&format!(
        "INSERT INTO entities (name, is_team, created_at) VALUES ($1, $2, $3) \
         RETURNING {ENTITY_COLUMNS}"
    ))
    .bind(name)
    .bind(i64::from(is_team))
    .bind(now())
    .fetch_one(&mut *conn)
    .await
    .map_err(doing("creating an entity"))
}

/// Creates a team entity with `owner` as its first member.
pub async fn create_team(
    conn: &mut AnyConnection,
    name: &str,
    owner: i64,
) -> Result<EntityRow, DbError> {
    let entity = insert_entity(conn, name, true).await?;
    add_member(conn, entity.id, owner).await?;
    Ok(entity)
}

pub async fn add_member(conn: &mut AnyConnection, entity: i64, user: i64) -> Result<(), DbError> {
    sqlx::query("INSERT INTO members (entity_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(entity)
        .bind(user)
        .execute(conn)
        .await
        .map_err(doing("adding a member"))?;
    Ok(())
}

pub async fn is_member(conn: &mut AnyConnection, entity: i64, user: i64) -> Result<bool, DbError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM members WHERE entity_id = $1 AND user_id = $2")
            .bind(entity)
            .bind(user)
            .fetch_optional(conn)
            .await
            .map_err(doing("checking a membership"))?;
    Ok(found.is_some())
}

/// The names of the teams `user` belongs to.
pub async fn teams_of(conn: &mut AnyConnection, user: i64) -> Result<Vec<String>, DbError> {
    sqlx::query_scalar(
        "SELECT entities.name FROM entities JOIN members ON members.entity_id = entities.id \
         WHERE members.user_id = $1 AND entities.is_team = 1 ORDER BY entities.name",
    )
    .bind(user)
    .fetch_all(conn)
    .await
    .map_err(doing("listing teams"))
}

pub async fn entity_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<EntityRow>, DbError> {
    if name.contains('\0') {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM entities WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(doing("finding an entity"))
}

pub async fn entity_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<EntityRow>, DbError> {
    sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM entities WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(doing("finding an entity"))
}

pub async fn user_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<UserRow>, DbError> {
    if name.contains('\0') {
        return Ok(None);
    }
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await
        .map_err(doing("finding a user"))
}

pub async fn user_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<UserRow>, DbError> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(doing("finding a user"))
}

/// The user owning the key whose SHA-256 is `hash`.
pub async fn user_by_key_hash(
    conn: &mut AnyConnection,
    hash: &str,
) -> Result<Option<UserRow>, DbError> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users JOIN api_keys ON api_keys.user_id = users.id \
         WHERE api_keys.hash = $1"
    ))
    .bind(hash)
    .fetch_optional(conn)
    .await
    .map_err(doing("checking an API key"))
}

/// Stores a key (by its hash) for `user`; a hash already stored is left as it is.
pub async fn add_key(
    conn: &mut AnyConnection,
    user: i64,
    name: &str,
    hash: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO api_keys (user_id, name, hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(user)
    .bind(name)
    .bind(hash)
    .bind(now())
    .execute(conn)
    .await
    .map_err(doing("storing an API key"))?;
    Ok(())
}

/// The names of `user`'s keys (never the keys: only hashes are stored).
pub async fn key_names(conn: &mut AnyConnection, user: i64) -> Result<Vec<(i64, String)>, DbError> {
    sqlx::query_as("SELECT id, name FROM api_keys WHERE user_id = $1 ORDER BY id")
        .bind(user)
        .fetch_all(conn)
        .await
        .map_err(doing("listing API keys"))
}

/// Sets (or with `None` clears) `user`'s web password, stored as the PHC string `hash`.
pub async fn set_password(
    conn: &mut AnyConnection,
    user: i64,
    hash: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user)
        .execute(conn)
        .await
        .map_err(doing("setting a password"))?;
    Ok(())
}

/// The user named `name` and their password hash, if they have one.
pub async fn user_with_password(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<(UserRow, String)>, DbError> {
    if name.contains('\0') {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {USER_COLUMNS}, users.password_hash AS extra FROM users \
         WHERE name = $1 AND password_hash IS NOT NULL"
    );
    user_and_text(conn, sqlx::query(&sql).bind(name), "checking a password").await
}

/// The user of a query selecting [`USER_COLUMNS`] and a column `extra`, and its text.
async fn user_and_text<'q>(
    conn: &mut AnyConnection,
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    what: &'static str,
) -> Result<Option<(UserRow, String)>, DbError> {
    let row = query.fetch_optional(conn).await.map_err(doing(what))?;
    row.map(|r| Ok((UserRow::from_row(&r)?, r.try_get("extra")?)))
        .transpose()
        .map_err(doing(what))
}

/// Stores a web session: the hash of its cookie token, its CSRF token, its expiry.
pub async fn create_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    user: i64,
    csrf: &str,
    expires_at: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user)
    .bind(csrf)
    .bind(now())
    .bind(expires_at)
    .execute(&mut *conn)
    .await
    .map_err(doing("creating a session"))?;
    // Expired sessions go when a new one comes: the table never outgrows the live ones.
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(now())
        .execute(conn)
        .await
        .map_err(doing("dropping expired sessions"))?;
    Ok(())
}

/// The user of an unexpired session and the session's CSRF token.
pub async fn session_user(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<(UserRow, String)>, DbError> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, sessions.csrf AS extra FROM users \
         JOIN sessions ON sessions.user_id = users.id \
         WHERE sessions.token_hash = $1 AND sessions.expires_at > $2"
    );
    let query = sqlx::query(&sql).bind(token_hash).bind(now());
    user_and_text(conn, query, "checking a session").await
}

pub async fn delete_session(conn: &mut AnyConnection, token_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await
        .map_err(doing("ending a session"))?;
    Ok(())
}

/// The entities `user` is a member of, by name.
pub async fn entities_of(conn: &mut AnyConnection, user: i64) -> Result<Vec<EntityRow>, DbError> {
    sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM entities \
         JOIN members ON members.entity_id = entities.id WHERE members.user_id = $1 \
         ORDER BY entities.name"
    ))
    .bind(user)
    .fetch_all(conn)
    .await
    .map_err(doing("listing entities"))
}

/// Every entity (what an admin reaches), by name.
pub async fn all_entities(conn: &mut AnyConnection) -> Result<Vec<EntityRow>, DbError> {
    sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM entities ORDER BY entities.name"
    ))
    .fetch_all(conn)
    .await
    .map_err(doing("listing entities"))
}
