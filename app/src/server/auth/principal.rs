//! Who is on the other end of a request or socket: a signed-in user, or a guest. Guests are
//! people using strangers or codes without an account: a random id in a signed, HttpOnly
//! cookie, nothing personal, renewed while used and gone after some days unused. The session
//! layer puts a [`Principal`] into every request it can identify; nothing is ever taken from
//! a message body as identity.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::session::{now_secs, SessionUser, Sessions};

/// A guest's random id (128 bits from the OS).
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GuestId(pub u128);

impl GuestId {
    pub fn random() -> Self {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        Self(u128::from_le_bytes(bytes))
    }
}

impl std::fmt::Debug for GuestId {
    // Short: enough to follow one guest through the logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guest:{:08x}", (self.0 >> 96) as u32)
    }
}

/// The key everything real-time is addressed by: the hub, presence, calls, rate limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalId {
    User(i64),
    Guest(GuestId),
}

impl PrincipalId {
    pub fn user(self) -> Option<i64> {
        match self {
            PrincipalId::User(id) => Some(id),
            PrincipalId::Guest(_) => None,
        }
    }

    /// The key limits count this principal under.
    pub fn key(self) -> String {
        match self {
            PrincipalId::User(id) => format!("u:{id}"),
            PrincipalId::Guest(guest) => format!("g:{:032x}", guest.0),
        }
    }

    /// The principal [`key`](Self::key) wrote.
    pub fn from_key(key: &str) -> Option<Self> {
        match key.split_once(':')? {
            ("u", id) => id.parse().ok().map(PrincipalId::User),
            ("g", hex) if hex.len() == 32 => u128::from_str_radix(hex, 16)
                .ok()
                .map(|g| PrincipalId::Guest(GuestId(g))),
            _ => None,
        }
    }
}

/// Who made a request. (Serialised only between instances, with a socket's work.)
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Principal {
    User(SessionUser),
    Guest(GuestId),
}

impl Principal {
    pub fn id(&self) -> PrincipalId {
        match self {
            Principal::User(user) => PrincipalId::User(user.id),
            Principal::Guest(guest) => PrincipalId::Guest(*guest),
        }
    }

    pub fn user(&self) -> Option<&SessionUser> {
        match self {
            Principal::User(user) => Some(user),
            Principal::Guest(_) => None,
        }
    }
}

/// The signed content of a guest cookie. Its fields differ from a session token's, so neither
/// can pass for the other.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct GuestClaims {
    /// The guest id, 32 hex digits.
    gid: String,
    iat: u64,
    exp: u64,
}

/// Issues and checks guest cookies (signed with the session key).
#[derive(Debug, Clone)]
pub struct Guests {
    sessions: Sessions,
    ttl: Duration,
}

/// A guest cookie that checked out, and whether it should be renewed on this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestToken {
    pub id: GuestId,
    pub renew: bool,
}

impl Guests {
    pub fn new(sessions: Sessions, ttl: Duration) -> Self {
        Self { sessions, ttl }
    }

    pub fn issue_at(&self, id: GuestId, iat: u64) -> String {
        self.sessions.sign(&GuestClaims {
            gid: format!("{:032x}", id.0),
            iat,
            exp: iat + self.ttl.as_secs(),
        })
    }

    pub fn issue(&self, id: GuestId) -> String {
        self.issue_at(id, now_secs())
    }

    /// The guest of a genuine, unexpired token. Tokens older than a day are renewed, so the
    /// guest lasts as long as it keeps coming back.
    pub fn verify(&self, token: &str) -> Option<GuestToken> {
        let claims: GuestClaims = self.sessions.open(token)?;
        if claims.gid.len() != 32 {
            return None;
        }
        let id = u128::from_str_radix(&claims.gid, 16).ok()?;
        Some(GuestToken {
            id: GuestId(id),
            renew: now_secs() >= claims.iat + 24 * 3600,
        })
    }

    pub fn cookie(&self, token: &str) -> String {
        super::cookies::GUEST.set(token, self.ttl.as_secs(), self.sessions.secure())
    }

    pub fn removal_cookie(&self) -> String {
        super::cookies::GUEST.remove(self.sessions.secure())
    }
}

/// Extractor for axum routes that anyone identified may use (the WebSocket upgrade): the
/// signed-in user or the guest, else 401.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Authenticated {
    type Rejection = super::Rejection;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        super::from_session_layer(parts).map(Authenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guests() -> Guests {
        let sessions = Sessions::new(&[7u8; 32], Duration::from_secs(14 * 24 * 3600), false);
        Guests::new(sessions, Duration::from_secs(7 * 24 * 3600))
    }

    #[test]
    fn a_guest_token_round_trips_and_is_renewed_after_a_day() {
        let g = guests();
        let id = GuestId::random();
        assert_eq!(
            g.verify(&g.issue(id)),
            Some(GuestToken { id, renew: false })
        );
        let old = g.issue_at(id, now_secs() - 2 * 24 * 3600);
        assert_eq!(g.verify(&old), Some(GuestToken { id, renew: true }));
        assert_ne!(GuestId::random(), GuestId::random());
    }

    #[test]
    fn tampered_expired_and_session_tokens_are_not_guests() {
        let g = guests();
        let token = g.issue(GuestId(5));
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = parts[1].replacen('J', "K", 1);
        assert_eq!(g.verify(&parts.join(".")), None);
        assert_eq!(
            g.verify(&g.issue_at(GuestId(5), now_secs() - 8 * 24 * 3600)),
            None
        );
        // A session token signed with the same key is not a guest token, and back.
        let sessions = Sessions::new(&[7u8; 32], Duration::from_secs(60), false);
        assert_eq!(g.verify(&sessions.issue(1, 0)), None);
        assert!(sessions.verify(&token).is_none());
    }

    #[test]
    fn principal_keys_round_trip() {
        for who in [
            PrincipalId::User(42),
            PrincipalId::Guest(GuestId(u128::MAX - 5)),
            PrincipalId::Guest(GuestId(7)),
        ] {
            assert_eq!(PrincipalId::from_key(&who.key()), Some(who));
        }
        for bad in [
            "",
            "u:",
            "u:x",
            "g:12",
            "x:1",
            "g:zz345678901234567890123456789012",
        ] {
            assert_eq!(PrincipalId::from_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn guest_cookies_are_http_only_and_lax() {
        let cookie = guests().cookie("t");
        assert!(cookie.starts_with("parlor_guest=t;"));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    }
}
