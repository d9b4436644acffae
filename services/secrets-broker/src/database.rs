//! Dynamic PostgreSQL credentials: a role of its own per lease, created
//! `LOGIN … VALID UNTIL` as a member of a pre-created NOLOGIN group role
//! that holds the grants, so the broker never grants anything itself.
//! Revoking takes LOGIN away, ends the role's sessions, drops it and checks
//! that it is gone.
//!
//! The admin connection URL is sealed under the root key; statements are
//! never logged (they carry passwords), and errors name the target without
//! its credentials.

use crate::act::Act;
use crate::clock::ms;
use crate::event;
// `schema::Databases` stays qualified: `Databases` is this module's handle.
use crate::schema;
use crate::seal::{Keyring, SealError, rewrap_named};
use paved_stream::outbox::Relay;
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Order, Query},
};
use std::{collections::HashMap, sync::Arc, time::Duration};

pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Connections per target database: role creation is a catalog write, and
/// a few in parallel keep PostgreSQL's commits busy.
const POOL: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("no database {0} is configured")]
    NotFound(String),
    /// The target cannot be reached or refused a statement: the message
    /// names the target, never its credentials.
    #[error("{0}")]
    Target(String),
    #[error("{0}")]
    Invalid(String),
    #[error("broker database: {0}")]
    Store(#[from] DbErr),
    #[error("the connection URL of {0} cannot be opened: {1}")]
    Sealed(String, SealError),
}

/// A configured database, without its credentials.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub group_role: String,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    /// `host:port/database`.
    pub target: String,
}

#[derive(Clone)]
pub struct Databases {
    db: DatabaseConnection,
    keys: Arc<Keyring>,
    relay: Relay,
    /// Admin pools by database name, opened on first use.
    pools: Arc<tokio::sync::Mutex<HashMap<String, (Config, DatabaseConnection)>>>,
}

fn duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A database name: lowercase letters, digits, `-` and `_`, 1 to 63.
pub fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A PostgreSQL role name the broker will put in a statement: lowercase
/// letters, digits and `_`, not starting with a digit, at most 63. Quoted
/// all the same.
pub fn valid_role(role: &str) -> bool {
    (1..=63).contains(&role.len())
        && role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !role.starts_with(|c: char| c.is_ascii_digit())
}

/// `host:port/database` of a connection URL: what messages may say.
fn target_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('?').next().unwrap_or(rest).to_string()
}

fn purpose(name: &str) -> String {
    format!("database-url:{name}")
}

/// A timestamp PostgreSQL reads in `VALID UNTIL`.
fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S%.3f+00").to_string()
}

async fn open(url: &str) -> Result<DatabaseConnection, DatabaseError> {
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(DatabaseError::Invalid("a PostgreSQL URL: postgres://user:password@host:port/database".into()));
    }
    let mut options = ConnectOptions::new(url);
    // Never log statements: they carry passwords.
    options.max_connections(POOL).connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(5)).sqlx_logging(false);
    sea_orm::Database::connect(options).await.map_err(|e| target_failed(&target_of(url), &e))
}

/// What went wrong at the target, without the statement or credentials.
fn target_failed(target: &str, e: &DbErr) -> DatabaseError {
    let why = match e {
        DbErr::Conn(e) | DbErr::Exec(e) | DbErr::Query(e) => e.to_string(),
        DbErr::ConnectionAcquire(e) => e.to_string(),
        other => other.to_string(),
    };
    DatabaseError::Target(format!("PostgreSQL at {target}: {}", why.replace(['\n', '\r'], " ")))
}

impl Databases {
    pub fn new(db: DatabaseConnection, keys: Arc<Keyring>, relay: Relay) -> Self {
        Self { db, keys, relay, pools: Default::default() }
    }

