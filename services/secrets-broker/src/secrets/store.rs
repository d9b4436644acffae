//! The `secret_versions` table: each version's value sealed under a data
//! key of its own, the data key sealed under the root key named by
//! `root_key_id`, and when the version was replaced.

use super::version::Version;
use crate::schema::SecretVersions;
use crate::seal::{Keyring, SealError, SealedRow};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    sea_query::{Expr, ExprTrait, Order, Query},
};

/// What a seal of `kind` (`secret`, `data-key`) for `path` at `version` is
/// bound to: a ciphertext moved to another row does not open.
pub fn purpose(kind: &str, path: &str, version: u32) -> String {
    format!("{kind}:{path}#{version}")
}

/// A version to record.
pub struct New<'a> {
    pub path: &'a str,
    pub version: u32,
    pub sealed_value: Vec<u8>,
    pub sealed_key: Vec<u8>,
    pub root_key_id: &'a str,
    /// 0: a given value.
    pub generate_bytes: u32,
    pub rotate_every_ms: Option<i64>,
    pub create_time_ms: i64,
}

/// A stored version, still sealed.
pub struct Sealed {
    pub version: Version,
    pub sealed_value: Vec<u8>,
    pub sealed_key: Vec<u8>,
    pub root_key_id: String,
}

/// A generated secret's latest version, as the rotation reads it.
pub struct Generated {
    pub path: String,
    pub version: i64,
    pub bytes: i64,
    pub rotate_every_ms: Option<i64>,
    pub create_time_ms: i64,
}

/// The newest version of `path` stored, if any.
pub async fn last_version(conn: &impl ConnectionTrait, path: &str) -> Result<Option<i64>, DbErr> {
    let latest = Query::select()
        .expr(Expr::col(SecretVersions::Version).max())
        .from(SecretVersions::Table)
        .and_where(Expr::col(SecretVersions::Path).eq(path))
        .to_owned();
    match conn.query_one(&latest).await? {
        Some(row) => row.try_get_by_index(0),
        None => Ok(None),
    }
}

/// Holds writes to `path` for the rest of `txn` (PostgreSQL; SQLite has a
/// single writer): a rotation racing a delete would otherwise read the
/// last version before the delete and insert the next one after it, which
/// the delete never saw, leaving a deleted secret one version.
pub async fn lock_path(txn: &DatabaseTransaction, path: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let lock = sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        [format!("paved.secret:{path}").into()],
    );
    txn.execute_raw(lock).await.map(drop)
}

/// Marks the latest version of `path` replaced at `now`, and records `new`.
pub async fn replace(txn: &DatabaseTransaction, new: &New<'_>) -> Result<(), DbErr> {
    let supersede = Query::update()
        .table(SecretVersions::Table)
        .value(SecretVersions::SupersededTimeMs, new.create_time_ms)
        .and_where(Expr::col(SecretVersions::Path).eq(new.path))
        .and_where(Expr::col(SecretVersions::SupersededTimeMs).is_null())
        .to_owned();
    txn.execute(&supersede).await?;
    let insert = Query::insert()
        .into_table(SecretVersions::Table)
        .columns([
            SecretVersions::Path,
            SecretVersions::Version,
            SecretVersions::SealedValue,
            SecretVersions::SealedDataKey,
            SecretVersions::RootKeyId,
            SecretVersions::GenerateBytes,
            SecretVersions::RotateEveryMs,
            SecretVersions::CreateTimeMs,
        ])
        .values_panic([
            new.path.into(),
            i64::from(new.version).into(),
            new.sealed_value.clone().into(),
            new.sealed_key.clone().into(),
            new.root_key_id.into(),
            i64::from(new.generate_bytes).into(),
            new.rotate_every_ms.into(),
            new.create_time_ms.into(),
        ])
        .to_owned();
    txn.execute(&insert).await.map(drop)
}

/// `path` at `version` (0: the latest), if stored.
pub async fn find(conn: &impl ConnectionTrait, path: &str, version: u32) -> Result<Option<Sealed>, DbErr> {
    let mut query = Query::select()
        .columns([
            SecretVersions::Version,
            SecretVersions::SealedValue,
            SecretVersions::SealedDataKey,
            SecretVersions::RootKeyId,
            SecretVersions::GenerateBytes,
            SecretVersions::RotateEveryMs,
            SecretVersions::CreateTimeMs,
            SecretVersions::SupersededTimeMs,
        ])
        .from(SecretVersions::Table)
        .and_where(Expr::col(SecretVersions::Path).eq(path))
        .to_owned();
    if version == 0 {
        query.and_where(Expr::col(SecretVersions::SupersededTimeMs).is_null());
    } else {
        query.and_where(Expr::col(SecretVersions::Version).eq(i64::from(version)));
    }
    let Some(row) = conn.query_one(&query).await? else {
        return Ok(None);
    };
    let version: i64 = row.try_get("", "version")?;
    let generated: i64 = row.try_get("", "generate_bytes")?;
    let superseded: Option<i64> = row.try_get("", "superseded_time_ms")?;
    Ok(Some(Sealed {
        version: Version::new(
            path,
            u32::try_from(version).unwrap_or(u32::MAX),
            row.try_get("", "create_time_ms")?,
            generated > 0,
            row.try_get("", "rotate_every_ms")?,
            superseded,
        ),
        sealed_value: row.try_get("", "sealed_value")?,
        sealed_key: row.try_get("", "sealed_data_key")?,
        root_key_id: row.try_get("", "root_key_id")?,
    }))
}

