//! Database connections for Paved's services: PostgreSQL or SQLite, chosen by
//! the URL's scheme, with each service's migrations run at start-up.
//!
//! Every service owns its own database (its own PostgreSQL database, or its own
//! SQLite file under the data directory); no two services share tables.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::{path::Path, time::Duration};
use tokio_util::sync::CancellationToken;

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
    #[error("interrupted by shutdown")]
    Shutdown,
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
    let mut options = ConnectOptions::new(url);
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(if sqlite { 4 } else { 10 })
        .sqlx_logging(false);
    let db = Database::connect(options).await.map_err(|source| StoreError::Connect { url: redact(url), source })?;
    if sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .await
            .map_err(|source| StoreError::Connect { url: redact(url), source })?;
    }
    Ok(db)
}

/// Connects, retrying with backoff while the server is unreachable (a database
/// that is still starting must not crash the service), then runs migrations.
pub async fn connect_and_migrate<M: MigratorTrait>(url: &str, shutdown: &CancellationToken) -> Result<DatabaseConnection, StoreError> {
    let mut delay = Duration::from_millis(100);
    let db = loop {
        match connect(url).await {
            Ok(db) => break db,
            Err(e @ (StoreError::Scheme(_) | StoreError::Directory { .. })) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "database unreachable");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(StoreError::Shutdown),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    M::up(&db, None).await.map_err(StoreError::Migrate)?;
    Ok(db)
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redact("postgres://paved:s3cret@db:5432/x"), "postgres://paved:***@db:5432/x");
        assert_eq!(redact("sqlite://.paved/a.db?mode=rwc"), "sqlite://.paved/a.db?mode=rwc");
    }

    #[test]
    fn finds_sqlite_path() {
        assert_eq!(sqlite_path("sqlite://.paved/a.db?mode=rwc"), Some(".paved/a.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[tokio::test]
    async fn rejects_unknown_scheme() {
        let err = connect("mysql://root@localhost/test").await.unwrap_err();
        assert!(matches!(err, StoreError::Scheme(_)), "{err}");
    }
}
