//! The database: opening it (the embedded SQLite file, or PostgreSQL when
//! `PARLOR_DATABASE_URL` says so), applying the engine's migrations at start, and the queries
//! the app runs. Queries are checked at run time (`query_as`) through sqlx's `Any` driver and
//! written once for both engines: `$n` parameters, standard SQL, and the few fragments that
//! differ taken from [`Engine`].

pub mod cache;
pub mod flag;
pub mod messages;
pub mod moderation;
pub mod social;
pub mod strangers;
pub mod users;
pub mod writer;

use std::{path::Path, time::Duration};

use sqlx::{any::AnyPoolOptions, AnyPool, Executor};

pub use flag::Flag;
pub use sqlx::{migrate::MigrateError, Error as DbError};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// A transaction on either engine.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The PostgreSQL advisory lock every writing transaction takes (see [`Db::immediate`]).
const WRITE_LOCK: i64 = 0x5041_524C_4F52; // "PARLOR"

/// Which engine a [`Db`] runs on, and the SQL fragments that differ between the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// Begins a writing transaction: SQLite takes the write lock at once.
    fn begin_writing(self) -> &'static str {
        match self {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        }
    }

    /// PostgreSQL's writers take turns on an advisory lock (SQLite's already did at `BEGIN`).
    async fn take_turn(self, tx: &mut sqlx::AnyConnection) -> Result<(), DbError> {
        if self == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(tx)
                .await?;
        }
        Ok(())
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// Now, as the tables write times: RFC 3339, UTC, with milliseconds, so times compare as
    /// text on both engines.
    pub(crate) fn now(self) -> &'static str {
        match self {
            Engine::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            Engine::Postgres => "parlor_now()",
        }
    }

    /// Now plus the hours in integer parameter `param` (e.g. `$3`; negative: ago), written as
    /// [`Engine::now`] writes times.
    pub(crate) fn hours_from_now(self, param: &str) -> String {
        match self {
            Engine::Sqlite => format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', {param} || ' hours')"),
            Engine::Postgres => format!("parlor_now({param})"),
        }
    }

    /// The larger of its arguments (none of them NULL).
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Engine::Sqlite => "max",
            Engine::Postgres => "GREATEST",
        }
    }

    /// The smaller of its arguments (none of them NULL).
    pub(crate) fn least(self) -> &'static str {
        match self {
            Engine::Sqlite => "min",
            Engine::Postgres => "LEAST",
        }
    }
}

/// A handle to the database; cheap to clone (a pool and a cache inside).
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: AnyPool,
    pub(crate) engine: Engine,
    /// Users recently read for a session check (see [`cache`]).
    pub(crate) users: std::sync::Arc<cache::ReadCache<i64, users::UserRow>>,
    /// Whether sessions were ended, as recently read (an ended session stays ended).
    pub(crate) sessions: std::sync::Arc<cache::ReadCache<String, bool>>,
    /// Session checks reading the database, by user: one at a time per user.
    pub(crate) session_reads: std::sync::Arc<cache::Flights<i64>>,
    /// Stores conversation messages in batches.
    pub(crate) writer: writer::MessageWriter,
}

/// What [`Db::status`] reads.
#[derive(Debug, Clone)]
pub struct DbStatus {
    pub engine: Engine,
    pub engine_version: String,
    pub created_at: String,
    /// `(version, description)` of each applied migration, oldest first.
    pub migrations: Vec<(i64, String)>,
}

/// `path` as an sqlx SQLite URL (`?`, `#` and `%` escaped), created if missing.
fn sqlite_url(path: &Path) -> String {
    let mut url = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url.push_str("?mode=rwc");
    url
}

impl Db {
    /// Opens (creating if missing) the SQLite database at `path`. Fails if the file cannot be
    /// created or opened for writing.
    pub async fn open_sqlite(path: &Path) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            // A file on this machine does not go stale like a network connection: no ping
            // before every query.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .await
                    .map(|_| ())
                })
            })
            .connect(&sqlite_url(path))
            .await?;
        Ok(Self::on(pool, Engine::Sqlite))
    }

    /// Connects to PostgreSQL at `url` (`postgres://…`). Fails if it cannot be reached.
    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self::on(pool, Engine::Postgres))
    }

    fn on(pool: AnyPool, engine: Engine) -> Self {
        Self {
            writer: writer::MessageWriter::start(pool.clone(), engine),
            pool,
            engine,
            users: Default::default(),
            sessions: Default::default(),
            session_reads: Default::default(),
        }
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
    pub fn pool_for_tests(&self) -> AnyPool {
        self.pool.clone()
    }

    /// The engine this database runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Applies the migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        match self.engine {
            Engine::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await,
            Engine::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await,
        }
    }

    /// Begins a transaction that writes after it reads: writers take turns, so two people
    /// acting at once cannot both pass a check the other's write would fail. SQLite: `BEGIN
    /// IMMEDIATE` (its one write lock); PostgreSQL: a transaction-scoped advisory lock that
    /// every such transaction, on every instance, takes. Message ids are handed out under it
    /// too, so they grow in commit order and a reader resuming after an id misses nothing.
    pub(crate) async fn immediate(&self) -> Result<Tx, DbError> {
        begin_immediate(&self.pool, self.engine).await
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
        let (now,): (String,) = sqlx::query_as(&format!(
            "SELECT substr({}, 1, 19) || 'Z'",
            self.engine.now()
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(now)
    }

    /// Closes every connection; later queries fail. Used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn status(&self) -> Result<DbStatus, DbError> {
        let version = match self.engine {
            Engine::Sqlite => "SELECT sqlite_version()",
            Engine::Postgres => "SELECT current_setting('server_version')",
        };
        let (engine_version,): (String,) = sqlx::query_as(version).fetch_one(&self.pool).await?;
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
            engine: self.engine,
            engine_version,
            created_at,
            migrations,
        })
    }
}

/// [`Db::immediate`] on a pool.
pub(crate) async fn begin_immediate(pool: &AnyPool, engine: Engine) -> Result<Tx, DbError> {
    let mut tx = pool.begin_with(engine.begin_writing()).await?;
    engine.take_turn(&mut tx).await?;
    Ok(tx)
}

/// [`Db::immediate`] on a connection the caller holds (the message writer keeps one).
pub(crate) async fn begin_immediate_on(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
) -> Result<sqlx::Transaction<'_, sqlx::Any>, DbError> {
    let mut tx = sqlx::Connection::begin_with(conn, engine.begin_writing()).await?;
    engine.take_turn(&mut tx).await?;
    Ok(tx)
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
        assert_eq!(status.migrations.len(), SQLITE_MIGRATOR.iter().count());
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
