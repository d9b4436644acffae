//! The report's reads: what `attribute` needs for a window, each one query
//! (samples summed by the database, so a window of a million samples is
//! one scan, not a million rows sent over).

use crate::attribute::{self, GroupBy, Inputs, Line, Revision, Used};
use crate::prices::PriceSheet;
use crate::schema::{RevisionCosts, RunningIntervals, SleepIntervals, UsageSamples};
use sea_orm::{
    ConnectionTrait, DbErr, QueryResult,
    sea_query::{Expr, ExprTrait, Query, SelectStatement},
};

/// A report over `[start_ms, end_ms)`.
#[derive(Debug, Clone)]
pub struct Report {
    pub lines: Vec<Line>,
    pub total: Line,
}

pub async fn report(db: &impl ConnectionTrait, sheet: &PriceSheet, by: GroupBy, start_ms: i64, end_ms: i64) -> Result<Report, DbErr> {
    let inputs = inputs(db, start_ms, end_ms).await?;
    let (lines, total) = attribute::attribute(&inputs, sheet, by);
    Ok(Report { lines, total })
}

pub async fn inputs(db: &impl ConnectionTrait, start_ms: i64, end_ms: i64) -> Result<Inputs, DbErr> {
    let mut inputs = Inputs::default();
    let query = Query::select().columns(RevisionCosts::COLUMNS).from(RevisionCosts::Table).to_owned();
    for row in db.query_all(&query).await? {
        inputs.revisions.insert(row.try_get("", "revision_id")?, revision_of(&row)?);
    }
    let running = overlapping(RunningIntervals::Table, RunningIntervals::FromMs, RunningIntervals::ToMs, start_ms, end_ms);
    for row in db.query_all(&running).await? {
        let (id, ms) = clipped(&row, start_ms, end_ms)?;
        *inputs.running_ms.entry(id).or_default() += ms;
    }
    let slept = overlapping(SleepIntervals::Table, SleepIntervals::FromMs, SleepIntervals::ToMs, start_ms, end_ms);
    for row in db.query_all(&slept).await? {
        let (id, ms) = clipped(&row, start_ms, end_ms)?;
        *inputs.slept_ms.entry(id).or_default() += ms;
    }
    // Sums as doubles: memory × interval overflows 64-bit integers over a
    // month of samples, and PostgreSQL sums bigints as numeric.
    let as_double = |column: &str| Expr::cust(format!("SUM(CAST({column} AS DOUBLE PRECISION))"));
    let samples = Query::select()
        .column(UsageSamples::RevisionId)
        .expr_as(Expr::cust("COUNT(*)"), "samples")
        .expr_as(as_double("interval_ms"), "interval_ms")
        .expr_as(as_double("cpu_ms"), "cpu_ms")
        .expr_as(Expr::cust("SUM(CAST(memory_bytes AS DOUBLE PRECISION) * interval_ms)"), "memory_byte_ms")
        .from(UsageSamples::Table)
        .and_where(Expr::col(UsageSamples::AtMs).gt(start_ms))
        .and_where(Expr::col(UsageSamples::AtMs).lte(end_ms))
        .group_by_col(UsageSamples::RevisionId)
        .to_owned();
    for row in db.query_all(&samples).await? {
        let used = Used {
            samples: u64::try_from(row.try_get::<i64>("", "samples")?).unwrap_or(0),
            interval_ms: row.try_get("", "interval_ms")?,
            cpu_ms: row.try_get("", "cpu_ms")?,
            memory_byte_ms: row.try_get("", "memory_byte_ms")?,
        };
        inputs.used.insert(row.try_get("", "revision_id")?, used);
    }
    Ok(inputs)
}

/// The intervals of `table` that overlap the window (open ones included).
fn overlapping(
    table: impl sea_orm::sea_query::Iden + 'static,
    from: impl sea_orm::sea_query::Iden + Copy + 'static,
    to: impl sea_orm::sea_query::Iden + Copy + 'static,
    start_ms: i64,
    end_ms: i64,
) -> SelectStatement {
    Query::select()
        .expr_as(Expr::cust("revision_id"), "revision_id")
        .expr_as(Expr::col(from), "from_ms")
        .expr_as(Expr::col(to), "to_ms")
        .from(table)
        .and_where(Expr::col(from).lt(end_ms))
        .and_where(Expr::col(to).is_null().or(Expr::col(to).gt(start_ms)))
        .to_owned()
}