    /// Registers (or replaces) `name`, after checking that the URL connects,
    /// may create roles, and that the group role exists without LOGIN.
    pub async fn configure(
        &self,
        actor: &str,
        name: &str,
        url: &str,
        group_role: &str,
        ttl: (Duration, Duration),
    ) -> Result<Config, DatabaseError> {
        let pool = open(url).await?;
        let target = target_of(url);
        let at = |e: DbErr| target_failed(&target, &e);
        let row = pool
            .query_one_raw(Statement::from_sql_and_values(
                pool.get_database_backend(),
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                [group_role.into()],
            ))
            .await
            .map_err(at)?;
        match row.map(|r| r.try_get::<bool>("", "rolcanlogin")).transpose().map_err(at)? {
            None => {
                return Err(DatabaseError::Invalid(format!(
                    "group role {group_role} does not exist at {target}: create it NOLOGIN with the grants"
                )));
            }
            Some(true) => return Err(DatabaseError::Invalid(format!("group role {group_role} can log in: a group role must be NOLOGIN"))),
            Some(false) => {}
        }
        let may = pool
            .query_one_raw(Statement::from_string(
                pool.get_database_backend(),
                "SELECT rolcreaterole OR rolsuper AS may FROM pg_roles WHERE rolname = current_user",
            ))
            .await
            .map_err(at)?
            .map(|r| r.try_get::<bool>("", "may"))
            .transpose()
            .map_err(at)?;
        if may != Some(true) {
            return Err(DatabaseError::Invalid(format!("the connection's user cannot create roles at {target} (needs CREATEROLE)")));
        }
        let root = self.keys.current();
        let now = chrono::Utc::now().timestamp_millis();
        let columns = [
            schema::Databases::Name,
            schema::Databases::SealedUrl,
            schema::Databases::RootKeyId,
            schema::Databases::Target,
            schema::Databases::GroupRole,
            schema::Databases::DefaultTtlMs,
            schema::Databases::MaxTtlMs,
            schema::Databases::UpdateTimeMs,
        ];
        let upsert = Query::insert()
            .into_table(schema::Databases::Table)
            .columns(columns)
            .values_panic([
                name.into(),
                root.seal(url.as_bytes(), &purpose(name)).into(),
                root.id.clone().into(),
                target.clone().into(),
                group_role.into(),
                ms(ttl.0).into(),
                ms(ttl.1).into(),
                now.into(),
            ])
            .on_conflict(OnConflict::column(schema::Databases::Name).update_columns(columns[1..].iter().copied()).to_owned())
            .to_owned();
        let txn = self.db.begin().await?;
        txn.execute(&upsert).await?;
        event::record(&txn, Act::new("database.configured", actor, name, &[], &format!("{target}, group role {group_role}"))).await?;
        txn.commit().await?;
        self.relay.wake();
        let config = Config { name: name.into(), group_role: group_role.into(), default_ttl: ttl.0, max_ttl: ttl.1, target };
        self.pools.lock().await.insert(name.to_string(), (config.clone(), pool));
        Ok(config)
    }

    pub async fn list(&self) -> Result<Vec<Config>, DatabaseError> {
        let query = select().order_by(schema::Databases::Name, Order::Asc).to_owned();
        Ok(self.db.query_all(&query).await?.iter().map(config).collect::<Result<_, _>>()?)
    }

