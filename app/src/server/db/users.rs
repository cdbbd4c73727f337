//! Users and their linked identities. Rows here hold secrets (the password hash): they never
//! leave the server; `api` maps them to wire types.

use sqlx::FromRow;

use super::{Db, DbError, Flag};

/// A user row. Not `Serialize` on purpose: it carries the password hash.
#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    #[sqlx(try_from = "Flag")]
    pub email_verified: bool,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub token_version: i64,
    /// Whether a Google identity is linked.
    #[sqlx(try_from = "Flag")]
    pub google_linked: bool,
}

/// A user row and whether a session of theirs was ended (see [`Db::session_check`]).
#[derive(FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    #[sqlx(try_from = "Flag")]
    revoked: bool,
}

/// What creating a user can run into besides database trouble.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] DbError),
}

const USER_COLUMNS: &str = "id, email, email_verified, display_name, password_hash, \
     token_version, EXISTS (SELECT 1 FROM identities i WHERE i.user_id = users.id \
     AND i.provider = 'google') AS google_linked";

/// The key emails are unique by: trimmed and lower-cased (Unicode-aware).
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The key names are searched by: lower-cased (Unicode-aware, which SQLite's `lower` is not).
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

impl Db {
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, DbError> {
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Ends a session on the server until `expires_at` (when its token would expire anyway).
    /// Rows of sessions past their expiry go at the same time.
    pub async fn revoke_session(&self, session_id: &str, expires_at: u64) -> Result<(), DbError> {
        let now = crate::server::auth::session::now_secs() as i64;
        sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO revoked_sessions (session_id, expires_at) VALUES ($1, $2) \
             ON CONFLICT (session_id) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(session_id)
        .bind(expires_at as i64)
        .execute(&self.pool)
        .await?;
        // After the write: a check that read before it is not cached after it.
        self.sessions.forget(&session_id.to_string());
        Ok(())
    }

    /// The user and whether this session of theirs was ended, for a session check: both
    /// reused for a few seconds (see [`super::cache`]), and otherwise read in one query, one
    /// at a time per user (a person's tabs all asking at once after a restart make one
    /// query; the others then find its answer cached, an ended session's too, so a copied
    /// cookie sent over and over is no query each). `None`: no such user.
    pub async fn session_check(
        &self,
        id: i64,
        session_id: &str,
    ) -> Result<Option<(UserRow, bool)>, DbError> {
        let _reading = loop {
            if let (Some(user), Some(revoked)) =
                (self.users.get(&id), self.sessions.get(session_id))
            {
                return Ok(Some((user, revoked)));
            }
            if let Some(flight) = self.session_reads.join(&id).await {
                break flight;
            }
        };
        let (users_after, sessions_after) = (self.users.changes(), self.sessions.changes());
        let Some(SessionRow { user, revoked }) = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, EXISTS (SELECT 1 FROM revoked_sessions \
             WHERE session_id = $2) AS revoked FROM users WHERE id = $1"
        ))
        .bind(id)
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        self.users.put(id, user.clone(), users_after);
        self.sessions
            .put(session_id.to_string(), revoked, sessions_after);
        Ok(Some((user, revoked)))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, DbError> {
        sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email_key = $1"
        ))
        .bind(email_key(email))
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn create_user(
        &self,
        email: &str,
        email_verified: bool,
        display_name: &str,
        password_hash: Option<&str>,
    ) -> Result<UserRow, CreateUserError> {
        let result = sqlx::query_as(&format!(
            "INSERT INTO users (email, email_key, email_verified, display_name, name_key, \
             password_hash) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        ))
        .bind(email.trim())
        .bind(email_key(email))
        .bind(email_verified)
        .bind(display_name)
        .bind(name_key(display_name))
        .bind(password_hash)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => Ok(row),
            Err(DbError::Database(e)) if e.is_unique_violation() => {
                Err(CreateUserError::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_display_name(&self, id: i64, display_name: &str) -> Result<(), DbError> {
        let result = sqlx::query("UPDATE users SET display_name = $1, name_key = $2 WHERE id = $3")
            .bind(display_name)
            .bind(name_key(display_name))
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ());
        self.users.forget(&id);
        result
    }

    /// Replaces the password hash and ends every session (new token version, returned).
    pub async fn set_password(&self, id: i64, password_hash: &str) -> Result<i64, DbError> {
        let result = sqlx::query_scalar(
            "UPDATE users SET password_hash = $1, token_version = token_version + 1 \
             WHERE id = $2 RETURNING token_version",
        )
        .bind(password_hash)
        .bind(id)
        .fetch_one(&self.pool)
        .await;
        self.users.forget(&id);
        result
    }

    /// Ends every session of the user: tokens carrying an older version stop working.
    pub async fn bump_token_version(&self, id: i64) -> Result<i64, DbError> {
        let result = sqlx::query_scalar(
            "UPDATE users SET token_version = token_version + 1 WHERE id = $1 RETURNING token_version",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await;
        self.users.forget(&id);
        result
    }

    /// Deletes the user; linked identities go with it (foreign key cascade).
    pub async fn delete_user(&self, id: i64) -> Result<(), DbError> {
        let result = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ());
        self.users.forget(&id);
        result
    }

    /// The user an external identity is linked to.
    pub async fn user_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<UserRow>, DbError> {
        sqlx::query_as(
            "SELECT u.id, u.email, u.email_verified, u.display_name, u.password_hash, \
             u.token_version, TRUE AS google_linked FROM users u \
             JOIN identities i ON i.user_id = u.id WHERE i.provider = $1 AND i.subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn link_identity(
        &self,
        user_id: i64,
        provider: &str,
        subject: &str,
        email: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO identities (provider, subject, user_id, email) VALUES ($1, $2, $3, $4)",
        )
        .bind(provider)
        .bind(subject)
        .bind(user_id)
        .bind(email)
        .execute(&self.pool)
        .await
        .map(|_| ())?;
        self.users.forget(&user_id);
        Ok(())
    }

    /// Whether the user has a linked identity with this provider.
    pub async fn has_identity(&self, user_id: i64, provider: &str) -> Result<bool, DbError> {
        let Flag(linked) = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM identities WHERE user_id = $1 AND provider = $2)",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_one(&self.pool)
        .await?;
        Ok(linked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn emails_are_unique_whatever_their_case() {
        let (_dir, db) = db().await;
        let user = db
            .create_user("Ann@Example.com", false, "Ann", Some("h"))
            .await
            .unwrap();
        assert_eq!(user.email, "Ann@Example.com");
        let again = db
            .create_user(" ann@EXAMPLE.COM ", false, "Other", Some("h"))
            .await;
        assert!(
            matches!(again, Err(CreateUserError::EmailTaken)),
            "{again:?}"
        );
        let found = db.user_by_email("ANN@example.com").await.unwrap().unwrap();
        assert_eq!(found.id, user.id);
    }

    #[tokio::test]
    async fn sql_looking_input_is_stored_as_text() {
        let (_dir, db) = db().await;
        let name = "Robert'); DROP TABLE users;--";
        let user = db
            .create_user("bobby@example.com", false, name, None)
            .await
            .unwrap();
        assert_eq!(
            db.user_by_id(user.id).await.unwrap().unwrap().display_name,
            name
        );
    }

    #[tokio::test]
    async fn deleting_a_user_removes_linked_identities() {
        let (_dir, db) = db().await;
        let user = db
            .create_user("g@example.com", true, "G", None)
            .await
            .unwrap();
        db.link_identity(user.id, "google", "sub-1", "g@example.com")
            .await
            .unwrap();
        assert_eq!(
            db.user_by_identity("google", "sub-1")
                .await
                .unwrap()
                .unwrap()
                .id,
            user.id
        );
        db.delete_user(user.id).await.unwrap();
        assert!(db
            .user_by_identity("google", "sub-1")
            .await
            .unwrap()
            .is_none());
        assert!(db.user_by_id(user.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn password_change_and_sign_out_everywhere_bump_the_token_version() {
        let (_dir, db) = db().await;
        let user = db
            .create_user("v@example.com", false, "V", Some("a"))
            .await
            .unwrap();
        assert_eq!(user.token_version, 0);
        assert_eq!(db.set_password(user.id, "b").await.unwrap(), 1);
        assert_eq!(db.bump_token_version(user.id).await.unwrap(), 2);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    /// A session never ended, for reading users through [`Db::session_check`].
    const LIVE: &str = "00000000000000000000000000000000";

    async fn user(db: &Db, id: i64) -> Option<UserRow> {
        let checked = db.session_check(id, LIVE).await.unwrap();
        checked.map(|(user, _)| user)
    }

    async fn token_version(db: &Db, id: i64) -> Option<i64> {
        user(db, id).await.map(|user| user.token_version)
    }

    async fn ended(db: &Db, id: i64, session_id: &str) -> bool {
        db.session_check(id, session_id).await.unwrap().unwrap().1
    }

    /// A fresh database with one user, Ann.
    async fn with_ann() -> (tempfile::TempDir, Db, UserRow) {
        let (dir, db) = Db::for_tests().await;
        let ann = db
            .create_user("ann@example.com", false, "Ann", None)
            .await
            .unwrap();
        (dir, db, ann)
    }

    #[tokio::test]
    async fn session_reads_are_cached_but_never_outlive_a_change() {
        let (_dir, db, ann) = with_ann().await;

        assert_eq!(user(&db, ann.id).await.unwrap().display_name, "Ann");
        // Cached: a change behind the app's back is not seen at once...
        sqlx::query("UPDATE users SET display_name = 'Sneaky' WHERE id = $1")
            .bind(ann.id)
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(user(&db, ann.id).await.unwrap().display_name, "Ann");
        // ...but every change made through the app is, at once.
        db.set_display_name(ann.id, "Annie").await.unwrap();
        assert_eq!(user(&db, ann.id).await.unwrap().display_name, "Annie");
        let version = db.bump_token_version(ann.id).await.unwrap();
        assert_eq!(user(&db, ann.id).await.unwrap().token_version, version);
        // The token version alone (a socket's re-check) follows the same rules: cached...
        assert_eq!(token_version(&db, ann.id).await, Some(version));
        sqlx::query("UPDATE users SET token_version = token_version + 5 WHERE id = $1")
            .bind(ann.id)
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(token_version(&db, ann.id).await, Some(version));
        // ...and never past a change made through the app.
        let version = db.bump_token_version(ann.id).await.unwrap();
        assert_eq!(token_version(&db, ann.id).await, Some(version));
        db.delete_user(ann.id).await.unwrap();
        assert!(user(&db, ann.id).await.is_none());
        assert_eq!(token_version(&db, ann.id).await, None);

        // A read that began before a change is not cached after it.
        let bob = db
            .create_user("bob@example.com", false, "Bob", None)
            .await
            .unwrap();
        let before = db.users.changes();
        let stale = db.user_by_id(bob.id).await.unwrap().unwrap();
        db.set_display_name(bob.id, "Robert").await.unwrap();
        db.users.put(bob.id, stale, before);
        assert_eq!(user(&db, bob.id).await.unwrap().display_name, "Robert");
    }

    #[tokio::test]
    async fn live_sessions_are_cached_until_revoked_through_the_app() {
        let (_dir, db, ann) = with_ann().await;
        let sid = "0123456789abcdef0123456789abcdef";
        assert!(!ended(&db, ann.id, sid).await);
        // Cached: the database is not asked again for a few seconds...
        sqlx::query("INSERT INTO revoked_sessions (session_id, expires_at) VALUES ($1, $2)")
            .bind(sid)
            .bind(i64::MAX)
            .execute(&db.pool)
            .await
            .unwrap();
        assert!(!ended(&db, ann.id, sid).await);
        // ...but a revocation made through the app counts at once.
        db.revoke_session(sid, u64::MAX / 4).await.unwrap();
        assert!(ended(&db, ann.id, sid).await);
        assert!(
            ended(&db, ann.id, sid).await,
            "revoked is never cached as live"
        );
    }

    #[tokio::test]
    async fn an_ended_session_is_kept_as_ended_without_asking_again() {
        let (_dir, db, ann) = with_ann().await;
        let sid = "fedcba9876543210fedcba9876543210";
        db.revoke_session(sid, u64::MAX / 4).await.unwrap();
        assert!(db.session_check(ann.id, sid).await.unwrap().unwrap().1);
        // Answered from what was read: even with the database gone, the session is ended.
        db.pool.close().await;
        assert!(db.session_check(ann.id, sid).await.unwrap().unwrap().1);
        assert!(ended(&db, ann.id, sid).await);
    }
}
