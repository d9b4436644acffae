//! The log's rows: leaves, hash tiles, the tree's state, checkpoints and
//! keys (tables in [`super::schema`]). Works on PostgreSQL and SQLite; only
//! PostgreSQL takes the state row's lock (SQLite runs one writer at a time).

use super::schema::{LogCheckpoints, LogKeys, LogLeaves, LogState, LogTiles};
use sea_orm::{
    ConnectionTrait, DbErr, QueryResult,
    sea_query::{Cond, Expr, ExprTrait, LockType, OnConflict, Order, Query},
};
use std::collections::{HashMap, HashSet};
use tlog_tiles::Hash;

/// The tree as appended so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    pub size: u64,
    pub root: Hash,
}

const STATE_ROW: i32 = 1;

/// A size or index as the databases bind it (a signed 64-bit integer).
pub(super) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored size or index, never negative.
pub(super) fn uint(row: &QueryResult, column: &str) -> Result<u64, DbErr> {
    let n: i64 = row.try_get("", column)?;
    u64::try_from(n).map_err(|_| DbErr::Type(format!("{column} is negative")))
}

fn hash(bytes: &[u8]) -> Result<Hash, DbErr> {
    Ok(Hash(bytes.try_into().map_err(|_| DbErr::Type("a stored hash is not 32 bytes".into()))?))
}

/// The tree's state; `lock` holds its row (PostgreSQL) until the
/// transaction ends, so that appends from two processes take turns. The row
/// is created, empty, by the first locking read: so even the first append
/// and the first key take turns.
pub async fn state(c: &impl ConnectionTrait, lock: bool) -> Result<State, DbErr> {
    let query = |lock: bool| {
        let mut query = Query::select();
        query.columns([LogState::Size, LogState::Root]).from(LogState::Table).and_where(Expr::col(LogState::Id).eq(STATE_ROW));
        if lock {
            query.lock(LockType::Update);
        }
        query
    };
    let mut row = c.query_one(&query(lock)).await?;
    if row.is_none() && lock {
        let insert = Query::insert()
            .into_table(LogState::Table)
            .columns([LogState::Id, LogState::Size, LogState::Root])
            .values_panic([STATE_ROW.into(), 0i64.into(), tlog_tiles::EMPTY_HASH.0.to_vec().into()])
            .on_conflict(OnConflict::column(LogState::Id).do_nothing().to_owned())
            .to_owned();
        c.execute(&insert).await?;
        row = c.query_one(&query(true)).await?;
    }
    match row {
        None => Ok(State { size: 0, root: tlog_tiles::EMPTY_HASH }),
        Some(row) => Ok(State { size: uint(&row, "size")?, root: hash(&row.try_get::<Vec<u8>>("", "root")?)? }),
    }
}

pub async fn set_state(c: &impl ConnectionTrait, state: State) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(LogState::Table)
        .columns([LogState::Id, LogState::Size, LogState::Root])
        .values_panic([STATE_ROW.into(), int(state.size).into(), state.root.0.to_vec().into()])
        .on_conflict(OnConflict::column(LogState::Id).update_columns([LogState::Size, LogState::Root]).to_owned())
        .to_owned();
    c.execute(&insert).await.map(drop)
}

/// The data of the hash tiles asked for that exist, by (level, index).
pub async fn tiles(c: &impl ConnectionTrait, keys: &[(u8, u64)]) -> Result<HashMap<(u8, u64), Vec<u8>>, DbErr> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(paved_store::CHUNK / 2) {
        let mut any = Cond::any();
        for (level, index) in chunk {
            any = any.add(Expr::col(LogTiles::Level).eq(i16::from(*level)).and(Expr::col(LogTiles::Idx).eq(int(*index))));
        }
        let query =
            Query::select().columns([LogTiles::Level, LogTiles::Idx, LogTiles::Data]).from(LogTiles::Table).cond_where(any).to_owned();
        for row in c.query_all(&query).await? {
            let level: i16 = row.try_get("", "level")?;
            let level = u8::try_from(level).map_err(|_| DbErr::Type("a tile level out of range".into()))?;
            found.insert((level, uint(&row, "idx")?), row.try_get("", "data")?);
        }
    }
    Ok(found)
}

