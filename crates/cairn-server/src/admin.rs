//! Operator actions on a server's database: the first start's admin account, users, keys,
//! stop requests. Used by `cairn server` at start and by `cairn user`/`key`/`run` commands.

use std::io::Write as _;
use std::path::Path;

use crate::ServerError;
use crate::auth;
use crate::checks;
use crate::db::{self, Db};
use crate::error::ApiError;

/// The file, inside the data folder, that holds the admin's first API key.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";

/// On an empty database: creates user and entity `admin` with `key` (or a generated key),
/// writes the key to `DIR/admin-api-key` (mode 0600) and returns it. On a database with
/// users, returns `None`; a `key` given then is added to `admin` if it is new (so an
/// operator can recover access through `CAIRN_ADMIN_API_KEY`).
pub async fn bootstrap(
    db: &Db,
    data_dir: &Path,
    key: Option<&str>,
) -> Result<Option<String>, ServerError> {
    if let Some(key) = key {
        auth::check_key_format(key).map_err(ServerError::AdminKey)?;
    }
    let mut tx = db.write().await?;
    if db::accounts::count_users(tx.conn()).await? > 0 {
        if let Some(key) = key
            && let Some(admin) = db::accounts::user_by_name(tx.conn(), "admin").await?
        {
            db::accounts::add_key(
                tx.conn(),
                admin.id,
                "from CAIRN_ADMIN_API_KEY",
                &auth::hash_key(key),
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(None);
    }
    let key = key.map_or_else(auth::generate_key, str::to_owned);
    let admin = db::accounts::create_user(tx.conn(), "admin", None, true).await?;
    db::accounts::add_key(tx.conn(), admin.id, "first key", &auth::hash_key(&key)).await?;
    write_secret_file(&data_dir.join(ADMIN_KEY_FILE), &key)?;
    tx.commit().await?;
    Ok(Some(key))
}

fn write_secret_file(path: &Path, contents: &str) -> Result<(), ServerError> {
    let io = |source| ServerError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(format!("{contents}\n").as_bytes())
        .map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

/// The secret that signs storage URLs, created on first use.
pub async fn signing_secret(db: &Db) -> Result<Vec<u8>, ServerError> {
    let mut tx = db.write().await?;
    let secret = match db::get_meta(tx.conn(), "signing_secret").await? {
        Some(secret) => secret,
        None => {
            let bytes: [u8; 32] = rand::random();
            let secret = hex::encode(bytes);
            db::set_meta(tx.conn(), "signing_secret", &secret).await?;
            secret
        }
    };
    tx.commit().await?;
    Ok(secret.into_bytes())
}

/// Creates a user (and their entity) and returns their first API key.
pub async fn add_user(db: &Db, name: &str, admin: bool) -> Result<String, ServerError> {
    checks::check_name("user", name).map_err(|e| ServerError::Usage(e.to_string()))?;
    let mut tx = db.write().await?;
    if db::accounts::user_by_name(tx.conn(), name).await?.is_some()
        || db::accounts::entity_by_name(tx.conn(), name)
            .await?
            .is_some()
    {
        return Err(ServerError::Usage(format!(
            "user or entity {name} already exists"
        )));
    }
    let user = db::accounts::create_user(tx.conn(), name, None, admin).await?;
    let key = auth::generate_key();
    db::accounts::add_key(tx.conn(), user.id, "first key", &auth::hash_key(&key)).await?;
    tx.commit().await?;
    Ok(key)
}

/// Sets `user`'s web UI password (argon2id; at least [`crate::MIN_PASSWORD_LEN`]
/// characters). Existing sessions stay valid.
pub async fn set_password(db: &Db, user: &str, password: &str) -> Result<(), ServerError> {
    let hash = crate::hash_password(password).map_err(ServerError::Usage)?;
    let mut tx = db.write().await?;
    let found = db::accounts::user_by_name(tx.conn(), user)
        .await?
        .ok_or_else(|| ServerError::Usage(format!("no user named {user}")))?;
    db::accounts::set_password(tx.conn(), found.id, Some(&hash)).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates a new API key for `user` and returns it (it is stored only as a hash).
pub async fn create_key(db: &Db, user: &str) -> Result<String, ServerError> {
    let mut tx = db.write().await?;
    let user = db::accounts::user_by_name(tx.conn(), user)
        .await?
        .ok_or_else(|| ServerError::Usage(format!("no user named {user}")))?;
    let key = auth::generate_key();
    db::accounts::add_key(
        tx.conn(),
        user.id,
        "created by cairn key create",
        &auth::hash_key(&key),
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// Asks the run at `entity/project/run` to stop; the SDK stops the script at its next
/// filestream answer.
pub async fn stop_run(db: &Db, path: &str) -> Result<(), ServerError> {
    let parts: Vec<&str> = path.split('/').collect();
    let [entity, project, run] = parts[..] else {
        return Err(ServerError::Usage(format!(
            "run path must be ENTITY/PROJECT/RUN, got {path}"
        )));
    };
    let mut tx = db.write().await?;
    let missing = || ServerError::Usage(format!("no run {path}"));
    let entity = db::accounts::entity_by_name(tx.conn(), entity)
        .await?
        .ok_or_else(missing)?;
    let project = db::runs::project(tx.conn(), entity.id, project)
        .await?
        .ok_or_else(missing)?;
    let run = db::runs::run_by_name(tx.conn(), project.id, run)
        .await?
        .ok_or_else(missing)?;
    db::runs::request_stop(tx.conn(), run.id).await?;
    tx.commit().await?;
    Ok(())
}

impl From<ApiError> for ServerError {
    fn from(err: ApiError) -> ServerError {
        ServerError::Usage(err.to_string())
    }
}
