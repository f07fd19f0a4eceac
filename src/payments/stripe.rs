//! Stripe's REST API, the three calls checkout, expiry and refunds make. Requests are form-encoded, as
//! Stripe takes them, and carry only the parameters needed (localstripe refuses any it does not know).
//! Every create sends an `Idempotency-Key` derived from the order, so a retried call at Stripe returns
//! the first result; the callers still record what they got (localstripe ignores the key).

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Secret, StripeSettings};
use crate::domain::OrderId;

/// How long one call to Stripe may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    api_base: String,
    secret_key: Secret,
}

/// A PaymentIntent as the calls here read it.
#[derive(Debug, Clone, Deserialize)]
pub struct Intent {
    pub id: String,
    pub client_secret: String,
    pub status: String,
}

#[derive(Debug, Deserialize)]
struct Refund {
    id: String,
}

/// A call that did not succeed: Stripe's answer (status and message) or no answer at all.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
    #[error("Stripe's answer was not understood: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

/// Whether `id` looks like a Stripe object id with the given prefix (`pi_...`): only such text goes
/// into a request path.
fn is_object_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 250
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

impl StripeClient {
    pub fn new(settings: &StripeSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            api_base: settings.api_base.clone(),
            secret_key: settings.secret_key.clone(),
        })
    }

    /// A PaymentIntent for an order's total, with the order's id in its metadata.
    pub async fn create_intent(
        &self,
        order_id: &OrderId,
        amount: i64,
        currency: &str,
    ) -> Result<Intent, StripeError> {
        let order = order_id.to_string();
        let form = [
            ("amount", amount.to_string()),
            ("currency", currency.to_ascii_lowercase()),
            ("metadata[order_id]", order.clone()),
        ];
        self.post(
            "/v1/payment_intents",
            &form,
            Some(&format!("order-{order}-intent")),
        )
        .await
    }

    /// Cancels an intent nobody may pay any more (the order expired or was cancelled unpaid).
    pub async fn cancel_intent(&self, intent_id: &str) -> Result<Intent, StripeError> {
        if !is_object_id(intent_id, "pi_") {
            return Err(StripeError::Malformed(format!("intent id {intent_id:?}")));
        }
        self.post(
            &format!("/v1/payment_intents/{intent_id}/cancel"),
            &[],
            None,
        )
        .await
    }

    /// A full refund of the intent's payment; returns the refund's id.
    pub async fn refund(&self, order_id: &OrderId, intent_id: &str) -> Result<String, StripeError> {
        if !is_object_id(intent_id, "pi_") {
            return Err(StripeError::Malformed(format!("intent id {intent_id:?}")));
        }
        let form = [("payment_intent", intent_id.to_string())];
        let refund: Refund = self
            .post(
                "/v1/refunds",
                &form,
                Some(&format!("order-{order_id}-refund")),
            )
            .await?;
        Ok(refund.id)
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(self.secret_key.expose())
            .form(form);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| StripeError::Unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| StripeError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.error.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(StripeError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| StripeError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::is_object_id;

    #[test]
    fn only_plain_object_ids_go_into_a_path() {
        assert!(is_object_id("pi_3MtwBwLkdIwHu7ix28a3tqPa", "pi_"));
        assert!(!is_object_id("pi_", "pi_"));
        assert!(!is_object_id("pi_../../v1/refunds", "pi_"));
        assert!(!is_object_id("re_123", "pi_"));
        assert!(!is_object_id("pi_1?x=1", "pi_"));
    }
}
