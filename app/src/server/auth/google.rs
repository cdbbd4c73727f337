//! Linking a Google identity to an existing account. An account whose email was never proven
//! (a password sign-up: anyone can type any address) must not silently absorb the Google
//! identity of whoever owns that address, or a squatter who signed up first would share the
//! owner's account. So the identity waits in a short-lived signed cookie, and is linked only
//! when that account's password is entered in the same browser.

use serde::{Deserialize, Serialize};

/// The cookie holding a Google identity waiting to be linked.
pub const LINK_COOKIE: &str = "parlor_google_link";
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

/// The `Set-Cookie` value carrying (or, with an empty token and 0, removing) a pending link.
pub fn link_cookie(token: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{LINK_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}
