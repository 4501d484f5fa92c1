//! Aliases: which names a version may carry, and moving them. An alias names one version
//! of a collection at a time (setting it on a version takes it off another); `latest`
//! moves by itself — at commit, and after a deletion — and is never removed by hand.
//!
//! Input: alias names and the collection each names. Output: the database changed, or a
//! `BadRequest` naming the alias and the version.

use crate::checks;
use crate::db::{self, ArtifactRow, Db};
use crate::error::ApiError;

/// The alias that follows the newest version of a collection.
pub(crate) const LATEST: &str = "latest";

/// Aliases: 1–128 characters, no `/` or `:` or control characters, and not of the `vN`
/// form that names versions.
pub(crate) fn check(alias: &str) -> Result<(), ApiError> {
    checks::check_name("alias", alias)?;
    let version_like = alias
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if alias.contains(':') || version_like {
        return Err(ApiError::BadRequest(format!(
            "alias {alias:?} contains `:` or has the form of a version (vN)"
        )));
    }
    Ok(())
}

/// The aliases a new version takes at commit: `latest`, then those asked for, each checked
/// and each once.
pub(crate) fn requested(asked: impl IntoIterator<Item = String>) -> Result<Vec<String>, ApiError> {
    let mut aliases = vec![LATEST.to_owned()];
    for alias in asked {
        check(&alias)?;
        if !aliases.contains(&alias) {
            aliases.push(alias);
        }
    }
    Ok(aliases)
}

/// An alias as `addAliases`/`deleteAliases` name it: with the collection it is in.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) alias: String,
    pub(crate) entity: String,
    pub(crate) project: String,
    pub(crate) collection: String,
}

/// Puts `targets` on `artifact`, moving each from the version that held it.
pub(crate) async fn add(
    db: &Db,
    artifact: &ArtifactRow,
    targets: &[Target],
) -> Result<(), ApiError> {
    change(db, artifact, targets, true).await
}

/// Takes `targets` off `artifact` (an alias on another version stays); `latest` is refused.
pub(crate) async fn remove(
    db: &Db,
    artifact: &ArtifactRow,
    targets: &[Target],
) -> Result<(), ApiError> {
    change(db, artifact, targets, false).await
}

/// Each target must name the version's own collection (cairn has no portfolios to alias
/// into).
async fn change(
    db: &Db,
    artifact: &ArtifactRow,
    targets: &[Target],
    add: bool,
) -> Result<(), ApiError> {
    let c = &artifact.collection;
    let mut names = Vec::with_capacity(targets.len());
    for target in targets {
        let named = (
            target.entity.as_str(),
            target.project.as_str(),
            target.collection.as_str(),
        );
        if named
            != (
                c.entity_name.as_str(),
                c.project_name.as_str(),
                c.name.as_str(),
            )
        {
            return Err(ApiError::BadRequest(format!(
                "alias {:?} names collection {}/{}/{}, not the one of {}",
                target.alias,
                named.0,
                named.1,
                named.2,
                artifact.path()
            )));
        }
        if add {
            check(&target.alias)?;
        } else if target.alias == LATEST {
            return Err(ApiError::BadRequest(format!(
                "the alias latest of {} moves by itself; it cannot be removed",
                artifact.path()
            )));
        }
        names.push(target.alias.clone());
    }
    let (collection, version) = (artifact.collection.id, artifact.id);
    let mut tx = db.write().await?;
    if add {
        db::artifacts::aliases::set_aliases(tx.conn(), collection, version, &names).await?;
    } else {
        db::artifacts::aliases::remove_aliases(tx.conn(), collection, version, &names).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_checked() {
        assert!(check("best").is_ok());
        assert!(check("v1.2").is_ok());
        for bad in ["", "v3", "a:b", "a/b", "x\0"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requested_aliases_start_with_latest() {
        let asked = ["best", "latest", "best"].map(str::to_owned);
        assert_eq!(requested(asked).unwrap(), ["latest", "best"]);
        assert!(requested(["v2".to_owned()]).is_err());
    }
}
