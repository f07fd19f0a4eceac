//! Payments: the `manual` provider (an admin marks orders paid) or Stripe PaymentIntents.
//!
//! With Stripe, checkout places the order `pending` with a payment `creating`, then creates the
//! intent (an idempotency key derived from the order) and attaches it; the intent's id is stored
//! with the order, so a retried checkout reuses it even where the key is ignored, and an intent
//! created twice (two retries at once, against a provider that ignores the key) is cancelled again
//! by the one whose attach lost. A signed webhook moves the order (`store::payments`). A cancelled
//! order settles at Stripe: an unpaid one's intent is cancelled, a paid one is refunded, once.
//! The sweeper (`sweep`) finishes what a crash or an unreachable Stripe left undone.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{PaymentSettings, Secret};
use crate::domain::{Order, OrderId, OrderStatus, PaymentStatus};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::payments::{Event, SignatureError, StripeClient, verify_signature};
use crate::store::Store;
use crate::store::payments::{Attach, EventOutcome, EventRecord};

/// A refund claimed by an instance that then died is taken over after this long.
const STALE_REFUND_CLAIM_SECS: i64 = 120;
/// An intent still not attached this long after the order's last write is created again.
const STUCK_CREATING_SECS: i64 = 30;
/// Orders each sweep looks at, per kind of work.
const SWEEP_BATCH: u32 = 50;

struct Stripe {
    client: StripeClient,
    webhook_secret: Secret,
    timeout: Duration,
}

pub struct Payments {
    store: Store,
    metrics: Arc<Metrics>,
    /// `None`: manual payments.
    stripe: Option<Stripe>,
}

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Payments are manual: there is no webhook to deliver to.
    #[error("Stripe payments are not configured")]
    NotConfigured,
    #[error("Stripe-Signature: {0}")]
    Signature(SignatureError),
    #[error("the event could not be read: {0}")]
    Event(String),
    /// The event's order is not ready for it yet: Stripe should deliver it again.
    #[error("the order's payment is still being set up; deliver again")]
    NotReady,
    #[error(transparent)]
    Failed(#[from] Error),
}

