//! The audit service's table and its columns as identifiers for queries
//! (`Table` is the table, each other variant a column, rendered in
//! snake_case by `DeriveIden`).
//!
//! The table is the one [`crate::migration`] creates. The migration spells
//! its names as strings rather than use this enum: a published migration is
//! never edited, so it must not change when the enum does. The tests below
//! pin every variant to the name the migration gave it.
//!
//! Row reads (`row.try_get("", "sequence")`) keep string names: `try_get`
//! takes a `&str`, and these are the same names the tests pin.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum AuditEntries {
    Table,
    /// The position in the log, in order of arrival.
    Sequence,
    EventId,
    Stream,
    Source,
    EventType,
    Subject,
    EventTimeMs,
    ReceiveTimeMs,
    /// The whole event, encoded, with people's names committed (as in its leaf).
    Envelope,
    /// Its leaf in the log, and the chains it is on (as the leaf names them).
    LeafIndex,
    Workload,
    Actor,
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as select_named, select_sql as select};

    #[test]
    fn audit_entries_render_as_migrated() {
        use AuditEntries::*;
        assert_eq!(
            select(
                Table,
                [Sequence, EventId, Stream, Source, EventType, Subject, EventTimeMs, ReceiveTimeMs, Envelope, LeafIndex, Workload, Actor]
            ),
            select_named(
                "audit_entries",
                &[
                    "sequence",
                    "event_id",
                    "stream",
                    "source",
                    "event_type",
                    "subject",
                    "event_time_ms",
                    "receive_time_ms",
                    "envelope",
                    "leaf_index",
                    "workload",
                    "actor"
                ]
            ),
        );
    }

    /// What the test above compares: each name quoted, in snake_case, as
    /// PostgreSQL receives it.
    #[test]
    fn a_query_renders_quoted_snake_case_names() {
        assert_eq!(
            select(AuditEntries::Table, [AuditEntries::Sequence, AuditEntries::EventTimeMs]),
            r#"SELECT "sequence", "event_time_ms" FROM "audit_entries""#
        );
    }
}
