//! The canary analyzer's tables and their columns as identifiers for
//! queries (one enum per table: `Table` is the table, each other variant a
//! column, rendered in snake_case by `DeriveIden`). The outbox's are
//! `paved_stream`'s.
//!
//! The tables are the ones [`crate::migration`] creates. The migrations
//! spell their names as strings rather than use these enums: a published
//! migration is never edited, so it must not change when an enum here does.
//! The tests below pin every variant to the name a migration gave it.
//!
//! Row reads (`row.try_get("", "decision")`) keep string names: `try_get`
//! takes a `&str`, and these are the same names the tests pin.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Observations {
    Table,
    /// In order of arrival.
    Id,
    EventId,
    RevisionId,
    Workload,
    Environment,
    State,
    Message,
    ObserveTimeMs,
}

/// The decision records. Their `id` has no variant: no query names it
/// (a rollout's looks are ordered by `look`).
#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Looks {
    Table,
    RolloutId,
    Look,
    /// The `JudgeLookRequest` as sent (protobuf).
    Request,
    /// The Prometheus values fetched for it (JSON).
    Fetched,
    /// The `Decision` (protobuf).
    Decision,
    Verdict,
    CreateTimeMs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as select_named, select_sql as select};

    #[test]
    fn observations_render_as_migrated() {
        use Observations::*;
        assert_eq!(
            select(Table, [Id, EventId, RevisionId, Workload, Environment, State, Message, ObserveTimeMs]),
            select_named(
                "observations",
                &["id", "event_id", "revision_id", "workload", "environment", "state", "message", "observe_time_ms"]
            ),
        );
    }

    #[test]
    fn looks_render_as_migrated() {
        use Looks::*;
        assert_eq!(
            select(Table, [RolloutId, Look, Request, Fetched, Decision, Verdict, CreateTimeMs]),
            select_named("looks", &["rollout_id", "look", "request", "fetched", "decision", "verdict", "create_time_ms"]),
        );
    }

    /// What the tests above compare: each name quoted, in snake_case, as
    /// PostgreSQL receives it.
    #[test]
    fn a_query_renders_quoted_snake_case_names() {
        assert_eq!(select(Looks::Table, [Looks::RolloutId, Looks::CreateTimeMs]), r#"SELECT "rollout_id", "create_time_ms" FROM "looks""#);
    }
}
