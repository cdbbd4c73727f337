//! Probes for process managers and load balancers: `/healthz` says the process answers,
//! `/readyz` says it can serve users (the database answers).

use app::server::state::AppState;
use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    database: &'static str,
}

/// Liveness: answers whenever the process can serve HTTP at all.
pub async fn live() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 only when the database answers a query; 503 otherwise.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                database: "ok",
            }),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    status: "unavailable",
                    database: "unavailable",
                }),
            )
        }
    }
}
