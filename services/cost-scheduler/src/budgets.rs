//! Budgets: a team's monthly budget per environment, checked against its
//! forecast (what it runs now, by request, a month: `forecast`). Set with
//! `paved cost budget set`; the policy gate denies a deploy that would
//! take the team over it (`deploy.rego`), and crossing 80% or 100% of it is
//! a `BudgetCrossed` event (once per crossing, rearmed when the forecast
//! falls back below) and shows in `paved_cost_budget_ratio`.

use crate::forecast::Running;
use crate::schema::Budgets;
use paved_proto::cost_scheduler::v1::BudgetCrossed;
use paved_proto::events::v1::envelope::Payload;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

/// The producer name of its events (budgets crossed).
pub const SOURCE: &str = "cost-scheduler";

/// The thresholds, in percent of the budget, that are events when crossed.
pub const THRESHOLDS: [u32; 2] = [80, 100];

/// A team's budget in an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub team: String,
    pub environment: String,
    pub monthly: f64,
    /// The highest threshold crossed and announced; 0 when under them all.
    pub announced: u32,
}

/// The highest threshold `forecast` reaches of `monthly`.
pub fn reached(forecast: f64, monthly: f64) -> u32 {
    THRESHOLDS.iter().copied().filter(|t| monthly > 0.0 && forecast >= monthly * f64::from(*t) / 100.0).max().unwrap_or(0)
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Budget>, DbErr> {
    let query = Query::select()
        .columns([Budgets::Team, Budgets::Environment, Budgets::Monthly, Budgets::Announced])
        .from(Budgets::Table)
        .order_by(Budgets::Team, sea_orm::sea_query::Order::Asc)
        .order_by(Budgets::Environment, sea_orm::sea_query::Order::Asc)
        .to_owned();
    let mut all = Vec::new();
    for row in db.query_all(&query).await? {
        all.push(Budget {
            team: row.try_get("", "team")?,
            environment: row.try_get("", "environment")?,
            monthly: row.try_get("", "monthly")?,
            announced: u32::try_from(row.try_get::<i32>("", "announced")?).unwrap_or(0),
        });
    }
    Ok(all)
}

/// One budget, if set.
pub async fn get(db: &impl ConnectionTrait, team: &str, environment: &str) -> Result<Option<Budget>, DbErr> {
    Ok(list(db).await?.into_iter().find(|b| b.team == team && b.environment == environment))
}

/// Sets a budget (0 removes it). A new amount rearms its thresholds: the
/// next check announces what the forecast reaches of it.
pub async fn set(db: &impl ConnectionTrait, team: &str, environment: &str, monthly: f64) -> Result<(), DbErr> {
    let this = Expr::col(Budgets::Team).eq(team).and(Expr::col(Budgets::Environment).eq(environment));
    if monthly <= 0.0 {
        db.execute(&Query::delete().from_table(Budgets::Table).and_where(this).to_owned()).await?;
        return Ok(());
    }
    let upsert = Query::insert()
        .into_table(Budgets::Table)
        .columns([Budgets::Team, Budgets::Environment, Budgets::Monthly, Budgets::Announced])
        .values_panic([team.into(), environment.into(), monthly.into(), 0i32.into()])
        .on_conflict(
            OnConflict::columns([Budgets::Team, Budgets::Environment]).update_columns([Budgets::Monthly, Budgets::Announced]).to_owned(),
        )
        .to_owned();
    db.execute(&upsert).await?;
    Ok(())
}

/// Compares every budget with its team's forecast; announces each
/// threshold newly crossed (the event and the mark in one transaction, so
/// a crossing is announced once) and rearms those fallen below.
pub async fn check(db: &DatabaseConnection, running: &Running, currency: &str, relay: &paved_stream::outbox::Relay) -> Result<(), DbErr> {
    let Some(teams) = running.by_team() else { return Ok(()) };
    let mut announced = false;
    for budget in list(db).await? {
        let forecast = teams.get(&(budget.team.clone(), budget.environment.clone())).copied().unwrap_or(0.0);
        let now = reached(forecast, budget.monthly);
        if now == budget.announced {
            continue;
        }
        let txn = db.begin().await?;
        // Only the budget as read: a budget set meanwhile is judged at the
        // next check, and nothing is announced twice.
        let this = Expr::col(Budgets::Team)
            .eq(budget.team.as_str())
            .and(Expr::col(Budgets::Environment).eq(budget.environment.as_str()))
            .and(Expr::col(Budgets::Monthly).eq(budget.monthly))
            .and(Expr::col(Budgets::Announced).eq(budget.announced as i32));
        let marked =
            txn.execute(&Query::update().table(Budgets::Table).value(Budgets::Announced, now as i32).and_where(this).to_owned()).await?;
        if marked.rows_affected() == 0 {
            continue;
        }
        for threshold in THRESHOLDS.iter().copied().filter(|t| *t > budget.announced && *t <= now) {
            let payload = Payload::BudgetCrossed(BudgetCrossed {
                team: budget.team.clone(),
                environment: budget.environment.clone(),
                threshold_percent: threshold,
                forecast_monthly: forecast,
                budget_monthly: budget.monthly,
                currency: currency.to_string(),
            });
            let subject = format!("teams/{}/environments/{}", budget.team, budget.environment);
            let envelope = paved_stream::event::envelope(SOURCE, "paved.cost_scheduler.v1.budget.crossed", subject, payload);
            paved_stream::outbox::enqueue(&txn, &paved_stream::stream_name(SOURCE), &envelope).await?;
            announced = true;
            tracing::warn!(team = %budget.team, environment = %budget.environment, threshold, forecast, budget = budget.monthly, "budget threshold crossed");
        }
        txn.commit().await?;
    }
    if announced {
        relay.wake();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_reached() {
        assert_eq!(reached(0.0, 100.0), 0);
        assert_eq!(reached(79.99, 100.0), 0);
        assert_eq!(reached(80.0, 100.0), 80);
        assert_eq!(reached(99.0, 100.0), 80);
        assert_eq!(reached(100.0, 100.0), 100);
        assert_eq!(reached(250.0, 100.0), 100);
        assert_eq!(reached(5.0, 0.0), 0, "no budget, no threshold");
    }
}
