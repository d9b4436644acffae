//! The cost scheduler's tables and their columns as identifiers for queries
//! (`Table` is the table, each other variant a column, rendered in
//! snake_case by `DeriveIden`). The inbox's are `paved_stream`'s.
//!
//! The table is the one [`crate::migration`] creates. The migration spells
//! its names as strings rather than use this enum: a published migration is
//! never edited, so it must not change when the enum does. The tests below
//! pin every variant to the name the migration gave it.
//!
//! Row reads (`row.try_get("", "running_ms")`) keep string names: `try_get`
//! takes a `&str`, and these are the same names the tests pin.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum RevisionUsage {
    Table,
    RevisionId,
    Workload,
    Environment,
    /// Closed healthy intervals, summed.
    RunningMs,
    /// Start of the open healthy interval, if any.
    RunningSinceMs,
}

/// `running_intervals`: each interval a revision was healthy.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum RunningIntervals {
    Table,
    RevisionId,
    FromMs,
    ToMs,
}

/// `sleep_intervals`: each time a workload slept.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum SleepIntervals {
    Table,
    Environment,
    Workload,
    RevisionId,
    FromMs,
    ToMs,
}

/// `usage_samples`: what a replica used between two reads.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum UsageSamples {
    Table,
    AtMs,
    RevisionId,
    Instance,
    IntervalMs,
    CpuMs,
    MemoryBytes,
    MemoryPeakBytes,
}

/// `revision_costs`: what a revision asked for and who pays.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum RevisionCosts {
    Table,
    RevisionId,
    Environment,
    Workload,
    Team,
    Replicas,
    CpuRequest,
    MemoryRequest,
}

/// `budgets`: a team's monthly budget per environment.
#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Budgets {
    Table,
    Team,
    Environment,
    Monthly,
    Announced,
}

impl RevisionCosts {
    /// Every column, in the order rows are written and read.
    pub(crate) const COLUMNS: [Self; 7] =
        [Self::RevisionId, Self::Environment, Self::Workload, Self::Team, Self::Replicas, Self::CpuRequest, Self::MemoryRequest];
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as select_named, select_sql as select};

    #[test]
    fn revision_usage_renders_as_migrated() {
        use RevisionUsage::*;
        assert_eq!(
            select(Table, [RevisionId, Workload, Environment, RunningMs, RunningSinceMs]),
            select_named("revision_usage", &["revision_id", "workload", "environment", "running_ms", "running_since_ms"]),
        );
    }

    #[test]
    fn cost_tables_render_as_migrated() {
        use RunningIntervals as R;
        assert_eq!(
            select(R::Table, [R::RevisionId, R::FromMs, R::ToMs]),
            select_named("running_intervals", &["revision_id", "from_ms", "to_ms"])
        );
        use SleepIntervals as S;
        assert_eq!(
            select(S::Table, [S::Environment, S::Workload, S::RevisionId, S::FromMs, S::ToMs]),
            select_named("sleep_intervals", &["environment", "workload", "revision_id", "from_ms", "to_ms"])
        );
        use UsageSamples as U;
        assert_eq!(
            select(U::Table, [U::AtMs, U::RevisionId, U::Instance, U::IntervalMs, U::CpuMs, U::MemoryBytes, U::MemoryPeakBytes]),
            select_named(
                "usage_samples",
                &["at_ms", "revision_id", "instance", "interval_ms", "cpu_ms", "memory_bytes", "memory_peak_bytes"]
            )
        );
        use RevisionCosts as C;
        assert_eq!(
            select(C::Table, C::COLUMNS),
            select_named(
                "revision_costs",
                &["revision_id", "environment", "workload", "team", "replicas", "cpu_request", "memory_request"]
            )
        );
    }

    #[test]
    fn budgets_render_as_migrated() {
        use Budgets as B;
        assert_eq!(
            select(B::Table, [B::Team, B::Environment, B::Monthly, B::Announced]),
            select_named("budgets", &["team", "environment", "monthly", "announced"])
        );
    }

    /// What the test above compares: each name quoted, in snake_case, as
    /// PostgreSQL receives it.
    #[test]
    fn a_query_renders_quoted_snake_case_names() {
        assert_eq!(select(RevisionUsage::Table, [RevisionUsage::RunningSinceMs]), r#"SELECT "running_since_ms" FROM "revision_usage""#);
    }
}