/// What [`list`] and [`generated`] read of a version.
const VERSION_COLUMNS: [SecretVersions; 5] = [
    SecretVersions::Path,
    SecretVersions::Version,
    SecretVersions::GenerateBytes,
    SecretVersions::RotateEveryMs,
    SecretVersions::CreateTimeMs,
];

/// Latest versions of the secrets under `prefix`, by path.
pub async fn list(conn: &impl ConnectionTrait, prefix: &str, size: u64, offset: u64) -> Result<Vec<Version>, DbErr> {
    let query = Query::select()
        .columns(VERSION_COLUMNS)
        .from(SecretVersions::Table)
        .and_where(Expr::col(SecretVersions::SupersededTimeMs).is_null())
        .and_where(Expr::col(SecretVersions::Path).like(like_prefix(prefix)))
        .order_by(SecretVersions::Path, Order::Asc)
        .limit(size)
        .offset(offset)
        .to_owned();
    let mut out = Vec::new();
    for row in conn.query_all(&query).await? {
        let version: i64 = row.try_get("", "version")?;
        let generated: i64 = row.try_get("", "generate_bytes")?;
        out.push(Version::new(
            &row.try_get::<String>("", "path")?,
            u32::try_from(version).unwrap_or(u32::MAX),
            row.try_get("", "create_time_ms")?,
            generated > 0,
            row.try_get("", "rotate_every_ms")?,
            None,
        ));
    }
    Ok(out)
}

/// The latest version of every generated secret.
pub async fn generated(conn: &impl ConnectionTrait) -> Result<Vec<Generated>, DbErr> {
    let query = Query::select()
        .columns(VERSION_COLUMNS)
        .from(SecretVersions::Table)
        .and_where(Expr::col(SecretVersions::SupersededTimeMs).is_null())
        .and_where(Expr::col(SecretVersions::GenerateBytes).gt(0))
        .to_owned();
    conn.query_all(&query)
        .await?
        .iter()
        .map(|row| {
            Ok(Generated {
                path: row.try_get("", "path")?,
                version: row.try_get("", "version")?,
                bytes: row.try_get("", "generate_bytes")?,
                rotate_every_ms: row.try_get("", "rotate_every_ms")?,
                create_time_ms: row.try_get("", "create_time_ms")?,
            })
        })
        .collect()
}

/// The versions replaced before `before`: path and version.
pub async fn replaced_before(conn: &impl ConnectionTrait, before: i64) -> Result<Vec<(String, i64)>, DbErr> {
    let query = Query::select()
        .columns([SecretVersions::Path, SecretVersions::Version])
        .from(SecretVersions::Table)
        .and_where(Expr::col(SecretVersions::SupersededTimeMs).lt(before))
        .to_owned();
    conn.query_all(&query).await?.iter().map(|row| Ok((row.try_get("", "path")?, row.try_get("", "version")?))).collect()
}

/// Deletes `path` at `version`: its value and data key with the row.
pub async fn delete(txn: &DatabaseTransaction, path: &str, version: i64) -> Result<(), DbErr> {
    let delete = Query::delete()
        .from_table(SecretVersions::Table)
        .and_where(Expr::col(SecretVersions::Path).eq(path))
        .and_where(Expr::col(SecretVersions::Version).eq(version))
        .to_owned();
    txn.execute(&delete).await.map(drop)
}

/// Deletes every version of `path`; how many there were.
pub async fn delete_all(txn: &DatabaseTransaction, path: &str) -> Result<u64, DbErr> {
    let delete = Query::delete().from_table(SecretVersions::Table).and_where(Expr::col(SecretVersions::Path).eq(path)).to_owned();
    Ok(txn.execute(&delete).await?.rows_affected())
}

/// Re-seals data keys sealed under an older root key: how many, and the
/// names (`<path>#<version>`) of those that do not open.
pub async fn rewrap(db: &DatabaseConnection, keys: &Keyring) -> Result<(usize, Vec<(String, SealError)>), DbErr> {
    let at = (SecretVersions::Table, SecretVersions::SealedDataKey, SecretVersions::RootKeyId);
    crate::seal::rewrap(db, keys, at, &[SecretVersions::Path, SecretVersions::Version], |row| {
        let (path, version): (String, i64) = (row.try_get("", "path")?, row.try_get("", "version")?);
        let v = u32::try_from(version).unwrap_or(u32::MAX);
        let key = vec![(SecretVersions::Path, path.clone().into()), (SecretVersions::Version, version.into())];
        Ok(SealedRow { purpose: purpose("data-key", &path, v), key, name: format!("{path}#{v}") })
    })
    .await
}

/// `LIKE` pattern for paths starting with `prefix`, its `%` and `_` taken
/// literally (with `ESCAPE`: SQLite has no default escape character).
pub(crate) fn like_prefix(prefix: &str) -> sea_orm::sea_query::LikeExpr {
    let escaped = prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    sea_orm::sea_query::LikeExpr::new(format!("{escaped}%")).escape('\\')
}
