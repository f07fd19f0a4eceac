//! Password reset by mail: a request answers the same whether or not the account exists (the mail
//! goes through the outbox, never sent inline, and both cases run the same one query), and mails a
//! single-use token good for 30 minutes; confirming it sets the password and signs out every session.

use std::sync::Arc;

use crate::auth::{ClientInfo, LoginLimiter, PasswordHasher, SessionService};
use crate::config::MailSettings;
use crate::domain::{Email, Password};
use crate::error::{Error, Result};
use crate::services::mailed_token::MailedToken;
use crate::services::outbox::{Outbox, PASSWORD_RESET};
use crate::store::Store;

/// How long a reset link works.
pub const RESET_TTL_SECS: i64 = 30 * 60;

pub struct PasswordResets {
    store: Store,
    hasher: PasswordHasher,
    sessions: Arc<SessionService>,
    /// Requests are limited like logins, on counters of their own.
    limiter: LoginLimiter,
    outbox: Arc<Outbox>,
    store_name: String,
    public_url: String,
}

impl PasswordResets {
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        sessions: Arc<SessionService>,
        limiter: LoginLimiter,
        outbox: Arc<Outbox>,
        mail: &MailSettings,
    ) -> Self {
        Self {
            store,
            hasher,
            sessions,
            limiter: limiter.scoped("reset"),
            outbox,
            store_name: mail.store_name.clone(),
            public_url: mail.public_url.clone(),
        }
    }

    /// Mails a reset link to the account with this email, if there is one. The caller learns
    /// nothing about the account either way: text that is no address at all is refused (422
    /// naming `email`) whoever asks, and otherwise only the limits can refuse (429).
    #[tracing::instrument(skip_all)]
    pub async fn request(&self, raw_email: &str, client: &ClientInfo) -> Result<()> {
        let email = Email::parse(raw_email)?;
        // Every request counts: none is a "success" that would be taken back.
        let _counted = self
            .limiter
            .attempt(client.ip.as_deref(), email.as_str())
            .await?;
        let token = MailedToken::generate();
        let link = format!("{}/reset-password?token={}", self.public_url, token.token);
        let mail = PASSWORD_RESET.render(
            email.as_str(),
            &[("store", &self.store_name), ("link", &link)],
        );
        if self
            .store
            .request_password_reset(email.as_str(), &token.key, RESET_TTL_SECS, mail)
            .await?
        {
            self.outbox.wake();
        }
        Ok(())
    }

    /// Sets a new password with a mailed token and signs out every session of the account. A
    /// token that is unknown, used or expired is refused naming `token`, and changes nothing.
    #[tracing::instrument(skip_all)]
    pub async fn confirm(&self, token: &str, password: Password) -> Result<()> {
        let invalid = || {
            Error::validation(
                "token",
                "is not a valid reset token, or was used or has expired",
            )
        };
        // Forged tokens are refused before the argon2 work: confirming is not rate limited.
        let key = MailedToken::key_of_sent(token).ok_or_else(invalid)?;
        if !self.store.reset_token_usable(&key).await? {
            return Err(invalid());
        }
        let hash = self.hasher.hash(&password).await?;
        let (user, revoked) = self
            .store
            .reset_password(&key, &hash)
            .await?
            .ok_or_else(invalid)?;
        self.sessions.mark_revoked(&revoked).await;
        tracing::info!(user.id = %user, sessions = revoked.len(), "password reset; every session signed out");
        Ok(())
    }
}
