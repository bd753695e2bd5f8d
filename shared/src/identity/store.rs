//! Principals in the database. Tokens are stored only as their SHA-256 hash.

use crate::error::{ApiError, ApiResult};
use crate::identity::{Principal, Role};
use crate::platform::clock;
use crate::platform::storage::{
    Database, Row, RowLock, StorageError, enum_from_str, enum_to_str, lock_rows,
};

const COLUMNS: &str = "id, role, name, account_type, created_at, disabled_at";

fn from_row(row: &Row) -> Result<Principal, StorageError> {
    Ok(Principal {
        id: row.text(0)?,
        role: enum_from_str(&row.text(1)?)?,
        name: row.text(2)?,
        account_type: row.opt_text(3)?.map(|s| enum_from_str(&s)).transpose()?,
        built_in: false,
        created_at: clock::stored(&row.text(4)?)?,
        disabled_at: row.opt_text(5)?.as_deref().map(clock::stored).transpose()?,
    })
}

/// The principal holding the token of this hash, if any.
pub(crate) fn find_by_token_hash(
    db: &dyn Database,
    token_hash: &str,
) -> ApiResult<Option<Principal>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM principals WHERE token_hash = ? AND disabled_at IS NULL"),
        &[token_hash.into()],
    )?;
    Ok(rows.first().map(from_row).transpose()?)
}

pub(crate) fn insert(db: &dyn Database, principal: &Principal, token_hash: &str) -> ApiResult<()> {
    db.execute(
        "INSERT INTO principals (id, role, name, account_type, token_hash, created_at, token_issued_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            principal.id.clone().into(),
            enum_to_str(&principal.role).into(),
            principal.name.clone().into(),
            principal.account_type.map(|a| enum_to_str(&a)).into(),
            token_hash.into(),
            clock::rfc3339(principal.created_at).into(),
            clock::rfc3339(principal.created_at).into(),
        ],
    )?;
    Ok(())
}

/// Locks these principals' rows (exclusively, in their ids' order) until the caller's
/// transaction ends.
pub(crate) fn lock(db: &dyn Database, ids: &[&str]) -> Result<(), StorageError> {
    lock_rows(db, ("principals", "id"), ids, RowLock::Exclusive)
}

pub(crate) fn find(db: &dyn Database, id: &str) -> ApiResult<Principal> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM principals WHERE id = ?"),
        &[id.into()],
    )?;
    match rows.first() {
        Some(row) => Ok(from_row(row)?),
        None => Err(ApiError::not_found("principal")),
    }
}

/// Marks the principal disabled at `at`, or enabled (`None`).
pub(crate) fn set_disabled(db: &dyn Database, id: &str, at: Option<&str>) -> ApiResult<()> {
    let rows = db.execute(
        "UPDATE principals SET disabled_at = ? WHERE id = ? RETURNING id",
        &[at.map(str::to_owned).into(), id.into()],
    )?;
    if rows.is_empty() {
        return Err(ApiError::not_found("principal"));
    }
    Ok(())
}

/// Replaces the principal's token hash: the old token stops working in the same statement.
pub(crate) fn replace_token(
    db: &dyn Database,
    id: &str,
    token_hash: &str,
    issued_at: &str,
) -> ApiResult<()> {
    let rows = db.execute(
        "UPDATE principals SET token_hash = ?, token_issued_at = ? WHERE id = ? RETURNING id",
        &[token_hash.into(), issued_at.into(), id.into()],
    )?;
    if rows.is_empty() {
        return Err(ApiError::not_found("principal"));
    }
    Ok(())
}

pub(crate) fn list(
    db: &dyn Database,
    role: Option<Role>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Principal>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM principals
             WHERE (CAST(?1 AS TEXT) IS NULL OR role = ?1) AND (CAST(?2 AS TEXT) IS NULL OR id > ?2)
             ORDER BY id LIMIT ?3"
        ),
        &[
            role.map(|r| enum_to_str(&r)).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}