    /// The database's configuration and admin pool (opened on first use).
    pub async fn pool(&self, name: &str) -> Result<(Config, DatabaseConnection), DatabaseError> {
        let mut pools = self.pools.lock().await;
        if let Some(found) = pools.get(name) {
            return Ok(found.clone());
        }
        let query = select().column(schema::Databases::SealedUrl).and_where(Expr::col(schema::Databases::Name).eq(name)).to_owned();
        let row = self.db.query_one(&query).await?.ok_or_else(|| DatabaseError::NotFound(name.to_string()))?;
        let (sealed, key_id): (Vec<u8>, String) = (row.try_get("", "sealed_url")?, row.try_get("", "root_key_id")?);
        let url = self.keys.open(&sealed, &purpose(name), &key_id).map_err(|e| DatabaseError::Sealed(name.to_string(), e))?;
        let url = String::from_utf8(url).map_err(|_| DatabaseError::Sealed(name.to_string(), SealError::Corrupt))?;
        let found = (config(&row)?, open(&url).await?);
        pools.insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// Creates `role` with `password`, in the group, valid until `until` (Unix ms).
    pub async fn create_role(&self, name: &str, role: &str, password: &str, until: i64) -> Result<(), DatabaseError> {
        let (config, pool) = self.pool(name).await?;
        debug_assert!(valid_role(role) && password.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        let sql = format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' VALID UNTIL '{}' IN ROLE \"{}\"",
            timestamp(until),
            config.group_role
        );
        pool.execute_unprepared(&sql).await.map_err(|e| target_failed(&config.target, &e))?;
        Ok(())
    }

    /// Moves `role`'s VALID UNTIL to `until` (Unix ms).
    pub async fn extend(&self, name: &str, role: &str, until: i64) -> Result<(), DatabaseError> {
        let (config, pool) = self.pool(name).await?;
        let sql = format!("ALTER ROLE \"{role}\" VALID UNTIL '{}'", timestamp(until));
        pool.execute_unprepared(&sql).await.map_err(|e| target_failed(&config.target, &e))?;
        Ok(())
    }

    /// Takes LOGIN from `role`, ends its sessions, drops it (what it owns
    /// goes to the group role first) and checks that it is gone. A role
    /// that does not exist (its creation failed) is already gone.
    pub async fn drop_role(&self, name: &str, role: &str) -> Result<(), DatabaseError> {
        let (config, pool) = self.pool(name).await?;
        let at = |e: DbErr| target_failed(&config.target, &e);
        let exists = |pool: DatabaseConnection| async move {
            let query = Statement::from_sql_and_values(
                pool.get_database_backend(),
                "SELECT 1 AS found FROM pg_roles WHERE rolname = $1",
                [role.into()],
            );
            pool.query_one_raw(query).await.map(|r| r.is_some())
        };
        if !exists(pool.clone()).await.map_err(at)? {
            return Ok(());
        }
        let group = &config.group_role;
        let statements = [
            format!("ALTER ROLE \"{role}\" NOLOGIN"),
            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"),
            format!("REASSIGN OWNED BY \"{role}\" TO \"{group}\""),
            format!("DROP OWNED BY \"{role}\""),
            format!("DROP ROLE IF EXISTS \"{role}\""),
        ];
        for sql in statements {
            pool.execute_unprepared(&sql).await.map_err(at)?;
        }
        if exists(pool).await.map_err(at)? {
            return Err(DatabaseError::Target(format!("role {role} still exists at {} after DROP ROLE", config.target)));
        }
        Ok(())
    }

    /// Re-seals connection URLs sealed under an older root key; returns how many.
    pub async fn rewrap(&self) -> Result<usize, DatabaseError> {
        let at = (schema::Databases::Table, schema::Databases::SealedUrl, schema::Databases::RootKeyId);
        let done = rewrap_named(&self.db, &self.keys, at, schema::Databases::Name, purpose).await?;
        done.map_err(|(name, e)| DatabaseError::Sealed(name, e))
    }
}

fn select() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([
            schema::Databases::Name,
            schema::Databases::RootKeyId,
            schema::Databases::Target,
            schema::Databases::GroupRole,
            schema::Databases::DefaultTtlMs,
            schema::Databases::MaxTtlMs,
        ])
        .from(schema::Databases::Table)
        .to_owned()
}

fn config(row: &sea_orm::QueryResult) -> Result<Config, DbErr> {
    Ok(Config {
        name: row.try_get("", "name")?,
        group_role: row.try_get("", "group_role")?,
        default_ttl: duration(row.try_get("", "default_ttl_ms")?),
        max_ttl: duration(row.try_get("", "max_ttl_ms")?),
        target: row.try_get("", "target")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_target_not_the_credentials() {
        assert_eq!(target_of("postgres://admin:s3cret@db.internal:5432/shop?sslmode=require"), "db.internal:5432/shop");
        assert_eq!(target_of("postgres://db:5432/shop"), "db:5432/shop");
    }

    #[test]
    fn names_and_roles() {
        assert!(valid_name("shop-db_1") && !valid_name("Shop") && !valid_name(""));
        assert!(valid_role("shop_readers") && !valid_role("1x") && !valid_role("a\"b") && !valid_role("a-b"));
    }

    #[test]
    fn valid_until_is_utc() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00.000+00");
    }
}
