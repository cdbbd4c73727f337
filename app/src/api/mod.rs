//! Server functions, one module per domain, with the wire types they return. Wire types are
//! plain data for the browser: never database rows, never secrets.

pub mod auth;
pub mod friends;
pub mod guest;
pub mod messages;
pub mod status;
pub mod validate;
