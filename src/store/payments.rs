//! An order's payment (schema 0014): attaching its PaymentIntent, the webhook events that move it
//! (each recorded once, in the transaction of the change it makes), refunds owed, and the sweeper's
//! queries.

use surrealdb::types::SurrealValue;

use super::orders::order_id_of;
use super::{Store, StoreError};
use crate::domain::OrderId;

/// What attaching an intent found.
#[derive(Debug, PartialEq, Eq)]
pub enum Attach {
    Attached,
    /// The order already has an intent (a concurrent checkout retry attached it first).
    Taken(String),
    /// The order is no longer waiting for a payment (cancelled or expired), or has none.
    Gone,
}

/// What a webhook event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// This event id was recorded before: nothing changed.
    Duplicate,
    /// The order moved to `paid`.
    Paid,
    /// The payment landed on an order already cancelled: a refund is owed.
    Refund,
    /// The attempt failed; the order still waits on the same intent.
    Failed,
    /// The amount or currency is not the order's: refused.
    Mismatch,
    /// No order of ours is paid by this intent.
    Unknown,
    /// Recorded; nothing to change (a late failure after the payment, an event type not acted on).
    Ignored,
    /// The order's intent is not attached yet: not recorded, so that Stripe delivers it again.
    NotReady,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Paid => "paid",
            EventOutcome::Refund => "refund",
            EventOutcome::Failed => "failed",
            EventOutcome::Mismatch => "mismatch",
            EventOutcome::Unknown => "unknown",
            EventOutcome::Ignored => "ignored",
            EventOutcome::NotReady => "not_ready",
        }
    }
}

/// A verified event, as `apply_payment_event` takes it.
pub struct EventRecord<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// `succeeded`, `failed` (payment_failed or canceled) or `other`.
    pub kind: &'a str,
    pub intent_id: Option<&'a str>,
    pub order_id: Option<&'a OrderId>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// What asking for a refund of a shipped or delivered order found.
#[derive(Debug, PartialEq, Eq)]
pub enum RefundRequest {
    /// The refund is owed now.
    Owed,
    Missing,
    /// Not a Stripe-paid order that has left the warehouse (or it is refunded already): its order
    /// and payment statuses.
    NotRefundable {
        status: String,
        payment: Option<String>,
    },
}

#[derive(Debug, Clone, SurrealValue)]
struct RefundRequestResult {
    outcome: String,
    status: Option<String>,
    payment: Option<String>,
}

#[derive(Debug, Clone, SurrealValue)]
struct AttachResult {
    outcome: String,
    intent_id: Option<String>,
}

