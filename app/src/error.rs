//! The one error type server functions return to the browser. Its messages are written for
//! users: internals are logged on the server and never cross the wire.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// A problem with one field of a form, shown next to that field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The form field's `name`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Some fields are not acceptable; each error names its field.
    #[error("{}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" "))]
    Invalid(Vec<FieldError>),
    /// The request needs a signed-in user.
    #[error("Please sign in to continue.")]
    Unauthorized,
    /// Sign-in failed. The same message whether the email is unknown or the password wrong.
    #[error("Email or password is incorrect.")]
    WrongCredentials,
    /// The request came from a page of another site (refused before any server function ran).
    #[error("This request came from another site and was refused.")]
    ForeignOrigin,
    /// Too many attempts; the number is how many seconds to wait.
    #[error("Too many attempts. Try again in {0} s.")]
    RateLimited(u64),
    /// A dependency (the database) does not answer right now.
    #[error("The service is temporarily unavailable. Please try again in a moment.")]
    Unavailable,
    /// A bug or an unexpected failure on the server; the details are in the server log.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request could not be understood (malformed or missing arguments).
    #[error("The request was not valid: {0}")]
    BadRequest(String),
    /// The thing asked for does not exist, or is not the user's to see (the same answer, so
    /// nobody learns what exists).
    #[error("{0}")]
    NotFound(String),
    /// The user may not do this (not friends any more, blocked...). The message says why.
    #[error("{0}")]
    Forbidden(String),
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
            | ServerFnErrorErr::Deserialization(msg) => AppError::BadRequest(shortened(msg)),
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => AppError::Network,
            _ => AppError::Internal,
        }
    }
}

/// Decoder messages may quote the input: a caller's 70 KB value must not come back in full
/// (an error that large was also answered as an internal one).
fn shortened(mut message: String) -> String {
    const MAX: usize = 200;
    if message.len() > MAX {
        message.truncate(message.floor_char_boundary(MAX));
        message.push('…');
    }
    message
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![FieldError::new(field, message)])
    }

    /// The message for one form field, if this error has one.
    pub fn field_message(&self, field: &str) -> Option<String> {
        match self {
            AppError::Invalid(errors) => errors
                .iter()
                .find(|e| e.field == field)
                .map(|e| e.message.clone()),
            _ => None,
        }
    }

    /// The message for the form as a whole: everything not tied to one field.
    pub fn form_message(&self) -> Option<String> {
        match self {
            AppError::Invalid(_) => None,
            other => Some(other.to_string()),
        }
    }
}
