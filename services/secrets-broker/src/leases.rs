//! Leases: what the broker handed out and takes back — today a database
//! role per lease (`database/<name>/<id>`). A lease is recorded before its
//! role exists, so a broker that stops half-way still revokes it; it ends
//! when its expiry passes (also after a restart: [`run`] looks at the
//! table, not at timers), when it is revoked, or when the token that asked
//! for it is revoked. A revocation is done only once the role is verified
//! gone; a failed one is retried with backoff and reported.

use crate::{
    authority::{event, events, revoked_among},
    database::{DatabaseError, Databases},
};
use crate::{ms, now_ms};
use paved_proto::{
    secrets_broker::v1::{BrokerActed, Lease},
    timestamp_from_millis,
};
use paved_stream::outbox::Relay;
use paved_token::Claims;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use std::time::Duration;

const TABLE: &str = "leases";
/// The longest between two looks for due leases (a revoked token's leases
/// are due at once and found within it).
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// Retry backoff for a failed revocation: 1 s, doubling, at most 5 min.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Leases revoked per look.
const BATCH: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {0} not found")]
    NotFound(String),
    #[error("lease {0} is revoked")]
    Revoked(String),
    /// The token that asked was revoked before verifiers knew.
    #[error("token {0} is revoked")]
    TokenRevoked(String),
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

impl From<DbErr> for LeaseError {
    fn from(e: DbErr) -> Self {
        Self::Database(DatabaseError::Store(e))
    }
}

/// Credentials handed out once.
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub lease: Lease,
}

#[derive(Clone)]
pub struct Leases {
    db: DatabaseConnection,
    relay: Relay,
    databases: Databases,
    /// Rung when a lease becomes due early (revoked token).
    due: std::sync::Arc<tokio::sync::Notify>,
}

fn password() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

/// Leases of these tokens are due now: called in the transaction that
/// revokes the tokens, so a revoked identity keeps no credentials.
pub async fn expire_for_tokens<C: ConnectionTrait>(conn: &C, tokens: &[String], now: i64) -> Result<u64, DbErr> {
    let mut expired = 0;
    for chunk in tokens.chunks(paved_store::CHUNK) {
        let update = Query::update()
            .table(Alias::new(TABLE))
            .value(Alias::new("expire_time_ms"), now)
            .and_where(Expr::col(Alias::new("token_jti")).is_in(chunk.iter().map(String::as_str)))
            .and_where(Expr::col(Alias::new("revoke_time_ms")).is_null())
            .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now))
            .to_owned();
        expired += conn.execute(&update).await?.rows_affected();
    }
    Ok(expired)
}

impl Leases {
    pub fn new(db: DatabaseConnection, relay: Relay, databases: Databases) -> Self {
        Self { db, relay, databases, due: Default::default() }
    }

    pub fn databases(&self) -> &Databases {
        &self.databases
    }

    /// Something may be due now (a token was revoked): look at once.
    pub fn wake(&self) {
        self.due.notify_one();
    }

    /// A role of its own on database `name` for `caller`, for `ttl` (the
    /// database's default when None), never past the database's maximum
    /// nor past the caller's token's renewable_until.
    pub async fn issue_database(&self, caller: &Claims, name: &str, ttl: Option<Duration>) -> Result<Credentials, LeaseError> {
        let (config, _) = self.databases.pool(name).await?;
        let now = now_ms();
        let token_until = if caller.ren > 0 { caller.ren } else { caller.exp }.saturating_mul(1000);
        let max_expire = Ord::min(now + ms(config.max_ttl), token_until);
        let expire = Ord::min(now + ms(ttl.unwrap_or(config.default_ttl).min(config.max_ttl)), max_expire);
        let id = uuid::Uuid::now_v7().simple().to_string();
        let lease_id = format!("database/{name}/{id}");
        let role = format!("paved_{id}");
        // Recorded first: a broker stopping before the role exists still
        // revokes it (dropping a role that is not there is a success).
        let insert = Query::insert()
            .into_table(Alias::new(TABLE))
            .columns(
                ["id", "database_name", "role_name", "subject", "token_jti", "issue_time_ms", "expire_time_ms", "max_expire_time_ms"]
                    .map(Alias::new),
            )
            .values_panic([
                lease_id.clone().into(),
                name.into(),
                role.clone().into(),
                caller.sub.clone().into(),
                caller.jti.clone().into(),
                now.into(),
                expire.into(),
                max_expire.into(),
            ])
            .to_owned();
        let txn = self.db.begin().await?;
        // A revocation of the token either committed before (refused here)
        // or waits for this commit and then finds the lease.
        if !revoked_among(&txn, &[caller.jti.as_str()]).await?.is_empty() {
            event(&txn, "database.denied", &caller.sub, name, &[], "the token that asked is revoked").await?;
            txn.commit().await?;
            self.relay.wake();
            return Err(LeaseError::TokenRevoked(caller.jti.clone()));
        }
        txn.execute(&insert).await?;
        event(&txn, "lease.issued", &caller.sub, &lease_id, &[], &format!("role {role} on {}", config.target)).await?;
        txn.commit().await?;
        self.relay.wake();
        let password = password();
        if let Err(e) = self.databases.create_role(name, &role, &password, expire).await {
            // Nothing was handed out: the lease is due now.
            let _ = self.db.execute(&due_now(&lease_id, now)).await;
            self.wake();
            return Err(e.into());
        }
        // Revoked since its commit (its token, or by prefix), perhaps before
        // the role existed, so that nothing was dropped: due again, for the
        // loop to drop the role, whose password never leaves.
        if !live(&self.record(&lease_id).await?.0, now_ms()) {
            self.db.execute(&due_now(&lease_id, now)).await?;
            self.wake();
            return Err(LeaseError::Revoked(lease_id));
        }
        let lease = Lease {
            lease_id,
            subject: caller.sub.clone(),
            token_id: caller.jti.clone(),
            issue_time: Some(timestamp_from_millis(now)),
            expire_time: Some(timestamp_from_millis(expire)),
            max_expire_time: Some(timestamp_from_millis(max_expire)),
            ..Default::default()
        };
        Ok(Credentials { username: role, password, lease })
    }

