//! The one error type server functions return to the browser. Its messages are written for
//! users: internals are logged on the server and never cross the wire.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// A dependency (the database) does not answer right now.
    #[error("The service is temporarily unavailable. Please try again in a moment.")]
    Unavailable,
    /// A bug or an unexpected failure on the server; the details are in the server log.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request could not be understood (malformed or missing arguments).
    #[error("The request was not valid: {0}")]
    BadRequest(String),
    /// The browser could not reach the server or read its answer.
    #[error("Could not reach the server. Check your connection and try again.")]
    Network,
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(msg)
            | ServerFnErrorErr::MissingArg(msg)
            | ServerFnErrorErr::Deserialization(msg) => AppError::BadRequest(msg),
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => AppError::Network,
            _ => AppError::Internal,
        }
    }
}
