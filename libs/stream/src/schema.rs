//! The tables the stream keeps in a service's database, and their columns,
//! as identifiers for queries (one enum per table: `Table` is the table,
//! each other variant a column, rendered in snake_case by `DeriveIden`).
//!
//! The tables are the ones [`crate::outbox::MIGRATION`] and
//! [`crate::inbox::MIGRATION`] create, in the migrator of each service that
//! uses them. Those migrations spell their names as strings rather than use
//! these enums: a published migration is never edited, so it must not
//! change when an enum here does. The tests below pin every variant to the
//! name a migration gave it.
//!
//! Row reads (`row.try_get("", "payload")`) keep string names: `try_get`
//! takes a `&str`, and these are the same names the tests pin.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Outbox {
    Table,
    Id,
    Stream,
    /// An encoded `Envelope`.
    Payload,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Inbox {
    Table,
    EventId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as select_named, select_sql as select};

    #[test]
    fn outbox_renders_as_migrated() {
        use Outbox::*;
        assert_eq!(select(Table, [Id, Stream, Payload]), select_named("outbox", &["id", "stream", "payload"]));
    }

    #[test]
    fn inbox_renders_as_migrated() {
        use Inbox::*;
        assert_eq!(select(Table, [EventId]), select_named("inbox", &["event_id"]));
    }

    /// What the tests above compare: each name quoted, in snake_case, as
    /// PostgreSQL receives it.
    #[test]
    fn a_query_renders_quoted_snake_case_names() {
        assert_eq!(select(Inbox::Table, [Inbox::EventId]), r#"SELECT "event_id" FROM "inbox""#);
    }
}
