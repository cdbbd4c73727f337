//! Accounts: sign up, sign in, sign out, the current session, and profile changes. Every
//! function finds the user from the session cookie (checked by the server's session layer),
//! never from anything in the request body.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in user, as the browser sees it. No secrets, no hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    /// False for accounts created through Google that never set a password.
    pub has_password: bool,
    pub google_linked: bool,
    /// Listed in `PARLOR_ADMIN_EMAILS`: sees the moderation page.
    pub moderator: bool,
}

/// What the page needs to know about signing in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: Option<Me>,
    /// Whether "Sign in with Google" is configured on this server.
    pub google_sign_in: bool,
}

#[server(endpoint = "auth/session")]
pub async fn current_session() -> Result<SessionInfo, AppError> {
    crate::server::respond(imp::current_session().await)
}

#[server(endpoint = "auth/sign_up")]
pub async fn sign_up(
    email: String,
    display_name: String,
    password: String,
) -> Result<(), AppError> {
    crate::server::respond(imp::sign_up(email, display_name, password).await)
}

#[server(endpoint = "auth/sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    crate::server::respond(imp::sign_in(email, password).await)
}

#[server(endpoint = "auth/sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    crate::server::respond(imp::sign_out().await)
}

/// Ends every session of the signed-in user, on every device, this one included.
#[server(endpoint = "auth/sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    crate::server::respond(imp::sign_out_everywhere().await)
}

#[server(endpoint = "account/display_name")]
pub async fn change_display_name(display_name: String) -> Result<(), AppError> {
    crate::server::respond(imp::change_display_name(display_name).await)
}

/// Sets a new password. Needs the current one when the account has one; ends every other
/// session and keeps this one.
#[server(endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    crate::server::respond(imp::change_password(current_password, new_password).await)
}

/// Deletes the signed-in user's account. `confirmation` is the password, or for accounts
/// without one, the account's email address.
#[server(endpoint = "account/delete")]
pub async fn delete_account(confirmation: String) -> Result<(), AppError> {
    crate::server::respond(imp::delete_account(confirmation).await)
}

/// The implementations, server only. Each returns the error; `respond` turns it into the
/// right HTTP status for API callers.
#[cfg(feature = "ssr")]
mod imp {
    use super::*;

    pub async fn current_session() -> Result<SessionInfo, AppError> {
        Ok(crate::server::auth::session_info())
    }

    pub async fn sign_up(
        email: String,
        display_name: String,
        password: String,
    ) -> Result<(), AppError> {
        use crate::accounts::validate;
        use crate::server::{
            auth::{self, password as pw},
            db::users::CreateUserError,
            state::app_state,
            unavailable,
        };
        let state = app_state()?;
        limit_client(&state).await?;

        let mut errors = Vec::new();
        let email = validate::email(&email).map_err(|e| errors.push(e)).ok();
        let display_name = validate::display_name(&display_name)
            .map_err(|e| errors.push(e))
            .ok();
        let _ = validate::new_password(&password, "password").map_err(|e| errors.push(e));
        let (Some(email), Some(display_name), true) = (email, display_name, errors.is_empty())
        else {
            return Err(AppError::Invalid(errors));
        };

        let hash = pw::hash(password).await.map_err(|_| AppError::Internal)?;
        let user = match state
            .db
            .create_user(&email, false, &display_name, Some(&hash.0))
            .await
        {
            Ok(user) => user,
            Err(CreateUserError::EmailTaken) => {
                return Err(AppError::invalid(
                    "email",
                    "An account with this email already exists. Sign in instead.",
                ))
            }
            Err(CreateUserError::Db(e)) => return Err(unavailable("creating a user")(e)),
        };
        tracing::info!(user_id = user.id, "account created");
        auth::start_session(&state, user.id, user.token_version);
        leptos_axum::redirect("/");
        Ok(())
    }

    pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
        use crate::accounts::validate::{MAX_EMAIL, MAX_PASSWORD};
        use crate::server::{
            auth::{self, password as pw},
            db::users::email_key,
            state::app_state,
            unavailable,
        };
        let state = app_state()?;
        limit_client(&state).await?;