impl Payments {
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        settings: &PaymentSettings,
    ) -> anyhow::Result<Self> {
        let stripe = match settings {
            PaymentSettings::Manual => None,
            PaymentSettings::Stripe(s) => Some(Stripe {
                client: StripeClient::new(s)?,
                webhook_secret: s.webhook_secret.clone(),
                timeout: s.payment_timeout,
            }),
        };
        Ok(Self {
            store,
            metrics,
            stripe,
        })
    }

    /// The provider's name, for logs and `/ready`.
    pub fn provider(&self) -> &'static str {
        if self.stripe.is_some() {
            "stripe"
        } else {
            "manual"
        }
    }

    /// Whether new orders are paid through the provider (and so carry a payment).
    pub fn through_provider(&self) -> bool {
        self.stripe.is_some()
    }

    /// How often the sweeper runs: a tenth of the payment timeout, between 1 s and 30 s.
    pub fn sweep_interval(&self) -> Option<Duration> {
        let stripe = self.stripe.as_ref()?;
        Some((stripe.timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(30)))
    }

    /// The payment timeout, when orders wait for one.
    pub fn payment_timeout(&self) -> Option<Duration> {
        self.stripe.as_ref().map(|s| s.timeout)
    }

    /// Gives an order whose payment is still `creating` its intent. Stripe unreachable: the order
    /// comes back as it was (`creating`), and a later read or the sweeper tries again.
    pub async fn ensure_intent(&self, order: Order) -> Result<Order> {
        let Some(stripe) = &self.stripe else {
            return Ok(order);
        };
        let creating = order
            .payment
            .as_ref()
            .is_some_and(|p| p.status == PaymentStatus::Creating && p.intent_id.is_none());
        if !creating || order.status != OrderStatus::Pending {
            return Ok(order);
        }
        let intent = match stripe
            .client
            .create_intent(&order.id, order.subtotal, &order.currency)
            .await
        {
            Ok(intent) => intent,
            Err(e) => {
                tracing::warn!(order.id = %order.id, error = %e, "creating the PaymentIntent failed; will retry");
                return Ok(order);
            }
        };
        match self
            .store
            .attach_intent(&order.id, &intent.id, &intent.client_secret)
            .await?
        {
            Attach::Attached => {
                tracing::info!(order.id = %order.id, intent.id = %intent.id, "PaymentIntent attached");
            }
            // Stripe honoured the idempotency key: the same intent, attached by the other caller.
            Attach::Taken(attached) if attached == intent.id => {}
            Attach::Taken(_) | Attach::Gone => {
                // A second intent for one order (the key ignored), or one for an order that stopped
                // waiting: nobody may pay it.
                self.cancel_intent(&order.id, &intent.id).await;
            }
        }
        self.store
            .order(&order.id)
            .await?
            .ok_or(Error::NotFound("order"))
    }

    /// Verifies and applies one webhook delivery. `Ok` once the event is durably recorded (or was
    /// before); every refusal changes nothing.
    pub async fn webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<EventOutcome, WebhookError> {
        let stripe = self.stripe.as_ref().ok_or(WebhookError::NotConfigured)?;
        verify_signature(
            signature,
            body,
            stripe.webhook_secret.expose(),
            chrono::Utc::now().timestamp(),
        )
        .map_err(WebhookError::Signature)?;
        let event = Event::parse(body).map_err(WebhookError::Event)?;
        let order_id = event.order_id.as_deref().and_then(OrderId::parse);
        let outcome = self
            .store
            .apply_payment_event(&EventRecord {
                event_id: &event.id,
                event_type: &event.event_type,
                kind: event.kind.effect(),
                intent_id: event.intent_id.as_deref(),
                order_id: order_id.as_ref(),
                amount: event.amount,
                currency: event.currency.as_deref(),
                error: event.error.as_deref(),
            })
            .await
            .map_err(Error::from)?;
        self.metrics.payment_event(outcome.as_str());
        match outcome {
            EventOutcome::NotReady => return Err(WebhookError::NotReady),
            EventOutcome::Mismatch => tracing::warn!(
                event.id = %event.id, intent.id = ?event.intent_id, order.id = ?event.order_id,
                amount = ?event.amount, currency = ?event.currency,
                "refused a payment whose amount or currency is not the order's"
            ),
            EventOutcome::Paid => {
                tracing::info!(event.id = %event.id, order.id = ?event.order_id, "order paid");
            }
            EventOutcome::Refund => {
                tracing::warn!(event.id = %event.id, order.id = ?event.order_id, "a payment landed on a cancelled order: refunding it");
                if let Some(order_id) = &order_id {
                    self.refund(order_id).await;
                }
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// Settles an order at Stripe: refunds it when a refund is owed, cancels its intent when it was
    /// cancelled unpaid. Whether it had anything to do (the order may have changed); failures are
    /// left to the sweeper.
    pub async fn settle(&self, order: &Order) -> bool {
        let Some(payment) = &order.payment else {
            return false;
        };
        match (payment.status, &payment.intent_id) {
            (PaymentStatus::RefundPending, _) => self.refund(&order.id).await,
            (PaymentStatus::Cancelled, Some(intent)) => self.cancel_intent(&order.id, intent).await,
            _ => return false,
        }
        true
    }

    /// Makes an owed refund, exactly once on our side: the order is claimed first, so a second
    /// caller (another instance, the sweeper) leaves it alone; the refund's id is recorded with it.
    async fn refund(&self, order_id: &OrderId) {
        let Some(stripe) = &self.stripe else {
            return;
        };
        let intent = match self
            .store
            .claim_refund(order_id, STALE_REFUND_CLAIM_SECS)
            .await
        {
            Ok(Some(intent)) => intent,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(order.id = %order_id, error = %e, "claiming a refund failed; the sweeper retries");
                return;
            }
        };
        let refunded = stripe.client.refund(order_id, &intent).await;
        let recorded = match &refunded {
            Ok(refund_id) => {
                tracing::info!(order.id = %order_id, refund.id = %refund_id, "order refunded");
                self.store.finish_refund(order_id, Some(refund_id)).await
            }
            Err(e) => {
                tracing::warn!(order.id = %order_id, error = %e, "refunding failed; the sweeper retries");
                self.store.finish_refund(order_id, None).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(order.id = %order_id, error = %e, refunded = refunded.is_ok(), "recording a refund failed");
        }
    }

    async fn cancel_intent(&self, order_id: &OrderId, intent_id: &str) {
        let Some(stripe) = &self.stripe else {
            return;
        };
        match stripe.client.cancel_intent(intent_id).await {
            Ok(_) => {
                tracing::info!(order.id = %order_id, intent.id = %intent_id, "PaymentIntent cancelled")
            }
            // Already paid or cancelled: a payment that lands is refunded by its webhook.
            Err(e) => {
                tracing::info!(order.id = %order_id, intent.id = %intent_id, error = %e, "PaymentIntent not cancelled")
            }
        }
    }

    /// Orders that waited for their payment longer than the timeout (for `Orders::sweep_payments`).
    pub async fn expired(&self) -> Result<Vec<OrderId>> {
        let Some(stripe) = &self.stripe else {
            return Ok(Vec::new());
        };
        let secs = i64::try_from(stripe.timeout.as_secs()).unwrap_or(i64::MAX);
        Ok(self
            .store
            .unpaid_orders_older_than(secs, SWEEP_BATCH)
            .await?)
    }

    /// Finishes what was left undone: refunds still owed, intents never attached.
    pub async fn retry_unfinished(&self) -> Result<()> {
        if self.stripe.is_none() {
            return Ok(());
        }
        for order_id in self
            .store
            .payments_stuck_in("refund_pending", 0, SWEEP_BATCH)
            .await?
        {
            self.refund(&order_id).await;
        }
        for order_id in self
            .store
            .payments_stuck_in("creating", STUCK_CREATING_SECS, SWEEP_BATCH)
            .await?
        {
            if let Some(order) = self.store.order(&order_id).await? {
                self.ensure_intent(order).await?;
            }
        }
        Ok(())
    }
}
