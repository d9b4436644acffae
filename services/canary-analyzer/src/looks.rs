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

/// JSON has no NaN nor infinity: NaN is written as null (as before
/// infinities were named, so an analyzer of then still reads such a row),
/// an infinity as Prometheus's API names it (`"+Inf"`, `"-Inf"`), so that
/// a replay judges the values the look was judged on. Rows written before
/// hold null for an infinity too: those read back as NaN.
type Wire = BTreeMap<String, Result<(Vec<Option<Value>>, Vec<Option<Value>>), String>>;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Value {
    Finite(f64),
    Infinite(Infinity),
}

#[derive(serde::Serialize, serde::Deserialize)]
enum Infinity {
    #[serde(rename = "+Inf")]
    Positive,
    #[serde(rename = "-Inf")]
    Negative,
}

/// The values of a look as the analyzer stores them. Public for the fuzz
/// targets (a replay must judge what was judged).
pub fn encode_fetched(fetched: &Fetched) -> String {
    let wire_value = |x: f64| match x {
        x if x.is_finite() => Some(Value::Finite(x)),
        x if x == f64::INFINITY => Some(Value::Infinite(Infinity::Positive)),
        x if x == f64::NEG_INFINITY => Some(Value::Infinite(Infinity::Negative)),
        _ => None,
    };
    let wire_of = |v: &Vec<f64>| v.iter().map(|x| wire_value(*x)).collect::<Vec<_>>();
    let wire: Wire =
        fetched.iter().map(|(k, v)| (k.clone(), v.as_ref().map(|(c, b)| (wire_of(c), wire_of(b))).map_err(Clone::clone))).collect();
    serde_json::to_string(&wire).unwrap_or_else(|_| "{}".into())
}

/// What [`encode_fetched`] wrote; any other text is an error.
pub fn decode_fetched(text: &str) -> Result<Fetched, serde_json::Error> {
    let wire: Wire = serde_json::from_str(text)?;
    let value = |x: Option<Value>| match x {
        Some(Value::Finite(x)) => x,
        Some(Value::Infinite(Infinity::Positive)) => f64::INFINITY,
        Some(Value::Infinite(Infinity::Negative)) => f64::NEG_INFINITY,
        None => f64::NAN,
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
    fn values_stored_before_infinities_were_named_read_back_and_nan_is_written_as_then() {
        let back = decode_fetched(r#"{"q":{"Ok":[[1.5,null],[]]}}"#).expect("decodes");
        let Ok((c, _)) = &back["q"] else { panic!("{back:?}") };
        assert_eq!((c[0], c[1].is_nan()), (1.5, true));
        let nan: Fetched = BTreeMap::from([("q".to_string(), Ok((vec![1.5, f64::NAN], vec![])))]);
        assert_eq!(encode_fetched(&nan), r#"{"q":{"Ok":[[1.5,null],[]]}}"#);
        assert!(decode_fetched(r#"{"q":{"Ok":[["Inf"],[]]}}"#).is_err(), "a name it never writes is refused");
    }

    #[test]
    fn values_read_back_to_the_bit() {
        // Without serde_json's float_roundtrip, about one value in ten
        // would read back one unit in the last place off.
        let values: Vec<f64> = (1..2000u32).map(|i| f64::from(i) * 0.4760839690107058 + 1.0 / f64::from(i)).collect();
        let fetched: Fetched = BTreeMap::from([("q".to_string(), Ok((values.clone(), vec![952.1679380214117])))]);
        let back = decode_fetched(&encode_fetched(&fetched)).expect("decodes");
        let Ok((c, b)) = &back["q"] else { panic!("{back:?}") };
        assert!(c.iter().zip(&values).all(|(x, y)| x.to_bits() == y.to_bits()) && b[0].to_bits() == 952.1679380214117f64.to_bits());
    }
}
