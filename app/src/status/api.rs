//! What the server reports about itself: version, database and applied schema migrations.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The server's own description of itself, shown on the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Parlor's version.
    pub version: String,
    /// The database engine and its version, e.g. `SQLite 3.46.0`.
    pub database: String,
    /// When this database was created (RFC 3339, UTC).
    pub created_at: String,
    /// Schema migrations applied, oldest first.
    pub migrations: Vec<MigrationInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationInfo {
    pub version: i64,
    pub description: String,
}

/// Reads the server status from the database.
#[server(endpoint = "status")]
pub async fn get_status() -> Result<ServerStatus, AppError> {
    let state = crate::server::state::app_state()?;
    let db = state
        .db
        .status()
        .await
        .map_err(crate::server::unavailable("reading the database status"));
    let db = crate::server::respond(db)?;
    Ok(ServerStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        database: format!("SQLite {}", db.engine_version),
        created_at: db.created_at,
        migrations: db
            .migrations
            .into_iter()
            .map(|(version, description)| MigrationInfo {
                version,
                description,
            })
            .collect(),
    })
}
