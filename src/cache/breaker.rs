//! A circuit breaker for Redis: after a few consecutive failed calls, calls are not made at all for a
//! short cool-down (every caller goes straight to its fallback, the database or the in-process
//! counters, instead of each waiting out the call timeout); then one call at a time probes Redis, and
//! the first that succeeds closes the breaker.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Consecutive failed calls after which the breaker opens.
pub const THRESHOLD: u32 = 3;
/// How long an open breaker turns every call away before it lets one probe through.
pub const COOL_DOWN: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Breaker {
    failures: AtomicU32,
    /// While open: until when (ms on the cache's clock) calls are turned away.
    open_until_ms: AtomicU64,
    probing: AtomicBool,
}

/// What the breaker lets a call do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Call,
    /// The one call that tests Redis after the cool-down; its result closes or reopens the breaker.
    Probe,
    /// Open: do not call Redis.
    Skip,
}

impl Breaker {
    pub fn admit(&self, now_ms: u64) -> Admit {
        if self.failures.load(Ordering::Acquire) < THRESHOLD {
            return Admit::Call;
        }
        if now_ms < self.open_until_ms.load(Ordering::Acquire) {
            return Admit::Skip;
        }
        match self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admit::Probe,
            Err(_) => Admit::Skip,
        }
    }

    pub fn succeeded(&self, admitted: Admit) {
        self.failures.store(0, Ordering::Release);
        if admitted == Admit::Probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    pub fn failed(&self, admitted: Admit, now_ms: u64) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if failures >= THRESHOLD {
            self.open_until_ms
                .store(now_ms + COOL_DOWN.as_millis() as u64, Ordering::Release);
        }
        if admitted == Admit::Probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    pub fn is_open(&self) -> bool {
        self.failures.load(Ordering::Acquire) >= THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_probes_once_and_closes_on_success() {
        let breaker = Breaker::default();
        for _ in 0..THRESHOLD - 1 {
            assert_eq!(breaker.admit(0), Admit::Call);
            breaker.failed(Admit::Call, 0);
        }
        breaker.succeeded(Admit::Call);
        for _ in 0..THRESHOLD {
            assert_eq!(breaker.admit(10), Admit::Call);
            breaker.failed(Admit::Call, 10);
        }
        assert!(breaker.is_open());
        assert_eq!(breaker.admit(11), Admit::Skip, "open: calls turned away");
        let after = 10 + COOL_DOWN.as_millis() as u64;
        assert_eq!(breaker.admit(after), Admit::Probe);
        assert_eq!(breaker.admit(after), Admit::Skip, "one probe at a time");
        breaker.failed(Admit::Probe, after);
        assert_eq!(
            breaker.admit(after + 1),
            Admit::Skip,
            "a failed probe reopens it"
        );
        let later = after + COOL_DOWN.as_millis() as u64;
        assert_eq!(breaker.admit(later), Admit::Probe);
        breaker.succeeded(Admit::Probe);
        assert!(!breaker.is_open());
        assert_eq!(breaker.admit(later), Admit::Call);
    }
}
