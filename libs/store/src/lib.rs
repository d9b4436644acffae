//! Database connections for Paved's services: PostgreSQL or SQLite, chosen by
//! the URL's scheme, with each service's migrations run at start-up.
//!
//! Every service owns its own database (its own PostgreSQL database, or its own
//! SQLite file under the data directory); no two services share tables.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::{path::Path, time::Duration};

pub use sea_orm;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: expected postgres://… or sqlite://…")]
    Scheme(String),
    #[error("create directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("connect to {url}: {source}")]
    Connect { url: String, source: DbErr },
    #[error("migrate: {0}")]
    Migrate(DbErr),
    #[error(
        "migrate {url}: another process has held the migration lock for over {waited:?} ({holder}); once it ends or is stopped, start again"
    )]
    MigrationLocked { url: String, waited: Duration, holder: String },
}

/// Values per `IN (…)` list, or rows per multi-row statement, when there
/// may be many: SQLite binds at most 32,766 parameters to a statement and
/// PostgreSQL 65,535.
pub const CHUNK: usize = 500;

/// Runs of a transaction after the database aborted it for a conflict.
const CONFLICT_RETRIES: u32 = 3;

static CONFLICTS_RERUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Transactions this process has run again after a conflict, so far.
pub fn conflicts_rerun() -> u64 {
    CONFLICTS_RERUN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the database aborted the transaction for a conflict it found
/// between transactions: PostgreSQL's deadlock (`40P01`) or serialization
/// failure (`40001`). Nothing of it was written; run again, it may pass.
pub fn conflicted(e: &DbErr) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40P01" | "40001"))
}

/// The SQLSTATE the database answered with, if it was the database's error.
fn sqlstate(e: &DbErr) -> Option<String> {
    let (DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))) = e else {
        return None;
    };
    let sea_orm::sqlx::Error::Database(e) = e.as_ref() else {
        return None;
    };
    e.code().map(|code| code.into_owned())
}

/// Runs `transaction` (which begins and commits its own), and runs it again
/// while the database aborts it for a conflict, up to [`CONFLICT_RETRIES`]
/// times: transactions that lock rows in different orders (a revocation
/// walking down a tree of tokens, a batch holding parents) may deadlock,
/// and PostgreSQL then aborts one of them.
pub async fn retry_conflicts<T, F, Fut>(mut transaction: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let mut retries = 0;
    loop {
        match transaction().await {
            Err(e) if conflicted(&e) && retries < CONFLICT_RETRIES => {
                retries += 1;
                CONFLICTS_RERUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(error = %e, retries, "transaction aborted for a conflict; running it again");
                // After a random pause: the transaction that went on may
                // finish first, and two aborted at once (a serialization
                // failure) do not start again together.
                tokio::time::sleep(Duration::from_millis(rand::random_range(1..=10u64 << retries))).await;
            }
            result => return result,
        }
    }
}

/// The SQLite URL of a file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Opens a pool. SQLite files get WAL journaling, so readers do not block the writer.
pub async fn connect(url: &str) -> Result<DatabaseConnection, StoreError> {
    let sqlite = url.starts_with("sqlite:");
    if !sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(StoreError::Scheme(redact(url)));
    }
    if sqlite && let Some(parent) = sqlite_path(url).and_then(|p| Path::new(p).parent().map(Path::to_path_buf)) {
        std::fs::create_dir_all(&parent).map_err(|source| StoreError::Directory { path: parent.display().to_string(), source })?;
    }
    if !sqlite {
        ensure_database(url).await?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        // SQLite: one connection, so transactions run one after another. With
        // more, a transaction that reads and then writes fails at once
        // (SQLITE_BUSY_SNAPSHOT) whenever another connection committed in
        // between, which waiting cannot fix. Code holding a transaction must
        // therefore not use the pool until it commits.
        .max_connections(if sqlite { 1 } else { 10 })
        .sqlx_logging(false);
    if sqlite {
        sqlite_wal(&mut options);
    }
    Database::connect(options).await.map_err(|source| StoreError::Connect { url: redact(url), source })
}

/// WAL journaling, synced at checkpoints rather than at every commit (a
/// crash of the machine may lose the last commits, never corrupt the file).
/// Set on every connection the pool opens: `synchronous` is per connection,
/// so a pragma run once would be lost when the pool replaces its connection.
pub fn sqlite_wal(options: &mut ConnectOptions) {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    options.map_sqlx_sqlite_opts(|o| o.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal));
}

/// The advisory lock PostgreSQL migrations run under (any constant would
/// do: each service has a database of its own).
pub const MIGRATION_LOCK: i64 = 0x7061_7665_645f_6d69; // "paved_mi"

/// How long a process waits for another's migrations: long enough for any
/// of ours, short enough that a process stuck holding the lock is named
/// rather than waited for in silence.
const MIGRATION_WAIT: Duration = Duration::from_secs(300);

