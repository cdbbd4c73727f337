//! Conversations, messages and receipts. Membership is part of every query that reads a
//! conversation: a user who is not one of its two members finds nothing.

use sqlx::FromRow;

use super::{
    social::ordered,
    writer::{Post, PostError, Posted},
    Db, DbError, Flag,
};
use crate::{
    messages::api::{ConversationDetail, ConversationSummary},
    wire::{CallId, CallOutcome, CallRecord, MessageView, UserCard},
};

/// What a member may do in a conversation (see [`Db::posting_rights`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingRights {
    pub peer: i64,
    /// Why the member may not post any more, in words for them; `None` when they may.
    pub refusal: Option<String>,
    /// Whether either member blocked the other: then nothing of one reaches the other.
    pub blocked: bool,
}

#[derive(FromRow)]
pub(super) struct MessageRow {
    id: i64,
    pub(super) conversation_id: i64,
    pub(super) sender_id: i64,
    pub(super) client_id: String,
    body: String,
    created_at: String,
    call_outcome: Option<String>,
    call_secs: i64,
    #[sqlx(try_from = "Flag")]
    call_video: bool,
}

impl From<MessageRow> for MessageView {
    fn from(row: MessageRow) -> Self {
        MessageView {
            id: row.id,
            conversation_id: row.conversation_id,
            sender_id: row.sender_id,
            client_id: row.client_id,
            body: row.body,
            sent_at: row.created_at,
            call: row.call_outcome.map(|outcome| CallRecord {
                outcome: match outcome.as_str() {
                    "completed" => CallOutcome::Completed,
                    "rejected" => CallOutcome::Rejected,
                    _ => CallOutcome::Missed,
                },
                duration_secs: row.call_secs,
                video: row.call_video,
            }),
        }
    }
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, conversation_id, sender_id, client_id, body, created_at, call_outcome, call_secs, call_video";

/// [`Db::posting_rights`] on any connection (the message writer asks inside its transaction).
pub(super) async fn posting_rights<'e, E>(
    executor: E,
    conversation: i64,
    me: i64,
) -> Result<Option<PostingRights>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    // Conversations and friendships both store the pair smaller id first.
    let row: Option<(i64, Flag, Flag, Flag)> = sqlx::query_as(
        "SELECT CASE WHEN c.user_a = $2 THEN c.user_b ELSE c.user_a END, \
           EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = $2 \
                   AND b.blocked = CASE WHEN c.user_a = $2 THEN c.user_b ELSE c.user_a END), \
           EXISTS (SELECT 1 FROM blocks b WHERE b.blocked = $2 \
                   AND b.blocker = CASE WHEN c.user_a = $2 THEN c.user_b ELSE c.user_a END), \
           EXISTS (SELECT 1 FROM friendships f WHERE f.user_a = c.user_a AND f.user_b = c.user_b) \
         FROM conversations c WHERE c.id = $1 AND (c.user_a = $2 OR c.user_b = $2)",
    )
    .bind(conversation)
    .bind(me)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(
        |(peer, Flag(i_blocked), Flag(they_blocked), Flag(friends))| {
            let refusal = if i_blocked {
                Some("You blocked this person. Unblock them on the Friends page to talk again.")
            } else if they_blocked {
                Some("You can no longer send messages to this person.")
            } else if !friends {
                Some("You are no longer friends: this conversation is read-only.")
            } else {
                None
            };
            PostingRights {
                peer,
                refusal: refusal.map(str::to_string),
                blocked: i_blocked || they_blocked,
            }
        },
    ))
}

impl Db {
    /// The other member of a conversation `me` belongs to; `None` when it does not exist or
    /// `me` is not a member.
    pub async fn conversation_peer(
        &self,
        conversation: i64,
        me: i64,
    ) -> Result<Option<i64>, DbError> {
        sqlx::query_scalar(
            "SELECT CASE WHEN user_a = $2 THEN user_b ELSE user_a END FROM conversations \
             WHERE id = $1 AND (user_a = $2 OR user_b = $2)",
        )
        .bind(conversation)
        .bind(me)
        .fetch_optional(&self.pool)
        .await
    }

    /// For a conversation `me` belongs to: the other member, why `me` may not post any more,
    /// and whether either blocked the other. `None` when the conversation does not exist or is
    /// not theirs. One query: it runs for every message sent.
    pub async fn posting_rights(
        &self,
        conversation: i64,
        me: i64,
    ) -> Result<Option<PostingRights>, DbError> {
        posting_rights(&self.pool, conversation, me).await
    }

    pub async fn conversation_detail(
        &self,
        conversation: i64,
        me: i64,
    ) -> Result<Option<ConversationDetail>, DbError> {
        let Some(rights) = self.posting_rights(conversation, me).await? else {
            return Ok(None);
        };
        let peer = rights.peer;
        let (display_name,): (String,) =
            sqlx::query_as("SELECT display_name FROM users WHERE id = $1")
                .bind(peer)
                .fetch_one(&self.pool)
                .await?;
        // After a block neither sees how far the other has read.
        let (peer_delivered_up_to, peer_read_up_to) = if rights.blocked {
            (0, 0)
        } else {
            self.receipts(conversation, peer).await?
        };
        let (_, read_up_to) = self.receipts(conversation, me).await?;
        Ok(Some(ConversationDetail {
            id: conversation,
            peer: UserCard {
                id: peer,
                display_name,
            },
            peer_online: false,
            read_only_reason: rights.refusal,
            peer_delivered_up_to,
            peer_read_up_to,
            read_up_to,
        }))
    }

