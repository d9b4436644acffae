//! The log's tables, as identifiers for queries (one enum per table,
//! rendered snake_case by `DeriveIden`). The migration spells the names
//! as strings — a published migration never changes — and the test below
//! pins each enum to them.

use sea_orm::DeriveIden;

/// One row per leaf: the entry's bytes, by leaf index.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub enum LogLeaves {
    Table,
    LeafIndex,
    EventId,
    Leaf,
}

/// Hash tiles (tlog-tiles level `level`, index `idx`), each at its widest
/// so far: a partial tile's data is a prefix of what it becomes.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub enum LogTiles {
    Table,
    Level,
    Idx,
    Data,
}

/// The tree as appended so far: one row.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub enum LogState {
    Table,
    Id,
    Size,
    Root,
}

/// Every checkpoint signed, by tree size.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub enum LogCheckpoints {
    Table,
    Size,
    Note,
    CreateTimeMs,
}

/// The log's signing keys, sealed under the root key.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub enum LogKeys {
    Table,
    VerifierKey,
    Sealed,
    CreateTimeMs,
    RetireTimeMs,
}

/// The salt of each person's commitments, kept apart from the log:
/// deleting a row is erasing that person.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub enum AuditSalts {
    Table,
    Subject,
    Salt,
    CreateTimeMs,
}

/// Witnesses' cosignature lines, by the checkpoint (size) they cosign.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub enum LogCosignatures {
    Table,
    Size,
    Witness,
    Line,
    CreateTimeMs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as named, select_sql as select};

    #[test]
    fn tables_render_as_migrated() {
        use {AuditSalts as A, LogCheckpoints as C, LogKeys as K, LogLeaves as L, LogState as S, LogTiles as T};
        assert_eq!(
            select(
                LogCosignatures::Table,
                [LogCosignatures::Size, LogCosignatures::Witness, LogCosignatures::Line, LogCosignatures::CreateTimeMs]
            ),
            named("log_cosignatures", &["size", "witness", "line", "create_time_ms"])
        );
        assert_eq!(select(A::Table, [A::Subject, A::Salt, A::CreateTimeMs]), named("audit_salts", &["subject", "salt", "create_time_ms"]));
        assert_eq!(select(L::Table, [L::LeafIndex, L::EventId, L::Leaf]), named("log_leaves", &["leaf_index", "event_id", "leaf"]));
        assert_eq!(select(T::Table, [T::Level, T::Idx, T::Data]), named("log_tiles", &["level", "idx", "data"]));
        assert_eq!(select(S::Table, [S::Id, S::Size, S::Root]), named("log_state", &["id", "size", "root"]));
        assert_eq!(select(C::Table, [C::Size, C::Note, C::CreateTimeMs]), named("log_checkpoints", &["size", "note", "create_time_ms"]));
        assert_eq!(
            select(K::Table, [K::VerifierKey, K::Sealed, K::CreateTimeMs, K::RetireTimeMs]),
            named("log_keys", &["verifier_key", "sealed", "create_time_ms", "retire_time_ms"])
        );
    }
}
