//! Server-only code (feature `ssr`): the shared state handed to routes and server functions,
//! the database, accounts, sessions and guests, the real-time hub, calls, and metrics.

pub mod auth;
pub mod calls;
pub mod cluster;
pub mod db;
pub mod headers;
pub mod hub;
pub mod metrics;
pub mod moderation;
pub mod queue;
pub mod realtime;
pub mod rendezvous;
pub mod socket_caps;
pub mod state;
pub mod strangers;
pub mod turn_binding;

use crate::error::AppError;

/// Maps a database failure to `Unavailable` for the user, logging what happened.
pub fn unavailable<E: std::fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> AppError {
    move |error| {
        tracing::error!(%error, "{doing} failed");
        AppError::Unavailable
    }
}

/// Gives a server function's error its HTTP status (401, 422, 429 with `Retry-After`, 503...)
/// for API callers. Plain form posts (no JavaScript) keep Leptos's redirect back to the form,
/// which carries the error in the URL.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    use axum::http::{header, request::Parts, HeaderValue, StatusCode};
    use leptos::prelude::use_context;

    let Err(error) = &result else {
        return result;
    };
    let form_post = use_context::<Parts>()
        .and_then(|p| {
            p.headers
                .get(header::ACCEPT)?
                .to_str()
                .ok()
                .map(|a| a.contains("text/html"))
        })
        .unwrap_or(false);
    if let (false, Some(response)) = (form_post, use_context::<leptos_axum::ResponseOptions>()) {
        let status = match error {
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized | AppError::WrongCredentials => StatusCode::UNAUTHORIZED,
            AppError::ForeignOrigin => StatusCode::FORBIDDEN,
            AppError::RateLimited(secs) => {
                if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                    response.insert_header(header::RETRY_AFTER, value);
                }
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal | AppError::Network => StatusCode::INTERNAL_SERVER_ERROR,
        };
        response.set_status(status);
    }
    result
}
