//! Messages that leave the store: the sender that delivers the outbox (emails in `email`, webhook
//! deliveries in `webhook`).
//!
//! A message is written to the outbox in the transaction of the change that causes it (nothing is
//! sent for a change that rolled back, nothing lost by a crash after the commit). The sender in each
//! instance claims due messages, sends them and records the outcome: a failure is tried again after
//! 2, 4, 8 ... seconds (at most an hour), and after `MAX_ATTEMPTS` the message is `dead`. A claim
//! held past `STALE_CLAIM_SECS` (its instance died mid-send) is taken over: a message is delivered at
//! least once and recorded once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use futures_util::StreamExt;

pub use self::email::{PASSWORD_RESET, Template, VERIFY_EMAIL};
pub use self::webhook::webhook_id;
use crate::auth::Admin;
use crate::config::MailSettings;
use crate::error::{Error, Result};
use crate::mail::{Mailer, Sent};
use crate::store::Store;
use crate::store::outbox::{DeadMessage, OutboxMessage};
use crate::store::webhooks::Requeue;
use crate::webhooks::WebhookClient;

mod email;
mod webhook;

pub const MAX_ATTEMPTS: i64 = 8;
const STALE_CLAIM_SECS: i64 = 300;
const BATCH: u32 = 20;
/// Messages of a batch sent at once.
const CONCURRENT_SENDS: usize = 8;
/// How often a sender looks when nothing woke it.
const POLL: Duration = Duration::from_secs(2);

/// Seconds until the next try after `attempts` failed ones: 2, 4, 8 ... at most an hour; `None`
/// once `MAX_ATTEMPTS` have failed (the message is dead).
pub fn retry_in(attempts: i64) -> Option<i64> {
    (attempts < MAX_ATTEMPTS).then(|| 2i64.saturating_pow(attempts.clamp(0, 62) as u32).min(3600))
}

pub struct Outbox {
    store: Store,
    mailer: Mailer,
    webhooks: WebhookClient,
    store_name: String,
    public_url: String,
    /// Wakes this instance's sender after it wrote a message (others find it when they poll).
    wake: Notify,
}

impl Outbox {
    pub fn new(store: Store, mailer: Mailer, mail: &MailSettings) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            mailer,
            webhooks: WebhookClient::new()?,
            store_name: mail.store_name.clone(),
            public_url: mail.public_url.clone(),
            wake: Notify::new(),
        })
    }

    /// Whether mail goes to an SMTP relay (else to the log).
    pub fn relays(&self) -> bool {
        self.mailer.is_smtp()
    }

    /// Tells the sender a message is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers the outbox for as long as the server runs.
    pub async fn run(self: Arc<Self>) {
        loop {
            match self.deliver_due().await {
                // A full batch: there may be more.
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "delivering the outbox failed"),
            }
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
        }
    }

    /// Claims and sends what is due now, several at once (a slow webhook endpoint holds up only its
    /// own delivery); how many messages it tried.
    pub async fn deliver_due(&self) -> Result<usize> {
        let claimed = self.store.claim_outbox(BATCH, STALE_CLAIM_SECS).await?;
        let tried = claimed.len();
        let outcomes: Vec<Result<()>> = futures_util::stream::iter(claimed)
            .map(|message| async move { self.deliver(&message).await })
            .buffer_unordered(CONCURRENT_SENDS)
            .collect()
            .await;
        outcomes.into_iter().collect::<Result<()>>()?;
        Ok(tried)
    }

    /// Sends one claimed message and records what became of it.
    async fn deliver(&self, message: &OutboxMessage) -> Result<()> {
        let outcome = match message.kind.as_str() {
            "webhook" => self.send_webhook(message).await?,
            _ => self.send_email(message).await?,
        };
        match outcome {
            Outcome::Delivered { logged } => {
                self.store.outbox_delivered(&message.id, logged).await?;
            }
            Outcome::Failed(error) => {
                let retry = retry_in(message.attempts);
                tracing::warn!(
                    message.id = %message.id, kind = %message.kind, purpose = %message.purpose,
                    attempts = message.attempts, retry_in_secs = ?retry, %error,
                    "sending a message failed"
                );
                self.store.outbox_failed(&message.id, &error, retry).await?;
            }
            Outcome::Undeliverable(why) => {
                tracing::warn!(
                    message.id = %message.id, kind = %message.kind, purpose = %message.purpose,
                    %why, "a message cannot be sent"
                );
                self.store.outbox_failed(&message.id, &why, None).await?;
            }
        }
        Ok(())
    }

    async fn send_email(&self, message: &OutboxMessage) -> Result<Outcome> {
        let email = match self.email_of(message).await? {
            Ok(email) => email,
            Err(why) => return Ok(Outcome::Undeliverable(why)),
        };
        Ok(match self.mailer.send(&email).await {
            Ok(sent) => Outcome::Delivered {
                logged: sent == Sent::Logged,
            },
            Err(error) => Outcome::Failed(error),
        })
    }

    /// Messages given up on, for an admin.
    pub async fn dead(&self, limit: u32) -> Result<Vec<DeadMessage>> {
        Ok(self.store.dead_messages(limit).await?)
    }

    /// Gives a dead message a fresh round of attempts (an admin's retry).
    pub async fn retry_dead(&self, _admin: &Admin, id: &str) -> Result<()> {
        let Some(id) = message_key(id) else {
            return Err(Error::NotFound("message"));
        };
        requeued(self.store.requeue_message(id, None, &["dead"]).await?)?;
        self.wake();
        Ok(())
    }
}

/// What one attempt at a message came to.
enum Outcome {
    /// `logged`: written to the log, no relay being configured.
    Delivered { logged: bool },
    /// Worth trying again later.
    Failed(String),
    /// Can never be sent (its order, customer or endpoint is gone).
    Undeliverable(String),
}

/// A message or endpoint id from a path, if it can be one (the store's random keys); anything else
/// names nothing.
pub(crate) fn message_key(text: &str) -> Option<&str> {
    (!text.is_empty() && text.len() <= 40 && text.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(text)
}

/// A requeue's outcome as the caller's error.
pub(crate) fn requeued(outcome: Requeue) -> Result<()> {
    match outcome {
        Requeue::Requeued => Ok(()),
        Requeue::Missing => Err(Error::NotFound("message")),
        Requeue::WrongStatus(status) => Err(Error::Conflict {
            code: "message_not_finished",
            message: format!("the message is {status} and cannot be sent again from there"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_ATTEMPTS, retry_in};

    #[test]
    fn failures_back_off_exponentially_then_give_up() {
        assert_eq!(retry_in(1), Some(2));
        assert_eq!(retry_in(2), Some(4));
        assert_eq!(retry_in(7), Some(128));
        assert_eq!(retry_in(MAX_ATTEMPTS), None);
        assert_eq!(retry_in(100), None);
    }
}
