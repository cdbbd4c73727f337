//! Accounts and sessions on the server: password hashing, session tokens and cookies, rate
//! limits, and the helpers server functions use to find the signed-in user of a request.

pub mod cookies;
pub mod google;
pub mod password;
pub mod principal;
pub mod proxy;
pub mod rate_limit;
pub mod session;

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::ConnectInfo,
    http::{header::SET_COOKIE, request::Parts, HeaderValue},
};
use leptos::prelude::use_context;

use self::{rate_limit::Limiter, session::Sessions};
use crate::error::AppError;
pub use principal::{Authenticated, GuestId, Guests, Principal, PrincipalId};
pub use session::SessionUser;

/// Everything authentication needs, built once at start from the configuration.
#[derive(Debug)]
pub struct Auth {
    pub sessions: Sessions,
    /// Sign-in and sign-up attempts per client address.
    pub ip_limiter: Box<dyn Limiter>,
    /// Failed sign-ins per account.
    pub account_limiter: Box<dyn Limiter>,
    /// Guest identities for people without an account (strangers, codes).
    pub guests: Guests,
    /// New guests per client address.
    pub guest_limiter: Box<dyn Limiter>,
    /// Reverse proxies whose forwarding headers name the client (`PARLOR_TRUSTED_PROXIES`).
    pub proxies: proxy::TrustedProxies,
    /// Google sign-in, when configured.
    pub google: Option<GoogleSettings>,
}

/// Where Google (or a stand-in speaking the same protocol) lives, and who we are to it.
#[derive(Clone)]
pub struct GoogleSettings {
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    /// Our callback, as registered with the provider.
    pub redirect_url: String,
}

impl std::fmt::Debug for GoogleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleSettings")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("auth_url", &self.auth_url)
            .field("token_url", &self.token_url)
            .field("userinfo_url", &self.userinfo_url)
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// Extractor for axum routes (the WebSocket upgrade among them): the signed-in user, or 401.
/// Server functions use [`require_user`], which reads the same request extension.
#[derive(Debug, Clone)]
pub struct AuthUser(pub SessionUser);

/// What extractors answer when the request has no one they accept.
pub type Rejection = (axum::http::StatusCode, axum::Json<AppError>);

/// A value the session layer put into the request's extensions, or 401.
pub(crate) fn from_session_layer<T: Clone + Send + Sync + 'static>(
    parts: &Parts,
) -> Result<T, Rejection> {
    parts.extensions.get::<T>().cloned().ok_or((
        axum::http::StatusCode::UNAUTHORIZED,
        axum::Json(AppError::Unauthorized),
    ))
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AuthUser {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        from_session_layer(parts).map(AuthUser)
    }
}

/// The signed-in user of the current request (set by the session layer), if any.
pub fn request_user() -> Option<SessionUser> {
    use_context::<Parts>()?
        .extensions
        .get::<SessionUser>()
        .cloned()
}

/// The user or guest of the current request (set by the session layer), if any.
pub fn request_principal() -> Option<Principal> {
    use_context::<Parts>()?
        .extensions
        .get::<Principal>()
        .cloned()
}

/// The signed-in user, or `Unauthorized` (guests included: they have no account).
pub fn require_user() -> Result<SessionUser, AppError> {
    request_user().ok_or(AppError::Unauthorized)
}

/// The address of the client that sent the current request: the connection's peer, or, when
/// that is a trusted proxy, the client it names (see [`proxy`]).
pub fn client_ip() -> Option<IpAddr> {
    let parts = use_context::<Parts>()?;
    client_ip_of(
        &parts,
        use_context::<crate::server::state::AppState>().as_ref(),
    )
}

/// [`client_ip`] for a request's `parts` (the proxies trusted are `state`'s; without it, the
/// peer itself).
pub fn client_ip_of(
    parts: &Parts,
    state: Option<&crate::server::state::AppState>,
) -> Option<IpAddr> {
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(match state {
        Some(state) => state.auth.proxies.client(peer.ip(), &parts.headers),
        None => peer.ip(),
    })
}

/// The key limits count the current client under (IPv6 grouped by /64).
pub fn client_key() -> String {
    client_ip().map(rate_limit::address_key).unwrap_or_default()
}

/// Signs the user in on this response: a fresh session cookie for `token_version`.
pub fn start_session(state: &crate::server::state::AppState, user_id: i64, token_version: i64) {
    let sessions = &state.auth.sessions;
    set_cookie(&sessions.cookie(&sessions.issue(user_id, token_version)));
}

/// Signs the user out on this response: the session cookie is removed.
pub fn end_session(state: &crate::server::state::AppState) {
    set_cookie(&state.auth.sessions.removal_cookie());
}

/// Adds a `Set-Cookie` header to the server function's response.
pub fn set_cookie(value: &str) {
    match (
        use_context::<leptos_axum::ResponseOptions>(),
        HeaderValue::from_str(value),
    ) {
        (Some(response), Ok(value)) => response.append_header(SET_COOKIE, value),
        _ => tracing::error!("cannot set a cookie outside a server function response"),
    }
}

/// The current request's session as the page sees it, read synchronously (no database trip:
/// the session layer already loaded the user). Used to render the signed-in state on the
/// server and hand it to the browser with the page.
pub fn session_info() -> crate::accounts::api::SessionInfo {
    // No state while the route list is generated at start-up: nobody is signed in then.
    let state = use_context::<crate::server::state::AppState>();
    let google_sign_in = state.as_ref().is_some_and(|s| s.auth.google.is_some());
    crate::accounts::api::SessionInfo {
        user: request_user().map(|u| crate::accounts::api::Me {
            moderator: state
                .as_ref()
                .is_some_and(|s| s.moderators.includes(&u.email)),
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            has_password: u.has_password,
            google_linked: u.google_linked,
        }),
        google_sign_in,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::FromRequestParts;

    fn user() -> SessionUser {
        SessionUser {
            id: 7,
            session_id: "00".repeat(16),
            expires_at: 0,
            email: "ann@example.com".into(),
            display_name: "Ann".into(),
            token_version: 0,
            has_password: true,
            google_linked: false,
        }
    }

    #[tokio::test]
    async fn the_extractor_yields_the_session_user_or_401() {
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        let rejection = AuthUser::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(rejection.0, axum::http::StatusCode::UNAUTHORIZED);

        parts.extensions.insert(user());
        let AuthUser(found) = AuthUser::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(found, user());
    }
}
