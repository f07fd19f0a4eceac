//! The outbox (schema 0015): messages written in the transaction of the change that causes them,
//! claimed by one sender at a time, retried with backoff, `dead` after the last attempt. And the
//! password resets whose mails it carries.

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use super::{Store, StoreError};
use crate::domain::{SessionId, UserId};

/// Creates an email in the outbox from the block's `$mail` (`{purpose, to, subject, text, html}`);
/// a macro, so that it is `concat!`ed into the block of the change that causes it.
macro_rules! enqueue_mail {
    () => {
        "CREATE outbox CONTENT {
            kind: 'email', purpose: $mail.purpose, recipient: $mail.to,
            subject: $mail.subject, text: $mail.text, html: $mail.html
        };"
    };
}
pub(super) use enqueue_mail;

/// Creates an order mail in the outbox for the block's `$order`: what happened to it (`purpose`),
/// rendered from the order when it is sent.
macro_rules! enqueue_order_mail {
    ($purpose:literal) => {
        concat!(
            "CREATE outbox CONTENT { kind: 'order_mail', purpose: '",
            $purpose,
            "', `order`: $order };"
        )
    };
}
pub(super) use enqueue_order_mail;

/// Creates a webhook delivery of event `$event` (a literal such as `"order.paid"`) for every enabled
/// endpoint that wants it, carrying `$data` (a SurrealQL expression) as the event's data as it is at
/// this point of the transaction. No endpoint wants it: nothing is written.
macro_rules! enqueue_webhook {
    ($event:literal, $($data:tt)+) => {
        concat!(
            "FOR $hook IN (SELECT VALUE id FROM webhook_endpoint WHERE enabled AND '",
            $event,
            "' IN events) {
                CREATE outbox CONTENT { kind: 'webhook', purpose: '",
            $event,
            "', endpoint: $hook, payload: { type: '",
            $event,
            "', timestamp: time::now(), data: ",
            $($data)+,
            " } };
            };"
        )
    };
}
pub(super) use enqueue_webhook;

/// An email to enqueue.
#[derive(Debug, Clone, SurrealValue)]
pub struct MailRow {
    pub purpose: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A message a sender has claimed: a whole email, an order mail to render (`order_id`), or a webhook
/// delivery (`endpoint_id`, `payload`).
#[derive(Debug, Clone, SurrealValue)]
pub struct OutboxMessage {
    pub id: String,
    pub kind: String,
    pub purpose: String,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub order_id: Option<String>,
    pub endpoint_id: Option<String>,
    /// A webhook's body: `{type, timestamp, data}`.
    pub payload: Option<serde_json::Value>,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// A message that will not be tried again, for an admin.
#[derive(Debug, Clone, SurrealValue)]
pub struct DeadMessage {
    pub id: String,
    pub kind: String,
    pub purpose: String,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, SurrealValue)]
struct ResetDone {
    user: String,
    sessions: Vec<String>,
}

impl Store {
    /// Claims up to `limit` messages that are due (or whose claim is older than `stale_secs`, its
    /// sender having died mid-send), counting the attempt. Two senders claiming at once conflict on
    /// the same records; the retry finds them claimed.
    pub async fn claim_outbox(
        &self,
        limit: u32,
        stale_secs: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.retry_on_conflict(|| async {
            let mut response = self
                .db()
                .query(
                    "{
                        LET $due = (SELECT VALUE id FROM outbox
                            WHERE (status = 'pending' AND next_attempt_at <= time::now())
                               OR (status = 'sending' AND claimed_at < time::now() - duration::from_secs($stale))
                            ORDER BY next_attempt_at LIMIT $limit);
                        IF array::len($due) = 0 { RETURN [] };
                        RETURN (UPDATE $due SET status = 'sending', claimed_at = time::now(),
                                attempts += 1
                            RETURN record::id(id) AS id, kind, purpose, recipient, subject, text, html,
                                (IF `order` != NONE { record::id(`order`) }) AS order_id,
                                (IF endpoint != NONE { record::id(endpoint) }) AS endpoint_id,
                                payload, attempts);
                     }",
                )
                .bind(("limit", i64::from(limit)))
                .bind(("stale", stale_secs))
                .await?;
            Ok(response.take::<Vec<OutboxMessage>>(0)?)
        })
        .await
    }

    /// Records a message as delivered (`logged`: written to the log, no relay configured).
    pub async fn outbox_delivered(&self, id: &str, logged: bool) -> Result<(), StoreError> {
        self.db()
            .query(
                "UPDATE type::record('outbox', $id) SET
                    status = IF $logged { 'logged' } ELSE { 'sent' }, sent_at = time::now(),
                    claimed_at = NONE, last_error = NONE
                 WHERE status = 'sending'",
            )
            .bind(("id", id.to_string()))
            .bind(("logged", logged))
            .await?
            .check()?;
        Ok(())
    }