/// Writes tiles at their new width.
pub async fn put_tiles(c: &impl ConnectionTrait, tiles: &[(u8, u64, Vec<u8>)]) -> Result<(), DbErr> {
    for chunk in tiles.chunks(paved_store::CHUNK / 3) {
        let mut insert = Query::insert()
            .into_table(LogTiles::Table)
            .columns([LogTiles::Level, LogTiles::Idx, LogTiles::Data])
            .on_conflict(OnConflict::columns([LogTiles::Level, LogTiles::Idx]).update_column(LogTiles::Data).to_owned())
            .to_owned();
        for (level, index, data) in chunk {
            insert.values_panic([i16::from(*level).into(), int(*index).into(), data.clone().into()]);
        }
        c.execute(&insert).await?;
    }
    Ok(())
}

/// Which of `ids` are leaves already.
pub async fn known(c: &impl ConnectionTrait, ids: &[&str]) -> Result<HashSet<String>, DbErr> {
    let mut known = HashSet::new();
    for chunk in ids.chunks(paved_store::CHUNK) {
        let query = Query::select()
            .column(LogLeaves::EventId)
            .from(LogLeaves::Table)
            .and_where(Expr::col(LogLeaves::EventId).is_in(chunk.iter().copied()))
            .to_owned();
        for row in c.query_all(&query).await? {
            known.insert(row.try_get("", "event_id")?);
        }
    }
    Ok(known)
}

/// Stores leaves `first`, `first + 1`, …, each with its event id.
pub async fn insert_leaves(c: &impl ConnectionTrait, first: u64, ids: &[&str], leaves: &[Vec<u8>]) -> Result<(), DbErr> {
    let rows = paved_store::CHUNK / 3;
    for (n, (ids, leaves)) in ids.chunks(rows).zip(leaves.chunks(rows)).enumerate() {
        let mut insert =
            Query::insert().into_table(LogLeaves::Table).columns([LogLeaves::LeafIndex, LogLeaves::EventId, LogLeaves::Leaf]).to_owned();
        for (index, (id, leaf)) in (first + (n * rows) as u64..).zip(ids.iter().zip(leaves)) {
            insert.values_panic([int(index).into(), (*id).into(), leaf.clone().into()]);
        }
        c.execute(&insert).await?;
    }
    Ok(())
}

/// Leaves `start` to `start + count` (fewer at the end of the log).
pub async fn leaves(c: &impl ConnectionTrait, start: u64, count: u64) -> Result<Vec<Vec<u8>>, DbErr> {
    let query = Query::select()
        .column(LogLeaves::Leaf)
        .from(LogLeaves::Table)
        .and_where(Expr::col(LogLeaves::LeafIndex).gte(int(start)))
        .and_where(Expr::col(LogLeaves::LeafIndex).lt(int(start.saturating_add(count))))
        .order_by(LogLeaves::LeafIndex, Order::Asc)
        .to_owned();
    c.query_all(&query).await?.iter().map(|row| row.try_get("", "leaf")).collect()
}

/// The leaves at `indexes` that exist, by index.
pub async fn leaves_at(c: &impl ConnectionTrait, indexes: &[u64]) -> Result<HashMap<u64, Vec<u8>>, DbErr> {
    let mut found = HashMap::new();
    for chunk in indexes.chunks(paved_store::CHUNK) {
        let query = Query::select()
            .columns([LogLeaves::LeafIndex, LogLeaves::Leaf])
            .from(LogLeaves::Table)
            .and_where(Expr::col(LogLeaves::LeafIndex).is_in(chunk.iter().map(|i| int(*i))))
            .to_owned();
        for row in c.query_all(&query).await? {
            found.insert(uint(&row, "leaf_index")?, row.try_get("", "leaf")?);
        }
    }
    Ok(found)
}

/// The leaf index of an event, if it is a leaf.
pub async fn leaf_of(c: &impl ConnectionTrait, event_id: &str) -> Result<Option<u64>, DbErr> {
    let query = Query::select()
        .column(LogLeaves::LeafIndex)
        .from(LogLeaves::Table)
        .and_where(Expr::col(LogLeaves::EventId).eq(event_id))
        .to_owned();
    c.query_one(&query).await?.map(|row| uint(&row, "leaf_index")).transpose()
}

/// The latest checkpoint: (size, note, when it was signed in Unix ms).
pub async fn latest_checkpoint(c: &impl ConnectionTrait) -> Result<Option<(u64, String, i64)>, DbErr> {
    let query = Query::select()
        .columns([LogCheckpoints::Size, LogCheckpoints::Note, LogCheckpoints::CreateTimeMs])
        .from(LogCheckpoints::Table)
        .order_by(LogCheckpoints::Size, Order::Desc)
        .limit(1)
        .to_owned();
    c.query_one(&query)
        .await?
        .map(|row| Ok((uint(&row, "size")?, row.try_get("", "note")?, row.try_get("", "create_time_ms")?)))
        .transpose()
}

