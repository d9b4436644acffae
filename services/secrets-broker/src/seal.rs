//! Encryption at rest under the root key (`paved-seal`), and re-sealing
//! the broker's rows under a new root key during a rotation.

pub use paved_seal::{Keyring, RootKey, SealError, write_private};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, QueryResult,
    sea_query::{Expr, ExprTrait, Iden, Query},
};

/// One row of a table holding a value sealed under a root key; `C` names
/// the table and its columns (one of the enums of `schema`).
pub struct SealedRow<C> {
    /// What it is, for messages (a key id, a path and version).
    pub name: String,
    /// What the seal is bound to.
    pub purpose: String,
    /// The columns and values that pick the row out.
    pub key: Vec<(C, sea_orm::Value)>,
}

/// Re-seals under the current root key every value of `table`'s `column`
/// sealed under another (its key's id in `root_key_id`); `row` reads the
/// `key` columns of a row. Returns how many were re-sealed and those that
/// do not open, which are left as they are: one damaged record does not
/// stop the rest. A row re-sealed meanwhile by someone else is not counted.
pub async fn rewrap<C: Iden + Copy>(
    db: &DatabaseConnection,
    keys: &Keyring,
    (table, column, root_key_id): (C, C, C),
    key: &[C],
    row: impl Fn(&QueryResult) -> Result<SealedRow<C>, DbErr>,
) -> Result<(usize, Vec<(String, SealError)>), DbErr> {
    let root = keys.current();
    let query = Query::select()
        .columns(key.iter().chain(&[column, root_key_id]).copied())
        .from(table)
        .and_where(Expr::col(root_key_id).ne(root.id.as_str()))
        .to_owned();
    let (mut count, mut failed) = (0, Vec::new());
    for found in db.query_all(&query).await? {
        let sealed_row = row(&found)?;
        // The columns are parameters here: read by the names they render as.
        let (sealed, key_id): (Vec<u8>, String) = (found.try_get("", column.unquoted())?, found.try_get("", root_key_id.unquoted())?);
        let plain = match keys.open(&sealed, &sealed_row.purpose, &key_id) {
            Ok(plain) => plain,
            Err(e) => {
                failed.push((sealed_row.name, e));
                continue;
            }
        };
        let mut update = Query::update()
            .table(table)
            .value(column, root.seal(&plain, &sealed_row.purpose))
            .value(root_key_id, root.id.as_str())
            .and_where(Expr::col(root_key_id).eq(key_id.as_str()))
            .to_owned();
        for (name, value) in sealed_row.key {
            update.and_where(Expr::col(name).eq(value));
        }
        count += usize::try_from(db.execute(&update).await?.rows_affected()).unwrap_or(0);
    }
    Ok((count, failed))
}

/// [`rewrap`] for a table whose rows are named by one text column, and
/// `purpose` of the name: how many were re-sealed, or the first that does
/// not open (the rest are re-sealed all the same).
pub async fn rewrap_named<C: Iden + Copy>(
    db: &DatabaseConnection,
    keys: &Keyring,
    at: (C, C, C),
    name_column: C,
    purpose: impl Fn(&str) -> String,
) -> Result<Result<usize, (String, SealError)>, DbErr> {
    let (count, failed) = rewrap(db, keys, at, &[name_column], |row| {
        let name: String = row.try_get("", name_column.unquoted())?;
        Ok(SealedRow { purpose: purpose(&name), key: vec![(name_column, name.clone().into())], name })
    })
    .await?;
    Ok(failed.into_iter().next().map_or(Ok(count), Err))
}
