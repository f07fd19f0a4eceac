//! Login limits, in fixed one-minute windows, that count failed attempts only and cannot be used to
//! keep an account's owner signed out (issue 15, item 8).
//!
//! Three counters, each checked before any password work:
//! - per (email, client address), `LOGIN_LIMIT_PER_EMAIL`: one guesser on one address gets few tries
//!   at one account, and only that address is refused;
//! - per email across all addresses, `LOGIN_LIMIT_PER_EMAIL_GLOBAL`, much higher: bounds a guesser
//!   spread over many addresses, yet is out of reach of one address;
//! - per client address across emails, `LOGIN_LIMIT_PER_IP`: bounds one address trying many accounts.
//!
//! An attempt is counted when it starts (so concurrent guesses cannot all slip past a check made
//! before any of them failed) and taken back when the password proves right: a successful login
//! counts toward nothing, and it also clears its (email, address) counter, so an owner's earlier typos
//! do not linger. An attempt refused by a limit is counted only where it was refused: hammering a
//! locked pair does not fill the email's ceiling or the address's.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::{Error, Result};

const WINDOW: Duration = Duration::from_secs(60);

/// The limits per window (see the module documentation for what each is for).
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    pub per_ip: u64,
    pub per_email_and_ip: u64,
    pub per_email: u64,
}

#[derive(Clone)]
pub struct LoginLimiter {
    cache: Cache,
    limits: LoginLimits,
    /// What is counted (`login`, `reset`): each scope has counters of its own.
    scope: &'static str,
}

/// An attempt that passed the limits and is counted as a failure until `succeeded` says otherwise.
#[must_use = "a successful login must be reported with `succeeded`, or it counts as a failure"]
pub struct LoginAttempt {
    keys: Keys,
}

struct Keys {
    pair: String,
    email: String,
    ip: Option<String>,
}

impl LoginLimiter {
    pub fn new(cache: Cache, limits: LoginLimits) -> Self {
        Self {
            cache,
            limits,
            scope: "login",
        }
    }

    /// The same limits over counters of their own, for another kind of attempt (password resets).
    pub fn scoped(self, scope: &'static str) -> Self {
        Self { scope, ..self }
    }

    /// Counts an attempt at `email` (its normalized form, so every spelling shares one counter) from
    /// `ip`; refuses it with the time to wait once a limit is passed. Refusal comes before any
    /// password hashing, and the answer is the same whether the account exists.
    pub async fn attempt(&self, ip: Option<&str>, email: &str) -> Result<LoginAttempt> {
        let scope = self.scope;
        let keys = Keys {
            pair: format!("{scope}:pair:{}:{email}", ip.unwrap_or("-")),
            email: format!("{scope}:email:{email}"),
            ip: ip.map(|ip| format!("{scope}:ip:{ip}")),
        };
        let mut checks = vec![(keys.pair.as_str(), self.limits.per_email_and_ip)];
        checks.extend(keys.ip.as_deref().map(|key| (key, self.limits.per_ip)));
        checks.push((keys.email.as_str(), self.limits.per_email));
        for (i, &(key, limit)) in checks.iter().enumerate() {
            let (count, left) = self.cache.hit(key, WINDOW).await;
            if count > limit {
                // Counted where it was refused, and taken back from the counters it had passed.
                for &(passed, _) in &checks[..i] {
                    self.cache.unhit(passed).await;
                }
                return Err(Error::RateLimited { retry_after: left });
            }
        }
        Ok(LoginAttempt { keys })
    }

    /// The password was right: the attempt counts toward no limit, and the (email, address) pair
    /// starts afresh.
    pub async fn succeeded(&self, attempt: LoginAttempt) {
        let keys = attempt.keys;
        self.cache.reset(&keys.pair).await;
        self.cache.unhit(&keys.email).await;
        if let Some(ip_key) = &keys.ip {
            self.cache.unhit(ip_key).await;
        }
    }
}
