//! Email verification tokens (schema 0017), kept by their SHA-256, each with the address it was
//! mailed to; and the mail written with each in one transaction.

use surrealdb::types::SurrealValue;

use super::outbox::MailRow;
use super::{Store, StoreError};
use crate::domain::UserId;

/// A verification to issue with a change: the token's key, how long it is good, and its mail
/// (addressed to the email being verified).
#[derive(Debug, Clone, SurrealValue)]
pub struct NewVerification {
    pub key: String,
    pub ttl_secs: i64,
    pub mail: MailRow,
}

/// Creates the block's `$verify` (a `NewVerification`) for the user `$u` and its email, spending
/// the user's earlier tokens, and enqueues its mail. A macro, to be `concat!`ed into the block of
/// the change that needs it (registration, an email change, a request).
macro_rules! issue_verification {
    () => {
        concat!(
            "UPDATE email_verification SET used_at = time::now() WHERE user = $u AND used_at = NONE;
             CREATE type::record('email_verification', $verify.key) CONTENT {
                 user: $u, email: $verify.mail.to,
                 expires_at: time::now() + duration::from_secs($verify.ttl_secs)
             };
             LET $mail = $verify.mail;
             ",
            super::outbox::enqueue_mail!()
        )
    };
}
pub(super) use issue_verification;

/// What asking for a fresh verification mail did.
#[derive(Debug, PartialEq, Eq)]
pub enum VerificationRequest {
    Sent,
    AlreadyVerified,
    Missing,
}

impl Store {
    /// Issues a fresh verification for the user's current email (`verify.mail` must be addressed to
    /// it: `email` is checked in the transaction), unless it is verified already.
    pub async fn request_verification(
        &self,
        user: &UserId,
        email: &str,
        verify: NewVerification,
    ) -> Result<VerificationRequest, StoreError> {
        let outcome: Option<String> = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                            LET $u = type::record('user', $user);
                            LET $current = (SELECT email, email_verified FROM ONLY $u);
                            IF $current = NONE OR $current.email != $email { RETURN 'missing' };
                            IF $current.email_verified { RETURN 'verified' };
                            ",
                        issue_verification!(),
                        "
                            RETURN 'sent';
                         }"
                    ))
                    .bind(("user", user.to_string()))
                    .bind(("email", email.to_string()))
                    .bind(("verify", verify.clone()))
                    .await?;
                Ok(response.take::<Option<String>>(0)?)
            })
            .await?;
        Ok(match outcome.as_deref() {
            Some("sent") => VerificationRequest::Sent,
            Some("verified") => VerificationRequest::AlreadyVerified,
            Some("missing") => VerificationRequest::Missing,
            other => return Err(StoreError::UnknownOutcome(format!("{other:?}"))),
        })
    }

    /// Uses a verification token: the account is verified if the token is unused, unexpired and
    /// was mailed to the email the account has now. The user verified, or `None`.
    pub async fn verify_email(&self, token_key: &str) -> Result<Option<UserId>, StoreError> {
        let user: Option<String> = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                            LET $v = type::record('email_verification', $key);
                            LET $t = (SELECT user, email, expires_at, used_at FROM ONLY $v);
                            IF $t = NONE OR $t.used_at != NONE OR $t.expires_at < time::now() {
                                RETURN NONE
                            };
                            IF (SELECT VALUE email FROM ONLY $t.user) != $t.email { RETURN NONE };
                            UPDATE $v SET used_at = time::now();
                            UPDATE $t.user SET email_verified = true;
                            RETURN record::id($t.user);
                         }",
                    )
                    .bind(("key", token_key.to_string()))
                    .await?;
                Ok(response.take::<Option<String>>(0)?)
            })
            .await?;
        Ok(user.map(UserId::from_trusted))
    }
}
