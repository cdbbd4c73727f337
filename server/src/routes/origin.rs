//! Cross-site request refusal: a state-changing request (a server function call, a socket
//! upgrade) that a browser sent from another site carries that site's `Origin`; it is refused
//! unless that origin is this site's own or explicitly allowed. Requests without `Origin`
//! come from non-browser clients, which hold no victim's cookies, and pass.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};

/// Origins allowed besides the request's own (`PARLOR_ALLOWED_ORIGINS`), as
/// `scheme://host[:port]`.
#[derive(Clone, Debug, Default)]
pub struct AllowedOrigins(pub Arc<Vec<String>>);

pub async fn layer(
    State(allowed): State<AllowedOrigins>,
    request: Request,
    next: Next,
) -> Response {
    match refusal(&allowed, &request) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The answer to a request refused for its origin; `None` when it may go on.
pub fn refusal(allowed: &AllowedOrigins, request: &Request) -> Option<Response> {
    let guarded = request.method() != Method::GET && request.method() != Method::HEAD
        || request.uri().path() == "/ws";
    let origin = request.headers().get(header::ORIGIN).filter(|_| guarded)?;
    let origin = origin.to_str().unwrap_or("");
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_site = origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority == host);
    if same_site || allowed.0.iter().any(|a| a == origin) {
        return None;
    }
    tracing::warn!(
        origin,
        path = request.uri().path(),
        "cross-origin request refused"
    );
    Some(
        (
            StatusCode::FORBIDDEN,
            Json(app::error::AppError::ForeignOrigin),
        )
            .into_response(),
    )
}
