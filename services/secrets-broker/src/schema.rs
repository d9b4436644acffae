//! The broker's tables and their columns as identifiers for queries (one
//! enum per table: `Table` is the table, each other variant a column,
//! rendered in snake_case by `DeriveIden`).
//!
//! The tables are the ones [`crate::migration`] creates, but for the
//! outbox, which `paved_stream` names. The migrations spell their names as
//! strings rather than use these enums: a published migration is never
//! edited, so it must not change when an enum here does. The tests below
//! pin every variant to the name a migration gave it.
//!
//! Row reads (`row.try_get("", "jti")`) keep string names: `try_get` takes
//! a `&str`, and these are the same names the tests pin.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Identities {
    Table,
    SpiffeId,
    Workload,
    Environment,
    CreateTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum SigningKeys {
    Table,
    Kid,
    PublicKey,
    SealedSeed,
    RootKeyId,
    CreateTimeMs,
    RetireTimeMs,
    DropTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Tokens {
    Table,
    Jti,
    ParentJti,
    Subject,
    Audience,
    Scopes,
    TtlMs,
    IssueTimeMs,
    ExpireTimeMs,
    RenewableUntilMs,
    RevokeTimeMs,
    RevokeReason,
    ArtifactDigest,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum SecretVersions {
    Table,
    Path,
    Version,
    SealedValue,
    SealedDataKey,
    RootKeyId,
    GenerateBytes,
    RotateEveryMs,
    CreateTimeMs,
    SupersededTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum BootstrapTokens {
    Table,
    /// The SHA-256 of the token's value.
    Id,
    Environment,
    Workload,
    RevisionId,
    ArtifactDigest,
    Scopes,
    IssueTimeMs,
    ExpireTimeMs,
    UsedTimeMs,
    IdentityJti,
    ReplayTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Databases {
    Table,
    Name,
    SealedUrl,
    RootKeyId,
    Target,
    GroupRole,
    DefaultTtlMs,
    MaxTtlMs,
    UpdateTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Leases {
    Table,
    /// "database/<name>/<id>"
    Id,
    DatabaseName,
    RoleName,
    Subject,
    TokenJti,
    IssueTimeMs,
    ExpireTimeMs,
    MaxExpireTimeMs,
    RevokeTimeMs,
    RevokeAttempts,
    NextAttemptMs,
    LastError,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Policies {
    Table,
    Environment,
    Workload,
    RevisionId,
    Scopes,
    CompileTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum GrantUses {
    Table,
    Subject,
    Scope,
    UseCount,
    FirstUseMs,
    LastUseMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum CertificateAuthorities {
    Table,
    Id,
    CertificateDer,
    SealedKey,
    RootKeyId,
    CreateTimeMs,
    ExpireTimeMs,
    RetireTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Certificates {
    Table,
    /// The SHA-256 of the certificate's DER.
    Fingerprint,
    SpiffeId,
    EnrolledBy,
    RenewUntilMs,
    ExpireTimeMs,
    KeyHash,
    CertificatePem,
    AuthorityId,
    ReplacedBy,
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as select_named, select_sql as select};

    #[test]
    fn identities_render_as_migrated() {
        use Identities::*;
        assert_eq!(
            select(Table, [SpiffeId, Workload, Environment, CreateTimeMs]),
            select_named("identities", &["spiffe_id", "workload", "environment", "create_time_ms"]),
        );
    }

    #[test]
    fn signing_keys_render_as_migrated() {
        use SigningKeys::*;
        assert_eq!(
            select(Table, [Kid, PublicKey, SealedSeed, RootKeyId, CreateTimeMs, RetireTimeMs, DropTimeMs]),
            select_named(
                "signing_keys",
                &["kid", "public_key", "sealed_seed", "root_key_id", "create_time_ms", "retire_time_ms", "drop_time_ms"]
            ),
        );
    }

    #[test]
    fn tokens_render_as_migrated() {
        use Tokens::*;
        assert_eq!(
            select(
                Table,
                [Jti, ParentJti, Subject, Audience, Scopes, TtlMs, IssueTimeMs, ExpireTimeMs, RenewableUntilMs, RevokeTimeMs, RevokeReason]
            ),
            select_named(
                "tokens",
                &[
                    "jti",
                    "parent_jti",
                    "subject",
                    "audience",
                    "scopes",
                    "ttl_ms",
                    "issue_time_ms",
                    "expire_time_ms",
                    "renewable_until_ms",
                    "revoke_time_ms",
                    "revoke_reason"
                ]
            ),
        );
    }

    #[test]
    fn secret_versions_render_as_migrated() {
        use SecretVersions::*;
        assert_eq!(
            select(
                Table,
                [Path, Version, SealedValue, SealedDataKey, RootKeyId, GenerateBytes, RotateEveryMs, CreateTimeMs, SupersededTimeMs]
            ),
            select_named(
                "secret_versions",
                &[
                    "path",
                    "version",
                    "sealed_value",
                    "sealed_data_key",
                    "root_key_id",
                    "generate_bytes",
                    "rotate_every_ms",
                    "create_time_ms",
                    "superseded_time_ms"
                ]
            ),
        );
    }

    /// With the two columns a later migration added.
    #[test]
    fn bootstrap_tokens_render_as_migrated() {
        use BootstrapTokens::*;
        assert_eq!(
            select(
                Table,
                [
                    Id,
                    Environment,
                    Workload,
                    RevisionId,
                    ArtifactDigest,
                    Scopes,
                    IssueTimeMs,
                    ExpireTimeMs,
                    UsedTimeMs,
                    IdentityJti,
                    ReplayTimeMs
                ]
            ),
            select_named(
                "bootstrap_tokens",
                &[
                    "id",
                    "environment",
                    "workload",
                    "revision_id",
                    "artifact_digest",
                    "scopes",
                    "issue_time_ms",
                    "expire_time_ms",
                    "used_time_ms",
                    "identity_jti",
                    "replay_time_ms"
                ]
            ),
        );
    }

    #[test]
    fn databases_render_as_migrated() {
        use Databases::*;
        assert_eq!(
            select(Table, [Name, SealedUrl, RootKeyId, Target, GroupRole, DefaultTtlMs, MaxTtlMs, UpdateTimeMs]),
            select_named(
                "databases",
                &["name", "sealed_url", "root_key_id", "target", "group_role", "default_ttl_ms", "max_ttl_ms", "update_time_ms"]
            ),
        );
    }

    #[test]
    fn leases_render_as_migrated() {
        use Leases::*;
        assert_eq!(
            select(
                Table,
                [
                    Id,
                    DatabaseName,
                    RoleName,
                    Subject,
                    TokenJti,
                    IssueTimeMs,
                    ExpireTimeMs,
                    MaxExpireTimeMs,
                    RevokeTimeMs,
                    RevokeAttempts,
                    NextAttemptMs,
                    LastError
                ]
            ),
            select_named(
                "leases",
                &[
                    "id",
                    "database_name",
                    "role_name",
                    "subject",
                    "token_jti",
                    "issue_time_ms",
                    "expire_time_ms",
                    "max_expire_time_ms",
                    "revoke_time_ms",
                    "revoke_attempts",
                    "next_attempt_ms",
                    "last_error"
                ]
            ),
        );
    }

    #[test]
    fn policies_render_as_migrated() {
        use Policies::*;
        assert_eq!(
            select(Table, [Environment, Workload, RevisionId, Scopes, CompileTimeMs]),
            select_named("policies", &["environment", "workload", "revision_id", "scopes", "compile_time_ms"]),
        );
    }

    #[test]
    fn grant_uses_render_as_migrated() {
        use GrantUses::*;
        assert_eq!(
            select(Table, [Subject, Scope, UseCount, FirstUseMs, LastUseMs]),
            select_named("grant_uses", &["subject", "scope", "use_count", "first_use_ms", "last_use_ms"]),
        );
    }

    #[test]
    fn certificate_authorities_render_as_migrated() {
        use CertificateAuthorities::*;
        assert_eq!(
            select(Table, [Id, CertificateDer, SealedKey, RootKeyId, CreateTimeMs, ExpireTimeMs, RetireTimeMs]),
            select_named(
                "certificate_authorities",
                &["id", "certificate_der", "sealed_key", "root_key_id", "create_time_ms", "expire_time_ms", "retire_time_ms"]
            ),
        );
    }

    #[test]
    fn certificates_render_as_migrated() {
        use Certificates::*;
        assert_eq!(
            select(
                Table,
                [Fingerprint, SpiffeId, EnrolledBy, RenewUntilMs, ExpireTimeMs, KeyHash, CertificatePem, AuthorityId, ReplacedBy]
            ),
            select_named(
                "certificates",
                &[
                    "fingerprint",
                    "spiffe_id",
                    "enrolled_by",
                    "renew_until_ms",
                    "expire_time_ms",
                    "key_hash",
                    "certificate_pem",
                    "authority_id",
                    "replaced_by"
                ]
            ),
        );
    }

    /// What the tests above compare: each name quoted, in snake_case, as
    /// PostgreSQL receives it.
    #[test]
    fn a_query_renders_quoted_snake_case_names() {
        assert_eq!(select(Tokens::Table, [Tokens::Jti, Tokens::TtlMs]), r#"SELECT "jti", "ttl_ms" FROM "tokens""#);
    }
}
