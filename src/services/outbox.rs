//! Messages that leave the store: their templates, and the sender that delivers the outbox.
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

use crate::config::MailSettings;
use crate::domain::OrderId;
use crate::error::Result;
use crate::mail::{Email, Mailer, Sent};
use crate::store::Store;
use crate::store::outbox::{DeadMessage, MailRow, OutboxMessage};

pub const MAX_ATTEMPTS: i64 = 8;
const STALE_CLAIM_SECS: i64 = 300;
const BATCH: u32 = 20;
/// How often a sender looks when nothing woke it.
const POLL: Duration = Duration::from_secs(2);

/// A message template kept in the repo: `{{name}}` placeholders, filled per message (escaped in
/// the HTML part).
pub struct Template {
    pub purpose: &'static str,
    pub subject: &'static str,
    pub text: &'static str,
    pub html: &'static str,
}

/// The layout of every order mail; `order_mail` fills it per event.
const ORDER: Template = Template {
    purpose: "order",
    subject: "{{subject}}",
    text: include_str!("../../templates/email/order.txt"),
    html: include_str!("../../templates/email/order.html"),
};

/// An order mail's subject and first line, by what happened to the order.
fn order_words(purpose: &str) -> Option<(&'static str, &'static str)> {
    Some(match purpose {
        "order_placed" => (
            "Your order is placed",
            "Thank you: we have your order and are keeping its items for you.",
        ),
        "order_paid" => (
            "Payment received for your order",
            "Your payment has come through. We will let you know when your order ships.",
        ),
        "order_shipped" => ("Your order has shipped", "Your order is on its way."),
        "order_cancelled" => (
            "Your order is cancelled",
            "Your order is cancelled. If you had paid for it, the full amount is being refunded.",
        ),
        "order_refunded" => (
            "Your refund is on its way",
            "We are refunding your order in full.",
        ),
        _ => return None,
    })
}

fn money(minor: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", minor / 100, minor % 100)
}

pub const PASSWORD_RESET: Template = Template {
    purpose: "password_reset",
    subject: "Reset your password",
    text: include_str!("../../templates/email/password_reset.txt"),
    html: include_str!("../../templates/email/password_reset.html"),
};

impl Template {
    /// The message for `to`, its placeholders filled from `values`.
    pub fn render(&self, to: &str, values: &[(&str, &str)]) -> MailRow {
        let fill = |body: &str, escape: bool| {
            values.iter().fold(body.to_string(), |body, (name, value)| {
                let value = if escape {
                    escape_html(value)
                } else {
                    value.to_string()
                };
                body.replace(&format!("{{{{{name}}}}}"), &value)
            })
        };
        MailRow {
            purpose: self.purpose.to_string(),
            to: to.to_string(),
            subject: fill(self.subject, false),
            text: fill(self.text, false),
            html: fill(self.html, true),
        }
    }
}

