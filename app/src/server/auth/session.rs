//! Sessions: a signed JWT (HS256) in an HttpOnly, SameSite=Lax cookie. A token names the user,
//! the user's token version and the session's own random id; bumping the version in the
//! database ends every session at once, revoking the id (sign out) ends that one. Tokens past
//! half their lifetime are renewed on the next request (sliding expiry), keeping their id.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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
    /// The key's HMAC state, derived once: checking a token then hashes only the token.
    mac: Hmac<Sha256>,
    /// The first part of every token we sign: the encoded `{"typ":"JWT","alg":"HS256"}`.
    header: String,
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
        let encoding = EncodingKey::from_secret(secret);
        let sample = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Expiry { exp: 0 },
            &encoding,
        )
        .expect("HS256 signing of plain claims cannot fail");
        let header = sample.split('.').next().unwrap_or_default().to_owned();
        Self {
            encoding,
            mac: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"),
            header,
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
        let claims: Claims = serde_json::from_slice(&self.genuine(token)?).ok()?;
        (claims.exp >= now_secs()).then_some(claims)
    }

    /// Signs any short-lived value (e.g. the OAuth state cookie) with the session key. The
    /// value must carry its own `exp`.
    pub fn sign<T: Serialize>(&self, value: &T) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), value, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The value of a token made by [`sign`](Self::sign), if genuine and not expired.
    pub fn open<T: serde::de::DeserializeOwned>(&self, token: &str) -> Option<T> {
        let claims = self.genuine(token)?;
        let Expiry { exp } = serde_json::from_slice(&claims).ok()?;
        if exp < now_secs() {
            return None;
        }
        serde_json::from_slice(&claims).ok()
    }

    /// The claims (JSON) of a token we signed, unread.
    ///
    /// Checked here rather than by `jsonwebtoken::decode`, which every socket connect and
    /// request would pay for: that derives the key's HMAC state, parses the header and the
    /// claims twice, and its rules are built per call. This accepts only what it would
    /// (tested against it): our header exactly (it is signed, so every genuine token has
    /// it) and a valid HS256 signature over header and claims, compared in constant time.
    /// The callers then require an `exp` not in the past, without leeway, as it did.
    fn genuine(&self, token: &str) -> Option<Vec<u8>> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, claims) = signed.split_once('.')?;
        if header != self.header || claims.contains('.') {
            return None;
        }
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?)
            .ok()?;
        URL_SAFE_NO_PAD.decode(claims).ok()
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

/// The one claim every signed value carries.
#[derive(Serialize, Deserialize)]
struct Expiry {
    exp: u64,
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

    /// What `jsonwebtoken::decode` accepted, with the rules `verify` used to give it.
    fn by_the_library(secret: &[u8], token: &str) -> Option<Claims> {
        let mut rules = jsonwebtoken::Validation::new(Algorithm::HS256);
        rules.leeway = 0;
        rules.set_required_spec_claims(&["exp", "sub"]);
        let key = jsonwebtoken::DecodingKey::from_secret(secret);
        jsonwebtoken::decode::<Claims>(token, &key, &rules)
            .ok()
            .map(|data| data.claims)
    }

    /// Signs any claims under any header with the test key, as an attacker holding the key
    /// could not but a bug in our checks might let through.
    fn signed(header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(&[7u8; 32])).unwrap()
    }

    #[test]
    fn tokens_are_accepted_exactly_when_the_library_accepts_them() {
        let s = sessions();
        let token = s.issue(42, 3);
        assert_eq!(s.verify(&token), by_the_library(&[7u8; 32], &token));
        assert!(s.verify(&token).is_some());
        // Every one-character change, deletion and insertion anywhere in the token.
        let alphabet = [
            'A', 'B', 'Q', 'a', 'w', 'z', '0', '9', '-', '_', '.', '=', '+', '/',
        ];
        let mut candidates = Vec::new();
        for i in 0..token.len() {
            candidates.push(format!("{}{}", &token[..i], &token[i + 1..]));
            for c in alphabet {
                candidates.push(format!("{}{c}{}", &token[..i], &token[i + 1..]));
                candidates.push(format!("{}{c}{}", &token[..i], &token[i..]));
            }
        }
        candidates.push(format!("{token}."));
        candidates.push(format!("{token}A"));
        candidates.push(format!("{token}=="));
        candidates.push(format!(".{token}"));
        candidates.retain(|candidate| *candidate != token);
        let mut accepted = 0;
        for candidate in &candidates {
            let ours = s.verify(candidate);
            assert_eq!(ours, by_the_library(&[7u8; 32], candidate), "{candidate}");
            accepted += usize::from(ours.is_some());
        }
        // None: even a change that decodes to the same bytes (trailing bits) is refused.
        assert_eq!(accepted, 0, "changed tokens accepted");
    }

    #[test]
    fn forged_headers_unknown_algorithms_and_bad_claims_are_refused() {
        let s = sessions();
        let now = now_secs();
        let claims = |exp: u64| serde_json::json!({"sub": "1", "ver": 0, "sid": "ab", "iat": now, "exp": exp});
        let hs256 = Header::new(Algorithm::HS256);
        // The same claims under our header: accepted while not expired, by both.
        let fine = signed(&hs256, &claims(now + 60));
        assert!(s.verify(&fine).is_some());
        assert_eq!(s.verify(&fine), by_the_library(&[7u8; 32], &fine));
        let expired = signed(&hs256, &claims(now - 1));
        assert!(s.verify(&expired).is_none());
        assert!(by_the_library(&[7u8; 32], &expired).is_none());
        // Another algorithm with the same key, and "none".
        let hs384 = signed(&Header::new(Algorithm::HS384), &claims(now + 60));
        assert!(s.verify(&hs384).is_none());
        assert!(by_the_library(&[7u8; 32], &hs384).is_none());
        let body = fine.split('.').nth(1).unwrap();
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        for forged in [format!("{none}.{body}."), format!("{none}.{body}")] {
            assert!(s.verify(&forged).is_none(), "{forged}");
        }
        // A header we never write (the library would take it): refused, stricter.
        let mut with_kid = Header::new(Algorithm::HS256);
        with_kid.kid = Some("other".into());
        assert!(s.verify(&signed(&with_kid, &claims(now + 60))).is_none());
        // Signed claims that are not ours: no user, no expiry, not JSON.
        let no_sub = serde_json::json!({"ver": 0, "sid": "ab", "iat": now, "exp": now + 60});
        assert!(s.verify(&signed(&hs256, &no_sub)).is_none());
        let no_exp = serde_json::json!({"sub": "1", "ver": 0, "sid": "ab", "iat": now});
        assert!(s.verify(&signed(&hs256, &no_exp)).is_none());
        assert!(s
            .open::<serde_json::Value>(&signed(&hs256, &no_exp))
            .is_none());
        let header = fine.split('.').next().unwrap();
        let text = URL_SAFE_NO_PAD.encode("not json");
        let mut mac = s.mac.clone();
        mac.update(format!("{header}.{text}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert!(s
            .open::<serde_json::Value>(&format!("{header}.{text}.{sig}"))
            .is_none());
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
