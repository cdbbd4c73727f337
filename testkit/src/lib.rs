//! Test-only stand-ins for external services. Nothing here ships in the server.

pub mod client;
pub mod idp;
pub mod redis;
