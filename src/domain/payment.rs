/// Where an order's payment is, for an order paid through a provider (Stripe). An order paid by hand
/// (the `manual` provider) has no payment record.
///
/// `creating → requires_payment ⇄ failed → succeeded`; `succeeded → refund_pending → refunded` when a
/// paid order is cancelled (or a payment lands on an order that had already expired); `cancelled` when
/// an unpaid order is cancelled or expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// The order exists; its PaymentIntent is not attached yet (being created, or the provider was
    /// unreachable: reading the order tries again).
    Creating,
    /// The intent waits for the customer to pay.
    RequiresPayment,
    /// The last attempt failed; the same intent can still be paid.
    Failed,
    Succeeded,
    /// A refund is owed and being made.
    RefundPending,
    Refunded,
    /// The order was cancelled before it was paid; the intent is cancelled at the provider.
    Cancelled,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::Creating,
        PaymentStatus::RequiresPayment,
        PaymentStatus::Failed,
        PaymentStatus::Succeeded,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunded,
        PaymentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Creating => "creating",
            PaymentStatus::RequiresPayment => "requires_payment",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::RefundPending => "refund_pending",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An order's payment through Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub status: PaymentStatus,
    pub intent_id: Option<String>,
    /// What Stripe.js needs to confirm the intent; shown to the order's owner only.
    pub client_secret: Option<String>,
    pub refund_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus;

    #[test]
    fn statuses_read_back_as_written() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PaymentStatus::parse("paid"), None);
    }
}
