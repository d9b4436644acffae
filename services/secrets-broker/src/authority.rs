//! The token authority: signing keys (sealed under the root key), the key set
//! every verifier trusts, and the record of every token issued — renewed,
//! revoked and listed by id, never by value.
//!
//! Every change is committed with its `BrokerActed` event in one
//! transaction.

use crate::seal::{Keyring, SealError, rewrap_named};
use crate::{ms, now_ms};
use paved_proto::{
    events::v1::envelope::Payload,
    secrets_broker::v1::{BrokerActed, GetKeySetResponse as PublishedKeySet, PublicKey, RevokedToken, TokenInfo},
    timestamp_from_millis,
};
use paved_stream::outbox::Relay;
use paved_token::{Claims, Issuer};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A signing key is replaced after this long.
pub const ROTATE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest a token may live before renewal; a retired key stays in the
/// key set this long (plus the leeway), so every token it signed verifies
/// until it expires.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// How long renewals may extend a token by default, and at most.
pub const DEFAULT_RENEWABLE: Duration = Duration::from_secs(8 * 3600);
pub const MAX_RENEWABLE: Duration = Duration::from_secs(30 * 24 * 3600);
/// A new signing key is published this long before it signs: longer than
/// a verifier's poll plus the key set's freshness.
pub const PUBLISH_AHEAD: Duration = Duration::from_secs(3);
/// A published key set is rebuilt at most this often (another replica's
/// revocation shows within it).
const KEY_SET_FRESH: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("signing key {0}: {1}")]
    Sealed(String, SealError),
    #[error("token {0} not found")]
    NotFound(String),
    #[error("token {0} is revoked")]
    Revoked(String),
    #[error("token {0} can no longer be renewed")]
    NotRenewable(String),
}

/// What a new token grants.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token that asked for it: revoking it revokes this one too.
    pub parent: Option<String>,
    pub subject: String,
    pub scopes: Vec<String>,
    pub audience: String,
    pub ttl: Duration,
    pub renewable: Duration,
}

/// Which tokens to revoke.
#[derive(Debug, Clone)]
pub enum Target {
    Token(String),
    Subject(String),
    /// Every token issued from this parent (a bootstrap token's id).
    IssuedFrom(String),
}

#[derive(Clone)]
pub struct Authority {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    keys: Arc<Keyring>,
    relay: Relay,
    /// Events of reads and denials on their way to the outbox (see [`write_acted`]).
    acted: tokio::sync::mpsc::Sender<BrokerActed>,
    /// How many events were queued, and how many of them are committed.
    queued: std::sync::atomic::AtomicU64,
    committed: tokio::sync::watch::Receiver<u64>,
    /// Token records on their way to the database (see [`write_issued`]).
    issued: tokio::sync::mpsc::Sender<Issued>,
    /// The key in use, as last read.
    active: tokio::sync::Mutex<Option<Active>>,
    published: Mutex<Option<Published>>,
}

struct Active {
    issuer: Arc<Issuer>,
    read_at: Instant,
}

/// A key set as published, and as the broker verifies with it.
#[derive(Clone)]
struct Published {
    at: Instant,
    set: Arc<PublishedKeySet>,
    trust: Arc<(paved_token::KeySet, HashSet<String>)>,
}

const KEYS: &str = "signing_keys";
const TOKENS: &str = "tokens";