impl Store {
    /// Attaches a created intent to its order, unless one is attached already or the order stopped
    /// waiting for a payment.
    pub async fn attach_intent(
        &self,
        order_id: &OrderId,
        intent_id: &str,
        client_secret: &str,
    ) -> Result<Attach, StoreError> {
        let result: AttachResult = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                            LET $order = type::record('order', $id);
                            LET $o = (SELECT status, payment FROM ONLY $order);
                            IF $o = NONE OR $o.payment = NONE { RETURN { outcome: 'gone' } };
                            IF $o.payment.intent_id != NONE {
                                RETURN { outcome: 'taken', intent_id: $o.payment.intent_id }
                            };
                            IF $o.status != 'pending' OR $o.payment.status != 'creating' {
                                RETURN { outcome: 'gone' }
                            };
                            UPDATE $order SET payment.intent_id = $intent,
                                payment.client_secret = $secret, payment.status = 'requires_payment';
                            RETURN { outcome: 'attached' };
                         }",
                    )
                    .bind(("id", order_id.to_string()))
                    .bind(("intent", intent_id.to_string()))
                    .bind(("secret", client_secret.to_string()))
                    .await?;
                let result: Option<AttachResult> = response.take(0)?;
                result.ok_or_else(|| StoreError::UnknownOutcome("attach returned nothing".into()))
            })
            .await?;
        Ok(match (result.outcome.as_str(), result.intent_id) {
            ("attached", _) => Attach::Attached,
            ("taken", Some(intent)) => Attach::Taken(intent),
            ("gone", _) => Attach::Gone,
            (outcome, _) => return Err(StoreError::UnknownOutcome(outcome.to_string())),
        })
    }

    /// Records a webhook event and applies it, in one transaction: a second delivery of the same
    /// event (at once or later) finds it recorded and changes nothing; `paid` happens only from
    /// `pending`, so a late failure never undoes a payment.
    pub async fn apply_payment_event(
        &self,
        event: &EventRecord<'_>,
    ) -> Result<EventOutcome, StoreError> {
        let outcome: String = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                            LET $event = type::record('payment_event', $event_id);
                            IF (SELECT VALUE id FROM ONLY $event) != NONE { RETURN 'duplicate' };
                            LET $order = IF $order_id != NONE { type::record('order', $order_id) };
                            LET $o = IF $order != NONE {
                                (SELECT status, subtotal, currency, payment FROM ONLY $order)
                            };
                            IF $kind != 'other' AND $o.payment != NONE AND $o.payment.intent_id = NONE
                                AND $o.payment.status = 'creating' {
                                RETURN 'not_ready'
                            };
                            LET $ours = $o.payment != NONE AND $intent != NONE
                                AND $o.payment.intent_id = $intent;
                            LET $outcome = IF $kind = 'other' { 'ignored' }
                                ELSE IF !$ours { 'unknown' }
                                ELSE IF $kind = 'succeeded' {
                                    IF $amount != $o.subtotal
                                        OR string::lowercase($currency ?? '') != string::lowercase($o.currency) {
                                        'mismatch'
                                    } ELSE IF $o.status = 'pending' { 'paid' }
                                    ELSE IF $o.status = 'cancelled' AND $o.payment.status = 'cancelled' { 'refund' }
                                    ELSE { 'ignored' }
                                }
                                ELSE IF $o.status = 'pending'
                                    AND $o.payment.status IN ['requires_payment', 'failed'] { 'failed' }
                                ELSE { 'ignored' };
                            CREATE $event CONTENT {
                                type: $type, intent_id: $intent, outcome: $outcome,
                                `order`: IF $ours { $order }
                            };
                            IF $outcome = 'paid' {
                                UPDATE $order SET status = 'paid', payment.status = 'succeeded',
                                    payment.last_error = NONE;
                                CREATE outbox CONTENT { kind: 'order_mail', purpose: 'order_paid', `order`: $order };
                                ", super::outbox::enqueue_webhook!("order.paid", super::orders::order_event_data!("")), "
                                ", super::outbox::enqueue_webhook!("order.status_changed",
                                    super::orders::order_event_data!(", 'pending' AS previous_status")), "
                            };
                            IF $outcome = 'failed' {
                                UPDATE $order SET payment.status = 'failed', payment.last_error = $error;
                            };
                            IF $outcome = 'refund' { UPDATE $order SET payment.status = 'refund_pending' };
                            RETURN $outcome;
                         }"
                    ))
                    .bind(("event_id", event.event_id.to_string()))
                    .bind(("type", event.event_type.to_string()))
                    .bind(("kind", event.kind.to_string()))
                    .bind(("intent", event.intent_id.map(str::to_string)))
                    .bind(("order_id", event.order_id.map(ToString::to_string)))
                    .bind(("amount", event.amount))
                    .bind(("currency", event.currency.map(str::to_string)))
                    .bind(("error", event.error.map(|e| e.chars().take(500).collect::<String>())))
                    .await?;
                Ok(response.take::<Option<String>>(0)?.unwrap_or_default())
            })
            .await?;
        Ok(match outcome.as_str() {
            "duplicate" => EventOutcome::Duplicate,
            "paid" => EventOutcome::Paid,
            "refund" => EventOutcome::Refund,
            "failed" => EventOutcome::Failed,
            "mismatch" => EventOutcome::Mismatch,
            "unknown" => EventOutcome::Unknown,
            "ignored" => EventOutcome::Ignored,
            "not_ready" => EventOutcome::NotReady,
            other => return Err(StoreError::UnknownOutcome(other.to_string())),
        })
    }

    /// Owes a refund for a shipped or delivered order paid through Stripe (an admin's return). A
    /// paid order not yet shipped is refunded by cancelling it, which also restocks it.
    pub async fn owe_refund(&self, order_id: &OrderId) -> Result<RefundRequest, StoreError> {
        let result: RefundRequestResult = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                            LET $order = type::record('order', $id);
                            LET $o = (SELECT status, payment FROM ONLY $order);
                            IF $o = NONE { RETURN { outcome: 'missing' } };
                            IF $o.payment.status != 'succeeded' OR $o.status NOT IN ['shipped', 'delivered'] {
                                RETURN { outcome: 'not_refundable', status: $o.status, payment: $o.payment.status }
                            };
                            UPDATE $order SET payment.status = 'refund_pending';
                            CREATE outbox CONTENT { kind: 'order_mail', purpose: 'order_refunded', `order`: $order };
                            RETURN { outcome: 'owed' };
                         }",
                    )
                    .bind(("id", order_id.to_string()))
                    .await?;
                let result: Option<RefundRequestResult> = response.take(0)?;
                result.ok_or_else(|| StoreError::UnknownOutcome("refund returned nothing".into()))
            })
            .await?;
        Ok(match (result.outcome.as_str(), result.status) {
            ("owed", _) => RefundRequest::Owed,
            ("missing", _) => RefundRequest::Missing,
            ("not_refundable", Some(status)) => RefundRequest::NotRefundable {
                status,
                payment: result.payment,
            },
            (outcome, _) => return Err(StoreError::UnknownOutcome(outcome.to_string())),
        })
    }

    /// Takes on making an owed refund: the intent to refund, unless no refund is owed or another
    /// caller took it on less than `stale_secs` ago.
    pub async fn claim_refund(
        &self,
        order_id: &OrderId,
        stale_secs: i64,
    ) -> Result<Option<String>, StoreError> {
        self.retry_on_conflict(|| async {
            let mut response = self
                .db()
                .query(
                    "{
                        LET $order = type::record('order', $id);
                        LET $p = (SELECT VALUE payment FROM ONLY $order);
                        IF $p.status != 'refund_pending' OR $p.intent_id = NONE { RETURN NONE };
                        IF $p.refund_claimed_at != NONE
                            AND $p.refund_claimed_at > time::now() - duration::from_secs($stale) {
                            RETURN NONE
                        };
                        UPDATE $order SET payment.refund_claimed_at = time::now();
                        RETURN $p.intent_id;
                     }",
                )
                .bind(("id", order_id.to_string()))
                .bind(("stale", stale_secs))
                .await?;
            Ok(response.take::<Option<String>>(0)?)
        })
        .await
    }

    /// Records the refund made for a claimed order, or (`None`) lets the claim go for a retry.
    pub async fn finish_refund(
        &self,
        order_id: &OrderId,
        refund_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.retry_on_conflict(|| async {
            self.db()
                .query(
                    "LET $order = type::record('order', $id);
                     IF $refund != NONE {
                         UPDATE $order SET payment.status = 'refunded', payment.refund_id = $refund,
                             payment.refund_claimed_at = NONE
                             WHERE payment.status = 'refund_pending';
                     } ELSE {
                         UPDATE $order SET payment.refund_claimed_at = NONE
                             WHERE payment.status = 'refund_pending';
                     };",
                )
                .bind(("id", order_id.to_string()))
                .bind(("refund", refund_id.map(str::to_string)))
                .await?
                .check()?;
            Ok(())
        })
        .await
    }

    /// Orders paid through Stripe still `pending` after `timeout_secs`, oldest first.
    pub async fn unpaid_orders_older_than(
        &self,
        timeout_secs: i64,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError> {
        let mut response = self
            .db()
            .query(
                "SELECT VALUE record::id(id) FROM `order`
                    WHERE status = 'pending' AND payment != NONE
                        AND created_at < time::now() - duration::from_secs($secs)
                    ORDER BY id LIMIT $limit",
            )
            .bind(("secs", timeout_secs))
            .bind(("limit", i64::from(limit)))
            .await?;
        let ids: Vec<String> = response.take(0)?;
        ids.iter().map(|id| order_id_of(id)).collect()
    }

    /// Orders whose payment has been in `status` for more than `secs` seconds (by the order's last
    /// write), oldest first: refunds still owed, intents never attached.
    pub async fn payments_stuck_in(
        &self,
        status: &str,
        secs: i64,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError> {
        let mut response = self
            .db()
            .query(
                "SELECT VALUE record::id(id) FROM `order`
                    WHERE payment.status = $status
                        AND updated_at < time::now() - duration::from_secs($secs)
                    ORDER BY id LIMIT $limit",
            )
            .bind(("status", status.to_string()))
            .bind(("secs", secs))
            .bind(("limit", i64::from(limit)))
            .await?;
        let ids: Vec<String> = response.take(0)?;
        ids.iter().map(|id| order_id_of(id)).collect()
    }
}
