//! `GET /metrics` for Prometheus, served only to `Authorization: Bearer $PARLOR_METRICS_TOKEN`
//! (unset: no such route), and the layer that times every HTTP request by its route.

use std::{future::Future, sync::Arc, time::Instant};

use app::server::{
    metrics::{HttpLabels, Metrics},
    state::AppState,
};
use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The token `/metrics` asks for.
#[derive(Clone)]
pub struct MetricsToken(pub Arc<str>);

/// The exposition, for the holder of the token; 401 for anyone else.
pub async fn serve(
    State(state): State<AppState>,
    axum::Extension(token): axum::Extension<MetricsToken>,
    headers: HeaderMap,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(presented.as_bytes(), token.0.as_bytes()) {
        state.metrics.refused("metrics_token");
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return response;
    }
    let (waiting, matches) = state.strangers.counts();
    state.metrics.set_strangers(waiting, matches);
    let body = state.metrics.render(state.db.pool_use());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Compares without stopping at the first difference (no timing hint at the token).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Times each request and counts it under its route: the matched route pattern, `/pkg` for
/// the built assets, and `other` for anything else (so that the paths an attacker makes up
/// cannot grow the metrics).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    timed(&metrics, request, |request| next.run(request)).await
}

/// [`track`]'s work around any answer: `answer` gives the response to `request`.
pub async fn timed<F: Future<Output = Response>>(
    metrics: &Metrics,
    request: Request,
    answer: impl FnOnce(Request) -> F,
) -> Response {
    let started = Instant::now();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_string(),
        None if request.uri().path().starts_with("/pkg/") => "/pkg".to_string(),
        None => "other".to_string(),
    };
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    };
    let response = answer(request).await;
    metrics.http_request(
        &HttpLabels {
            route,
            method: method.to_string(),
            status: response.status().as_u16(),
        },
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"abc"));
    }
}
