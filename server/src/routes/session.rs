//! The session layer: for every request carrying a session cookie, checks the token and the
//! user's current token version, and puts the signed-in user into the request's extensions
//! for pages, server functions and sockets to read. Renews tokens past half their lifetime
//! and removes cookies that no longer work.

use app::server::{
    auth::{
        session::{read_cookie, SESSION_COOKIE},
        SessionUser,
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

pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Static assets never need the user: skip the database round trip.
    if request.uri().path().starts_with("/pkg/") {
        return next.run(request).await;
    }
    let token = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| read_cookie(v, SESSION_COOKIE))
        .filter(|t| !t.is_empty())
        .map(str::to_string);

    let sessions = &state.auth.sessions;
    let mut action = CookieAction::None;
    if let Some(token) = token {
        match sessions.verify(&token) {
            None => action = CookieAction::Remove,
            Some(claims) => match claims.user_id() {
                None => action = CookieAction::Remove,
                Some(id) => match state.db.session_user(id).await {
                    Ok(Some(user)) if user.token_version == claims.ver => {
                        if sessions.needs_renewal(&claims) {
                            action =
                                CookieAction::Renew(sessions.issue(user.id, user.token_version));
                        }
                        request.extensions_mut().insert(SessionUser {
                            id: user.id,
                            email: user.email,
                            display_name: user.display_name,
                            token_version: user.token_version,
                            has_password: user.password_hash.is_some(),
                            google_linked: user.google_linked,
                        });
                    }
                    // Deleted, or signed out everywhere since the token was issued.
                    Ok(_) => action = CookieAction::Remove,
                    // Keep the cookie: the session may work again when the database does.
                    Err(error) => tracing::warn!(%error, "session check: database unavailable"),
                },
            },
        }
    }

    let mut response = next.run(request).await;
    // A handler that set the session cookie itself (sign-in, sign-out) has the last word.
    let handler_set_cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(SESSION_COOKIE.as_bytes()));
    let cookie = match action {
        _ if handler_set_cookie => None,
        CookieAction::None => None,
        CookieAction::Renew(token) => Some(sessions.cookie(&token)),
        CookieAction::Remove => Some(sessions.removal_cookie()),
    };
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