/// Checkpoints by size, from the `offset`-th: (size, note).
pub async fn checkpoints(c: &impl ConnectionTrait, offset: u64, limit: u64) -> Result<Vec<(u64, String)>, DbErr> {
    let query = Query::select()
        .columns([LogCheckpoints::Size, LogCheckpoints::Note])
        .from(LogCheckpoints::Table)
        .order_by(LogCheckpoints::Size, Order::Asc)
        .offset(offset)
        .limit(limit)
        .to_owned();
    c.query_all(&query).await?.iter().map(|row| Ok((uint(row, "size")?, row.try_get("", "note")?))).collect()
}

/// Keeps a signed checkpoint (a size signed twice keeps the first).
pub async fn put_checkpoint(c: &impl ConnectionTrait, size: u64, note: &str, now_ms: i64) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(LogCheckpoints::Table)
        .columns([LogCheckpoints::Size, LogCheckpoints::Note, LogCheckpoints::CreateTimeMs])
        .values_panic([int(size).into(), note.into(), now_ms.into()])
        .on_conflict(OnConflict::column(LogCheckpoints::Size).do_nothing().to_owned())
        .to_owned();
    c.execute(&insert).await.map(drop)
}

/// The log's keys not retired at `now_ms`, newest first: (verifier key,
/// sealed seed).
pub async fn keys(c: &impl ConnectionTrait, now_ms: i64) -> Result<Vec<(String, Vec<u8>)>, DbErr> {
    let query = Query::select()
        .columns([LogKeys::VerifierKey, LogKeys::Sealed])
        .from(LogKeys::Table)
        .cond_where(Cond::any().add(Expr::col(LogKeys::RetireTimeMs).is_null()).add(Expr::col(LogKeys::RetireTimeMs).gt(now_ms)))
        .order_by(LogKeys::CreateTimeMs, Order::Desc)
        .to_owned();
    c.query_all(&query).await?.iter().map(|row| Ok((row.try_get("", "verifier_key")?, row.try_get("", "sealed")?))).collect()
}

/// A key sealed anew (under a new root key).
pub async fn reseal_key(c: &impl ConnectionTrait, verifier_key: &str, sealed: Vec<u8>) -> Result<(), DbErr> {
    let update = Query::update()
        .table(LogKeys::Table)
        .value(LogKeys::Sealed, sealed)
        .and_where(Expr::col(LogKeys::VerifierKey).eq(verifier_key))
        .to_owned();
    c.execute(&update).await.map(drop)
}

/// Every key the log ever had, newest first: (verifier key, retire time).
pub async fn all_keys(c: &impl ConnectionTrait) -> Result<Vec<(String, Option<i64>)>, DbErr> {
    let query = Query::select()
        .columns([LogKeys::VerifierKey, LogKeys::RetireTimeMs])
        .from(LogKeys::Table)
        .order_by(LogKeys::CreateTimeMs, Order::Desc)
        .to_owned();
    c.query_all(&query).await?.iter().map(|row| Ok((row.try_get("", "verifier_key")?, row.try_get("", "retire_time_ms")?))).collect()
}

/// Retires every key but `keep` at `at_ms` (those retiring sooner keep
/// their time).
pub async fn retire_keys(c: &impl ConnectionTrait, keep: &str, at_ms: i64) -> Result<(), DbErr> {
    let update = Query::update()
        .table(LogKeys::Table)
        .value(LogKeys::RetireTimeMs, at_ms)
        .and_where(Expr::col(LogKeys::VerifierKey).ne(keep))
        .cond_where(Cond::any().add(Expr::col(LogKeys::RetireTimeMs).is_null()).add(Expr::col(LogKeys::RetireTimeMs).gt(at_ms)))
        .to_owned();
    c.execute(&update).await.map(drop)
}

pub async fn put_key(c: &impl ConnectionTrait, verifier_key: &str, sealed: Vec<u8>, now_ms: i64) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(LogKeys::Table)
        .columns([LogKeys::VerifierKey, LogKeys::Sealed, LogKeys::CreateTimeMs])
        .values_panic([verifier_key.into(), sealed.into(), now_ms.into()])
        .to_owned();
    c.execute(&insert).await.map(drop)
}
