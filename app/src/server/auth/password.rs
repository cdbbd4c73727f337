//! Password hashing with argon2id, run on the blocking pool so a hash (tens of milliseconds of
//! CPU by design) never stalls the async workers.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

/// A PHC-format argon2id hash. Deliberately neither `Serialize` nor `Display`.
#[derive(Clone)]
pub struct PasswordHashString(pub String);

impl std::fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHashString([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

pub async fn hash(password: String) -> Result<PasswordHashString, HashError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHashString(h.to_string()))
            .map_err(|_| HashError)
    })
    .await
    .map_err(|_| HashError)?
}

/// Checks `password` against `hash`. With no hash (unknown email, or a Google-only account)
/// it verifies against a fixed dummy hash anyway, so the answer takes the same time.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    let known = hash.is_some();
    tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
    .unwrap_or(false)
}

/// argon2id of a random password nobody knows, with the default parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Hq+Vbm7J7eJqG0qUhgbq2wzVd1vFL0pZ1gqXf7m6wY";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.0.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(hash.0.clone())).await);
        assert!(!verify("wrong horse".into(), Some(hash.0.clone())).await);
        assert!(!verify("correct horse".into(), None).await);
        assert!(!format!("{hash:?}").contains("argon2"));
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
