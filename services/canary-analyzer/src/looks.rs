//! The decision records: one row per judged look.

use crate::judgement::Fetched;
// `schema::Looks` stays qualified: `Looks` is which of a rollout's looks to read.
use crate::schema;
use paved_proto::canary_analyzer::v1::{Decision, JudgeLookRequest};
use prost::Message;
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Expr, ExprTrait, Order, Query},
};
use std::collections::BTreeMap;

/// A stored look: what was sent, what was fetched, what was decided.
pub struct Stored {
    pub request: JudgeLookRequest,
    pub fetched: Fetched,
    pub decision: Decision,
}

pub async fn insert<C: ConnectionTrait>(db: &C, look: &Stored) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(schema::Looks::Table)
        .columns([
            schema::Looks::RolloutId,
            schema::Looks::Look,
            schema::Looks::Request,
            schema::Looks::Fetched,
            schema::Looks::Decision,
            schema::Looks::Verdict,
            schema::Looks::CreateTimeMs,
        ])
        .values_panic([
            look.request.rollout_id.clone().into(),
            i64::try_from(look.request.look).unwrap_or(i64::MAX).into(),
            look.request.encode_to_vec().into(),
            encode_fetched(&look.fetched).into(),
            look.decision.encode_to_vec().into(),
            look.decision.verdict().short_name().into(),
            chrono::Utc::now().timestamp_millis().into(),
        ])
        .to_owned();
    db.execute(&insert).await?;
    Ok(())
}

/// Which of a rollout's looks to read.
#[derive(Debug, Clone, Copy)]
pub enum Looks {
    All,
    /// Up to this look, included.
    Upto(u64),
    /// After this look: those judged since (by another replica, or before
    /// this process started).
    After(u64),
    /// This one look.
    Only(u64),
}

/// The rollout's looks in order.
pub async fn list<C: ConnectionTrait>(db: &C, rollout_id: &str, which: Looks) -> Result<Vec<Stored>, DbErr> {
    let mut query = Query::select()
        .columns([schema::Looks::Request, schema::Looks::Fetched, schema::Looks::Decision])
        .from(schema::Looks::Table)
        .and_where(Expr::col(schema::Looks::RolloutId).eq(rollout_id))
        .order_by(schema::Looks::Look, Order::Asc)
        .to_owned();
    let look = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match which {
        Looks::All => {}
        Looks::Upto(n) => _ = query.and_where(Expr::col(schema::Looks::Look).lte(look(n))),
        Looks::After(n) => _ = query.and_where(Expr::col(schema::Looks::Look).gt(look(n))),
        Looks::Only(n) => _ = query.and_where(Expr::col(schema::Looks::Look).eq(look(n))),
    }
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| DbErr::Custom(format!("look record of rollout {rollout_id}: corrupt {what}: {e}"));
    db.query_all(&query)
        .await?
        .iter()
        .map(|row| {
            let request: Vec<u8> = row.try_get("", "request")?;
            let fetched: String = row.try_get("", "fetched")?;
            let decision: Vec<u8> = row.try_get("", "decision")?;
            Ok(Stored {
                request: JudgeLookRequest::decode(request.as_slice()).map_err(|e| corrupt("request", &e))?,
                fetched: decode_fetched(&fetched).map_err(|e| corrupt("values", &e))?,
                decision: Decision::decode(decision.as_slice()).map_err(|e| corrupt("decision", &e))?,
            })
        })
        .collect()
}

/// JSON has no NaN: non-finite values are written as null and read back as NaN.
type Wire = BTreeMap<String, Result<(Vec<Option<f64>>, Vec<Option<f64>>), String>>;

fn encode_fetched(fetched: &Fetched) -> String {
    let finite = |v: &Vec<f64>| v.iter().map(|x| x.is_finite().then_some(*x)).collect::<Vec<_>>();
    let wire: Wire =
        fetched.iter().map(|(k, v)| (k.clone(), v.as_ref().map(|(c, b)| (finite(c), finite(b))).map_err(Clone::clone))).collect();
    serde_json::to_string(&wire).unwrap_or_else(|_| "{}".into())
}

fn decode_fetched(text: &str) -> Result<Fetched, serde_json::Error> {
    let wire: Wire = serde_json::from_str(text)?;
    let nan = |v: Vec<Option<f64>>| v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect::<Vec<_>>();
    Ok(wire.into_iter().map(|(k, v)| (k, v.map(|(c, b)| (nan(c), nan(b))))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetched_values_survive_storage_nan_included() {
        let fetched: Fetched =
            BTreeMap::from([("q".to_string(), Ok((vec![1.5, f64::NAN], vec![2.0]))), ("down".to_string(), Err("unreachable".to_string()))]);
        let back = decode_fetched(&encode_fetched(&fetched)).expect("decodes");
        let Ok((c, b)) = &back["q"] else { panic!("{back:?}") };
        assert_eq!((c[0], c[1].is_nan(), b.as_slice()), (1.5, true, [2.0].as_slice()));
        assert_eq!(back["down"], Err("unreachable".to_string()));
    }
}
