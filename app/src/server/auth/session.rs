//! Sessions: a signed JWT (HS256) in an HttpOnly, SameSite=Lax cookie. A token names the user,
//! the user's token version and the session's own random id; bumping the version in the
//! database ends every session at once, revoking the id (sign out) ends that one. Tokens past
//! half their lifetime are renewed on the next request (sliding expiry), keeping their id.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The signed content of a session token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's token version when the token was issued.
    pub ver: i64,
    /// The session's id (32 hex digits), the same through renewals.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// Signs and checks session tokens, and writes the cookies that carry them.
#[derive(Clone)]
pub struct Sessions {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sessions {
    /// `secret` must be at least 32 bytes (checked by the configuration); `secure` adds the
    /// Secure attribute, for sites served over HTTPS.
    pub fn new(secret: &[u8], ttl: Duration, secure: bool) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
            secure,
        }
    }

    /// A token for the user, issued at `iat` (seconds since the epoch).
    pub fn issue_at(&self, user_id: i64, token_version: i64, iat: u64) -> String {
        self.issue_with(user_id, token_version, new_session_id(), iat)
    }

    /// A renewed token for the same session (same id), valid for a full lifetime from now.
    pub fn renew(&self, claims: &Claims, token_version: i64) -> Option<String> {
        let user_id = claims.user_id()?;
        Some(self.issue_with(user_id, token_version, claims.sid.clone(), now_secs()))
    }

    /// How long a session lasts without use.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn issue_with(&self, user_id: i64, token_version: i64, sid: String, iat: u64) -> String {
        let claims = Claims {
            sub: user_id.to_string(),
            ver: token_version,
            sid,
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    pub fn issue(&self, user_id: i64, token_version: i64) -> String {
        self.issue_at(user_id, token_version, now_secs())
    }

    /// The claims of a token signed by us and not expired.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// Signs any short-lived value (e.g. the OAuth state cookie) with the session key. The
    /// value must carry its own `exp`.
    pub fn sign<T: Serialize>(&self, value: &T) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), value, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The value of a token made by [`sign`](Self::sign), if genuine and not expired.
    pub fn open<T: serde::de::DeserializeOwned>(&self, token: &str) -> Option<T> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<T>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Whether a valid token is past half its lifetime and should be replaced.
    pub fn needs_renewal(&self, claims: &Claims) -> bool {
        now_secs() >= claims.iat + self.ttl.as_secs() / 2
    }

    /// The `Set-Cookie` value that stores a session token.
    pub fn cookie(&self, token: &str) -> String {
        super::cookies::SESSION.set(token, self.ttl.as_secs(), self.secure)
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn removal_cookie(&self) -> String {
        super::cookies::SESSION.remove(self.secure)
    }
}

/// A fresh session id: 128 random bits, hex-encoded.
fn new_session_id() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes from the OS, hex-encoded: a fresh development session secret.
pub fn random_secret_hex() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed-in user of a request, put in the request's extensions by the session layer
/// after checking the token and the user's current token version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: i64,
    /// This session's id (see [`Claims::sid`]).
    pub session_id: String,
    /// When the token this request carried expires (seconds since the epoch).
    pub expires_at: u64,
    pub email: String,
    pub display_name: String,
    pub token_version: i64,
    pub has_password: bool,
    pub google_linked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(&[7u8; 32], Duration::from_secs(14 * 24 * 3600), false)
    }

    #[test]
    fn a_token_round_trips_and_names_user_and_version() {
        let s = sessions();
        let claims = s.verify(&s.issue(42, 3)).unwrap();
        assert_eq!(claims.user_id(), Some(42));
        assert_eq!(claims.ver, 3);
        assert!(!s.needs_renewal(&claims));
        assert_eq!(claims.sid.len(), 32);
        assert_ne!(s.verify(&s.issue(42, 3)).unwrap().sid, claims.sid);
        // Renewing keeps the session's id.
        let renewed = s.verify(&s.renew(&claims, 3).unwrap()).unwrap();
        assert_eq!(renewed.sid, claims.sid);
    }

    #[test]
    fn tampered_foreign_and_expired_tokens_are_rejected() {
        let s = sessions();
        let token = s.issue(1, 0);
        // Change one character of the payload.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = parts[1].replacen('J', "K", 1);
        assert!(s.verify(&parts.join(".")).is_none());
        let other = Sessions::new(&[8u8; 32], Duration::from_secs(60), false);
        assert!(s.verify(&other.issue(1, 0)).is_none());
        let expired = s.issue_at(1, 0, now_secs() - 15 * 24 * 3600);
        assert!(s.verify(&expired).is_none());
        assert!(s.verify("not a token").is_none());
        assert!(s.verify("").is_none());
    }

    #[test]
    fn tokens_past_half_their_life_need_renewal() {
        let s = sessions();
        let old = s
            .verify(&s.issue_at(1, 0, now_secs() - 8 * 24 * 3600))
            .unwrap();
        assert!(s.needs_renewal(&old));
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_when_asked() {
        let plain = sessions().cookie("t");
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"));
        assert!(!plain.contains("Secure"));
        let secure = Sessions::new(&[7u8; 32], Duration::from_secs(60), true).cookie("t");
        assert!(secure.ends_with("; Secure"));
    }
}
