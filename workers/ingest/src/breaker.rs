//! A circuit breaker in front of Kafka: while the broker is unreachable, requests are refused at
//! once (503 + Retry-After) instead of piling up; a probe closes it again when Kafka answers.

use std::time::{Duration, Instant};

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests flow.
    Closed,
    /// Requests are refused until the broker answers a probe.
    Open,
}

/// Circuit-breaker bookkeeping (pure: time is passed in).
#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    consecutive_failures: u32,
    failure_threshold: u32,
    opened_at: Option<Instant>,
    retry_after: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `failure_threshold` consecutive failures.
    pub fn new(failure_threshold: u32, retry_after: Duration) -> Self {
        Self {
            state: State::Closed,
            consecutive_failures: 0,
            failure_threshold: failure_threshold.max(1),
            opened_at: None,
            retry_after,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// How long clients should wait before retrying while open.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// When the breaker opened, if open.
    pub fn opened_at(&self) -> Option<Instant> {
        self.opened_at
    }

    /// A produce succeeded: the broker is reachable.
    pub fn on_success(&mut self) {
        self.consecutive_failures = 0;
        self.state = State::Closed;
        self.opened_at = None;
    }

    /// A produce failed for a broker-side reason (timeout, transport).
    pub fn on_failure(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= self.failure_threshold {
            self.trip(now);
        }
    }

    /// Open at once (the client reported every broker down).
    pub fn trip(&mut self, now: Instant) {
        if self.state == State::Closed {
            self.opened_at = Some(now);
        }
        self.state = State::Open;
    }

    /// A probe (metadata request) reached the broker: close.
    pub fn on_probe_success(&mut self) {
        self.on_success();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_closes_on_probe() {
        let t = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(2));
        b.on_failure(t);
        b.on_failure(t);
        assert_eq!(b.state(), State::Closed);
        b.on_success();
        b.on_failure(t);
        b.on_failure(t);
        assert_eq!(b.state(), State::Closed, "a success resets the count");
        b.on_failure(t);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.opened_at(), Some(t));
        b.on_probe_success();
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.opened_at(), None);
    }

    #[test]
    fn trip_opens_immediately() {
        let t = Instant::now();
        let mut b = Breaker::new(5, Duration::from_secs(1));
        b.trip(t);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.retry_after(), Duration::from_secs(1));
    }
}