impl Authority {
    /// Must be called within a Tokio runtime: it starts the task that
    /// records issued tokens (it ends when the last clone is dropped).
    pub fn new(db: DatabaseConnection, keys: Arc<Keyring>, relay: Relay) -> Self {
        let (issued, queue) = tokio::sync::mpsc::channel(4 * ISSUE_BATCH);
        tokio::spawn(write_issued(db.clone(), relay.clone(), queue));
        let (acted, events) = tokio::sync::mpsc::channel(4 * ISSUE_BATCH);
        let (committed_tx, committed) = tokio::sync::watch::channel(0);
        tokio::spawn(write_acted(db.clone(), relay.clone(), events, committed_tx));
        let inner = Inner {
            db,
            keys,
            relay,
            acted,
            queued: Default::default(),
            committed,
            issued,
            active: Default::default(),
            published: Default::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    pub fn keys(&self) -> &Arc<Keyring> {
        &self.inner.keys
    }

    /// Issued tokens waiting for the writer, not yet in a batch.
    pub fn issues_waiting(&self) -> usize {
        self.inner.issued.max_capacity() - self.inner.issued.capacity()
    }

    pub fn relay(&self) -> &Relay {
        &self.inner.relay
    }

    /// Records what changed nothing (a read, a denial): the caller does not
    /// wait for the commit, only for a place in the queue, and for no longer
    /// than [`RECORD_WAIT`]. False when the event could not be queued (the
    /// database has been away long enough to fill the queue): a caller that
    /// must not act unrecorded, such as a read, refuses.
    pub async fn record(&self, action: &str, actor: &str, target: &str, reason: &str) -> bool {
        let acted = BrokerActed {
            action: action.to_string(),
            actor: actor.to_string(),
            target: target.to_string(),
            scopes: Vec::new(),
            reason: reason.to_string(),
        };
        match self.inner.acted.send_timeout(acted, RECORD_WAIT).await {
            Ok(()) => {
                self.inner.queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                true
            }
            Err(_) => {
                tracing::error!(action, target, "the event queue is full or stopped: event not recorded");
                false
            }
        }
    }

    /// Waits (up to `limit`) until every event queued so far is committed:
    /// at shutdown, so that the last reads are not lost with the process.
    pub async fn flush(&self, limit: Duration) -> bool {
        let queued = self.inner.queued.load(std::sync::atomic::Ordering::SeqCst);
        let mut committed = self.inner.committed.clone();
        tokio::time::timeout(limit, committed.wait_for(|n| *n >= queued)).await.is_ok_and(|r| r.is_ok())
    }

    /// Re-seals signing keys sealed under an older root key; returns how many.
    pub async fn rewrap(&self) -> Result<usize, AuthorityError> {
        let done = rewrap_named(&self.inner.db, &self.inner.keys, (KEYS, "sealed_seed"), "kid", |kid| format!("signing-key:{kid}")).await?;
        done.map_err(|(kid, e)| AuthorityError::Sealed(kid, e))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// The key to sign with: the newest one whose time has come (a new key
    /// is published [`PUBLISH_AHEAD`] before it signs, so every verifier
    /// knows it first). Read again from the database every
    /// [`KEY_SET_FRESH`], so a rotation by another replica is followed; a
    /// key older than [`ROTATE_AFTER`] is replaced.
    async fn issuer(&self) -> Result<Arc<Issuer>, AuthorityError> {
        let mut active = self.inner.active.lock().await;
        if let Some(a) = active.as_ref().filter(|a| a.read_at.elapsed() < KEY_SET_FRESH) {
            return Ok(a.issuer.clone());
        }
        let now = now_ms();
        let newest = |activated: bool| {
            let mut q = Query::select()
                .columns(["kid", "sealed_seed", "root_key_id", "create_time_ms"].map(Alias::new))
                .from(Alias::new(KEYS))
                .order_by(Alias::new("create_time_ms"), Order::Desc)
                .limit(1)
                .to_owned();
            let column = Expr::col(Alias::new("create_time_ms"));
            q.and_where(if activated { column.lte(now) } else { column.gt(now) });
            q
        };
        let pending = self.inner.db.query_one(&newest(false)).await?.is_some();
        let current = match self.inner.db.query_one(&newest(true)).await? {
            Some(row) => {
                let kid: String = row.try_get("", "kid")?;
                let created: i64 = row.try_get("", "create_time_ms")?;
                let (sealed, root_key_id): (Vec<u8>, String) = (row.try_get("", "sealed_seed")?, row.try_get("", "root_key_id")?);
                let purpose = format!("signing-key:{kid}");
                let seed = self.inner.keys.open(&sealed, &purpose, &root_key_id).map_err(|e| AuthorityError::Sealed(kid.clone(), e))?;
                let seed: [u8; 32] = seed.try_into().map_err(|_| AuthorityError::Sealed(kid.clone(), SealError::Corrupt))?;
                Some((Arc::new(Issuer::from_seed(&seed)), created))
            }
            None => None,
        };
        let issuer = match current {
            Some((issuer, created)) => {
                if now - created >= ms(ROTATE_AFTER) && !pending {
                    self.rotate_at("paved", now + ms(PUBLISH_AHEAD)).await?;
                }
                issuer
            }
            // The first key: no verifier holds anything yet.
            None => self.rotate_at("paved", now).await?,
        };
        *active = Some(Active { issuer: issuer.clone(), read_at: Instant::now() });
        Ok(issuer)
    }

    /// Publishes a new signing key now; it signs from [`PUBLISH_AHEAD`] on,
    /// when the current one retires. Returns its id.
    pub async fn rotate(&self, actor: &str) -> Result<String, AuthorityError> {
        let issuer = self.rotate_at(actor, now_ms() + ms(PUBLISH_AHEAD)).await?;
        Ok(issuer.kid.clone())
    }

    /// A new key signing from `activate_at` (its `create_time_ms`); the keys
    /// before it retire then and stay published until their last token has
    /// expired.
    async fn rotate_at(&self, actor: &str, activate_at: i64) -> Result<Arc<Issuer>, AuthorityError> {
        let issuer = Issuer::generate();
        let txn = self.inner.db.begin().await?;
        let retire = Query::update()
            .table(Alias::new(KEYS))
            .value(Alias::new("retire_time_ms"), activate_at)
            .value(Alias::new("drop_time_ms"), activate_at + ms(MAX_TTL) + paved_token::LEEWAY_SECS * 1000)
            .and_where(Expr::col(Alias::new("retire_time_ms")).is_null())
            .to_owned();
        txn.execute(&retire).await?;
        let insert = Query::insert()
            .into_table(Alias::new(KEYS))
            .columns(["kid", "public_key", "sealed_seed", "root_key_id", "create_time_ms"].map(Alias::new))
            .values_panic([
                issuer.kid.clone().into(),
                issuer.public().to_bytes().to_vec().into(),
                self.inner.keys.current().seal(&issuer.seed(), &format!("signing-key:{}", issuer.kid)).into(),
                self.inner.keys.current().id.clone().into(),
                activate_at.into(),
            ])
            .to_owned();
        txn.execute(&insert).await?;
        event(&txn, "signing_key.rotated", actor, &issuer.kid, &[], "").await?;
        txn.commit().await?;
        self.changed();
        tracing::info!(kid = issuer.kid, "new signing key");
        Ok(Arc::new(issuer))
    }

    fn changed(&self) {
        *self.inner.published.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.inner.relay.wake();
    }

    /// The keys verifiers trust (the one in use and retired ones whose
    /// tokens may live) and the revoked tokens not yet expired. Its
    /// version is a hash of its content, so every replica agrees on it.
    pub async fn key_set(&self) -> Result<Arc<PublishedKeySet>, AuthorityError> {
        Ok(self.published().await?.set)
    }

    async fn published(&self) -> Result<Published, AuthorityError> {
        if let Some(published) = self.inner.published.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && published.at.elapsed() < KEY_SET_FRESH
        {
            return Ok(published.clone());
        }
        // A first caller must find a key to trust.
        self.issuer().await?;
        let now = now_ms();
        let keys = Query::select()
            .columns(["kid", "public_key", "create_time_ms", "retire_time_ms"].map(Alias::new))
            .from(Alias::new(KEYS))
            .cond_where(Expr::col(Alias::new("drop_time_ms")).is_null().or(Expr::col(Alias::new("drop_time_ms")).gt(now)))
            .order_by(Alias::new("create_time_ms"), Order::Asc)
            .to_owned();
        let mut set = PublishedKeySet::default();
        for row in self.inner.db.query_all(&keys).await? {
            let retire: Option<i64> = row.try_get("", "retire_time_ms")?;
            set.keys.push(PublicKey {
                key_id: row.try_get("", "kid")?,
                ed25519: row.try_get("", "public_key")?,
                create_time: Some(timestamp_from_millis(row.try_get("", "create_time_ms")?)),
                retire_time: retire.map(timestamp_from_millis),
            });
        }
        let revoked = Query::select()
            .columns(["jti", "expire_time_ms"].map(Alias::new))
            .from(Alias::new(TOKENS))
            .and_where(Expr::col(Alias::new("revoke_time_ms")).is_not_null())
            .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now - paved_token::LEEWAY_SECS * 1000))
            .order_by(Alias::new("jti"), Order::Asc)
            .to_owned();
        for row in self.inner.db.query_all(&revoked).await? {
            set.revoked.push(RevokedToken {
                token_id: row.try_get("", "jti")?,
                expire_time: Some(timestamp_from_millis(row.try_get("", "expire_time_ms")?)),
            });
        }
        set.version = version(&set);
        let trust =
            paved_grpc::auth::trust(&set).map_err(|e| AuthorityError::Database(DbErr::Custom(format!("stored public key: {e}"))))?;
        let published = Published { at: Instant::now(), set: Arc::new(set), trust: Arc::new(trust) };
        *self.inner.published.lock().unwrap_or_else(|e| e.into_inner()) = Some(published.clone());
        Ok(published)
    }

    /// Why a token verified earlier is no longer valid (expired, revoked),
    /// or None.
    pub async fn no_longer_valid(&self, claims: &Claims) -> Option<&'static str> {
        if chrono::Utc::now().timestamp() > claims.exp + paved_token::LEEWAY_SECS {
            return Some("expired");
        }
        match self.published().await {
            Ok(published) if published.trust.1.contains(&claims.jti) => Some("was revoked"),
            Ok(_) => None,
            // The database is away: the token was valid; keep serving.
            Err(_) => None,
        }
    }

