//! The outbox's emails: templates kept in the repo (`templates/email/`), and the email a claimed
//! message stands for.

use super::Outbox;
use crate::domain::OrderId;
use crate::error::Result;
use crate::mail::Email;
use crate::store::outbox::{MailRow, OutboxMessage};

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
    text: include_str!("../../../templates/email/order.txt"),
    html: include_str!("../../../templates/email/order.html"),
};

pub const PASSWORD_RESET: Template = Template {
    purpose: "password_reset",
    subject: "Reset your password",
    text: include_str!("../../../templates/email/password_reset.txt"),
    html: include_str!("../../../templates/email/password_reset.html"),
};

pub const VERIFY_EMAIL: Template = Template {
    purpose: "verify_email",
    subject: "Verify your email",
    text: include_str!("../../../templates/email/verify_email.txt"),
    html: include_str!("../../../templates/email/verify_email.html"),
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

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

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

impl Outbox {
    /// The email a claimed message stands for: as written, or an order mail rendered from the
    /// order as it is now. `Err`: it can never be sent (its order or customer is gone).
    pub(super) async fn email_of(
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
}

#[cfg(test)]
mod tests {
    use super::PASSWORD_RESET;

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
