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

/// JSON has no NaN nor infinity: they are written as Prometheus's API
/// writes them (`"NaN"`, `"+Inf"`, `"-Inf"`), so that a replay judges the
/// values the look was judged on. A null (rows written before) reads back
/// as NaN.
type Wire = BTreeMap<String, Result<(Vec<Option<Value>>, Vec<Option<Value>>), String>>;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Value {
    Finite(f64),
    Named(String),
}

/// The values of a look as the analyzer stores them. Public for the fuzz
/// targets (a replay must judge what was judged).
pub fn encode_fetched(fetched: &Fetched) -> String {
    let named = |x: f64| match x {
        x if x.is_finite() => Value::Finite(x),
        x if x == f64::INFINITY => Value::Named("+Inf".into()),
        x if x == f64::NEG_INFINITY => Value::Named("-Inf".into()),
        _ => Value::Named("NaN".into()),
    };
    let wire_of = |v: &Vec<f64>| v.iter().map(|x| Some(named(*x))).collect::<Vec<_>>();
    let wire: Wire =
        fetched.iter().map(|(k, v)| (k.clone(), v.as_ref().map(|(c, b)| (wire_of(c), wire_of(b))).map_err(Clone::clone))).collect();
    serde_json::to_string(&wire).unwrap_or_else(|_| "{}".into())
}

/// What [`encode_fetched`] wrote.
pub fn decode_fetched(text: &str) -> Result<Fetched, serde_json::Error> {
    let wire: Wire = serde_json::from_str(text)?;
    let value = |x: Option<Value>| match x {
        Some(Value::Finite(x)) => x,
        Some(Value::Named(name)) if name == "+Inf" => f64::INFINITY,
        Some(Value::Named(name)) if name == "-Inf" => f64::NEG_INFINITY,
        _ => f64::NAN,
    };
    let values = |v: Vec<Option<Value>>| v.into_iter().map(value).collect::<Vec<_>>();
    Ok(wire.into_iter().map(|(k, v)| (k, v.map(|(c, b)| (values(c), values(b))))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetched_values_survive_storage_nan_and_infinities_included() {
        let values = vec![1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        let fetched: Fetched =
            BTreeMap::from([("q".to_string(), Ok((values, vec![2.0]))), ("down".to_string(), Err("unreachable".to_string()))]);
        let back = decode_fetched(&encode_fetched(&fetched)).expect("decodes");
        let Ok((c, b)) = &back["q"] else { panic!("{back:?}") };
        assert_eq!((c[0], c[1].is_nan(), c[2], c[3], b.as_slice()), (1.5, true, f64::INFINITY, f64::NEG_INFINITY, [2.0].as_slice()));
        assert_eq!(back["down"], Err("unreachable".to_string()));
    }

    #[test]
    fn values_stored_before_infinities_were_named_read_back() {
        let back = decode_fetched(r#"{"q":{"Ok":[[1.5,null],[]]}}"#).expect("decodes");
        let Ok((c, _)) = &back["q"] else { panic!("{back:?}") };
        assert_eq!((c[0], c[1].is_nan()), (1.5, true));
    }
}