/// A row's revision and how much of its interval lies in the window (an
/// open interval runs to the window's end).
fn clipped(row: &QueryResult, start_ms: i64, end_ms: i64) -> Result<(String, f64), DbErr> {
    let from: i64 = row.try_get("", "from_ms")?;
    let to: Option<i64> = row.try_get("", "to_ms")?;
    let ms = Ord::min(to.unwrap_or(end_ms), end_ms) - Ord::max(from, start_ms);
    Ok((row.try_get("", "revision_id")?, Ord::max(ms, 0) as f64))
}

/// A workload's samples since `start_ms` (each with its cores over the
/// interval), and the revision sampled last with what it requests and its
/// replicas: what `rightsize` needs.
pub async fn workload_samples(
    db: &impl ConnectionTrait,
    environment: &str,
    workload: &str,
    start_ms: i64,
) -> Result<(Vec<crate::rightsize::Sample>, Option<(String, Revision)>), DbErr> {
    let s = |c: UsageSamples| (UsageSamples::Table, c);
    let query = Query::select()
        .column(s(UsageSamples::RevisionId))
        .columns([s(UsageSamples::CpuMs), s(UsageSamples::IntervalMs), s(UsageSamples::MemoryBytes), s(UsageSamples::MemoryPeakBytes)])
        .from(UsageSamples::Table)
        .inner_join(
            RevisionCosts::Table,
            Expr::col((RevisionCosts::Table, RevisionCosts::RevisionId)).equals((UsageSamples::Table, UsageSamples::RevisionId)),
        )
        .and_where(Expr::col((RevisionCosts::Table, RevisionCosts::Environment)).eq(environment))
        .and_where(Expr::col((RevisionCosts::Table, RevisionCosts::Workload)).eq(workload))
        .and_where(Expr::col(s(UsageSamples::AtMs)).gte(start_ms))
        .and_where(Expr::col(s(UsageSamples::IntervalMs)).gt(0))
        .order_by(s(UsageSamples::AtMs), sea_orm::sea_query::Order::Asc)
        .to_owned();
    let mut samples = Vec::new();
    let mut last = None;
    for row in db.query_all(&query).await? {
        let (cpu_ms, interval_ms): (i64, i64) = (row.try_get("", "cpu_ms")?, row.try_get("", "interval_ms")?);
        samples.push(crate::rightsize::Sample {
            cores: cpu_ms as f64 / interval_ms as f64,
            memory_bytes: row.try_get::<i64>("", "memory_bytes")? as f64,
            memory_peak_bytes: row.try_get::<i64>("", "memory_peak_bytes")? as f64,
        });
        last = Some(row.try_get::<String>("", "revision_id")?);
    }
    let revision = match last {
        Some(id) => revision(db, &id).await?.map(|r| (id, r)),
        None => None,
    };
    Ok((samples, revision))
}

/// One revision's description.
async fn revision(db: &impl ConnectionTrait, id: &str) -> Result<Option<Revision>, DbErr> {
    let query = Query::select()
        .columns(RevisionCosts::COLUMNS)
        .from(RevisionCosts::Table)
        .and_where(Expr::col(RevisionCosts::RevisionId).eq(id))
        .to_owned();
    db.query_one(&query).await?.map(|row| revision_of(&row)).transpose()
}

fn revision_of(row: &QueryResult) -> Result<Revision, DbErr> {
    Ok(Revision {
        environment: row.try_get("", "environment")?,
        workload: row.try_get("", "workload")?,
        team: row.try_get("", "team")?,
        replicas: u32::try_from(row.try_get::<i32>("", "replicas")?).unwrap_or(1),
        cpu_request: row.try_get("", "cpu_request")?,
        memory_request: row.try_get("", "memory_request")?,
    })
}
