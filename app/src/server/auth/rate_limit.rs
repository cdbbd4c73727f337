//! Fixed-window rate limits keyed by string (a client address, an account). [`Limiter`] is
//! the interface the rest of the server counts through; [`RateLimiter`] keeps this instance's
//! counters in memory (with several instances, `cluster::limits` counts over all of them). Memory is bounded without ever scanning the whole map: windows expire
//! in the order they started (a queue), and past a hard cap the oldest window is dropped.
//! Client addresses become keys through [`address_key`]: IPv6 clients are grouped by /64, the
//! block one subscriber usually holds.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Mutex,
    time::{Duration, Instant},
};

/// What counting an attempt somewhere else than in memory comes to.
pub type Verdict<'a> = Pin<Box<dyn Future<Output = Result<(), Duration>> + Send + 'a>>;

/// Counting attempts against a limit.
pub trait Limiter: Send + Sync + std::fmt::Debug {
    /// Counts one attempt for `key` on this instance, atomically with the check, without
    /// waiting (what sockets send). `Err(wait)` when the key is over its limit (and nothing
    /// was counted): try again after `wait`.
    fn hit(&self, key: &str) -> Result<(), Duration>;
    /// Like [`hit`](Self::hit) but only checks, without counting.
    fn check(&self, key: &str) -> Result<(), Duration>;
    /// Forgets `key` (e.g. after a successful sign-in).
    fn reset(&self, key: &str);
    /// Counts one attempt over all instances (requests: sign-ins, searches, codes). Alone,
    /// the same as [`hit`](Self::hit).
    fn hit_everywhere<'a>(&'a self, key: &'a str) -> Verdict<'a> {
        Box::pin(std::future::ready(self.hit(key)))
    }
    /// [`check`](Self::check) over all instances.
    fn check_everywhere<'a>(&'a self, key: &'a str) -> Verdict<'a> {
        Box::pin(std::future::ready(self.check(key)))
    }
    /// [`reset`](Self::reset) over all instances.
    fn reset_everywhere<'a>(
        &'a self,
        key: &'a str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        self.reset(key);
        Box::pin(std::future::ready(()))
    }
}

/// A limiter whose refusals are counted in the metrics (`parlor_rate_limited_total{limit}`).
#[derive(Debug)]
pub struct Counted<L> {
    inner: L,
    refused: crate::server::metrics::LimitCounter,
}

impl<L: Limiter> Counted<L> {
    pub fn new(inner: L, refused: crate::server::metrics::LimitCounter) -> Self {
        Self { inner, refused }
    }
}

impl<L: Limiter> Limiter for Counted<L> {
    fn hit(&self, key: &str) -> Result<(), Duration> {
        self.inner.hit(key).inspect_err(|_| self.refused.inc())
    }

    fn check(&self, key: &str) -> Result<(), Duration> {
        self.inner.check(key).inspect_err(|_| self.refused.inc())
    }

    fn reset(&self, key: &str) {
        self.inner.reset(key);
    }

    fn hit_everywhere<'a>(&'a self, key: &'a str) -> Verdict<'a> {
        Box::pin(async move {
            self.inner
                .hit_everywhere(key)
                .await
                .inspect_err(|_| self.refused.inc())
        })
    }

    fn check_everywhere<'a>(&'a self, key: &'a str) -> Verdict<'a> {
        Box::pin(async move {
            self.inner
                .check_everywhere(key)
                .await
                .inspect_err(|_| self.refused.inc())
        })
    }

    fn reset_everywhere<'a>(
        &'a self,
        key: &'a str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        self.inner.reset_everywhere(key)
    }
}

/// The most keys one limiter keeps; beyond it the oldest window is forgotten.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct RateLimiter {
    max: u32,
    window: Duration,
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// `(window start, key)` in the order windows started; an item whose key has a newer
    /// window (or none) is stale and skipped.
    order: VecDeque<(Instant, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: Instant,
    count: u32,
}

impl Inner {
    /// Drops windows that ended by `now`, and the oldest ones while over `cap`.
    fn prune(&mut self, now: Instant, window: Duration, cap: usize) {
        while let Some((start, key)) = self.order.front() {
            let current = self.entries.get(key).map(|e| e.start);
            let stale = current != Some(*start);
            let expired = now >= *start + window;
            if !(stale || expired || self.entries.len() > cap) {
                break;
            }
            if !stale {
                self.entries.remove(key);
            }
            self.order.pop_front();
        }
    }
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self::with_cap(max, window, MAX_KEYS)
    }

    pub fn with_cap(max: u32, window: Duration, cap: usize) -> Self {
        Self {
            max,
            window,
            cap,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hit_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut inner = self.lock();
        inner.prune(now, self.window, self.cap);
        let window = self.window;
        let fresh = match inner.entries.get_mut(key) {
            Some(entry) if now < entry.start + window => {
                if entry.count >= self.max {
                    return Err(entry.start + window - now);
                }
                entry.count += 1;
                false
            }
            _ => true,
        };
        if fresh {
            inner.entries.insert(
                key.to_string(),
                Entry {
                    start: now,
                    count: 1,
                },
            );
            inner.order.push_back((now, key.to_string()));
            inner.prune(now, window, self.cap);
        }
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Limiter for RateLimiter {
    fn hit(&self, key: &str) -> Result<(), Duration> {
        self.hit_at(key, Instant::now())
    }

    fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let inner = self.lock();
        match inner.entries.get(key) {
            Some(e) if now < e.start + self.window && e.count >= self.max => {
                Err(e.start + self.window - now)
            }
            _ => Ok(()),
        }
    }

    fn reset(&self, key: &str) {
        // Its queue item goes stale and is skipped later.
        self.lock().entries.remove(key);
    }
}

/// The limiter key of a client address: IPv4 as is, IPv6 by its /64 prefix (one subscriber
/// usually holds a whole /64, so each of its addresses must not count apart).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
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
        limiter.hit("acct").unwrap();
        assert!(limiter.hit("acct").is_err(), "a reset key counts afresh");
    }

    #[test]
    fn expired_windows_go_in_order_and_the_map_never_passes_its_cap() {
        let limiter = RateLimiter::with_cap(5, Duration::from_secs(1), 100);
        let t0 = Instant::now();
        for i in 0..100 {
            limiter.hit_at(&format!("k{i}"), t0).unwrap();
        }
        assert_eq!(limiter.len(), 100);
        // Over the cap, the oldest window goes.
        limiter.hit_at("one more", t0).unwrap();
        assert_eq!(limiter.len(), 100);
        assert!(!limiter.lock().entries.contains_key("k0"));
        // Once the windows end, everything but the newest key is gone.
        limiter.hit_at("late", t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(limiter.len(), 1);
        assert_eq!(limiter.lock().order.len(), 1);
    }

    #[test]
    fn parallel_attempts_never_pass_the_limit() {
        let limiter = std::sync::Arc::new(RateLimiter::new(5, Duration::from_secs(60)));
        let allowed: usize = (0..25)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || limiter.hit("account").is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(
            address_key("::ffff:203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
    }

    #[test]
    fn retry_seconds_round_up() {
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }
}
