//! Email verification: a single-use token good for 24 hours, mailed at registration, on request and
//! whenever the email changes (which makes it unverified again), and only good for the address it
//! was mailed to. `REQUIRE_VERIFIED_EMAIL` makes checkout need it.

use std::sync::Arc;

use crate::auth::{ClientInfo, LoginLimiter, Principal};
use crate::config::MailSettings;
use crate::error::{Error, Result};
use crate::services::mailed_token::MailedToken;
use crate::services::outbox::{Outbox, VERIFY_EMAIL};
use crate::store::Store;
use crate::store::verification::{NewVerification, VerificationRequest};

/// How long a verification link works.
pub const VERIFY_TTL_SECS: i64 = 24 * 3600;

pub struct Verifications {
    store: Store,
    /// Requests for a fresh mail are limited like logins, on counters of their own.
    limiter: LoginLimiter,
    outbox: Arc<Outbox>,
    store_name: String,
    public_url: String,
}

impl Verifications {
    pub fn new(
        store: Store,
        limiter: LoginLimiter,
        outbox: Arc<Outbox>,
        mail: &MailSettings,
    ) -> Self {
        Self {
            store,
            limiter: limiter.scoped("verify"),
            outbox,
            store_name: mail.store_name.clone(),
            public_url: mail.public_url.clone(),
        }
    }

    /// A fresh token for `email` and its mail, to be written with the change that needs it.
    pub fn issue(&self, email: &str) -> NewVerification {
        let token = MailedToken::generate();
        let link = format!("{}/verify-email?token={}", self.public_url, token.token);
        NewVerification {
            key: token.key,
            ttl_secs: VERIFY_TTL_SECS,
            mail: VERIFY_EMAIL.render(email, &[("store", &self.store_name), ("link", &link)]),
        }
    }

    /// Tells the sender a verification mail was written.
    pub fn sent(&self) {
        self.outbox.wake();
    }

    /// Mails a fresh link to the caller's current email. 409 `email_already_verified` when there
    /// is nothing to verify.
    pub async fn request(&self, principal: &Principal, client: &ClientInfo) -> Result<()> {
        let user = self
            .store
            .user_by_id(principal.user_id())
            .await?
            .ok_or(Error::NotFound("user"))?;
        let _counted = self
            .limiter
            .attempt(client.ip.as_deref(), &user.email)
            .await?;
        match self
            .store
            .request_verification(principal.user_id(), &user.email, self.issue(&user.email))
            .await?
        {
            VerificationRequest::Sent => {
                self.sent();
                Ok(())
            }
            VerificationRequest::AlreadyVerified => Err(Error::Conflict {
                code: "email_already_verified",
                message: "this account's email is verified already".into(),
            }),
            // The email changed in between (its own mail is on its way), or the account is gone.
            VerificationRequest::Missing => Err(Error::NotFound("user")),
        }
    }

    /// Verifies the email a mailed token was sent to. A token that is unknown, used, expired, or
    /// for an address the account no longer has is refused naming `token`, and changes nothing.
    pub async fn confirm(&self, token: &str) -> Result<()> {
        let invalid = || {
            Error::validation(
                "token",
                "is not a valid verification token, or was used or has expired",
            )
        };
        let key = MailedToken::key_of_sent(token).ok_or_else(invalid)?;
        let user = self.store.verify_email(&key).await?.ok_or_else(invalid)?;
        tracing::info!(user.id = %user, "email verified");
        Ok(())
    }
}