        let email = email.trim().to_string();
        let mut errors = Vec::new();
        if email.is_empty() {
            errors.push(crate::error::FieldError::new(
                "email",
                "Enter your email address.",
            ));
        }
        if password.is_empty() {
            errors.push(crate::error::FieldError::new(
                "password",
                "Enter your password.",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        // Nothing this long can match: answer without hashing it.
        if email.chars().count() > MAX_EMAIL || password.chars().count() > MAX_PASSWORD {
            return Err(AppError::WrongCredentials);
        }

        let account = format!("account:{}", email_key(&email));
        reserve_password_check(&state, &account).await?;
        let user = state
            .db
            .user_by_email(&email)
            .await
            .map_err(unavailable("looking up a user"))?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let user = match (pw::verify(password, hash).await, user) {
            (true, Some(user)) => user,
            _ => {
                tracing::info!("sign-in failed");
                return Err(AppError::WrongCredentials);
            }
        };
        password_correct(&state, &account).await;
        link_waiting_google_identity(&state, &user).await;
        tracing::info!(user_id = user.id, "signed in");
        auth::start_session(&state, user.id, user.token_version);
        leptos_axum::redirect("/");
        Ok(())
    }

    pub async fn sign_out() -> Result<(), AppError> {
        use crate::server::{auth, state::app_state, unavailable};
        let state = app_state()?;
        // The session ends on the server too: a copy of the cookie stops working, and this
        // session's sockets close.
        if let Some(user) = auth::request_user() {
            state
                .db
                // Until any renewal of it could have expired.
                .revoke_session(
                    &user.session_id,
                    auth::session::now_secs() + state.auth.sessions.ttl().as_secs(),
                )
                .await
                .map_err(unavailable("ending a session"))?;
            state.delivery.end_session(user.id, &user.session_id);
        }
        auth::end_session(&state);
        leptos_axum::redirect("/");
        Ok(())
    }

    pub async fn sign_out_everywhere() -> Result<(), AppError> {
        use crate::server::{auth, state::app_state, unavailable};
        let state = app_state()?;
        let user = auth::require_user()?;
        let version = state
            .db
            .bump_token_version(user.id)
            .await
            .map_err(unavailable("ending sessions"))?;
        state.delivery.end_sessions(user.id, Some(version));
        tracing::info!(user_id = user.id, "signed out everywhere");
        auth::end_session(&state);
        leptos_axum::redirect("/signin");
        Ok(())
    }

    pub async fn change_display_name(display_name: String) -> Result<(), AppError> {
        use crate::server::{auth, state::app_state, unavailable};
        let state = app_state()?;
        let user = auth::require_user()?;
        let display_name = crate::accounts::validate::display_name(&display_name)
            .map_err(|e| AppError::Invalid(vec![e]))?;
        state
            .db
            .set_display_name(user.id, &display_name)
            .await
            .map_err(unavailable("changing a display name"))
    }

    pub async fn change_password(
        current_password: String,
        new_password: String,
    ) -> Result<(), AppError> {
        use crate::server::{
            auth::{self, password as pw},
            state::app_state,
            unavailable,
        };
        let state = app_state()?;
        let user = auth::require_user()?;
        crate::accounts::validate::new_password(&new_password, "new_password")
            .map_err(|e| AppError::Invalid(vec![e]))?;
        if user.has_password {
            let account = format!("account-id:{}", user.id);
            limit_client(&state).await?;
            reserve_password_check(&state, &account).await?;
            if !password_matches(&state, user.id, current_password).await? {
                return Err(AppError::invalid(
                    "current_password",
                    "That is not your current password.",
                ));
            }
            password_correct(&state, &account).await;
        }
        let hash = pw::hash(new_password)
            .await
            .map_err(|_| AppError::Internal)?;
        let version = state
            .db
            .set_password(user.id, &hash.0)
            .await
            .map_err(unavailable("changing a password"))?;
        state.delivery.end_sessions(user.id, Some(version));
        tracing::info!(user_id = user.id, "password changed; other sessions ended");
        auth::start_session(&state, user.id, version);
        Ok(())
    }

    pub async fn delete_account(confirmation: String) -> Result<(), AppError> {
        use crate::server::{auth, db::users::email_key, state::app_state, unavailable};
        let state = app_state()?;
        let user = auth::require_user()?;
        let account = format!("account-id:{}", user.id);
        let confirmed = if user.has_password {
            limit_client(&state).await?;
            reserve_password_check(&state, &account).await?;
            password_matches(&state, user.id, confirmation).await?
        } else {
            email_key(&confirmation) == email_key(&user.email)
        };
        if !confirmed {
            let message = if user.has_password {
                "Enter your password to confirm."
            } else {
                "Enter your email address to confirm."
            };
            return Err(AppError::invalid("confirmation", message));
        }
        // Friends learn at once that this person and the conversation with them are gone.
        let friends = state
            .db
            .friend_ids(user.id)
            .await
            .map_err(unavailable("reading friends"))?;
        state
            .db
            .delete_user(user.id)
            .await
            .map_err(unavailable("deleting an account"))?;
        state.delivery.end_sessions(user.id, None);
        state
            .delivery
            .send_to_users(&friends, &crate::protocol::ServerMsg::FriendsChanged);
        tracing::info!(user_id = user.id, "account deleted");
        auth::end_session(&state);
        leptos_axum::redirect("/");
        Ok(())
    }

    /// Counts a sign-in or sign-up attempt against the client's address.
    async fn limit_client(state: &crate::server::state::AppState) -> Result<(), AppError> {
        use crate::server::auth::{client_key, rate_limit::retry_secs};
        state
            .auth
            .ip_limiter
            .hit_everywhere(&format!("ip:{}", client_key()))
            .await
            .map_err(|wait| AppError::RateLimited(retry_secs(wait)))
    }

    /// Counts a password check against `account` before it runs: counting first, atomically
    /// with the check, is what keeps parallel attempts from all passing the limit. A correct
    /// password then clears the count ([`password_correct`]).
    async fn reserve_password_check(
        state: &crate::server::state::AppState,
        account: &str,
    ) -> Result<(), AppError> {
        use crate::server::auth::rate_limit::retry_secs;
        state
            .auth
            .account_limiter
            .hit_everywhere(account)
            .await
            .map_err(|wait| AppError::RateLimited(retry_secs(wait)))
    }

    async fn password_correct(state: &crate::server::state::AppState, account: &str) {
        state.auth.account_limiter.reset_everywhere(account).await;
    }

    /// After the right password: a Google identity that waited for this account (same
    /// browser, same email, within ten minutes) is linked to it, at most one per account.
    async fn link_waiting_google_identity(
        state: &crate::server::state::AppState,
        user: &crate::server::db::users::UserRow,
    ) {
        use crate::server::{
            auth::{
                cookies::GOOGLE_LINK,
                google::{PendingLink, PROVIDER},
                set_cookie,
            },
            db::users::email_key,
        };
        let Some(parts) = use_context::<axum::http::request::Parts>() else {
            return;
        };
        let secure = state.auth.sessions.secure();
        let pending: Option<PendingLink> = GOOGLE_LINK
            .from_headers(&parts.headers, secure)
            .and_then(|token| state.auth.sessions.open(&token));
        let Some(pending) = pending else {
            return;
        };
        set_cookie(&GOOGLE_LINK.remove(secure));
        if email_key(&pending.email) != email_key(&user.email) || user.google_linked {
            return;
        }
        match state
            .db
            .link_identity(user.id, PROVIDER, &pending.google_sub, &pending.email)
            .await
        {
            Ok(()) => tracing::info!(
                user_id = user.id,
                "Google identity linked after the password"
            ),
            Err(error) => tracing::warn!(%error, "linking a Google identity failed"),
        }
    }

    /// Whether `password` is the signed-in user's current password (read fresh from the
    /// database: the session does not carry the hash).
    async fn password_matches(
        state: &crate::server::state::AppState,
        user_id: i64,
        password: String,
    ) -> Result<bool, AppError> {
        let row = state
            .db
            .user_by_id(user_id)
            .await
            .map_err(crate::server::unavailable("looking up a user"))?
            .ok_or(AppError::Unauthorized)?;
        Ok(crate::server::auth::password::verify(password, row.password_hash).await)
    }
}
