//! Login attempts are limited per client address and per email, in fixed one-minute windows.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};

const WINDOW: Duration = Duration::from_secs(60);
/// Attempts per address per window: generous, since many shoppers can share one address.
pub const PER_IP: u64 = 30;
/// Attempts per email per window: few, since one account is the target of a guessing attack.
pub const PER_EMAIL: u64 = 10;

#[derive(Clone)]
pub struct LoginLimiter {
    cache: Cache,
}

impl LoginLimiter {
    pub fn new(cache: Cache) -> Self {
        Self { cache }
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
        if by_email.0 > PER_EMAIL {
            wait = wait.max(by_email.1);
        }
        if by_ip.0 > PER_IP {
            wait = wait.max(by_ip.1);
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(Error::RateLimited { retry_after: wait })
        }
    }
}
