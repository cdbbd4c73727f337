//! Fixed-window rate limits keyed by string (a client address, an account). [`Limiter`] is
//! the interface the rest of the server counts through; [`RateLimiter`] keeps this instance's
//! counters in memory. Expired windows are pruned as the map grows, so memory stays bounded
//! by the number of active keys.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Counting attempts against a limit.
pub trait Limiter: Send + Sync + std::fmt::Debug {
    /// Counts one attempt for `key`. `Err(wait)` when the key is over its limit: the caller
    /// should try again after `wait`.
    fn hit(&self, key: &str) -> Result<(), Duration>;
    /// Like [`hit`](Self::hit) but only checks, without counting.
    fn check(&self, key: &str) -> Result<(), Duration>;
    /// Forgets `key` (e.g. after a successful sign-in).
    fn reset(&self, key: &str);
}

#[derive(Debug)]
pub struct RateLimiter {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: Instant,
    count: u32,
}

/// Prune expired windows whenever the map reaches this size (then doubles of what is left).
const PRUNE_AT: usize = 1024;

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn hit_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= PRUNE_AT && !entries.contains_key(key) {
            let window = self.window;
            entries.retain(|_, e| now < e.start + window);
        }
        let entry = entries.entry(key.to_string()).or_insert(Entry {
            start: now,
            count: 0,
        });
        if now >= entry.start + self.window {
            *entry = Entry {
                start: now,
                count: 0,
            };
        }
        if entry.count >= self.max {
            return Err(entry.start + self.window - now);
        }
        entry.count += 1;
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

impl Limiter for RateLimiter {
    fn hit(&self, key: &str) -> Result<(), Duration> {
        self.hit_at(key, Instant::now())
    }

    fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(e) if now < e.start + self.window && e.count >= self.max => {
                Err(e.start + self.window - now)
            }
            _ => Ok(()),
        }
    }

    fn reset(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Whole seconds to wait, rounded up and at least 1, for messages like "try again in N s".
pub fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_hits_per_window_then_says_how_long_to_wait() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.hit_at("ip:1", t0).is_ok());
        }
        let wait = limiter
            .hit_at("ip:1", t0 + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        // Other keys are independent; a new window starts afresh.
        assert!(limiter.hit_at("ip:2", t0).is_ok());
        assert!(limiter.hit_at("ip:1", t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn reset_forgets_a_key() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        limiter.hit("acct").unwrap();
        assert!(limiter.check("acct").is_err());
        limiter.reset("acct");
        assert!(limiter.check("acct").is_ok());
    }

    #[test]
    fn expired_windows_are_pruned() {
        let limiter = RateLimiter::new(5, Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..PRUNE_AT {
            limiter.hit_at(&format!("k{i}"), t0).unwrap();
        }
        limiter.hit_at("new", t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn retry_seconds_round_up() {
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }
}
