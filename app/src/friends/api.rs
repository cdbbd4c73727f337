//! Friends: finding people, requests, the friends list with presence, unfriending and
//! blocking. Every change is announced live to both people's open tabs (`FriendsChanged`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{error::AppError, wire::UserCard};

/// The shortest search text (in characters) worth running.
pub const MIN_QUERY_CHARS: usize = 2;
/// Search results per page.
pub const SEARCH_PAGE: u32 = 20;

/// Where the searching user stands with a search result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relation {
    None,
    Friend,
    /// The searching user asked them.
    RequestSent,
    /// They asked the searching user.
    RequestReceived,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    pub user: UserCard,
    pub relation: Relation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub results: Vec<SearchResult>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Friend {
    pub user: UserCard,
    pub online: bool,
    /// RFC 3339; `None` when online or never connected.
    pub last_seen: Option<String>,
    pub conversation_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequest {
    pub user: UserCard,
    pub sent_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendsOverview {
    /// Online first, then by name.
    pub friends: Vec<Friend>,
    pub incoming: Vec<FriendRequest>,
    pub outgoing: Vec<FriendRequest>,
    pub blocked: Vec<UserCard>,
}

/// What sending a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOutcome {
    /// The request waits for the other person.
    Sent,
    /// They had already asked you: you are friends now.
    Accepted { conversation_id: i64 },
}

/// People whose name contains `query` (any case), or whose email is exactly `query`. Never
/// yourself, never someone you blocked or who blocked you. `page` counts from 0.
#[server(endpoint = "friends/search")]
pub async fn search_users(query: String, page: u32) -> Result<SearchPage, AppError> {
    crate::server::respond(imp::search_users(query, page).await)
}

#[server(endpoint = "friends/list")]
pub async fn load_friends() -> Result<FriendsOverview, AppError> {
    crate::server::respond(imp::load_friends().await)
}

/// Asks `user_id` to be friends; accepts their request instead if they already asked.
#[server(endpoint = "friends/request")]
pub async fn send_friend_request(user_id: i64) -> Result<RequestOutcome, AppError> {
    crate::server::respond(imp::send_friend_request(user_id).await)
}

/// Withdraws your request to `user_id`.
#[server(endpoint = "friends/cancel")]
pub async fn cancel_friend_request(user_id: i64) -> Result<(), AppError> {
    crate::server::respond(imp::cancel_friend_request(user_id).await)
}

/// Accepts or rejects the request `user_id` sent you. Returns the conversation when accepted.
#[server(endpoint = "friends/answer")]
pub async fn answer_friend_request(user_id: i64, accept: bool) -> Result<Option<i64>, AppError> {
    crate::server::respond(imp::answer_friend_request(user_id, accept).await)
}

#[server(endpoint = "friends/unfriend")]
pub async fn unfriend(user_id: i64) -> Result<(), AppError> {
    crate::server::respond(imp::unfriend(user_id).await)
}

/// Blocks `user_id`: ends the friendship and any request between you; they can no longer
/// find, ask, message or call you.
#[server(endpoint = "friends/block")]
pub async fn block_user(user_id: i64) -> Result<(), AppError> {
    crate::server::respond(imp::block_user(user_id).await)
}

#[server(endpoint = "friends/unblock")]
pub async fn unblock_user(user_id: i64) -> Result<(), AppError> {
    crate::server::respond(imp::unblock_user(user_id).await)
}

#[cfg(feature = "ssr")]
mod imp {
    use super::*;
    use crate::protocol::ServerMsg;
    use crate::server::{auth::require_user, db::social::SocialError, state::app_state};

    pub async fn search_users(query: String, page: u32) -> Result<SearchPage, AppError> {
        let me = require_user()?;
        let state = app_state()?;
        // An exact email finds its account: searches are limited per user and per address,
        // so nobody can test addresses faster than that.
        let limits = &state.limits;
        for (limiter, key) in [
            (&limits.searches_per_user, me.id.to_string()),
            (
                &limits.searches_per_address,
                crate::server::auth::client_key(),
            ),
        ] {
            limiter.hit_everywhere(&key).await.map_err(|wait| {
                AppError::RateLimited(crate::server::auth::rate_limit::retry_secs(wait))
            })?;
        }
        let query = query.trim();
        if query.chars().count() < MIN_QUERY_CHARS {
            return Err(AppError::invalid(
                "query",
                format!("Type at least {MIN_QUERY_CHARS} characters to search."),
            ));
        }
        if query.chars().count() > crate::accounts::validate::MAX_EMAIL {
            return Err(AppError::invalid("query", "That search is too long."));
        }
        let offset = i64::from(page.min(10_000)) * i64::from(SEARCH_PAGE);
        let mut rows = state
            .db
            .search_users(me.id, query, offset, i64::from(SEARCH_PAGE) + 1)
            .await
            .map_err(crate::server::unavailable("searching users"))?;
        let has_more = rows.len() > SEARCH_PAGE as usize;
        rows.truncate(SEARCH_PAGE as usize);
        Ok(SearchPage {
            results: rows
                .into_iter()
                .map(|(user, relation)| SearchResult { user, relation })
                .collect(),
            has_more,
        })
    }

    pub async fn load_friends() -> Result<FriendsOverview, AppError> {
        let me = require_user()?;
        let state = app_state()?;
        let mut overview = state
            .db
            .friends_overview(me.id)
            .await
            .map_err(crate::server::unavailable("reading friends"))?;
        let ids: Vec<i64> = overview.friends.iter().map(|f| f.user.id).collect();
        let online = state.presence.online(&ids).await;
        for (friend, online) in overview.friends.iter_mut().zip(online) {
            friend.online = online;
            if friend.online {
                friend.last_seen = None;
            }
        }
        overview.friends.sort_by(|a, b| {
            b.online.cmp(&a.online).then_with(|| {
                a.user
                    .display_name
                    .to_lowercase()
                    .cmp(&b.user.display_name.to_lowercase())
            })
        });
        Ok(overview)
    }

    /// Runs a change between the signed-in user and `other`, then tells both of them.
    async fn change<T>(
        other: i64,
        run: impl AsyncFnOnce(&crate::server::db::Db, i64) -> Result<T, SocialError>,
    ) -> Result<T, AppError> {
        let me = require_user()?;
        let state = app_state()?;
        state
            .limits
            .friend_changes
            .hit_everywhere(&format!("friends:{}", me.id))
            .await
            .map_err(|wait| {
                AppError::RateLimited(crate::server::auth::rate_limit::retry_secs(wait))
            })?;
        let result = run(&state.db, me.id).await.map_err(AppError::from)?;
        state
            .delivery
            .send_to_users(&[me.id, other], &ServerMsg::FriendsChanged);
        Ok(result)
    }

    pub async fn send_friend_request(user_id: i64) -> Result<RequestOutcome, AppError> {
        change(user_id, async |db, me| {
            db.send_friend_request(me, user_id).await
        })
        .await
    }

    pub async fn cancel_friend_request(user_id: i64) -> Result<(), AppError> {
        change(user_id, async |db, me| {
            db.cancel_friend_request(me, user_id).await
        })
        .await
    }

    pub async fn answer_friend_request(
        user_id: i64,
        accept: bool,
    ) -> Result<Option<i64>, AppError> {
        change(user_id, async |db, me| {
            if accept {
                db.accept_friend_request(me, user_id).await.map(Some)
            } else {
                db.reject_friend_request(me, user_id).await.map(|()| None)
            }
        })
        .await
    }

    pub async fn unfriend(user_id: i64) -> Result<(), AppError> {
        change(user_id, async |db, me| db.unfriend(me, user_id).await).await?;
        end_call_with(user_id).await
    }

    pub async fn block_user(user_id: i64) -> Result<(), AppError> {
        change(user_id, async |db, me| db.block(me, user_id).await).await?;
        end_call_with(user_id).await
    }

    /// A call ringing or running between the two ends: friends calls need a friendship.
    async fn end_call_with(other: i64) -> Result<(), AppError> {
        let me = require_user()?;
        let state = app_state()?;
        let reason = crate::protocol::CallEndReason::NotAllowed;
        crate::server::calls::end_between(&state, me.id, other, reason).await;
        Ok(())
    }

    pub async fn unblock_user(user_id: i64) -> Result<(), AppError> {
        change(user_id, async |db, me| db.unblock(me, user_id).await).await
    }
}
