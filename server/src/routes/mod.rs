//! The HTTP surface: health probes and metrics, then the Leptos pages and server functions, then static
//! files and the 404 page. Every request gets an id and a tracing span, and every response
//! protective headers; except the real-time socket's upgrade (`/ws`), which takes the fewest
//! layers that keep it safe and counted (each one costs every connect: many thousands at a
//! time after an instance restarts), and whose socket has a span of its own.

mod api_errors;
mod bucket;
mod client;
mod headers;
mod health;
mod metrics;
mod oauth;
mod origin;
mod rendezvous;
mod session;
mod ws;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, OnceLock,
};

use app::{server::state::AppState, shell, App};
use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
    Router,
};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tower_http::{
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

use crate::config::Config;

pub fn router(state: AppState, config: &Config) -> Router {
    let allowed = origin::AllowedOrigins(Arc::new(config.allowed_origins.clone()));
    // Once per process: generating the list briefly suspends resource loading process-wide
    // (leptos-rs/leptos#4773), which must not overlap another app's rendering (tests run many
    // apps in one process).
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    let routes = ROUTES.get_or_init(|| generate_route_list(App)).clone();
    let leptos_options = state.leptos_options.clone();

    let socket = get(ws::upgrade)
        .layer(middleware::from_fn_with_state(
            SocketGate {
                state: state.clone(),
                allowed: allowed.clone(),
            },
            socket_gate,
        ))
        .with_state(state.clone());

    let mut router = Router::new();
    if let Some(token) = &config.metrics_token {
        let token = metrics::MetricsToken(token.expose().into());
        router = router.route(
            "/metrics",
            get(metrics::serve).layer(axum::Extension(token)),
        );
    }
    router
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/rendezvous/code", post(rendezvous::mint))
        .route("/rendezvous/redeem", post(rendezvous::redeem))
        .route("/rendezvous/ws", get(rendezvous::upgrade))
        .route("/auth/google", get(oauth::start))
        .route("/auth/google/callback", get(oauth::callback))
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let state = state.clone();
                move || provide_context(state.clone())
            },
            move || shell(leptos_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(api_errors::layer))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::layer,
        ))
        .layer(middleware::from_fn_with_state(allowed, origin::layer))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let path = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("fallback");
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), path, id)
            }),
        )
        .layer(middleware::from_fn_with_state(
            headers::HeaderPolicy {
                https: config.https(),
            },
            headers::layer,
        ))
        // No MIME sniffing, no framing by other sites (clickjacking a call UI), no full URLs
        // leaked to other origins.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, Counter::default()))
        // Added after the layers above, so it has only its own: who is asking (session),
        // from where (origin), and the request counted like any other. A 101 carries no page
        // for the protective headers to protect; refusals are JSON.
        .route("/ws", socket)
}

/// What `/ws`'s layer needs.
#[derive(Clone)]
struct SocketGate {
    state: AppState,
    allowed: origin::AllowedOrigins,
}

/// `/ws`'s layers, as one: counted and timed like any request, refused from another site,
/// then who is asking (the session layer). Each `from_fn` layer costs every connect a copy of
/// the route behind it and a boxed future; one instead of three saves two of each.
async fn socket_gate(State(gate): State<SocketGate>, request: Request, next: Next) -> Response {
    let SocketGate { state, allowed } = gate;
    let metrics = state.metrics.clone();
    metrics::timed(&metrics, request, |request| async move {
        match origin::refusal(&allowed, &request) {
            Some(refused) => refused,
            None => session::layer(State(state), request, next).await,
        }
    })
    .await
}

/// Request ids: a process-wide counter, cheaper than random ids and unique per instance.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Some(RequestId::new(n.to_string().parse().ok()?))
    }
}