    /// The claims of `token` if the key set as published verifies it now
    /// (any audience), else why not.
    pub async fn introspect(&self, token: &str) -> Result<Result<Claims, paved_token::TokenError>, AuthorityError> {
        let trust = self.published().await?.trust;
        let (keys, revoked) = &*trust;
        let now = chrono::Utc::now().timestamp();
        // Verifiers allow other clocks `LEEWAY_SECS` of skew; the issuer's
        // clock is the one that set `exp`, so introspection tells the truth:
        // active means not expired, to the second.
        Ok(keys
            .verify(token, &paved_grpc::auth::AUDIENCES, now, |jti| revoked.contains(jti))
            .and_then(|claims| if now >= claims.exp { Err(paved_token::TokenError::Expired(now - claims.exp)) } else { Ok(claims) }))
    }

    /// Issues a token for `grant` on behalf of `actor`; returns the token
    /// (the only time its value exists outside the holder) and its record.
    pub async fn issue(&self, actor: &str, grant: &Grant) -> Result<(String, TokenInfo), AuthorityError> {
        let issuer = self.issuer().await?;
        let now = now_ms();
        let jti = uuid::Uuid::now_v7().to_string();
        let expire = now + ms(grant.ttl);
        let renewable_until = Ord::max(now + ms(grant.renewable), expire);
        let (done, committed) = tokio::sync::oneshot::channel();
        let record = Issued { jti: jti.clone(), actor: actor.to_string(), grant: grant.clone(), now, expire, renewable_until, done };
        let closed = || AuthorityError::Database(DbErr::Custom("the token writer stopped".into()));
        self.inner.issued.send(record).await.map_err(|_| closed())?;
        // The token exists only once its record and event are committed.
        committed.await.map_err(|_| closed())?.map_err(|e| match e {
            NotRecorded::ParentRevoked(parent) => AuthorityError::Revoked(parent),
            NotRecorded::Database(e) => AuthorityError::Database(DbErr::Custom(e)),
        })?;
        let claims = Claims {
            sub: grant.subject.clone(),
            aud: grant.audience.clone(),
            scp: grant.scopes.clone(),
            iat: now / 1000,
            exp: expire / 1000,
            ren: renewable_until / 1000,
            jti: jti.clone(),
            kid: String::new(),
        };
        let info = TokenInfo {
            token_id: jti,
            subject: grant.subject.clone(),
            scopes: grant.scopes.clone(),
            audience: grant.audience.clone(),
            issue_time: Some(timestamp_from_millis(now)),
            expire_time: Some(timestamp_from_millis(expire)),
            renewable_until: Some(timestamp_from_millis(renewable_until)),
            revoke_time: None,
        };
        Ok((issuer.sign(claims), info))
    }

