//! A token bucket per socket: how fast one connection may send.

use std::time::Instant;

/// A token bucket: `rate` messages per second, bursts of three seconds' worth.
pub struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self {
            tokens: rate * 3.0,
            rate,
            last: Instant::now(),
        }
    }

    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 3.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_bursts_then_the_rate() {
        let mut bucket = Bucket::new(2);
        assert!((0..6).all(|_| bucket.take()));
        assert!(!bucket.take());
    }
}
