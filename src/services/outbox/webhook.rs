//! The outbox's webhook deliveries: one event to one endpoint, signed with the endpoint's secret,
//! each attempt written to the endpoint's delivery log.

use super::{Outbox, Outcome};
use crate::error::Result;
use crate::store::outbox::OutboxMessage;
use crate::store::webhooks::AttemptRecord;

impl Outbox {
    pub(super) async fn send_webhook(&self, message: &OutboxMessage) -> Result<Outcome> {
        let (Some(endpoint_id), Some(payload)) = (&message.endpoint_id, &message.payload) else {
            return Ok(Outcome::Undeliverable(
                "the delivery has no endpoint or body".into(),
            ));
        };
        let Some(endpoint) = self.store.webhook_endpoint(endpoint_id).await? else {
            return Ok(Outcome::Undeliverable("the endpoint is gone".into()));
        };
        if !endpoint.enabled {
            return Ok(Outcome::Undeliverable("the endpoint is disabled".into()));
        }
        let body = serde_json::to_vec(payload).map_err(anyhow::Error::from)?;
        let id = webhook_id(&message.id);
        let attempt = self
            .webhooks
            .deliver(&endpoint.url, &endpoint.secret, &id, body)
            .await;
        self.store
            .record_webhook_attempt(AttemptRecord {
                message_id: &message.id,
                endpoint_id,
                event_type: &message.purpose,
                attempt: message.attempts,
                status_code: attempt.status_code,
                error: attempt.error.as_deref(),
                duration_ms: attempt.duration_ms,
            })
            .await?;
        Ok(match attempt.error {
            None => Outcome::Delivered { logged: false },
            Some(error) => Outcome::Failed(error),
        })
    }
}

/// The `webhook-id` of a delivery: the same on every attempt and replay, so that a receiver can
/// drop one it has already handled.
pub fn webhook_id(message_id: &str) -> String {
    format!("msg_{message_id}")
}
