//! Leases: what the broker handed out and takes back — today a database
//! role per lease (`database/<name>/<id>`). A lease is recorded before its
//! role exists, so a broker that stops half-way still revokes it; it ends
//! when its expiry passes (also after a restart: [`run`] looks at the
//! table, not at timers), when it is revoked, or when the token that asked
//! for it is revoked. A revocation is done only once the role is verified
//! gone; a failed one is retried with backoff and reported.

mod lease;
pub(crate) mod store;

pub use lease::Lease;

use crate::act::Act;
use crate::clock::{ms, now_ms};
use crate::database::{DatabaseError, Databases};
use crate::{event, tokens};
use paved_stream::outbox::Relay;
use paved_token::Claims;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::time::Duration;

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
        let lease = Lease {
            lease_id: format!("database/{name}/{id}"),
            database: name.to_string(),
            role: format!("paved_{id}"),
            subject: caller.sub.clone(),
            token_id: caller.jti.clone(),
            issue_time_ms: now,
            expire_time_ms: expire,
            max_expire_time_ms: max_expire,
            revoke_time_ms: None,
            revoke_attempts: 0,
            last_error: String::new(),
        };
        let txn = self.db.begin().await?;
        // A revocation of the token either committed before (refused here)
        // or waits for this commit and then finds the lease.
        if !tokens::store::revoked_among(&txn, &[caller.jti.as_str()]).await?.is_empty() {
            event::record(&txn, Act::new("database.denied", &caller.sub, name, &[], "the token that asked is revoked")).await?;
            txn.commit().await?;
            self.relay.wake();
            return Err(LeaseError::TokenRevoked(caller.jti.clone()));
        }
        // Recorded first: a broker stopping before the role exists still
        // revokes it (dropping a role that is not there is a success).
        store::insert(&txn, &lease).await?;
        let why = format!("role {} on {}", lease.role, config.target);
        event::record(&txn, Act::new("lease.issued", &caller.sub, &lease.lease_id, &[], &why)).await?;
        txn.commit().await?;
        self.relay.wake();
        let password = password();
        if let Err(e) = self.databases.create_role(name, &lease.role, &password, expire).await {
            // Nothing was handed out: the lease is due now.
            let _ = store::due_now(&self.db, &lease.lease_id, now).await;
            self.wake();
            return Err(e.into());
        }
        // Revoked since its commit (its token, or by prefix), perhaps before
        // the role existed, so that nothing was dropped: due again, for the
        // loop to drop the role, whose password never leaves.
        if !self.lease(&lease.lease_id).await?.live(now_ms()) {
            store::due_now(&self.db, &lease.lease_id, now).await?;
            self.wake();
            return Err(LeaseError::Revoked(lease.lease_id));
        }
        Ok(Credentials { username: lease.role.clone(), password, lease })
    }

    pub async fn lease(&self, id: &str) -> Result<Lease, LeaseError> {
        store::find(&self.db, id).await?.ok_or_else(|| LeaseError::NotFound(id.to_string()))
    }

    /// Extends `id` to `increment` from now (the database's default when
    /// None), never past its maximum.
    pub async fn renew(&self, actor: &str, id: &str, increment: Option<Duration>) -> Result<Lease, LeaseError> {
        let mut found = self.lease(id).await?;
        let now = now_ms();
        if !found.live(now) {
            return Err(LeaseError::Revoked(id.to_string()));
        }
        let (config, _) = self.databases.pool(&found.database).await?;
        let expire = Ord::min(now + ms(increment.unwrap_or(config.default_ttl)), found.max_expire_time_ms);
        // The role first: a lease never says longer than its role can log in.
        self.databases.extend(&found.database, &found.role, expire).await?;
        let txn = self.db.begin().await?;
        if !store::extend(&txn, id, expire, now).await? {
            return Err(LeaseError::Revoked(id.to_string()));
        }
        event::record(&txn, Act::new("lease.renewed", actor, id, &[], "")).await?;
        txn.commit().await?;
        self.relay.wake();
        found.expire_time_ms = expire;
        Ok(found)
    }

    /// Revokes the live leases `id` names exactly, or all under it when
    /// `prefix`; returns how many were revoked and how many failed (those
    /// are retried with backoff).
    pub async fn revoke(&self, actor: &str, id: &str, prefix: bool) -> Result<(u32, u32), LeaseError> {
        let found = store::unrevoked(&self.db, id, prefix).await?;
        if found.is_empty() && !prefix {
            // Already revoked, or never was.
            self.lease(id).await?;
            return Err(LeaseError::Revoked(id.to_string()));
        }
        let (mut revoked, mut failed) = (0, 0);
        for lease in &found {
            if self.revoke_one(actor, lease, "revoked").await? {
                revoked += 1;
            } else {
                failed += 1;
            }
        }
        Ok((revoked, failed))
    }

    /// Drops the role of one lease and records the outcome; true when it is
    /// verified gone.
    async fn revoke_one(&self, actor: &str, lease: &Lease, why: &str) -> Result<bool, LeaseError> {
        let id = lease.lease_id.as_str();
        let attempts = i64::from(lease.revoke_attempts);
        let dropped = self.databases.drop_role(&lease.database, &lease.role).await;
        let now = now_ms();
        let txn = self.db.begin().await?;
        let act = match &dropped {
            Ok(()) => {
                store::revoked(&txn, id, now, store::Outcome::Revoked).await?;
                Act::new("lease.revoked", actor, id, &[], why)
            }
            Err(e) => {
                let wait = RETRY_FIRST.saturating_mul(1u32 << attempts.clamp(0, 16) as u32).min(RETRY_MAX);
                // The database server's words name its host: logged under an
                // id, and only the id goes where the holder or an auditor reads.
                let error_id = paved_grpc::status::error_id();
                tracing::error!(lease = %id, error_id, attempts = attempts + 1, error = %e, "a lease's revocation failed; retrying in {wait:?}");
                let error = format!("the database server refused or could not be reached (error id {error_id})");
                let failed = store::Outcome::Failed {
                    attempts: attempts + 1,
                    next_attempt: now + ms(wait),
                    error: &error,
                    expire: lease.expire_time_ms,
                };
                store::revoked(&txn, id, now, failed).await?;
                let why = format!("attempt {}: {error}; retrying in {} s", attempts + 1, wait.as_secs());
                Act::new("lease.revoke_failed", actor, id, &[], &why)
            }
        };
        event::record(&txn, act).await?;
        txn.commit().await?;
        self.relay.wake();
        Ok(dropped.is_ok())
    }

    /// Revokes leases that are due (expired, or their token revoked) and
    /// whose retry time has come; returns how many were looked at.
    pub async fn revoke_due(&self) -> Result<usize, LeaseError> {
        let due = store::due(&self.db, now_ms(), BATCH).await?;
        for lease in &due {
            self.revoke_one("paved", lease, "expired").await?;
        }
        Ok(due.len())
    }

    /// Leases under `prefix`, newest first.
    pub async fn list(&self, prefix: &str, size: u64, offset: u64) -> Result<Vec<Lease>, LeaseError> {
        Ok(store::list(&self.db, prefix, size, offset).await?)
    }
}

/// Revokes due leases until `shutdown`: every `LOOK_EVERY`, at once when
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
