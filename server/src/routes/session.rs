//! The session layer: for every request carrying a session cookie, checks the token and the
//! user's current token version, and puts the signed-in user into the request's extensions
//! for pages, server functions and sockets to read; without a user, a guest cookie makes the
//! request a guest's. Either way a [`Principal`] goes into the extensions. Renews tokens past
//! half their lifetime (guests' daily) and removes cookies that no longer work.

use app::server::{
    auth::{
        cookies::{GUEST, SESSION},
        Principal, SessionUser,
    },
    state::AppState,
};
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
};

enum CookieAction {
    None,
    Renew(String),
    Remove,
}

enum Checked {
    /// The signed-in user, and a renewed token when the old one is past half its life.
    Valid(SessionUser, Option<String>),
    /// Forged, expired, revoked (signed out), or from before "sign out everywhere"; or the
    /// account is gone.
    Invalid,
    Unavailable,
}

async fn check_session(state: &AppState, token: &str) -> Checked {
    let sessions = &state.auth.sessions;
    let Some(claims) = sessions.verify(token) else {
        return Checked::Invalid;
    };
    let Some(id) = claims.user_id() else {
        return Checked::Invalid;
    };
    let user = match state.db.session_check(id, &claims.sid).await {
        Ok(Some((user, false))) if user.token_version == claims.ver => user,
        Ok(_) => return Checked::Invalid,
        Err(error) => {
            tracing::warn!(%error, "session check: database unavailable");
            return Checked::Unavailable;
        }
    };
    let renewed = sessions
        .needs_renewal(&claims)
        .then(|| sessions.renew(&claims, user.token_version))
        .flatten();
    Checked::Valid(
        SessionUser {
            id: user.id,
            session_id: claims.sid,
            // The token this request came with (a socket opened with it ends then, and its
            // browser reconnects with the renewed one).
            expires_at: claims.exp,
            email: user.email,
            display_name: user.display_name,
            token_version: user.token_version,
            has_password: user.password_hash.is_some(),
            google_linked: user.google_linked,
        },
        renewed,
    )
}

pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Static assets never need the user: skip the database round trip.
    if request.uri().path().starts_with("/pkg/") {
        return next.run(request).await;
    }
    let sessions = &state.auth.sessions;
    let secure = sessions.secure();
    let (token, guest_token) = (
        SESSION.from_headers(request.headers(), secure),
        GUEST.from_headers(request.headers(), secure),
    );

    let mut action = CookieAction::None;
    if let Some(token) = token {
        match check_session(&state, &token).await {
            Checked::Valid(user, renewed) => {
                if let Some(token) = renewed {
                    action = CookieAction::Renew(token);
                }
                request
                    .extensions_mut()
                    .insert(Principal::User(user.clone()));
                request.extensions_mut().insert(user);
            }
            Checked::Invalid => action = CookieAction::Remove,
            // Keep the cookie: the session may work again when the database does.
            Checked::Unavailable => {}
        }
    }

    // A signed-in user is themselves, never a guest: a guest cookie counts only without one.
    let guests = &state.auth.guests;
    let mut guest_action = CookieAction::None;
    if let (false, Some(token)) = (
        request.extensions().get::<SessionUser>().is_some(),
        guest_token,
    ) {
        match guests.verify(&token) {
            Some(guest) => {
                if guest.renew {
                    guest_action = CookieAction::Renew(guests.issue(guest.id));
                }
                request.extensions_mut().insert(Principal::Guest(guest.id));
            }
            // Tampered or expired: no guest (a new one is made when the page asks for one).
            None => guest_action = CookieAction::Remove,
        }
    }

    let mut response = next.run(request).await;
    // A handler that set a cookie itself (sign-in, sign-out, a new guest) has the last word.
    let handler_set = |cookie: app::server::auth::cookies::Cookie| {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| cookie.is_set_by(v.as_bytes(), secure))
    };
    let session_cookie = match action {
        _ if handler_set(SESSION) => None,
        CookieAction::None => None,
        CookieAction::Renew(token) => Some(sessions.cookie(&token)),
        CookieAction::Remove => Some(sessions.removal_cookie()),
    };
    let guest_cookie = match guest_action {
        _ if handler_set(GUEST) => None,
        CookieAction::None => None,
        CookieAction::Renew(token) => Some(guests.cookie(&token)),
        CookieAction::Remove => Some(guests.removal_cookie()),
    };
    for cookie in [session_cookie, guest_cookie].into_iter().flatten() {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
