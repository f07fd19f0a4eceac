//! Login attempts are limited per client address and per email, in fixed one-minute windows.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};

const WINDOW: Duration = Duration::from_secs(60);

/// Limits per window: generous per address, since many shoppers can share one; few per email, since
/// one account is the target of a guessing attack (`LOGIN_LIMIT_PER_IP`, `LOGIN_LIMIT_PER_EMAIL`).
#[derive(Clone)]
pub struct LoginLimiter {
    cache: Cache,
    per_ip: u64,
    per_email: u64,
}

impl LoginLimiter {
    pub fn new(cache: Cache, per_ip: u64, per_email: u64) -> Self {
        Self {
            cache,
            per_ip,
            per_email,
        }
    }

    /// Counts an attempt; refuses it with the time to wait once either limit is passed.
    pub async fn attempt(&self, ip: Option<&str>, email: &str) -> Result<()> {
        let email = email.trim().to_lowercase();
        let by_email = self
            .cache
            .hit(&format!("login:email:{email}"), WINDOW)
            .await;
        let by_ip = match ip {
            Some(ip) => self.cache.hit(&format!("login:ip:{ip}"), WINDOW).await,
            None => (0, Duration::ZERO),
        };
        let mut wait = Duration::ZERO;
        if by_email.0 > self.per_email {
            wait = wait.max(by_email.1);
        }
        if by_ip.0 > self.per_ip {
            wait = wait.max(by_ip.1);
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(Error::RateLimited { retry_after: wait })
        }
    }
}
