//! Password hashing with argon2id, run on the blocking pool so a hash (tens of milliseconds of
//! CPU and 19 MiB of memory by design) never stalls the async workers. At most one hash per
//! core runs at a time: a burst of sign-ins (or attempts) waits its turn instead of taking
//! memory and CPU from everyone.

use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Hashes running or allowed to run at once.
pub fn max_concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8))
}

static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(max_concurrent_hashes()));

/// Hashes computing right now, and the most seen at once (for tests).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Runs one argon2 computation on the blocking pool once a hashing slot is free.
async fn run_hash<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _slot = HASHING.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        let result = work();
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        result
    })
    .await
    .ok()
}

/// The most hashes that ever computed at the same time in this process.
pub fn peak_concurrent_hashes() -> usize {
    PEAK.load(Ordering::SeqCst)
}

pub async fn hash(password: String) -> Result<PasswordHashString, HashError> {
    run_hash(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHashString(h.to_string()))
            .map_err(|_| HashError)
    })
    .await
    .ok_or(HashError)?
}

/// Checks `password` against `hash`. With no hash (unknown email, or a Google-only account)
/// it verifies against a fixed dummy hash anyway, so the answer takes the same time.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    let known = hash.is_some();
    run_hash(move || {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_checks_computes_at_most_one_hash_per_core_at_once() {
        let burst = 4 * max_concurrent_hashes();
        let checks: Vec<_> = (0..burst)
            .map(|i| tokio::spawn(verify(format!("guess {i}"), None)))
            .collect();
        for check in checks {
            assert!(!check.await.unwrap());
        }
        let peak = peak_concurrent_hashes();
        assert!(
            (1..=max_concurrent_hashes()).contains(&peak),
            "{peak} hashes at once"
        );
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