    /// `(delivered_up_to, read_up_to)` of one member.
    pub async fn receipts(&self, conversation: i64, user: i64) -> Result<(i64, i64), DbError> {
        Ok(sqlx::query_as(
            "SELECT delivered_up_to, read_up_to FROM conversation_members \
             WHERE conversation_id = $1 AND user_id = $2",
        )
        .bind(conversation)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or((0, 0)))
    }

    pub async fn conversations_of(&self, me: i64) -> Result<Vec<ConversationSummary>, DbError> {
        let rows: Vec<(i64, i64, String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT c.id, u.id, u.display_name, c.last_message_id, \
               (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id \
                  AND m.sender_id <> $1 AND m.id > COALESCE(cm.read_up_to, 0)) \
             FROM conversations c \
             JOIN users u ON u.id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END \
             LEFT JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = $1 \
             WHERE c.user_a = $1 OR c.user_b = $1 \
             ORDER BY COALESCE(c.last_message_id, 0) DESC, c.id DESC",
        )
        .bind(me)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, peer_id, display_name, last_id, unread) in rows {
            let last_message = match last_id {
                Some(last) => sqlx::query_as::<_, MessageRow>(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
                ))
                .bind(last)
                .fetch_optional(&self.pool)
                .await?
                .map(MessageView::from),
                None => None,
            };
            out.push(ConversationSummary {
                id,
                peer: UserCard {
                    id: peer_id,
                    display_name,
                },
                last_message,
                unread,
            });
        }
        Ok(out)
    }

    pub async fn unread_total(&self, me: i64) -> Result<i64, DbError> {
        sqlx::query_scalar(
            "SELECT count(*) FROM conversation_members cm \
             JOIN messages m ON m.conversation_id = cm.conversation_id \
             WHERE cm.user_id = $1 AND m.sender_id <> $1 AND m.id > cm.read_up_to",
        )
        .bind(me)
        .fetch_one(&self.pool)
        .await
    }

    /// Up to `limit` messages older than `before` (or the newest), newest first.
    pub async fn history(
        &self,
        conversation: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MessageView>, DbError> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(conversation)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(MessageView::from).collect())
    }

    /// Messages newer than `after` in every conversation of `me`, oldest first.
    pub async fn messages_after(
        &self,
        me: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageView>, DbError> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id > $2 AND conversation_id IN \
             (SELECT id FROM conversations WHERE user_a = $1 OR user_b = $1) \
             ORDER BY id LIMIT $3"
        ))
        .bind(me)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(MessageView::from).collect())
    }

    /// Stores a message (or finds the one this sender already stored under `client_id`, a
    /// resend), after checking in the same transaction that the sender may post there. Goes
    /// through the batching writer ([`super::writer`]). A trigger moves the conversation's
    /// newest message and the sender's receipts.
    pub async fn post_message(&self, post: Post) -> Result<Posted, PostError> {
        self.writer.post(post).await
    }

    /// Stores how a call went, as a message from the caller in their conversation.
    pub async fn store_call(
        &self,
        conversation: i64,
        caller: i64,
        call_id: CallId,
        record: &CallRecord,
    ) -> Result<MessageView, DbError> {
        let outcome = match record.outcome {
            CallOutcome::Missed => "missed",
            CallOutcome::Rejected => "rejected",
            CallOutcome::Completed => "completed",
        };
        // A message id is handed out under the write lock (see `Db::immediate`).
        let mut tx = self.immediate().await?;
        let row: MessageRow = sqlx::query_as(&format!(
            "INSERT INTO messages (conversation_id, sender_id, client_id, body, call_outcome, \
             call_secs, call_video) VALUES ($1, $2, $3, '', $4, $5, $6) RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(conversation)
        .bind(caller)
        // Call ids are random 128-bit values: unique across restarts and instances.
        .bind(format!("call-{call_id}"))
        .bind(outcome)
        .bind(record.duration_secs)
        .bind(record.video)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// Moves a member's receipts forward (never back, never past the newest message; read
    /// implies delivered). Returns the new `(delivered_up_to, read_up_to)`, or `None` when
    /// nothing moved (then there is nothing to tell anyone).
    pub async fn advance_receipts(
        &self,
        conversation: i64,
        user: i64,
        delivered: i64,
        read: i64,
    ) -> Result<Option<(i64, i64)>, DbError> {
        const NEWEST: &str =
            "COALESCE((SELECT last_message_id FROM conversations WHERE id = $3), 0)";
        let (max, min) = (self.engine.greatest(), self.engine.least());
        // Read implies delivered.
        let delivered = delivered.max(read);
        sqlx::query_as(&format!(
            "UPDATE conversation_members SET \
               delivered_up_to = {max}(delivered_up_to, {min}($1, {NEWEST})), \
               read_up_to = {max}(read_up_to, {min}($2, {NEWEST})) \
             WHERE conversation_id = $3 AND user_id = $4 \
               AND ({min}($1, {NEWEST}) > delivered_up_to OR {min}($2, {NEWEST}) > read_up_to) \
             RETURNING delivered_up_to, read_up_to"
        ))
        .bind(delivered)
        .bind(read)
        .bind(conversation)
        .bind(user)
        .fetch_optional(&self.pool)
        .await
    }
}

/// The conversation of two users, if they ever were friends.
pub async fn conversation_between(db: &Db, x: i64, y: i64) -> Result<Option<i64>, DbError> {
    let (a, b) = ordered(x, y);
    sqlx::query_scalar("SELECT id FROM conversations WHERE user_a = $1 AND user_b = $2")
        .bind(a)
        .bind(b)
        .fetch_optional(&db.pool)
        .await
}