/// Connects and brings the schema up to date with `M`'s migrations.
///
/// On PostgreSQL they run in one transaction holding an advisory lock, so
/// that processes starting together on one database (replicas, or `paved
/// token enrol` beside a starting broker) migrate one after the other: the
/// second finds nothing pending instead of failing on a table the first
/// just created. All pending migrations commit together, or none does. A
/// SQLite file has one process (`paved up` locks its data directory).
pub async fn connect_and_migrate<M: MigratorTrait>(url: &str) -> Result<DatabaseConnection, StoreError> {
    connect_and_migrate_within::<M>(url, MIGRATION_WAIT).await
}

/// [`connect_and_migrate`], waiting at most `wait` for another process's
/// migrations.
pub async fn connect_and_migrate_within<M: MigratorTrait>(url: &str, wait: Duration) -> Result<DatabaseConnection, StoreError> {
    use sea_orm::TransactionTrait;
    let db = connect(url).await?;
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        M::up(&db, None).await.map_err(StoreError::Migrate)?;
        return Ok(db);
    }
    // Read committed whatever the server's default: the second process must
    // see, once the lock is its own, what the first committed meanwhile.
    let txn = db.begin_with_config(Some(sea_orm::IsolationLevel::ReadCommitted), None).await.map_err(StoreError::Migrate)?;
    let tried = format!("SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK}) AS locked");
    let locked =
        txn.query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, tried)).await.map_err(StoreError::Migrate)?;
    if !locked.map(|row| row.try_get::<bool>("", "locked")).transpose().map_err(StoreError::Migrate)?.unwrap_or(false) {
        tracing::info!(database = %redact(url), "another process is migrating this database: waiting for it");
        txn.execute_unprepared(&format!("SET LOCAL lock_timeout = {}", wait.as_millis().max(1))).await.map_err(StoreError::Migrate)?;
        if let Err(e) = txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await {
            let _ = txn.rollback().await;
            return Err(match sqlstate(&e).as_deref() {
                Some("55P03") => StoreError::MigrationLocked { url: redact(url), waited: wait, holder: migration_lock_holder(&db).await },
                _ => StoreError::Migrate(e),
            });
        }
        // The migrations themselves wait as the server, database or role says.
        txn.execute_unprepared("SET LOCAL lock_timeout TO DEFAULT").await.map_err(StoreError::Migrate)?;
    }
    M::up(&txn, None).await.map_err(StoreError::Migrate)?;
    txn.commit().await.map_err(StoreError::Migrate)?;
    Ok(db)
}

/// Who holds the migration lock, as PostgreSQL knows them.
async fn migration_lock_holder(db: &DatabaseConnection) -> String {
    // An advisory lock on a bigint key is stored as its two halves.
    let (high, low) = (MIGRATION_LOCK >> 32, MIGRATION_LOCK & 0xffff_ffff);
    let sql = format!(
        "SELECT l.pid, a.application_name, a.client_addr::text AS client, a.xact_start::text AS since \
         FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {high} AND l.objid = {low} AND l.objsubid = 1 AND l.database = \
         (SELECT oid FROM pg_database WHERE datname = current_database())"
    );
    match db.query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql)).await {
        Ok(Some(row)) => {
            let text = |column: &str| row.try_get::<Option<String>>("", column).ok().flatten().unwrap_or_default();
            let pid = row.try_get::<i32>("", "pid").map_or_else(|_| "?".to_string(), |p| p.to_string());
            format!(
                "pid {pid}, application {:?}, client {:?}, in a transaction since {}",
                text("application_name"),
                text("client"),
                text("since")
            )
        }
        Ok(None) => "it has just let go".to_string(),
        Err(e) => format!("who, PostgreSQL did not say: {e}"),
    }
}

/// Creates the PostgreSQL database a URL names if it does not exist yet, so a
/// service can start on a fresh server. Connects to the server's `postgres`
/// database to do so.
async fn ensure_database(url: &str) -> Result<(), StoreError> {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let Some(slash) = base.rfind('/').filter(|i| *i > base.find("://").map_or(0, |s| s + 2)) else {
        return Ok(());
    };
    let name = &base[slash + 1..];
    if name.is_empty() || name == "postgres" {
        return Ok(());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(StoreError::Scheme(format!("database name {name:?} in {}", redact(url))));
    }
    let maintenance =
        if query.is_empty() { format!("{}/postgres", &base[..slash]) } else { format!("{}/postgres?{query}", &base[..slash]) };
    let mut options = ConnectOptions::new(maintenance);
    options.max_connections(1).connect_timeout(Duration::from_secs(5)).sqlx_logging(false);
    let connect_err = |source| StoreError::Connect { url: redact(url), source };
    let admin = Database::connect(options).await.map_err(connect_err)?;
    let exists = async || {
        let found = sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        );
        Ok::<_, DbErr>(admin.query_one_raw(found).await?.is_some())
    };
    if !exists().await.map_err(connect_err)? {
        match admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await {
            Ok(_) => tracing::info!(database = name, "created database"),
            // Another process created it at the same moment ("already
            // exists", or a unique violation in pg_database): that is fine.
            Err(e) if exists().await.unwrap_or(false) => tracing::debug!(database = name, error = %e, "created by another process"),
            Err(e) => return Err(connect_err(e)),
        }
    }
    admin.close().await.map_err(connect_err)?;
    Ok(())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The URL without its password, for messages: in the user part
