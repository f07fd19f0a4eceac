//! Sending one email: over SMTP with lettre (`SMTP_URL`), or to the log when no relay is configured.
//! The outbox (`services::outbox`) decides when; this only sends.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailSettings;

/// A message as the outbox keeps it.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Accepted by the SMTP relay.
    Relayed,
    /// No relay is configured: written to the log.
    Logged,
}

pub enum Mailer {
    Log,
    Smtp(Box<Relay>),
}

pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let Some(url) = &settings.smtp_url else {
            return Ok(Self::Log);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM: {e}"))?;
        Ok(Self::Smtp(Box::new(Relay { transport, from })))
    }

    pub fn is_smtp(&self) -> bool {
        matches!(self, Self::Smtp(_))
    }

    /// Sends one message; the error says why the relay refused it or could not be reached.
    pub async fn send(&self, email: &Email) -> Result<Sent, String> {
        let Self::Smtp(relay) = self else {
            tracing::info!(to = %email.to, subject = %email.subject, body = %email.text, "email (no SMTP_URL: logged only)");
            return Ok(Sent::Logged);
        };
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| format!("recipient {:?}: {e}", email.to))?;
        let message = Message::builder()
            .from(relay.from.clone())
            .to(to)
            .subject(&email.subject)
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        relay
            .transport
            .send(message)
            .await
            .map(|_| Sent::Relayed)
            .map_err(|e| e.to_string())
    }
}
