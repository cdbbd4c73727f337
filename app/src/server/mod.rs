//! Server-only code (feature `ssr`): the shared state handed to routes and server functions,
//! and the database.

pub mod db;
pub mod state;
