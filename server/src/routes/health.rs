//! Probes for process managers and load balancers: `/healthz` says the process answers,
//! `/readyz` says it can serve users (the database answers, and Redis with several
//! instances).

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
    /// With several instances (`PARLOR_REDIS_URL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<&'static str>,
}

/// Liveness: answers whenever the process can serve HTTP at all.
pub async fn live() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 only when the database answers a query (and Redis a ping, when the instance
/// uses it); 503 otherwise, with a log line saying which is down. Nothing to recover: the
/// pools reconnect by themselves, and the next probe says so.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = match state.db.ping().await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unavailable");
            "unavailable"
        }
    };
    let redis = match &state.cluster {
        None => None,
        Some(cluster) => Some(match cluster.ping().await {
            Ok(()) => "ok",
            Err(error) => {
                tracing::warn!(%error, "readiness check: Redis unavailable");
                "unavailable"
            }
        }),
    };
    let ready = database == "ok" && redis.is_none_or(|r| r == "ok");
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Readiness {
            status: if ready { "ready" } else { "unavailable" },
            database,
            redis,
        }),
    )
}