    /// A later-expiring token for the caller's own (`claims`, verified):
    /// same id, scopes and audience; never past its `renewable_until`.
    pub async fn renew(&self, claims: &Claims, ttl: Option<Duration>) -> Result<(String, TokenInfo), AuthorityError> {
        let issuer = self.issuer().await?;
        let mut info = self.token(&claims.jti).await?.ok_or_else(|| AuthorityError::NotFound(claims.jti.clone()))?;
        if info.revoke_time.is_some() {
            return Err(AuthorityError::Revoked(claims.jti.clone()));
        }
        let until = info.renewable_until.as_ref().map_or(0, paved_proto::millis_from_timestamp);
        let now = now_ms();
        if now >= until {
            return Err(AuthorityError::NotRenewable(claims.jti.clone()));
        }
        // Never longer than the token was issued for.
        let q = Query::select()
            .column(Alias::new("ttl_ms"))
            .from(Alias::new(TOKENS))
            .and_where(Expr::col(Alias::new("jti")).eq(claims.jti.as_str()))
            .to_owned();
        let issued_ttl: i64 = match self.inner.db.query_one(&q).await? {
            Some(row) => row.try_get("", "ttl_ms")?,
            None => ms(DEFAULT_TTL),
        };
        let ttl_ms = ttl.map_or(issued_ttl, |t| Ord::min(ms(t), issued_ttl));
        let expire = Ord::min(now + ttl_ms, until);
        // The record keeps the latest expiry of any copy: a revocation is
        // published until then, so a shorter renewal cannot end it early.
        let stored = Ord::max(expire, info.expire_time.as_ref().map_or(0, paved_proto::millis_from_timestamp));
        let txn = self.inner.db.begin().await?;
        let update = Query::update()
            .table(Alias::new(TOKENS))
            .value(Alias::new("expire_time_ms"), stored)
            .and_where(Expr::col(Alias::new("jti")).eq(claims.jti.as_str()))
            .and_where(Expr::col(Alias::new("revoke_time_ms")).is_null())
            .to_owned();
        if txn.execute(&update).await?.rows_affected() == 0 {
            return Err(AuthorityError::Revoked(claims.jti.clone()));
        }
        event(&txn, "token.renewed", &claims.sub, &claims.jti, &[], "").await?;
        txn.commit().await?;
        self.inner.relay.wake();
        info.expire_time = Some(timestamp_from_millis(expire));
        let renewed = Claims { iat: now / 1000, exp: expire / 1000, ren: until / 1000, kid: String::new(), ..claims.clone() };
        Ok((issuer.sign(renewed), info))
    }