    pub async fn lease(&self, id: &str) -> Result<Lease, LeaseError> {
        Ok(self.record(id).await?.0)
    }

    /// The lease, with its database and role names.
    async fn record(&self, id: &str) -> Result<(Lease, String, String), LeaseError> {
        let query = select().and_where(Expr::col(Alias::new("id")).eq(id)).to_owned();
        let row = self.db.query_one(&query).await?.ok_or_else(|| LeaseError::NotFound(id.to_string()))?;
        Ok((lease(&row)?, row.try_get("", "database_name")?, row.try_get("", "role_name")?))
    }

    /// Extends `id` to `increment` from now (the database's default when
    /// None), never past its maximum.
    pub async fn renew(&self, actor: &str, id: &str, increment: Option<Duration>) -> Result<Lease, LeaseError> {
        let (mut found, name, role) = self.record(id).await?;
        let now = now_ms();
        if !live(&found, now) {
            return Err(LeaseError::Revoked(id.to_string()));
        }
        let (config, _) = self.databases.pool(&name).await?;
        let expire = Ord::min(now + ms(increment.unwrap_or(config.default_ttl)), expire_of(&found.max_expire_time));
        // The role first: a lease never says longer than its role can log in.
        self.databases.extend(&name, &role, expire).await?;
        let txn = self.db.begin().await?;
        let update = Query::update()
            .table(Alias::new(TABLE))
            .value(Alias::new("expire_time_ms"), expire)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .and_where(Expr::col(Alias::new("revoke_time_ms")).is_null())
            .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now))
            .to_owned();
        if txn.execute(&update).await?.rows_affected() == 0 {
            return Err(LeaseError::Revoked(id.to_string()));
        }
        event(&txn, "lease.renewed", actor, id, &[], "").await?;
        txn.commit().await?;
        self.relay.wake();
        found.expire_time = Some(timestamp_from_millis(expire));
        Ok(found)
    }

    /// Revokes the live leases `id` names exactly, or all under it when
    /// `prefix`; returns how many were revoked and how many failed (those
    /// are retried with backoff).
    pub async fn revoke(&self, actor: &str, id: &str, prefix: bool) -> Result<(u32, u32), LeaseError> {
        let mut query = select().and_where(Expr::col(Alias::new("revoke_time_ms")).is_null()).to_owned();
        if prefix {
            query.and_where(Expr::col(Alias::new("id")).like(crate::secrets::like_prefix(id)));
        } else {
            query.and_where(Expr::col(Alias::new("id")).eq(id));
        }
        let rows = self.db.query_all(&query).await?;
        if rows.is_empty() && !prefix {
            // Already revoked, or never was.
            self.lease(id).await?;
            return Err(LeaseError::Revoked(id.to_string()));
        }
        let (mut revoked, mut failed) = (0, 0);
        for row in rows {
            if self.revoke_row(actor, &row, "revoked").await? {
                revoked += 1;
            } else {
                failed += 1;
            }
        }
        Ok((revoked, failed))
    }

    /// Drops the role of one lease row and records the outcome; true when
    /// it is verified gone.
    async fn revoke_row(&self, actor: &str, row: &sea_orm::QueryResult, why: &str) -> Result<bool, LeaseError> {
        let (id, name, role): (String, String, String) =
            (row.try_get("", "id")?, row.try_get("", "database_name")?, row.try_get("", "role_name")?);
        let (attempts, expire): (i64, i64) = (row.try_get("", "revoke_attempts")?, row.try_get("", "expire_time_ms")?);
        let dropped = self.databases.drop_role(&name, &role).await;
        let now = now_ms();
        let txn = self.db.begin().await?;
        let mut update = Query::update().table(Alias::new(TABLE)).and_where(Expr::col(Alias::new("id")).eq(id.as_str())).to_owned();
        let outcome = match &dropped {
            Ok(()) => {
                update.value(Alias::new("revoke_time_ms"), now).value(Alias::new("last_error"), Option::<String>::None);
                BrokerActed { action: "lease.revoked".into(), actor: actor.into(), target: id.clone(), scopes: vec![], reason: why.into() }
            }
            Err(e) => {
                let wait = RETRY_FIRST.saturating_mul(1u32 << attempts.clamp(0, 16) as u32).min(RETRY_MAX);
                tracing::error!(lease = %id, attempts = attempts + 1, error = %e, "a lease's revocation failed; retrying in {wait:?}");
                update
                    .value(Alias::new("revoke_attempts"), attempts + 1)
                    .value(Alias::new("next_attempt_ms"), now + ms(wait))
                    .value(Alias::new("last_error"), e.to_string())
                    // Due, if it was not: retried by the loop.
                    .value(Alias::new("expire_time_ms"), Ord::min(expire, now));
                BrokerActed {
                    action: "lease.revoke_failed".into(),
                    actor: actor.into(),
                    target: id.clone(),
                    scopes: vec![],
                    reason: format!("attempt {}: {e}; retrying in {} s", attempts + 1, wait.as_secs()),
                }
            }
        };
        txn.execute(&update).await?;
        events(&txn, &[outcome]).await?;
        txn.commit().await?;
        self.relay.wake();
        Ok(dropped.is_ok())
    }

    /// Revokes leases that are due (expired, or their token revoked) and
    /// whose retry time has come; returns how many were looked at.
    pub async fn revoke_due(&self) -> Result<usize, LeaseError> {
        let now = now_ms();
        let query = select()
            .and_where(Expr::col(Alias::new("revoke_time_ms")).is_null())
            .and_where(Expr::col(Alias::new("expire_time_ms")).lte(now))
            .and_where(Expr::col(Alias::new("next_attempt_ms")).lte(now))
            .order_by(Alias::new("expire_time_ms"), Order::Asc)
            .limit(BATCH)
            .to_owned();
        let rows = self.db.query_all(&query).await?;
        for row in &rows {
            self.revoke_row("paved", row, "expired").await?;
        }
        Ok(rows.len())
    }

    /// Leases under `prefix`, newest first.
    pub async fn list(&self, prefix: &str, size: u64, offset: u64) -> Result<Vec<Lease>, LeaseError> {
        let query = select()
            .and_where(Expr::col(Alias::new("id")).like(crate::secrets::like_prefix(prefix)))
            .order_by(Alias::new("issue_time_ms"), Order::Desc)
            .order_by(Alias::new("id"), Order::Asc)
            .limit(size)
            .offset(offset)
            .to_owned();
        Ok(self.db.query_all(&query).await?.iter().map(lease).collect::<Result<_, _>>()?)
    }
}

