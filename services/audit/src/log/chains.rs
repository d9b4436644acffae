//! The query side's rows: each leaf's row in `audit_entries` (with the
//! chains it is on, whose heads its indexes give), and people's salts.

use super::entry::Leaf;
use super::schema::AuditSalts;
use super::store::{int, uint};
use crate::schema::AuditEntries;
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, ExprTrait, InsertStatement, OnConflict, Order, Query, UnionType},
};
use std::collections::HashMap;

/// The last leaf of each of `chains` (keyed as [`super::entry::chain_key`]
/// writes them) that has one: the largest leaf index on the query side's
/// index of that workload or actor, one index probe per chain.
pub async fn last_on(c: &impl ConnectionTrait, chains: &[String]) -> Result<HashMap<String, u64>, DbErr> {
    let mut found = HashMap::new();
    for chunk in chains.chunks(paved_store::CHUNK / 2) {
        let probe = |key: &String| {
            let (column, name) = match key.split_once(':') {
                Some(("w", name)) => (AuditEntries::Workload, name),
                _ => (AuditEntries::Actor, key.split_once(':').map_or(key.as_str(), |(_, n)| n)),
            };
            Query::select()
                .expr_as(Expr::val(key.clone()), Alias::new("chain"))
                .expr_as(Expr::col(AuditEntries::LeafIndex).max(), Alias::new("leaf_index"))
                .from(AuditEntries::Table)
                .and_where(Expr::col(column).eq(name))
                .to_owned()
        };
        let Some((first, rest)) = chunk.split_first() else { continue };
        let mut query = probe(first);
        for key in rest {
            query.union(UnionType::All, probe(key));
        }
        for row in c.query_all(&query).await? {
            // A chain with no row yet: max() is NULL.
            if row.try_get::<Option<i64>>("", "leaf_index")?.is_some() {
                found.insert(row.try_get("", "chain")?, uint(&row, "leaf_index")?);
            }
        }
    }
    Ok(found)
}

/// The salts of `subjects`, a new one made (and stored) for each that has
/// none: a name erased and seen again gets a new salt, so its old entries
/// stay unopenable.
pub async fn salts(c: &impl ConnectionTrait, subjects: &[&str]) -> Result<HashMap<String, Vec<u8>>, DbErr> {
    let mut found = HashMap::new();
    if subjects.is_empty() {
        return Ok(found);
    }
    for chunk in subjects.chunks(paved_store::CHUNK) {
        let query = Query::select()
            .columns([AuditSalts::Subject, AuditSalts::Salt])
            .from(AuditSalts::Table)
            .and_where(Expr::col(AuditSalts::Subject).is_in(chunk.iter().copied()))
            .to_owned();
        for row in c.query_all(&query).await? {
            found.insert(row.try_get("", "subject")?, row.try_get("", "salt")?);
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut insert =
        Query::insert().into_table(AuditSalts::Table).columns([AuditSalts::Subject, AuditSalts::Salt, AuditSalts::CreateTimeMs]).to_owned();
    let mut any = false;
    for subject in subjects {
        if !found.contains_key(*subject) {
            let salt = rand::random::<[u8; 32]>().to_vec();
            insert.values_panic([(*subject).into(), salt.clone().into(), now.into()]);
            found.insert((*subject).to_string(), salt);
            any = true;
        }
    }
    // Appends take turns on the tree's state row, so no other appender
    // makes a salt for the same name meanwhile.
    if any {
        c.execute(&insert).await?;
    }
    Ok(found)
}

/// A person's salt, if they have one (never seen, or erased: none).
pub async fn salt(c: &impl ConnectionTrait, subject: &str) -> Result<Option<Vec<u8>>, DbErr> {
    let query =
        Query::select().column(AuditSalts::Salt).from(AuditSalts::Table).and_where(Expr::col(AuditSalts::Subject).eq(subject)).to_owned();
    c.query_one(&query).await?.map(|row| row.try_get("", "salt")).transpose()
}

/// Deletes a person's salt; whether there was one.
pub async fn erase(c: &impl ConnectionTrait, subject: &str) -> Result<bool, DbErr> {
    let delete = Query::delete().from_table(AuditSalts::Table).and_where(Expr::col(AuditSalts::Subject).eq(subject)).to_owned();
    Ok(c.execute(&delete).await?.rows_affected() > 0)
}

/// One INSERT of the leaves' query rows, from leaf `first` on.
pub fn rows(stream: &str, first: u64, leaves: &[Leaf], now_ms: i64) -> InsertStatement {
    let mut insert = Query::insert()
        .into_table(AuditEntries::Table)
        .columns([
            AuditEntries::EventId,
            AuditEntries::Stream,
            AuditEntries::Source,
            AuditEntries::EventType,
            AuditEntries::Subject,
            AuditEntries::EventTimeMs,
            AuditEntries::ReceiveTimeMs,
            AuditEntries::Envelope,
            AuditEntries::LeafIndex,
            AuditEntries::Workload,
            AuditEntries::Actor,
        ])
        .on_conflict(OnConflict::column(AuditEntries::EventId).do_nothing().to_owned())
        .to_owned();
    for (index, leaf) in (first..).zip(leaves) {
        let event = leaf.entry.event.clone().unwrap_or_default();
        insert.values_panic([
            event.id.clone().into(),
            stream.into(),
            event.source.clone().into(),
            event.r#type.clone().into(),
            event.subject.clone().into(),
            event.time.as_ref().map(paved_proto::millis_from_timestamp).into(),
            now_ms.into(),
            prost::Message::encode_to_vec(&event).into(),
            int(index).into(),
            leaf.workload.clone().into(),
            leaf.actor.clone().into(),
        ]);
    }
    insert
}

/// Which chain a query follows.
pub enum On<'a> {
    Workload(&'a str),
    Actor(&'a str),
}

/// Leaf indexes on a chain, from `from` on, below `below`, appended within
/// `[since, until)` (Unix ms), in log order, at most `limit`.
pub async fn on_chain(
    c: &impl ConnectionTrait,
    on: On<'_>,
    from: u64,
    below: u64,
    (since, until): (Option<i64>, Option<i64>),
    limit: u64,
) -> Result<Vec<u64>, DbErr> {
    let (column, value) = match on {
        On::Workload(w) => (AuditEntries::Workload, w),
        On::Actor(a) => (AuditEntries::Actor, a),
    };
    let mut query = Query::select();
    query
        .column(AuditEntries::LeafIndex)
        .from(AuditEntries::Table)
        .and_where(Expr::col(column).eq(value))
        .and_where(Expr::col(AuditEntries::LeafIndex).gte(int(from)))
        .and_where(Expr::col(AuditEntries::LeafIndex).lt(int(below)))
        .order_by(AuditEntries::LeafIndex, Order::Asc)
        .limit(limit);
    if let Some(since) = since {
        query.and_where(Expr::col(AuditEntries::ReceiveTimeMs).gte(since));
    }
    if let Some(until) = until {
        query.and_where(Expr::col(AuditEntries::ReceiveTimeMs).lt(until));
    }
    c.query_all(&query).await?.iter().map(|row| uint(row, "leaf_index")).collect()
}

/// How many query rows are on an actor's chain.
pub async fn count_actor(c: &impl ConnectionTrait, actor: &str) -> Result<u64, DbErr> {
    let query = Query::select()
        .expr(Expr::col(AuditEntries::LeafIndex).count())
        .from(AuditEntries::Table)
        .and_where(Expr::col(AuditEntries::Actor).eq(actor))
        .to_owned();
    let n: i64 = c.query_one(&query).await?.map(|row| row.try_get_by_index(0)).transpose()?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}