    /// [`Authority::renew`] for a token known by its record (the process
    /// that minted it renews it).
    pub async fn renew_info(&self, info: &TokenInfo) -> Result<(String, TokenInfo), AuthorityError> {
        let claims = Claims {
            sub: info.subject.clone(),
            aud: info.audience.clone(),
            scp: info.scopes.clone(),
            iat: 0,
            exp: 0,
            ren: 0,
            jti: info.token_id.clone(),
            kid: String::new(),
        };
        self.renew(&claims, None).await
    }

    /// Revokes the target's live tokens, and every live token issued with
    /// them, at any depth; returns how many. Verifiers learn of it from the
    /// key set within a poll.
    pub async fn revoke(&self, actor: &str, target: &Target, reason: &str) -> Result<u32, AuthorityError> {
        let revoked = paved_store::retry_conflicts(|| self.revoke_once(actor, target, reason)).await?;
        if let Target::Token(id) = target
            && revoked.is_none()
        {
            return Err(AuthorityError::NotFound(id.clone()));
        }
        self.changed();
        Ok(u32::try_from(revoked.unwrap_or_default()).unwrap_or(u32::MAX))
    }

    /// One transaction of [`Self::revoke`]: how many it revoked, None when
    /// the target token does not exist. Its order of locks (a level, then
    /// its children) may deadlock with another revocation's or with a batch
    /// of issued tokens holding parents; PostgreSQL then aborts one, and
    /// the revocation is run again.
    async fn revoke_once(&self, actor: &str, target: &Target, reason: &str) -> Result<Option<usize>, DbErr> {
        let now = now_ms();
        let txn = self.inner.db.begin().await?;
        let live = match target {
            Target::Token(id) => live(Expr::col(Alias::new("jti")).eq(id.as_str())),
            Target::Subject(subject) => live(Expr::col(Alias::new("subject")).eq(subject.as_str())),
            Target::IssuedFrom(parent) => children(std::slice::from_ref(parent)),
        };
        let mut frontier: Vec<String> = txn.query_all(&live).await?.iter().map(|r| r.try_get("", "jti")).collect::<Result<_, _>>()?;
        if let Target::Token(id) = target
            && frontier.is_empty()
            && self.token_in(&txn, id).await?.is_none()
        {
            return Ok(None);
        }
        // Level by level, each revoked before its children are read: a
        // token being issued with one of them holds its row until it
        // commits (see `record_issued`), so it is either among the children
        // read here or is refused. Only live tokens are revoked and walked,
        // so each is taken once, whatever a concurrent revocation took.
        let mut revoked = Vec::new();
        while !frontier.is_empty() {
            let mut level = Vec::new();
            for chunk in frontier.chunks(paved_store::CHUNK) {
                let update = Query::update()
                    .table(Alias::new(TOKENS))
                    .value(Alias::new("revoke_time_ms"), now)
                    .value(Alias::new("revoke_reason"), reason)
                    .and_where(Expr::col(Alias::new("jti")).is_in(chunk.iter().map(String::as_str)))
                    .and_where(Expr::col(Alias::new("revoke_time_ms")).is_null())
                    .returning_col(Alias::new("jti"))
                    .to_owned();
                for row in txn.query_all(&update).await? {
                    level.push(row.try_get::<String>("", "jti")?);
                }
            }
            let mut next = Vec::new();
            for chunk in level.chunks(paved_store::CHUNK) {
                let acts: Vec<_> = chunk.iter().map(|id| acted("token.revoked", actor, id, &[], reason)).collect();
                events(&txn, &acts).await?;
                for row in txn.query_all(&children(chunk)).await? {
                    next.push(row.try_get::<String>("", "jti")?);
                }
            }
            revoked.extend(level);
            frontier = next;
        }
        // What the tokens leased goes with them (revoked within a look).
        crate::leases::expire_for_tokens(&txn, &revoked, now).await?;
        txn.commit().await?;
        Ok(Some(revoked.len()))
    }

