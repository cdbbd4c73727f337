//! Short-lived TURN credentials, the TURN REST scheme coturn's `use-auth-secret` also checks:
//! the username is `expiry:principal` (expiry in seconds since the epoch), the password is
//! base64(HMAC-SHA1(shared secret, username)). Minted by the server for one party of one call
//! (the principal part is a [`TurnBinding`] label), checked by the TURN server: signed, not
//! expired, and the call or room it is bound to still on. Never logged.

use std::{
    net::SocketAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use app::server::turn_binding::TurnBinding;
use base64::{prelude::BASE64_STANDARD, Engine};
use ring::hmac;

/// The shared secret of Parlor and its TURN server (or an external coturn).
#[derive(Clone)]
pub struct TurnSecret(hmac::Key);

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret([redacted])")
    }
}

impl TurnSecret {
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret))
    }

    /// The password of `username`.
    pub fn password(&self, username: &str) -> String {
        BASE64_STANDARD.encode(hmac::sign(&self.0, username.as_bytes()).as_ref())
    }

    /// A username and password for `principal`, valid until `expires` (seconds since the
    /// epoch).
    pub fn mint(&self, principal: &str, expires: u64) -> (String, String) {
        let username = format!("{expires}:{principal}");
        let password = self.password(&username);
        (username, password)
    }

    /// An ICE server entry for `urls` with credentials for `label` that work for `lifetime`.
    pub fn entry(
        &self,
        urls: Vec<String>,
        label: &str,
        lifetime: std::time::Duration,
    ) -> app::protocol::IceServer {
        let (username, credential) = self.mint(label, now_secs() + lifetime.as_secs());
        app::protocol::IceServer {
            urls,
            username: Some(username),
            credential: Some(credential),
        }
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether what a credential is bound to is still on (its call, its room); set once the
/// app's state exists. Until then only the self-test's credentials work.
pub type Bindings =
    std::sync::Arc<std::sync::OnceLock<Box<dyn Fn(&TurnBinding) -> bool + Send + Sync>>>;

/// Checks TURN requests' credentials: a username this server's secret minted, not expired,
/// bound to something still on.
pub struct RestAuth {
    pub secret: TurnSecret,
    pub metrics: std::sync::Arc<app::server::metrics::Metrics>,
    pub bindings: Bindings,
}

impl RestAuth {
    /// Why `username` is refused (the refusal's metric), if it is.
    fn refusal(&self, username: &str) -> Option<&'static str> {
        let Some((expiry, binding)) = username.split_once(':').and_then(|(expiry, label)| {
            Some((expiry.parse::<u64>().ok()?, TurnBinding::parse(label)?))
        }) else {
            return Some("turn_credentials_malformed");
        };
        if expiry < now_secs() {
            return Some("turn_credentials_expired");
        }
        let live = match (binding, self.bindings.get()) {
            (TurnBinding::SelfTest, _) => true,
            (binding, Some(live)) => live(&binding),
            (_, None) => false,
        };
        (!live).then_some("turn_credentials_ended")
    }
}

impl turn::auth::AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        match self.refusal(username) {
            None => {
                let password = self.secret.password(username);
                Ok(turn::auth::generate_auth_key(username, realm, &password))
            }
            Some(reason) => {
                self.metrics.refused(reason);
                tracing::debug!(%src_addr, reason, "TURN credentials refused");
                Err(turn::Error::Other("refused credentials".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        // What coturn (use-auth-secret) computes: base64(HMAC-SHA1(secret, username)), here
        // from `printf '1600000000:u42' | openssl dgst -sha1 -hmac north -binary | base64`.
        let secret = TurnSecret::new(b"north");
        let (username, password) = secret.mint("u42", 1_600_000_000);
        assert_eq!(username, "1600000000:u42");
        // base64 of a 20-byte HMAC-SHA1.
        assert_eq!(password.len(), 28);
        assert_eq!(password, "IsMdAxBm5HXH/yrMQyS6O77ZmR0=");
        assert_ne!(password, TurnSecret::new(b"south").password(&username));
        assert!(!format!("{secret:?}").contains("north"));
    }
}
