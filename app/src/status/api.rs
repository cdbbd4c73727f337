//! What the server tells anyone about itself: whether it is healthy, and nothing more. The
//! version, database engine and schema are an operator's business: they are in the start-up
//! log and in `/metrics` (behind its token), never on a public endpoint where they would tell
//! an attacker which known bugs to try.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The public health report shown on the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// `"ok"` when the server answers and its database does (otherwise the call fails with
    /// "unavailable").
    pub status: String,
    /// When this was checked (RFC 3339, UTC, seconds).
    pub checked_at: String,
}

/// Checks that the database answers.
#[server(endpoint = "status")]
pub async fn get_status() -> Result<ServerStatus, AppError> {
    let state = crate::server::state::app_state()?;
    let now = state
        .db
        .now()
        .await
        .map_err(crate::server::unavailable("checking the database"));
    Ok(ServerStatus {
        status: "ok".into(),
        checked_at: crate::server::respond(now)?,
    })
}