    pub async fn token(&self, jti: &str) -> Result<Option<TokenInfo>, AuthorityError> {
        Ok(self.token_in(&self.inner.db, jti).await?)
    }

    async fn token_in<C: ConnectionTrait>(&self, conn: &C, jti: &str) -> Result<Option<TokenInfo>, DbErr> {
        let query = token_query().and_where(Expr::col(Alias::new("jti")).eq(jti)).to_owned();
        conn.query_one(&query).await?.as_ref().map(token_info).transpose()
    }

    /// Tokens by issue time, newest first.
    pub async fn tokens(&self, subject: &str, size: u64, offset: u64) -> Result<Vec<TokenInfo>, AuthorityError> {
        let mut query = token_query();
        if !subject.is_empty() {
            query.and_where(Expr::col(Alias::new("subject")).eq(subject));
        }
        query.order_by(Alias::new("issue_time_ms"), Order::Desc).order_by(Alias::new("jti"), Order::Asc).limit(size).offset(offset);
        self.inner.db.query_all(&query).await?.iter().map(|row| token_info(row).map_err(AuthorityError::from)).collect()
    }
}

/// Tokens recorded in one transaction at most.
const ISSUE_BATCH: usize = 256;

/// A token to record; `done` hears when it is committed.
struct Issued {
    jti: String,
    actor: String,
    grant: Grant,
    now: i64,
    expire: i64,
    renewable_until: i64,
    done: tokio::sync::oneshot::Sender<Result<(), NotRecorded>>,
}

/// Records issued tokens with their events, as many as are waiting (up to
/// [`ISSUE_BATCH`]) in one transaction: a database commit per token would
/// bound issuing at the commit rate (one connection on SQLite). Each caller
/// still waits for its own record's commit.
async fn write_issued(db: DatabaseConnection, relay: Relay, mut queue: tokio::sync::mpsc::Receiver<Issued>) {
    let mut batch = Vec::with_capacity(ISSUE_BATCH);
    while queue.recv_many(&mut batch, ISSUE_BATCH).await > 0 {
        let result = paved_store::retry_conflicts(|| record_issued(&db, &batch)).await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, tokens = batch.len(), "cannot record issued tokens");
        }
        relay.wake();
        for issued in batch.drain(..) {
            let outcome = match &result {
                Err(e) => Err(NotRecorded::Database(e.to_string())),
                Ok(revoked) => match revoked_parent(&issued, revoked) {
                    Some(parent) => Err(NotRecorded::ParentRevoked(parent.to_string())),
                    None => Ok(()),
                },
            };
            let _ = issued.done.send(outcome);
        }
    }
}

/// The parent of `issued` if it is among `revoked`: such a token is refused.
fn revoked_parent<'a>(issued: &'a Issued, revoked: &HashSet<String>) -> Option<&'a str> {
    issued.grant.parent.as_deref().filter(|p| revoked.contains(*p))
}

/// Why a token was not recorded.
enum NotRecorded {
    /// The token that asked for it was revoked before it committed.
    ParentRevoked(String),
    Database(String),
}

