//! The database: opening the embedded SQLite file, applying migrations at start, and the
//! queries the app runs. Queries are checked at run time (`query_as`), not by macros, so the
//! same code can later run on PostgreSQL too.

pub mod cache;
pub mod messages;
pub mod moderation;
pub mod social;
pub mod strangers;
pub mod users;
pub mod writer;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};

pub use sqlx::{migrate::MigrateError, Error as DbError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// A handle to the database; cheap to clone (a pool and a cache inside).
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: SqlitePool,
    /// Users recently read for a session check (see [`cache`]).
    pub(crate) users: std::sync::Arc<cache::ReadCache<i64, users::UserRow>>,
    /// Sessions recently found not revoked.
    pub(crate) live_sessions: std::sync::Arc<cache::ReadCache<String, ()>>,
    /// Stores conversation messages in batches.
    pub(crate) writer: writer::MessageWriter,
}

/// What [`Db::status`] reads.
#[derive(Debug, Clone)]
pub struct DbStatus {
    pub engine_version: String,
    pub created_at: String,
    /// `(version, description)` of each applied migration, oldest first.
    pub migrations: Vec<(i64, String)>,
}

impl Db {
    /// Opens (creating if missing) the SQLite database at `path`. Fails if the file cannot be
    /// created or opened for writing.
    pub async fn open_sqlite(path: &Path) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A file on this machine does not go stale like a network connection: no ping
            // before every query.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self {
            writer: writer::MessageWriter::start(pool.clone()),
            pool,
            users: Default::default(),
            live_sessions: Default::default(),
        })
    }

    /// A migrated database in a fresh temporary directory (kept while the directory lives).
    #[cfg(test)]
    pub async fn for_tests() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("parlor.db"))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    /// The pool itself, for tests that need to reach behind the queries (to inject a failure,
    /// or count rows).
    pub fn pool_for_tests(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// Applies the migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// How many pool connections are open and idle now (for metrics).
    pub fn pool_use(&self) -> crate::server::metrics::PoolUse {
        crate::server::metrics::PoolUse {
            open: self.pool.size(),
            idle: self.pool.num_idle() as u32,
        }
    }

    /// The database's clock (RFC 3339, UTC, seconds): a round trip that also says when.
    pub async fn now(&self) -> Result<String, DbError> {
        let (now,): (String,) = sqlx::query_as("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')")
            .fetch_one(&self.pool)
            .await?;
        Ok(now)
    }

    /// Closes every connection; later queries fail. Used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn status(&self) -> Result<DbStatus, DbError> {
        let (engine_version,): (String,) = sqlx::query_as("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?;
        let (created_at,): (String,) =
            sqlx::query_as("SELECT CAST(created_at AS TEXT) FROM instance WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        let migrations = sqlx::query_as(
            "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(DbStatus {
            engine_version,
            created_at,
            migrations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_database_is_migrated_and_reports_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("parlor.db"))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        // Migrating twice is a no-op, as on every restart.
        db.migrate().await.unwrap();

        let status = db.status().await.unwrap();
        assert!(status.engine_version.starts_with('3'), "{status:?}");
        assert!(status.created_at.ends_with('Z'), "{status:?}");
        assert_eq!(status.migrations.len(), MIGRATOR.iter().count());
        assert_eq!(status.migrations[0].1, "instance");
    }

    #[tokio::test]
    async fn a_closed_database_fails_its_ping() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("parlor.db"))
            .await
            .unwrap();
        db.ping().await.unwrap();
        db.close().await;
        assert!(db.ping().await.is_err());
    }
}
