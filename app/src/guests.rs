//! Guests: how someone without an account gets an identity for strangers and codes. The
//! strangers and codes pages call [`start_guest`] when they open; it is the one way a guest
//! is made. Guests can use nothing that needs an account: every friends, messages and
//! account function refuses them with 401, like anyone signed out.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Who the browser is, after [`start_guest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visitor {
    /// Signed in: a user is always themselves, never a guest.
    Member,
    /// A guest, kept in a signed cookie (made now, or an existing one still valid).
    Guest,
}

/// Makes this browser a guest unless it is signed in or a guest already. New guests are
/// limited per client address (429 with `Retry-After`). A tampered or expired guest cookie
/// counts as none: the browser simply becomes a new guest.
#[server(endpoint = "guest/start")]
pub async fn start_guest() -> Result<Visitor, AppError> {
    crate::server::respond(imp::start_guest().await)
}

#[cfg(feature = "ssr")]
mod imp {
    use super::Visitor;
    use crate::{
        error::AppError,
        server::{
            auth::{client_key, rate_limit::retry_secs, request_principal, set_cookie, GuestId},
            state::app_state,
        },
    };

    pub async fn start_guest() -> Result<Visitor, AppError> {
        match request_principal() {
            Some(p) if p.user().is_some() => return Ok(Visitor::Member),
            Some(_) => return Ok(Visitor::Guest),
            None => {}
        }
        let state = app_state()?;
        state
            .auth
            .guest_limiter
            .hit_everywhere(&format!("guest:{}", client_key()))
            .await
            .map_err(|wait| AppError::RateLimited(retry_secs(wait)))?;
        let id = GuestId::random();
        let guests = &state.auth.guests;
        set_cookie(&guests.cookie(&guests.issue(id)));
        tracing::info!(guest = ?id, "guest started");
        Ok(Visitor::Guest)
    }
}