/// Records the tokens of `batch` whose parent is not revoked; returns the
/// revoked parents. The parents' rows are held until the commit (see
/// [`revoked_among`]), so a revocation of one waits for it and then finds
/// its new children.
async fn record_issued(db: &DatabaseConnection, batch: &[Issued]) -> Result<HashSet<String>, DbErr> {
    let txn = db.begin().await?;
    let parents: Vec<&str> = batch.iter().filter_map(|i| i.grant.parent.as_deref()).collect();
    let revoked = revoked_among(&txn, &parents).await?;
    let (recorded, refused): (Vec<&Issued>, Vec<&Issued>) = batch.iter().partition(|i| revoked_parent(i, &revoked).is_none());
    if !recorded.is_empty() {
        let mut insert = Query::insert()
            .into_table(Alias::new(TOKENS))
            .columns(
                ["jti", "parent_jti", "subject", "audience", "scopes", "ttl_ms", "issue_time_ms", "expire_time_ms", "renewable_until_ms"]
                    .map(Alias::new),
            )
            .to_owned();
        for i in &recorded {
            insert.values_panic([
                i.jti.clone().into(),
                i.grant.parent.clone().into(),
                i.grant.subject.clone().into(),
                i.grant.audience.clone().into(),
                serde_json::to_string(&i.grant.scopes).unwrap_or_default().into(),
                ms(i.grant.ttl).into(),
                i.now.into(),
                i.expire.into(),
                i.renewable_until.into(),
            ]);
        }
        txn.execute(&insert).await?;
    }
    let issued = recorded.iter().map(|i| acted("token.issued", &i.actor, &i.jti, &i.grant.scopes, &format!("for {}", i.grant.subject)));
    let denied = refused.iter().filter_map(|i| {
        let parent = revoked_parent(i, &revoked)?;
        Some(acted("token.denied", &i.actor, parent, &i.grant.scopes, &format!("for {}: the token that asked is revoked", i.grant.subject)))
    });
    events(&txn, &issued.chain(denied).collect::<Vec<_>>()).await?;
    txn.commit().await?;
    Ok(revoked)
}

/// Which of `tokens` are revoked. Their rows are held (FOR SHARE on
/// PostgreSQL; SQLite runs one transaction at a time) until `txn` ends, so
/// what `txn` then writes for a token that is not revoked (a child token, a
/// lease) is committed before a revocation of it reads what to take along.
/// Rows are locked in id order, whatever the plan, so that two such
/// transactions never wait on each other crosswise.
pub async fn revoked_among(txn: &DatabaseTransaction, tokens: &[&str]) -> Result<HashSet<String>, DbErr> {
    let mut tokens = tokens.to_vec();
    tokens.sort_unstable();
    tokens.dedup();
    let mut revoked = HashSet::new();
    for chunk in tokens.chunks(paved_store::CHUNK) {
        let mut query = Query::select()
            .columns([Alias::new("jti"), Alias::new("revoke_time_ms")])
            .from(Alias::new(TOKENS))
            .and_where(Expr::col(Alias::new("jti")).is_in(chunk.iter().copied()))
            .order_by(Alias::new("jti"), Order::Asc)
            .to_owned();
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            query.lock_shared();
        }
        for row in txn.query_all(&query).await? {
            if row.try_get::<Option<i64>>("", "revoke_time_ms")?.is_some() {
                revoked.insert(row.try_get::<String>("", "jti")?);
            }
        }
    }
    Ok(revoked)
}

/// How long [`Authority::record`] waits for a place in the queue.
const RECORD_WAIT: Duration = Duration::from_secs(1);

/// Writes queued events, as many as wait, in one transaction each time;
/// counts them in `committed`.
async fn write_acted(
    db: DatabaseConnection,
    relay: Relay,
    mut queue: tokio::sync::mpsc::Receiver<BrokerActed>,
    committed: tokio::sync::watch::Sender<u64>,
) {
    let mut batch = Vec::with_capacity(ISSUE_BATCH);
    while queue.recv_many(&mut batch, ISSUE_BATCH).await > 0 {
        let mut backoff = paved_stream::consumer::Backoff::default();
        // Retried until written: these events are the audit trail of reads.
        loop {
            let written = async {
                let txn = db.begin().await?;
                events(&txn, &batch).await?;
                txn.commit().await
            };
            match written.await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), "cannot record events; retrying");
                    backoff.wait().await;
                }
            }
        }
        committed.send_modify(|n| *n += batch.len() as u64);
        batch.clear();
        relay.wake();
    }
}

