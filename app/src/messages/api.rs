//! Conversations and their history. Sending, receipts and typing travel over the real-time
//! channel (`crate::protocol`); these functions read what is stored. Only the two members of
//! a conversation can read it; anyone else gets "not found".

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    wire::{MessageView, UserCard},
};

/// History messages per page.
pub const HISTORY_PAGE: u32 = 30;

/// A line of the conversation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: i64,
    pub peer: UserCard,
    pub last_message: Option<MessageView>,
    /// Messages from the peer newer than what the user has read.
    pub unread: i64,
}

/// A conversation as its page needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationDetail {
    pub id: i64,
    pub peer: UserCard,
    pub peer_online: bool,
    /// Why the user cannot post here any more (not friends, blocked); `None` when they can.
    pub read_only_reason: Option<String>,
    /// How far the peer has received and read the conversation (message ids).
    pub peer_delivered_up_to: i64,
    pub peer_read_up_to: i64,
    /// How far the user has read it.
    pub read_up_to: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<MessageView>,
    /// Whether older messages exist before the first one.
    pub has_more: bool,
}

/// The user's conversations, the one with the newest message first.
#[server(endpoint = "messages/conversations")]
pub async fn conversations() -> Result<Vec<ConversationSummary>, AppError> {
    crate::server::respond(imp::conversations().await)
}

/// Unread messages over all the user's conversations.
#[server(endpoint = "messages/unread")]
pub async fn unread_total() -> Result<i64, AppError> {
    crate::server::respond(imp::unread_total().await)
}

#[server(endpoint = "messages/conversation")]
pub async fn conversation(id: i64) -> Result<ConversationDetail, AppError> {
    crate::server::respond(imp::conversation(id).await)
}

/// Up to [`HISTORY_PAGE`] messages older than `before` (a message id), or the newest when
/// `before` is `None`.
#[server(endpoint = "messages/history")]
pub async fn history(conversation_id: i64, before: Option<i64>) -> Result<HistoryPage, AppError> {
    crate::server::respond(imp::history(conversation_id, before).await)
}

#[cfg(feature = "ssr")]
mod imp {
    use super::*;
    use crate::server::{auth::require_user, state::app_state, unavailable};

    fn not_found() -> AppError {
        AppError::NotFound("This conversation does not exist or is not yours.".into())
    }

    pub async fn conversations() -> Result<Vec<ConversationSummary>, AppError> {
        let me = require_user()?;
        let state = app_state()?;
        state
            .db
            .conversations_of(me.id)
            .await
            .map_err(unavailable("listing conversations"))
    }

    pub async fn unread_total() -> Result<i64, AppError> {
        let me = require_user()?;
        let state = app_state()?;
        state
            .db
            .unread_total(me.id)
            .await
            .map_err(unavailable("counting unread messages"))
    }

    pub async fn conversation(id: i64) -> Result<ConversationDetail, AppError> {
        let me = require_user()?;
        let state = app_state()?;
        let mut detail = state
            .db
            .conversation_detail(id, me.id)
            .await
            .map_err(unavailable("reading a conversation"))?
            .ok_or_else(not_found)?;
        // Presence is for people who may talk: not across a block (nor to ex-friends).
        detail.peer_online =
            detail.read_only_reason.is_none() && state.presence.is_online(detail.peer.id).await;
        Ok(detail)
    }

    pub async fn history(
        conversation_id: i64,
        before: Option<i64>,
    ) -> Result<HistoryPage, AppError> {
        let me = require_user()?;
        let state = app_state()?;
        let db = &state.db;
        db.conversation_peer(conversation_id, me.id)
            .await
            .map_err(unavailable("reading a conversation"))?
            .ok_or_else(not_found)?;
        let mut messages = db
            .history(conversation_id, before, i64::from(HISTORY_PAGE) + 1)
            .await
            .map_err(unavailable("reading history"))?;
        let has_more = messages.len() > HISTORY_PAGE as usize;
        messages.truncate(HISTORY_PAGE as usize);
        messages.reverse();
        Ok(HistoryPage { messages, has_more })
    }
}
