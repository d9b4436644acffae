//! The secrets broker's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CREATE_IDENTITIES),
            Box::new(paved_stream::outbox::MIGRATION),
            Box::new(CREATE_SIGNING_KEYS),
            Box::new(CREATE_TOKENS),
            Box::new(CREATE_SECRET_VERSIONS),
            Box::new(CREATE_BOOTSTRAP_TOKENS),
            Box::new(BOOTSTRAP_OUTCOME),
            Box::new(CREATE_DATABASES),
            Box::new(CREATE_LEASES),
            Box::new(CREATE_POLICIES),
            Box::new(CREATE_GRANT_USES),
            Box::new(CREATE_CERTIFICATE_AUTHORITIES),
            Box::new(INDEX_TOKENS_BY_PARENT),
            Box::new(CREATE_CERTIFICATES),
            Box::new(TOKEN_ARTIFACT),
        ]
    }
}

const CREATE_IDENTITIES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000001_create_identities",
    table: || {
        Table::create()
            .table(Alias::new("identities"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("spiffe_id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Ed25519 signing keys; the private half sealed under the root key named
/// by `root_key_id`. Retired keys stay published until `drop_time_ms`.
const CREATE_SIGNING_KEYS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000001_create_signing_keys",
    table: || {
        Table::create()
            .table(Alias::new("signing_keys"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("kid")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("public_key")).binary().not_null())
            .col(ColumnDef::new(Alias::new("sealed_seed")).binary().not_null())
            .col(ColumnDef::new(Alias::new("root_key_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("retire_time_ms")).big_integer().null())
            .col(ColumnDef::new(Alias::new("drop_time_ms")).big_integer().null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Every token issued, by id: never its value.
const CREATE_TOKENS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000002_create_tokens",
    table: || {
        Table::create()
            .table(Alias::new("tokens"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("jti")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("parent_jti")).string().null())
            .col(ColumnDef::new(Alias::new("subject")).string().not_null())
            .col(ColumnDef::new(Alias::new("audience")).string().not_null())
            .col(ColumnDef::new(Alias::new("scopes")).text().not_null())
            .col(ColumnDef::new(Alias::new("ttl_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("issue_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("expire_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("renewable_until_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("revoke_time_ms")).big_integer().null())
            .col(ColumnDef::new(Alias::new("revoke_reason")).text().null())
            .to_owned()
    },
    indexes: || {
        vec![
            Index::create().name("tokens_by_subject").table(Alias::new("tokens")).col(Alias::new("subject")).if_not_exists().to_owned(),
            Index::create()
                .name("tokens_by_expiry")
                .table(Alias::new("tokens"))
                .col(Alias::new("expire_time_ms"))
                .if_not_exists()
                .to_owned(),
        ]
    },
};

/// Revoking a token walks the tokens issued with it, level by level: without
/// this index every level reads the whole table, which only grows.
const INDEX_TOKENS_BY_PARENT: paved_store::CreateIndex = paved_store::CreateIndex {
    name: "m20261129_000001_index_tokens_by_parent",
    table: "tokens",
    index: "tokens_by_parent",
    columns: &["parent_jti"],
};

/// Versions of KV secrets: the value sealed under its own data key, the
/// data key sealed under the root key `root_key_id`.
const CREATE_SECRET_VERSIONS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000003_create_secret_versions",
    table: || {
        Table::create()
            .table(Alias::new("secret_versions"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("path")).string().not_null())
            .col(ColumnDef::new(Alias::new("version")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("sealed_value")).binary().not_null())
            .col(ColumnDef::new(Alias::new("sealed_data_key")).binary().not_null())
            .col(ColumnDef::new(Alias::new("root_key_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("generate_bytes")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("rotate_every_ms")).big_integer().null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("superseded_time_ms")).big_integer().null())
            .primary_key(Index::create().col(Alias::new("path")).col(Alias::new("version")))
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Bootstrap tokens by the SHA-256 of their value (the value is never
/// stored): single use, bound to one revision.
const CREATE_BOOTSTRAP_TOKENS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000004_create_bootstrap_tokens",
    table: || {
        Table::create()
            .table(Alias::new("bootstrap_tokens"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("artifact_digest")).string().not_null())
            .col(ColumnDef::new(Alias::new("scopes")).text().not_null())
            .col(ColumnDef::new(Alias::new("issue_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("expire_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("used_time_ms")).big_integer().null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// What became of a bootstrap token: the identity it was exchanged for, and
/// when it was used again (that identity is then revoked).
const BOOTSTRAP_OUTCOME: paved_store::AddColumns = paved_store::AddColumns {
    name: "m20261128_000005_bootstrap_outcome",
    table: "bootstrap_tokens",
    columns: || {
        vec![
            ColumnDef::new(Alias::new("identity_jti")).string().to_owned(),
            ColumnDef::new(Alias::new("replay_time_ms")).big_integer().to_owned(),
        ]
    },
    backfill: &[],
};

/// PostgreSQL databases for dynamic credentials; the admin connection URL
/// sealed under the root key `root_key_id`.
const CREATE_DATABASES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000006_create_databases",
    table: || {
        Table::create()
            .table(Alias::new("databases"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("name")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("sealed_url")).binary().not_null())
            .col(ColumnDef::new(Alias::new("root_key_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("target")).string().not_null())
            .col(ColumnDef::new(Alias::new("group_role")).string().not_null())
            .col(ColumnDef::new(Alias::new("default_ttl_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("max_ttl_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("update_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Leases: what the broker handed out and must take back (a database role),
/// by `database/<name>/<id>`. Revoked once the role is verified gone;
/// failed attempts are counted and retried from `next_attempt_ms`.
const CREATE_LEASES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000007_create_leases",
    table: || {
        Table::create()
            .table(Alias::new("leases"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("database_name")).string().not_null())
            .col(ColumnDef::new(Alias::new("role_name")).string().not_null())
            .col(ColumnDef::new(Alias::new("subject")).string().not_null())
            .col(ColumnDef::new(Alias::new("token_jti")).string().not_null())
            .col(ColumnDef::new(Alias::new("issue_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("expire_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("max_expire_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("revoke_time_ms")).big_integer().null())
            .col(ColumnDef::new(Alias::new("revoke_attempts")).big_integer().not_null().default(0))
            .col(ColumnDef::new(Alias::new("next_attempt_ms")).big_integer().not_null().default(0))
            .col(ColumnDef::new(Alias::new("last_error")).text().null())
            .to_owned()
    },
    indexes: || {
        vec![
            Index::create()
                .name("leases_by_expiry")
                .table(Alias::new("leases"))
                .col(Alias::new("expire_time_ms"))
                .if_not_exists()
                .to_owned(),
            Index::create().name("leases_by_token").table(Alias::new("leases")).col(Alias::new("token_jti")).if_not_exists().to_owned(),
        ]
    },
};

/// Each workload's policy as last compiled from its spec (at a bootstrap
/// token's issue): its scopes as a JSON array.
const CREATE_POLICIES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000008_create_policies",
    table: || {
        Table::create()
            .table(Alias::new("policies"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("scopes")).text().not_null())
            .col(ColumnDef::new(Alias::new("compile_time_ms")).big_integer().not_null())
            .primary_key(Index::create().col(Alias::new("environment")).col(Alias::new("workload")))
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// How often each subject used each grant: counted from the read events,
/// so that grants never used can be reported.
const CREATE_GRANT_USES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000009_create_grant_uses",
    table: || {
        Table::create()
            .table(Alias::new("grant_uses"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("subject")).string().not_null())
            .col(ColumnDef::new(Alias::new("scope")).string().not_null())
            .col(ColumnDef::new(Alias::new("use_count")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("first_use_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("last_use_ms")).big_integer().not_null())
            .primary_key(Index::create().col(Alias::new("subject")).col(Alias::new("scope")))
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// The internal CA's keys: the certificate, and the private key (PKCS#8)
/// sealed under the root key `root_key_id`. The newest unretired one signs.
const CREATE_CERTIFICATE_AUTHORITIES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000010_create_certificate_authorities",
    table: || {
        Table::create()
            .table(Alias::new("certificate_authorities"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("certificate_der")).binary().not_null())
            .col(ColumnDef::new(Alias::new("sealed_key")).binary().not_null())
            .col(ColumnDef::new(Alias::new("root_key_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("expire_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("retire_time_ms")).big_integer().null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Certificates the CA issued that renew themselves (`RenewCertificate`),
/// by the SHA-256 of their DER: the token whose enrolment they carry on
/// (`enrolled_by`, a `tokens.jti`), how long renewals may go on (null: as
/// long as that token is not revoked), its public key's hash and PEM (a
/// renewal asked again gets the same answer) and what renewed it
/// (`replaced_by`: each renews once). Rows go once expired.
const CREATE_CERTIFICATES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261129_000002_create_certificates",
    table: || {
        Table::create()
            .table(Alias::new("certificates"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("fingerprint")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("spiffe_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("enrolled_by")).string().not_null())
            .col(ColumnDef::new(Alias::new("renew_until_ms")).big_integer().null())
            .col(ColumnDef::new(Alias::new("expire_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("key_hash")).string().not_null())
            .col(ColumnDef::new(Alias::new("certificate_pem")).text().not_null())
            .col(ColumnDef::new(Alias::new("authority_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("replaced_by")).string().null())
            .to_owned()
    },
    // Each issue deletes the expired rows.
    indexes: || {
        vec![
            Index::create()
                .name("certificates_by_expiry")
                .table(Alias::new("certificates"))
                .col(Alias::new("expire_time_ms"))
                .if_not_exists()
                .to_owned(),
        ]
    },
};

/// A workload identity's proved artifact digest (its `dig` claim), so that
/// renewals and listings keep it; null for every other token.
const TOKEN_ARTIFACT: paved_store::AddColumns = paved_store::AddColumns {
    name: "m20261207_000001_token_artifact",
    table: "tokens",
    columns: || vec![ColumnDef::new(Alias::new("artifact_digest")).string().to_owned()],
    backfill: &[],
};