/// (`user:***@`) and as a `password=` parameter (`password=***`), both of
/// which PostgreSQL's URLs accept.
pub fn redact(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match base[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}://{user}:***@{}", &base[..scheme], &base[at + 1..]),
            None => base.to_string(),
        },
        _ => base.to_string(),
    };
    let Some(query) = query else {
        return base;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// A migration that creates one table (and drops it on the way down): most
/// of Paved's migrations are this, so they are written as data.
pub struct CreateTable {
    /// The migration's name; once published, never change it.
    pub name: &'static str,
    pub table: fn() -> sea_orm_migration::prelude::TableCreateStatement,
    pub indexes: fn() -> Vec<sea_orm_migration::prelude::IndexCreateStatement>,
}

impl sea_orm_migration::MigrationName for CreateTable {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for CreateTable {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager.create_table((self.table)()).await?;
        for index in (self.indexes)() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        let table = (self.table)();
        let name = table.get_table_name().cloned().ok_or_else(|| DbErr::Migration(format!("{}: no table name", self.name)))?;
        manager.drop_table(sea_orm_migration::prelude::Table::drop().table(name).to_owned()).await
    }
}

/// A migration that adds nullable columns to a table, one `ALTER TABLE` each
/// (SQLite adds one column per statement), then runs `backfill` statements.
pub struct AddColumns {
    /// The migration's name; once published, never change it.
    pub name: &'static str,
    pub table: &'static str,
    pub columns: fn() -> Vec<sea_orm_migration::prelude::ColumnDef>,
    /// Raw SQL run after the columns exist (portable across PostgreSQL and SQLite).
    pub backfill: &'static [&'static str],
}

impl sea_orm_migration::MigrationName for AddColumns {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for AddColumns {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        use sea_orm_migration::prelude::{Alias, Table};
        for mut column in (self.columns)() {
            manager.alter_table(Table::alter().table(Alias::new(self.table)).add_column(&mut column).to_owned()).await?;
        }
        for sql in self.backfill {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        use sea_orm_migration::prelude::{Alias, Table};
        for column in (self.columns)() {
            let name = Alias::new(column.get_column_name());
            manager.alter_table(Table::alter().table(Alias::new(self.table)).drop_column(name).to_owned()).await?;
        }
        Ok(())
    }
}

/// A migration that adds an index to a table that exists (and drops it on
/// the way down).
pub struct CreateIndex {
    /// The migration's name; once published, never change it.
    pub name: &'static str,
    pub table: &'static str,
    pub index: &'static str,
    pub columns: &'static [&'static str],
}

impl sea_orm_migration::MigrationName for CreateIndex {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for CreateIndex {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        use sea_orm_migration::prelude::{Alias, Index};
        let mut index = Index::create().name(self.index).table(Alias::new(self.table)).if_not_exists().to_owned();
        for column in self.columns {
            index.col(Alias::new(*column));
        }
        manager.create_index(index).await
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        use sea_orm_migration::prelude::{Alias, Index};
        manager.drop_index(Index::drop().name(self.index).table(Alias::new(self.table)).to_owned()).await
    }
}

/// `SELECT <columns> FROM <table>` as PostgreSQL text: for the tests that
/// pin a service's `DeriveIden` enums to the names its migrations gave
/// (a published migration spells names as strings and never changes).
pub fn select_sql<C: sea_orm::sea_query::IntoColumnRef>(
    table: impl sea_orm::sea_query::IntoTableRef,
    columns: impl IntoIterator<Item = C>,
) -> String {
    sea_orm::sea_query::Query::select().columns(columns).from(table).to_string(sea_orm::sea_query::PostgresQueryBuilder)
}

/// [`select_sql`] with the names spelled as a migration spells them.
pub fn select_named_sql(table: &str, columns: &[&str]) -> String {
    use sea_orm::sea_query::Alias;
    select_sql(Alias::new(table), columns.iter().map(|c| Alias::new(*c)))
}

/// No indexes.
pub fn no_indexes() -> Vec<sea_orm_migration::prelude::IndexCreateStatement> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redact("postgres://paved:s3cret@db:5432/x"), "postgres://paved:***@db:5432/x");
        assert_eq!(redact("sqlite://.paved/a.db?mode=rwc"), "sqlite://.paved/a.db?mode=rwc");
        assert_eq!(redact("postgres://paved@db/x"), "postgres://paved@db/x");
        assert_eq!(
            redact("postgres://paved@db/x?sslmode=require&password=s3cret&application_name=p"),
            "postgres://paved@db/x?sslmode=require&password=***&application_name=p"
        );
        assert_eq!(redact("postgres://paved:a@b@db/x?Password=c"), "postgres://paved:***@db/x?Password=***");
    }

    #[test]
    fn finds_sqlite_path() {
        assert_eq!(sqlite_path("sqlite://.paved/a.db?mode=rwc"), Some(".paved/a.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[tokio::test]
    async fn rejects_unknown_scheme() {
        let err = connect("mysql://root@localhost/test").await.expect_err("mysql is not supported");
        assert!(matches!(err, StoreError::Scheme(_)), "{err}");
    }
}
