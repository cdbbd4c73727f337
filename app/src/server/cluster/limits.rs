//! Rate limits counted over all instances: one Redis counter per limit and key
//! (`parlor:rl:<limit>:<key>`), counted and checked in one script so that attempts spread over
//! instances at the same moment never pass the limit together. Requests count this way
//! ([`Limiter::hit_everywhere`]); what sockets send many times a second is counted per
//! instance ([`Limiter::hit`]) so that no frame waits for Redis. If Redis does not answer, the
//! instance falls back to its own count (limits hold per instance meanwhile).

use std::{future::Future, pin::Pin, sync::LazyLock, time::Duration};

use redis::{aio::ConnectionManager, Script};

use super::Cluster;
use crate::server::auth::rate_limit::{Limiter, RateLimiter, Verdict};

/// KEYS: the counter; ARGV: the limit, the window (ms). 0 when counted; otherwise how long
/// until the window ends (ms), and nothing is counted.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n <= tonumber(ARGV[1]) then return 0 end
redis.call('DECR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return math.max(left, 1)",
    )
});

/// A limit of `max` per `window` shared by every instance.
pub struct SharedLimiter {
    name: &'static str,
    max: u32,
    window: Duration,
    redis: ConnectionManager,
    /// This instance's own count: for [`Limiter::hit`], and while Redis is away.
    local: RateLimiter,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("name", &self.name)
            .field("max", &self.max)
            .field("window", &self.window)
            .finish()
    }
}

impl Cluster {
    /// A limit of `max` per `window` counted over all instances, named `name` in Redis.
    pub fn limiter(&self, name: &'static str, max: u32, window: Duration) -> SharedLimiter {
        SharedLimiter {
            name,
            max,
            window,
            redis: self.redis.clone(),
            local: RateLimiter::new(max, window),
        }
    }
}

impl SharedLimiter {
    fn counter(&self, key: &str) -> String {
        format!("parlor:rl:{}:{key}", self.name)
    }

    fn unreachable(&self, error: &redis::RedisError) {
        tracing::debug!(%error, limit = self.name, "Redis did not count an attempt: counting here");
    }
}

impl Limiter for SharedLimiter {
    fn hit(&self, key: &str) -> Result<(), Duration> {
        self.local.hit(key)
    }

    fn check(&self, key: &str) -> Result<(), Duration> {
        self.local.check(key)
    }

    fn reset(&self, key: &str) {
        self.local.reset(key);
    }

    fn hit_everywhere<'a>(&'a self, key: &'a str) -> Verdict<'a> {
        Box::pin(async move {
            let mut redis = self.redis.clone();
            let left: Result<u64, _> = HIT
                .key(self.counter(key))
                .arg(self.max)
                .arg(self.window.as_millis().max(1) as u64)
                .invoke_async(&mut redis)
                .await;
            match left {
                Ok(0) => Ok(()),
                Ok(ms) => Err(Duration::from_millis(ms)),
                Err(error) => {
                    self.unreachable(&error);
                    self.local.hit(key)
                }
            }
        })
    }

    fn check_everywhere<'a>(&'a self, key: &'a str) -> Verdict<'a> {
        Box::pin(async move {
            let mut redis = self.redis.clone();
            let counter = self.counter(key);
            let read: Result<(Option<u32>, i64), _> = redis::pipe()
                .cmd("GET")
                .arg(&counter)
                .cmd("PTTL")
                .arg(&counter)
                .query_async(&mut redis)
                .await;
            match read {
                Ok((Some(count), left)) if count >= self.max => {
                    Err(Duration::from_millis(left.max(1) as u64))
                }
                Ok(_) => Ok(()),
                Err(error) => {
                    self.unreachable(&error);
                    self.local.check(key)
                }
            }
        })
    }

    fn reset_everywhere<'a>(
        &'a self,
        key: &'a str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.local.reset(key);
            let mut redis = self.redis.clone();
            if let Err(error) = redis::cmd("DEL")
                .arg(self.counter(key))
                .query_async::<()>(&mut redis)
                .await
            {
                self.unreachable(&error);
            }
        })
    }
}