/// The ids of live tokens where `condition` holds.
fn live(condition: Expr) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Alias::new("jti"))
        .from(Alias::new(TOKENS))
        .and_where(condition)
        .and_where(Expr::col(Alias::new("revoke_time_ms")).is_null())
        .to_owned()
}

/// The live tokens issued with any of `parents` (served by `tokens_by_parent`).
pub fn children(parents: &[String]) -> sea_orm::sea_query::SelectStatement {
    live(Expr::col(Alias::new("parent_jti")).is_in(parents.iter().map(String::as_str)))
}

fn token_query() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns(
            ["jti", "subject", "audience", "scopes", "issue_time_ms", "expire_time_ms", "renewable_until_ms", "revoke_time_ms"]
                .map(Alias::new),
        )
        .from(Alias::new(TOKENS))
        .to_owned()
}

fn token_info(row: &sea_orm::QueryResult) -> Result<TokenInfo, DbErr> {
    let scopes: String = row.try_get("", "scopes")?;
    let revoked: Option<i64> = row.try_get("", "revoke_time_ms")?;
    Ok(TokenInfo {
        token_id: row.try_get("", "jti")?,
        subject: row.try_get("", "subject")?,
        scopes: serde_json::from_str(&scopes).map_err(|e| DbErr::Custom(format!("scopes of a token: {e}")))?,
        audience: row.try_get("", "audience")?,
        issue_time: Some(timestamp_from_millis(row.try_get("", "issue_time_ms")?)),
        expire_time: Some(timestamp_from_millis(row.try_get("", "expire_time_ms")?)),
        renewable_until: Some(timestamp_from_millis(row.try_get("", "renewable_until_ms")?)),
        revoke_time: revoked.map(timestamp_from_millis),
    })
}

/// FNV-1a over the key set's content: equal sets, equal versions.
fn version(set: &PublishedKeySet) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes.iter().chain(&[0xff]) {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for key in &set.keys {
        feed(key.key_id.as_bytes());
        feed(&key.ed25519);
    }
    for revoked in &set.revoked {
        feed(revoked.token_id.as_bytes());
    }
    // 0 means "nothing known" to callers.
    Ord::max(hash, 1)
}

/// Records what the broker did, in the transaction that did it.
pub async fn event(
    txn: &DatabaseTransaction,
    action: &str,
    actor: &str,
    target: &str,
    scopes: &[String],
    reason: &str,
) -> Result<(), DbErr> {
    events(txn, &[acted(action, actor, target, scopes, reason)]).await
}

fn acted(action: &str, actor: &str, target: &str, scopes: &[String], reason: &str) -> BrokerActed {
    BrokerActed {
        action: action.to_string(),
        actor: actor.to_string(),
        target: target.to_string(),
        scopes: scopes.to_vec(),
        reason: reason.to_string(),
    }
}

/// Records many acts in one statement, and the grants they used.
pub async fn events(txn: &DatabaseTransaction, acts: &[BrokerActed]) -> Result<(), DbErr> {
    let envelopes: Vec<_> = acts
        .iter()
        .map(|a| {
            // `token.issued` → `tokens/<id>`, `signing_key.rotated` → `signing-keys/<kid>`.
            let kind = a.action.split('.').next().unwrap_or("broker").replace('_', "-");
            let subject = format!("{kind}s/{}", a.target);
            paved_stream::event::envelope(
                crate::SOURCE,
                &format!("paved.secrets_broker.v1.{}", a.action),
                subject,
                Payload::BrokerActed(a.clone()),
            )
        })
        .collect();
    paved_stream::outbox::enqueue_all(txn, &paved_stream::stream_name(crate::SOURCE), &envelopes).await?;
    // A grant used is counted with the event that says so, in a savepoint:
    // counting that fails loses a count, never the events (nor the reads
    // that wait on them).
    let uses = crate::policy::uses(acts);
    if uses.is_empty() {
        return Ok(());
    }
    let savepoint = txn.begin().await?;
    match crate::policy::note_uses(&savepoint, uses, chrono::Utc::now().timestamp_millis()).await {
        Ok(()) => savepoint.commit().await,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count grant uses");
            savepoint.rollback().await
        }
    }
}
