//! Friend requests, friendships and blocks. Every change that reads before it writes runs in
//! one `BEGIN IMMEDIATE` transaction, so two people acting at once cannot leave a request
//! beside a friendship or a friendship without its conversation.

use super::{users::name_key, Db, DbError, Flag, Tx};
use crate::{
    error::AppError,
    friends::api::{Friend, FriendRequest, FriendsOverview, Relation, RequestOutcome},
    wire::UserCard,
};

/// What a friends change can run into.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    /// Nothing to act on (no such user or request). The message is for the user.
    #[error("{0}")]
    NotFound(&'static str),
    /// The rules say no. The message is for the user.
    #[error("{0}")]
    Refused(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<SocialError> for AppError {
    fn from(error: SocialError) -> Self {
        match error {
            SocialError::NotFound(message) => AppError::NotFound(message.into()),
            SocialError::Refused(message) => AppError::Forbidden(message.into()),
            SocialError::Db(e) => crate::server::unavailable("a friends change")(e),
        }
    }
}

const NO_SUCH_USER: &str = "This person does not exist.";
const CANNOT_ASK: &str = "You cannot send a friend request to this person.";

/// A pair of users in the order tables store them: smaller id first.
pub fn ordered(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

impl Db {
    /// Search results with where `me` stands with each; blocked pairs (either way) never see
    /// each other.
    pub async fn search_users(
        &self,
        me: i64,
        query: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<(UserCard, Relation)>, DbError> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT u.id, u.display_name, \
               CASE WHEN EXISTS (SELECT 1 FROM friendships f \
                                 WHERE (f.user_a = $1 AND f.user_b = u.id) \
                                    OR (f.user_a = u.id AND f.user_b = $1)) THEN 1 \
                    WHEN EXISTS (SELECT 1 FROM friend_requests r WHERE r.from_user = $1 \
                                 AND r.to_user = u.id) THEN 2 \
                    WHEN EXISTS (SELECT 1 FROM friend_requests r WHERE r.from_user = u.id \
                                 AND r.to_user = $1) THEN 3 \
                    ELSE 0 END \
             FROM users u \
             WHERE u.id <> $1 \
               AND (u.name_key LIKE $2 ESCAPE '\\' OR u.email_key = $3) \
               AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker = $1 AND b.blocked = u.id) \
                               OR (b.blocker = u.id AND b.blocked = $1)) \
             ORDER BY u.name_key, u.id LIMIT $4 OFFSET $5",
        )
        .bind(me)
        .bind(contains_pattern(&name_key(query)))
        .bind(super::users::email_key(query))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, display_name, relation)| {
                let relation = match relation {
                    1 => Relation::Friend,
                    2 => Relation::RequestSent,
                    3 => Relation::RequestReceived,
                    _ => Relation::None,
                };
                (UserCard { id, display_name }, relation)
            })
            .collect())
    }

    pub async fn friends_overview(&self, me: i64) -> Result<FriendsOverview, DbError> {
        let friends: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT u.id, u.display_name, u.last_seen_at, c.id \
             FROM friendships f \
             JOIN users u ON u.id = CASE WHEN f.user_a = $1 THEN f.user_b ELSE f.user_a END \
             JOIN conversations c ON c.user_a = f.user_a AND c.user_b = f.user_b \
             WHERE f.user_a = $1 OR f.user_b = $1",
        )
        .bind(me)
        .fetch_all(&self.pool)
        .await?;
        let requests = |sql: &'static str| async move {
            let rows: Vec<(i64, String, String)> =
                sqlx::query_as(sql).bind(me).fetch_all(&self.pool).await?;
            Ok::<_, DbError>(
                rows.into_iter()
                    .map(|(id, display_name, sent_at)| FriendRequest {
                        user: UserCard { id, display_name },
                        sent_at,
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let incoming = requests(
            "SELECT u.id, u.display_name, r.created_at FROM friend_requests r \
             JOIN users u ON u.id = r.from_user WHERE r.to_user = $1 ORDER BY r.created_at DESC",
        )
        .await?;
        let outgoing = requests(
            "SELECT u.id, u.display_name, r.created_at FROM friend_requests r \
             JOIN users u ON u.id = r.to_user WHERE r.from_user = $1 ORDER BY r.created_at DESC",
        )
        .await?;
        let blocked: Vec<(i64, String)> = sqlx::query_as(
            "SELECT u.id, u.display_name FROM blocks b JOIN users u ON u.id = b.blocked \
             WHERE b.blocker = $1 ORDER BY u.name_key",
        )
        .bind(me)
        .fetch_all(&self.pool)
        .await?;
        Ok(FriendsOverview {
            friends: friends
                .into_iter()
                .map(|(id, display_name, last_seen, conversation_id)| Friend {
                    user: UserCard { id, display_name },
                    online: false,
                    last_seen,
                    conversation_id,
                })
                .collect(),
            incoming,
            outgoing,
            blocked: blocked
                .into_iter()
                .map(|(id, display_name)| UserCard { id, display_name })
                .collect(),
        })
    }

    /// The ids of the user's friends (who see their presence).
    pub async fn friend_ids(&self, me: i64) -> Result<Vec<i64>, DbError> {
        sqlx::query_scalar(
            "SELECT CASE WHEN user_a = $1 THEN user_b ELSE user_a END FROM friendships \
             WHERE user_a = $1 OR user_b = $1",
        )
        .bind(me)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn send_friend_request(
        &self,
        me: i64,
        to: i64,
    ) -> Result<RequestOutcome, SocialError> {
        if me == to {
            return Err(SocialError::Refused(
                "You cannot send a friend request to yourself.",
            ));
        }
        let mut tx = self.immediate().await?;
        let Flag(exists) = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(to)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Err(SocialError::NotFound(NO_SUCH_USER));
        }
        if blocked_between(&mut *tx, me, to).await? {
            return Err(SocialError::Refused(CANNOT_ASK));
        }
        let (a, b) = ordered(me, to);
        let Flag(friends) = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM friendships WHERE user_a = $1 AND user_b = $2)",
        )
        .bind(a)
        .bind(b)
        .fetch_one(&mut *tx)
        .await?;
        if friends {
            return Err(SocialError::Refused("You are already friends."));
        }
        // They asked first: this accepts their request.
        if take_request(&mut tx, to, me).await? {
            let conversation_id = befriend(&mut tx, me, to).await?;
            tx.commit().await?;
            return Ok(RequestOutcome::Accepted { conversation_id });
        }
        sqlx::query("INSERT INTO friend_requests (from_user, to_user) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(me)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RequestOutcome::Sent)
    }

    pub async fn cancel_friend_request(&self, me: i64, to: i64) -> Result<(), SocialError> {
        let deleted =
            sqlx::query("DELETE FROM friend_requests WHERE from_user = $1 AND to_user = $2")
                .bind(me)
                .bind(to)
                .execute(&self.pool)
                .await?
                .rows_affected();
        if deleted == 0 {
            return Err(SocialError::NotFound("There is no request to cancel."));
        }
        Ok(())
    }

    /// Accepts the request `from` sent to `me` (only the recipient can: the request must
    /// point at `me`). Friendship and conversation are created together.
    pub async fn accept_friend_request(&self, me: i64, from: i64) -> Result<i64, SocialError> {
        let mut tx = self.immediate().await?;
        if !take_request(&mut tx, from, me).await? {
            return Err(SocialError::NotFound(
                "There is no request from this person to accept.",
            ));
        }
        let conversation_id = befriend(&mut tx, me, from).await?;
        tx.commit().await?;
        Ok(conversation_id)
    }

    pub async fn reject_friend_request(&self, me: i64, from: i64) -> Result<(), SocialError> {
        let mut tx = self.immediate().await?;
        if !take_request(&mut tx, from, me).await? {
            return Err(SocialError::NotFound(
                "There is no request from this person to reject.",
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a friendship. The conversation and its history stay, read-only.
    pub async fn unfriend(&self, me: i64, other: i64) -> Result<(), SocialError> {
        let (a, b) = ordered(me, other);
        let deleted = sqlx::query("DELETE FROM friendships WHERE user_a = $1 AND user_b = $2")
            .bind(a)
            .bind(b)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(SocialError::NotFound(
                "You are not friends with this person.",
            ));
        }
        Ok(())
    }

    /// Blocks `other`: ends the friendship and any request either way.
    pub async fn block(&self, me: i64, other: i64) -> Result<(), SocialError> {
        if me == other {
            return Err(SocialError::Refused("You cannot block yourself."));
        }
        let mut tx = self.immediate().await?;
        let Flag(exists) = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(other)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Err(SocialError::NotFound(NO_SUCH_USER));
        }
        sqlx::query("INSERT INTO blocks (blocker, blocked) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(me)
            .bind(other)
            .execute(&mut *tx)
            .await?;
        let (a, b) = ordered(me, other);
        sqlx::query("DELETE FROM friendships WHERE user_a = $1 AND user_b = $2")
            .bind(a)
            .bind(b)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM friend_requests WHERE (from_user = $1 AND to_user = $2) \
             OR (from_user = $2 AND to_user = $1)",
        )
        .bind(me)
        .bind(other)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn unblock(&self, me: i64, other: i64) -> Result<(), SocialError> {
        let deleted = sqlx::query("DELETE FROM blocks WHERE blocker = $1 AND blocked = $2")
            .bind(me)
            .bind(other)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(SocialError::NotFound("This person is not blocked."));
        }
        Ok(())
    }

    /// Remembers when the user was last connected (`None` if the account is gone).
    pub async fn touch_last_seen(&self, user: i64) -> Result<Option<String>, DbError> {
        sqlx::query_scalar(&format!(
            "UPDATE users SET last_seen_at = {} WHERE id = $1 RETURNING last_seen_at",
            self.engine.now()
        ))
        .bind(user)
        .fetch_optional(&self.pool)
        .await
    }
}

async fn blocked_between<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    a: i64,
    b: i64,
) -> Result<bool, DbError> {
    let Flag(blocked) = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker = $1 AND blocked = $2) \
         OR (blocker = $2 AND blocked = $1))",
    )
    .bind(a)
    .bind(b)
    .fetch_one(executor)
    .await?;
    Ok(blocked)
}

/// A `LIKE` pattern matching text that contains `needle` (its `%`, `_` and `\` taken
/// literally, with `ESCAPE '\'`).
fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Deletes the request `from` → `to`; whether there was one.
async fn take_request(tx: &mut Tx, from: i64, to: i64) -> Result<bool, DbError> {
    let deleted = sqlx::query("DELETE FROM friend_requests WHERE from_user = $1 AND to_user = $2")
        .bind(from)
        .bind(to)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Makes two users friends, with their conversation (kept from an earlier friendship if they
/// had one). Returns the conversation id.
async fn befriend(tx: &mut Tx, x: i64, y: i64) -> Result<i64, DbError> {
    let (a, b) = ordered(x, y);
    sqlx::query("INSERT INTO friendships (user_a, user_b) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(a)
        .bind(b)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO conversations (user_a, user_b) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(a)
    .bind(b)
    .execute(&mut **tx)
    .await?;
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM conversations WHERE user_a = $1 AND user_b = $2")
            .bind(a)
            .bind(b)
            .fetch_one(&mut **tx)
            .await?;
    sqlx::query(
        "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2), ($1, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(a)
    .bind(b)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}
