//! The key limits count a request's client under: its address (the connection's peer, or the
//! client a trusted proxy names), IPv6 grouped by /64. Read from the request's parts, so no
//! handler copies the headers to learn it.

use app::server::{
    auth::{client_ip_of, rate_limit::address_key},
    state::AppState,
};
use axum::{
    extract::FromRequestParts,
    http::{request::Parts, StatusCode},
};

/// The client's limit key (see [`address_key`]).
pub struct ClientKey(pub String);

impl FromRequestParts<AppState> for ClientKey {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, StatusCode> {
        // Always there: the server is made with connect info.
        let ip = client_ip_of(parts, Some(state)).ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(ClientKey(address_key(ip)))
    }
}