/// Seconds until the next try after `attempts` failed ones: 2, 4, 8 ... at most an hour; `None`
/// once `MAX_ATTEMPTS` have failed (the message is dead).
pub fn retry_in(attempts: i64) -> Option<i64> {
    (attempts < MAX_ATTEMPTS).then(|| 2i64.saturating_pow(attempts.clamp(0, 62) as u32).min(3600))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub struct Outbox {
    store: Store,
    mailer: Mailer,
    store_name: String,
    public_url: String,
    /// Wakes this instance's sender after it wrote a message (others find it when they poll).
    wake: Notify,
}

impl Outbox {
    pub fn new(store: Store, mailer: Mailer, mail: &MailSettings) -> Self {
        Self {
            store,
            mailer,
            store_name: mail.store_name.clone(),
            public_url: mail.public_url.clone(),
            wake: Notify::new(),
        }
    }

    /// The email a claimed message stands for: as written, or an order mail rendered from the
    /// order as it is now. `Err`: it can never be sent (its order or customer is gone).
    async fn email_of(
        &self,
        message: &OutboxMessage,
    ) -> Result<std::result::Result<Email, String>> {
        if let Some(order_id) = &message.order_id {
            let Some(order) = OrderId::parse(order_id) else {
                return Ok(Err(format!("order id {order_id:?}")));
            };
            let Some(order) = self.store.order(&order).await? else {
                return Ok(Err("the order is gone".into()));
            };
            let Some(user) = self.store.user_by_id(&order.user_id).await? else {
                return Ok(Err("the customer's account is gone".into()));
            };
            let Some((subject, headline)) = order_words(&message.purpose) else {
                return Ok(Err(format!("no order mail {:?}", message.purpose)));
            };
            let lines: Vec<String> = order
                .lines
                .iter()
                .map(|l| {
                    let options: Vec<&str> = l.options.iter().map(|(_, v)| v.as_str()).collect();
                    let name = if options.is_empty() {
                        l.name.clone()
                    } else {
                        format!("{} ({})", l.name, options.join(", "))
                    };
                    format!(
                        "{} × {name}: {}",
                        l.quantity,
                        money(l.line_total, &order.currency)
                    )
                })
                .collect();
            let mail = ORDER.render(
                &user.email,
                &[
                    ("subject", subject),
                    ("headline", headline),
                    ("order_id", &order.id.to_string()),
                    ("lines", &lines.join("\n")),
                    ("total", &money(order.subtotal, &order.currency)),
                    ("link", &format!("{}/orders/{}", self.public_url, order.id)),
                    ("store", &self.store_name),
                ],
            );
            return Ok(Ok(Email {
                to: mail.to,
                subject: mail.subject,
                text: mail.text,
                html: mail.html,
            }));
        }
        Ok(
            match (
                &message.recipient,
                &message.subject,
                &message.text,
                &message.html,
            ) {
                (Some(to), Some(subject), Some(text), Some(html)) => Ok(Email {
                    to: to.clone(),
                    subject: subject.clone(),
                    text: text.clone(),
                    html: html.clone(),
                }),
                _ => Err("the message has no recipient or body".into()),
            },
        )
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

    /// Claims and sends what is due now; how many messages it tried.
    pub async fn deliver_due(&self) -> Result<usize> {
        let claimed = self.store.claim_outbox(BATCH, STALE_CLAIM_SECS).await?;
        for message in &claimed {
            let email = match self.email_of(message).await? {
                Ok(email) => email,
                Err(why) => {
                    tracing::warn!(message.id = %message.id, purpose = %message.purpose, %why, "a message cannot be sent");
                    self.store.outbox_failed(&message.id, &why, None).await?;
                    continue;
                }
            };
            match self.mailer.send(&email).await {
                Ok(sent) => {
                    self.store
                        .outbox_delivered(&message.id, sent == Sent::Logged)
                        .await?;
                }
                Err(error) => {
                    let retry = retry_in(message.attempts);
                    tracing::warn!(
                        message.id = %message.id, purpose = %message.purpose,
                        attempts = message.attempts, retry_in_secs = ?retry, %error,
                        "sending an email failed"
                    );
                    self.store.outbox_failed(&message.id, &error, retry).await?;
                }
            }
        }
        Ok(claimed.len())
    }

    /// Messages given up on, for an admin.
    pub async fn dead(&self, limit: u32) -> Result<Vec<DeadMessage>> {
        Ok(self.store.dead_messages(limit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_ATTEMPTS, PASSWORD_RESET, retry_in};

    #[test]
    fn failures_back_off_exponentially_then_give_up() {
        assert_eq!(retry_in(1), Some(2));
        assert_eq!(retry_in(2), Some(4));
        assert_eq!(retry_in(7), Some(128));
        assert_eq!(retry_in(MAX_ATTEMPTS), None);
        assert_eq!(retry_in(100), None);
    }

    #[test]
    fn a_template_fills_its_placeholders_and_escapes_the_html() {
        let mail = PASSWORD_RESET.render(
            "a@example.com",
            &[
                ("store", "Tom & Jo's <Shop>"),
                ("link", "https://x.test/reset?token=abc"),
            ],
        );
        assert_eq!(mail.subject, "Reset your password");
        assert!(mail.text.contains("Tom & Jo's <Shop>"));
        assert!(mail.text.contains("https://x.test/reset?token=abc"));
        assert!(mail.html.contains("Tom &amp; Jo's &lt;Shop&gt;"));
        assert!(!mail.text.contains("{{") && !mail.html.contains("{{"));
    }
}