    /// Records a failed attempt: tried again in `retry_in_secs`, or (`None`) given up as `dead`.
    pub async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        retry_in_secs: Option<i64>,
    ) -> Result<(), StoreError> {
        self.db()
            .query(
                "UPDATE type::record('outbox', $id) SET
                    status = IF $retry = NONE { 'dead' } ELSE { 'pending' },
                    next_attempt_at = time::now() + duration::from_secs($retry ?? 0),
                    claimed_at = NONE, last_error = $error
                 WHERE status = 'sending'",
            )
            .bind(("id", id.to_string()))
            .bind(("error", error.chars().take(500).collect::<String>()))
            .bind(("retry", retry_in_secs))
            .await?
            .check()?;
        Ok(())
    }

    /// Messages given up on, newest first.
    pub async fn dead_messages(&self, limit: u32) -> Result<Vec<DeadMessage>, StoreError> {
        let mut response = self
            .db()
            .query(
                "SELECT record::id(id) AS id, kind, purpose, recipient, subject, attempts, last_error,
                        created_at
                 FROM outbox WHERE status = 'dead' ORDER BY created_at DESC LIMIT $limit",
            )
            .bind(("limit", i64::from(limit)))
            .await?;
        Ok(response.take(0)?)
    }

    /// Messages by status, for tests and `/metrics`-like checks: (status, count).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        #[derive(SurrealValue)]
        struct Count {
            status: String,
            n: i64,
        }
        let mut response = self
            .db()
            .query("SELECT status, count() AS n FROM outbox GROUP BY status")
            .await?;
        let counts: Vec<Count> = response.take(0)?;
        Ok(counts.into_iter().map(|c| (c.status, c.n)).collect())
    }

    /// For the account with this (normalized) email, if there is one: a reset token (by its hash)
    /// good for `ttl_secs`, and its mail, in one transaction. The same one query either way.
    pub async fn request_password_reset(
        &self,
        email: &str,
        token_hash: &str,
        ttl_secs: i64,
        mail: MailRow,
    ) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "{
                    LET $user = (SELECT VALUE id FROM user WHERE email = $email LIMIT 1)[0];
                    IF $user = NONE { RETURN false };
                    CREATE type::record('password_reset', $token_key) CONTENT {
                        user: $user, expires_at: time::now() + duration::from_secs($ttl)
                    };
                    ",
                enqueue_mail!(),
                "
                    RETURN true;
                 }"
            ))
            .bind(("email", email.to_string()))
            .bind(("token_key", token_hash.to_string()))
            .bind(("ttl", ttl_secs))
            .bind(("mail", mail))
            .await?;
        Ok(response.take::<Option<bool>>(0)?.unwrap_or(false))
    }

    /// Whether a reset token (by its hash) exists, unused and unexpired: a cheap refusal before the
    /// password is hashed. `reset_password` checks it again in its transaction.
    pub async fn reset_token_usable(&self, token_hash: &str) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query(
                "(SELECT VALUE id FROM ONLY type::record('password_reset', $token_key)
                    WHERE used_at = NONE AND expires_at > time::now()) != NONE",
            )
            .bind(("token_key", token_hash.to_string()))
            .await?;
        Ok(response.take::<Option<bool>>(0)?.unwrap_or(false))
    }

    /// Uses a reset token: sets the password, spends every outstanding token of the account and
    /// revokes all its sessions, in one transaction. `None` when the token is unknown, used or
    /// expired; otherwise the user and the sessions revoked.
    pub async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> Result<Option<(UserId, Vec<SessionId>)>, StoreError> {
        let done: Option<ResetDone> = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                            LET $reset = type::record('password_reset', $token_key);
                            LET $r = (SELECT user, expires_at, used_at FROM ONLY $reset);
                            IF $r = NONE OR $r.used_at != NONE OR $r.expires_at < time::now() {
                                RETURN NONE
                            };
                            UPDATE password_reset SET used_at = time::now()
                                WHERE user = $r.user AND used_at = NONE;
                            UPDATE $reset SET used_at = time::now();
                            UPDATE $r.user SET password_hash = $hash;
                            LET $sessions = (UPDATE session SET revoked_at = time::now()
                                WHERE user = $r.user AND revoked_at = NONE RETURN VALUE record::id(id));
                            RETURN { user: record::id($r.user), sessions: $sessions };
                         }",
                    )
                    .bind(("token_key", token_hash.to_string()))
                    .bind(("hash", password_hash.to_string()))
                    .await?;
                Ok(response.take::<Option<ResetDone>>(0)?)
            })
            .await?;
        Ok(done.map(|d| {
            (
                UserId::from_trusted(d.user),
                d.sessions
                    .into_iter()
                    .map(SessionId::from_trusted)
                    .collect(),
            )
        }))
    }
}
