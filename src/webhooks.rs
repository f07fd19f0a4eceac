//! Sending one webhook: an HTTP POST signed as the Standard Webhooks spec describes, with the
//! `standardwebhooks` crate (the spec's own library): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`). The outbox
//! (`services::outbox`) decides when; this only sends, and says what the endpoint answered.

use std::time::{Duration, Instant};

use base64::Engine;
use standardwebhooks::{
    HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP, Webhook,
};

/// How long an endpoint has to answer, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The status the endpoint answered; none when it could not be reached or did not answer in time.
    pub status_code: Option<u16>,
    /// Why the attempt failed; none when the endpoint answered 2xx.
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// A fresh endpoint secret in the spec's form: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

pub struct WebhookClient {
    http: reqwest::Client,
}

impl WebhookClient {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // A redirect is an answer, not a delivery: the endpoint's URL is what the admin gave.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Storefront-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }

    /// POSTs `body` to `url`, signed with `secret` as message `id`. Only a 2xx answer delivers it.
    pub async fn deliver(&self, url: &str, secret: &str, id: &str, body: Vec<u8>) -> Attempt {
        let started = Instant::now();
        let elapsed = |started: Instant| started.elapsed().as_millis().min(i64::MAX as u128) as i64;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match Webhook::new(secret).and_then(|w| w.sign(id, timestamp, &body)) {
            Ok(signature) => signature,
            Err(e) => {
                return Attempt {
                    status_code: None,
                    error: Some(format!("signing failed: {e}")),
                    duration_ms: 0,
                };
            }
        };
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_WEBHOOK_ID, id)
            .header(HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                Attempt {
                    status_code: Some(status.as_u16()),
                    error: (!status.is_success())
                        .then(|| format!("the endpoint answered {status}")),
                    duration_ms: elapsed(started),
                }
            }
            Err(e) => Attempt {
                status_code: None,
                error: Some(if e.is_timeout() {
                    format!("no answer within {} s", TIMEOUT.as_secs())
                } else {
                    format!("could not reach the endpoint: {e}")
                }),
                duration_ms: elapsed(started),
            },
        }
    }
}
