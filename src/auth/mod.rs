//! Credentials: password hashing, tokens, sessions, and login rate limits. No HTTP types here.

mod password;
mod principal;
mod rate_limit;
mod sessions;
mod tokens;

pub use password::PasswordHasher;
pub use principal::{Admin, Principal};
pub use rate_limit::{LoginLimiter, LoginLimits};
pub use sessions::{ClientInfo, LogoutScope, SessionService, SessionSummary, TokenPair};
pub use tokens::{TokenIssuer, derived_key, hmac};
