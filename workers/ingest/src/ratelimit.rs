//! A token bucket counting events (not requests): a batch of n events takes n tokens.

use std::time::{Duration, Instant};

/// The outcome of asking the bucket for tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Tokens taken; go ahead.
    Allow,
    /// Not enough tokens now; retry after this long.
    RetryAfter(Duration),
    /// The request is bigger than the bucket can ever hold.
    TooBig {
        /// The bucket's capacity.
        burst: u64,
    },
}

/// A token bucket refilled continuously at `rate` tokens per second up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u64, burst: u64, now: Instant) -> Self {
        let burst = burst.max(1) as f64;
        Self {
            rate: rate_per_sec.max(1) as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Take `n` tokens at time `now`, or say how long until they are available.
    pub fn take(&mut self, n: u64, now: Instant) -> Decision {
        let n = n as f64;
        if n > self.burst {
            return Decision::TooBig {
                burst: self.burst as u64,
            };
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= n {
            self.tokens -= n;
            Decision::Allow
        } else {
            Decision::RetryAfter(Duration::from_secs_f64((n - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_burst_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, 200, t0);
        assert_eq!(b.take(150, t0), Decision::Allow);
        assert_eq!(b.take(50, t0), Decision::Allow);
        let Decision::RetryAfter(wait) = b.take(10, t0) else {
            panic!("bucket should be empty")
        };
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert_eq!(b.take(10, t0 + Duration::from_millis(100)), Decision::Allow);
        // Refill is capped at burst.
        assert_eq!(b.take(200, t0 + Duration::from_secs(60)), Decision::Allow);
        assert!(matches!(
            b.take(1, t0 + Duration::from_secs(60)),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn refuses_batches_larger_than_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 20, t0);
        assert_eq!(b.take(21, t0), Decision::TooBig { burst: 20 });
        assert_eq!(b.take(20, t0), Decision::Allow);
    }
}