/// Revokes due leases until `shutdown`: every [`LOOK_EVERY`], at once when
/// woken, again at once while a batch was full.
pub async fn run(leases: Leases, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        let full = match leases.revoke_due().await {
            Ok(n) => n as u64 == BATCH,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for due leases; retrying");
                false
            }
        };
        if full {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = leases.due.notified() => {}
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// Due for the loop to drop its role, even if revoked already (whoever
/// revoked it may have found no role yet).
fn due_now(id: &str, now: i64) -> sea_orm::sea_query::UpdateStatement {
    Query::update()
        .table(Alias::new(TABLE))
        .value(Alias::new("expire_time_ms"), now)
        .value(Alias::new("revoke_time_ms"), Option::<i64>::None)
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned()
}

fn expire_of(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, paved_proto::millis_from_timestamp)
}

/// Neither revoked nor past its expiry at `now`.
fn live(lease: &Lease, now: i64) -> bool {
    lease.revoke_time.is_none() && expire_of(&lease.expire_time) > now
}

fn select() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns(
            [
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
                "last_error",
            ]
            .map(Alias::new),
        )
        .from(Alias::new(TABLE))
        .to_owned()
}

fn lease(row: &sea_orm::QueryResult) -> Result<Lease, DbErr> {
    let revoked: Option<i64> = row.try_get("", "revoke_time_ms")?;
    let attempts: i64 = row.try_get("", "revoke_attempts")?;
    Ok(Lease {
        lease_id: row.try_get("", "id")?,
        subject: row.try_get("", "subject")?,
        token_id: row.try_get("", "token_jti")?,
        issue_time: Some(timestamp_from_millis(row.try_get("", "issue_time_ms")?)),
        expire_time: Some(timestamp_from_millis(row.try_get("", "expire_time_ms")?)),
        max_expire_time: Some(timestamp_from_millis(row.try_get("", "max_expire_time_ms")?)),
        revoke_time: revoked.map(timestamp_from_millis),
        revoke_attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
        last_error: row.try_get::<Option<String>>("", "last_error")?.unwrap_or_default(),
    })
}
