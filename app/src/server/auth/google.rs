//! Linking a Google identity to an existing account. An account whose email was never proven
//! (a password sign-up: anyone can type any address) must not silently absorb the Google
//! identity of whoever owns that address, or a squatter who signed up first would share the
//! owner's account. So the identity waits in a short-lived signed cookie, and is linked only
//! when that account's password is entered in the same browser.

use serde::{Deserialize, Serialize};

/// How long it waits.
pub const LINK_SECS: u64 = 600;
/// The provider name identities are stored under.
pub const PROVIDER: &str = "google";

/// A Google identity waiting for the password of the account with its email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLink {
    /// The provider's subject (its user id).
    pub google_sub: String,
    pub email: String,
    pub exp: u64,
}
