//! Orders: checkout (idempotent), history, cancellation and the admin's status moves.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::auth::{Admin, Principal};
use crate::domain::{
    CartOwner, MAX_QUANTITY, Order, OrderId, OrderStatus, ProductId, Quantity, UserId, bounded_text,
};
use crate::error::{Error, Result};
use crate::services::cart::Carts;
use crate::services::catalog::{Catalog, Pick, choose_variant};
use crate::services::cursor::CursorCodec;
use crate::services::payments::Payments;
use crate::store::Store;
use crate::store::orders::{AddToOrder, CheckoutOutcome, KeyState, MoveOutcome};
use crate::store::payments::RefundRequest;

pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 20;
/// How long an `Idempotency-Key` is remembered.
const KEY_TTL_SECS: i64 = 24 * 3600;
/// A claim still pending after this long belongs to a request that died; a retry may take it over.
const STALE_CLAIM_SECS: i64 = 120;

/// A validated `Idempotency-Key`: 1-255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// From the header's raw bytes, which need not be UTF-8.
    pub fn parse(raw: &[u8]) -> Result<Self> {
        let ok = !raw.is_empty() && raw.len() <= 255 && raw.iter().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(Error::validation(
                "Idempotency-Key",
                "must be 1-255 visible ASCII characters",
            ));
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }
}

/// A shipping address: 1-500 characters.
#[derive(Debug, Clone)]
pub struct ShippingAddress(String);

impl ShippingAddress {
    pub fn parse(raw: &str) -> Result<Self> {
        Ok(Self(bounded_text("shipping_address", raw, 1, 500)?))
    }
}

pub struct OrderPage {
    pub items: Vec<Order>,
    pub next_cursor: Option<String>,
}

/// The result of a checkout: the order, and whether it is a replay of an earlier request.
pub struct Placed {
    pub order: Order,
    pub replayed: bool,
}

pub struct Orders {
    store: Store,
    carts: Arc<Carts>,
    /// Stock shows in catalog pages: anything that moves stock drops them.
    catalog: Arc<Catalog>,
    payments: Arc<Payments>,
    cursors: CursorCodec,
    /// `LOW_STOCK_THRESHOLD`: checkout tells webhooks when it takes a variant's stock below it.
    low_stock: i64,
    /// `REQUIRE_VERIFIED_EMAIL`: checkout needs a verified email.
    require_verified_email: bool,
}

/// Settings checkout follows.
#[derive(Debug, Clone, Copy)]
pub struct CheckoutRules {
    pub low_stock_threshold: u64,
    pub require_verified_email: bool,
}

/// Where a page of orders ended: the last order's id (orders list newest first by their v7 ids).
#[derive(serde::Serialize, serde::Deserialize)]
struct OrderCursor {
    after: String,
}

const ORDER_CURSOR: &str = "orders";

impl Orders {
    pub fn new(
        store: Store,
        carts: Arc<Carts>,
        catalog: Arc<Catalog>,
        payments: Arc<Payments>,
        cursors: CursorCodec,
        rules: CheckoutRules,
    ) -> Self {
        Self {
            store,
            carts,
            catalog,
            payments,
            cursors,
            low_stock: i64::try_from(rules.low_stock_threshold).unwrap_or(i64::MAX),
            require_verified_email: rules.require_verified_email,
        }
    }

    /// Checks out the caller's cart. With a key, a repeat of the same request returns the first
    /// order; the same key with another body is refused; a repeat while the first runs gets 409.
    #[tracing::instrument(skip_all, fields(user.id = %principal.user_id()))]
    pub async fn checkout(
        &self,
        principal: &Principal,
        address: ShippingAddress,
        key: Option<IdempotencyKey>,
    ) -> Result<Placed> {
        let user = principal.user_id();
        if self.require_verified_email {
            let verified = self
                .store
                .user_by_id(user)
                .await?
                .is_some_and(|u| u.email_verified);
            if !verified {
                return Err(Error::Conflict {
                    code: "email_not_verified",
                    message: "verify your email before placing an order (the link is in the mail \
                              sent to it; POST /api/v1/users/me/verify-email sends another)"
                        .into(),
                });
            }
        }
        if let Some(key) = &key {
            let hash = hex::encode(Sha256::digest(address.0.as_bytes()));
            if let Some(existing) = self
                .store
                .claim_idempotency_key(user, &key.0, &hash, KEY_TTL_SECS)
                .await?
            {
                if existing.request_hash != hash {
                    return Err(Error::validation(
                        "Idempotency-Key",
                        "was already used with a different request body",
                    ));
                }
                match existing.state {
                    KeyState::Done(order_id) => {
                        let order = self.order_of(principal, &order_id).await?;
                        return Ok(Placed {
                            order,
                            replayed: true,
                        });
                    }
                    KeyState::Pending if existing.age_secs < STALE_CLAIM_SECS => {
                        return Err(Error::Conflict {
                            code: "idempotency_in_progress",
                            message: "a request with this Idempotency-Key is still running".into(),
                        });
                    }
                    KeyState::Pending => self.store.reclaim_idempotency_key(user, &key.0).await?,
                }
            }
        }

        let order_id = OrderId::generate();
        let outcome = self
            .store
            .checkout(
                user,
                &order_id,
                &address.0,
                key.as_ref().map(|k| k.0.as_str()),
                self.payments.through_provider(),
                self.low_stock,
            )
            .await;
        if !matches!(outcome, Ok(CheckoutOutcome::Placed { .. }))
            && let Some(key) = &key
        {
            // Nothing was ordered: let a retry with this key run again.
            self.store.release_idempotency_key(user, &key.0).await?;
        }
        match outcome? {
            CheckoutOutcome::Placed {
                order_id,
                cart_revision,
                products,
            } => {
                self.carts
                    .emptied(&CartOwner::User(user.clone()), cart_revision)
                    .await;
                self.catalog.stock_changed(&products, false).await;
                tracing::info!(order.id = %order_id, "order placed");
                // Paid through Stripe: the intent is created now (`order_of` does it).
                let order = self.order_of(principal, &order_id).await?;
                Ok(Placed {
                    order,
                    replayed: false,
                })
            }
            CheckoutOutcome::EmptyCart => Err(Error::validation("cart", "is empty")),
            CheckoutOutcome::Short(lines) => Err(Error::InsufficientStock(lines)),
        }
    }

    /// Adds units of a product to the caller's own pending order; stock rules hold as at checkout.
    /// The product's first variant in stock is taken (the NextBuy route knows no variants).
    #[tracing::instrument(skip_all, fields(user.id = %principal.user_id(), order.id = %order_id))]
    pub async fn add_item(
        &self,
        principal: &Principal,
        order_id: &OrderId,
        product_id: ProductId,
        quantity: Quantity,
    ) -> Result<Order> {
        let variant_id = choose_variant(&self.store, product_id, Pick::FirstInStock).await?;
        match self
            .store
            .add_to_order(
                order_id,
                principal.user_id(),
                variant_id,
                quantity.get(),
                MAX_QUANTITY,
            )
            .await?
        {
            AddToOrder::Added => {
                self.catalog.stock_changed(&[product_id], false).await;
                self.order_of(principal, order_id).await
            }
            AddToOrder::Missing => Err(Error::NotFound("order")),
            AddToOrder::NoProduct => Err(Error::NotFound("product")),
            AddToOrder::NotPending => Err(Error::Conflict {
                code: "order_not_pending",
                message: "items can only be added to a pending order".into(),
            }),
            AddToOrder::Short => Err(Error::Conflict {
                code: "insufficient_stock",
                message: "not enough stock for that quantity".into(),
            }),
            AddToOrder::TooMany => Err(Quantity::line_limit_exceeded().into()),
        }
    }

    /// One order, to its owner or an admin; anyone else learns nothing (404). The owner's read of
    /// an order whose PaymentIntent is not attached yet (Stripe was unreachable) attaches it.
    pub async fn order_of(&self, principal: &Principal, order_id: &OrderId) -> Result<Order> {
        let order = self
            .store
            .order(order_id)
            .await?
            .filter(|o| &o.user_id == principal.user_id() || principal.is_admin())
            .ok_or(Error::NotFound("order"))?;
        let order = if &order.user_id == principal.user_id() {
            self.payments.ensure_intent(order).await?
        } else {
            order
        };
        Ok(shown_to(order, Some(principal.user_id())))
    }

    /// The caller's orders, newest first, optionally in one status.
    pub async fn list(
        &self,
        principal: &Principal,
        status: Option<OrderStatus>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<OrderPage> {
        self.page(Some(principal.user_id()), status, cursor, limit)
            .await
    }

    /// Everyone's orders, newest first, optionally in one status (admin).
    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id()))]
    pub async fn list_all(
        &self,
        admin: &Admin,
        status: Option<OrderStatus>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<OrderPage> {
        self.page(None, status, cursor, limit).await
    }

    async fn page(
        &self,
        owner: Option<&UserId>,
        status: Option<OrderStatus>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<OrderPage> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::validation(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let after = cursor
            .map(|text| self.cursors.decode::<OrderCursor>(ORDER_CURSOR, text))
            .transpose()?
            .map(|c| {
                OrderId::parse(&c.after).ok_or_else(|| {
                    Error::validation("cursor", "is not a cursor this listing gave out")
                })
            })
            .transpose()?;
        let mut items = self
            .store
            .list_orders(owner, status, after.as_ref(), limit)
            .await?;
        if owner.is_none() {
            // An admin's listing: other customers' client secrets stay theirs.
            items = items.into_iter().map(|o| shown_to(o, None)).collect();
        }
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|o| {
                let after = o.id.to_string();
                self.cursors.encode(ORDER_CURSOR, &OrderCursor { after })
            })
        } else {
            None
        };
        Ok(OrderPage { items, next_cursor })
    }

    /// Cancels the caller's own order while it is pending or paid, putting its stock back; a paid
    /// Stripe order is refunded.
    #[tracing::instrument(skip_all, fields(user.id = %principal.user_id(), order.id = %order_id))]
    pub async fn cancel(&self, principal: &Principal, order_id: &OrderId) -> Result<Order> {
        self.apply_move(order_id, Some(principal.user_id()), OrderStatus::Cancelled)
            .await
    }

    /// Refunds a shipped or delivered order paid through Stripe in full (admin), once: a second
    /// request finds the refund already owed or made (409).
    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), order.id = %order_id))]
    pub async fn refund(&self, admin: &Admin, order_id: &OrderId) -> Result<Order> {
        match self.store.owe_refund(order_id).await? {
            RefundRequest::Owed => {}
            RefundRequest::Missing => return Err(Error::NotFound("order")),
            RefundRequest::NotRefundable { status, payment } => {
                return Err(Error::Conflict {
                    code: "not_refundable",
                    message: match payment {
                        Some(payment) => format!(
                            "the order is {status} with its payment {payment}; only a shipped or \
                             delivered order paid through Stripe is refunded here (cancel a paid one)"
                        ),
                        None => format!(
                            "the order is {status} and was not paid through Stripe: there is no \
                             payment to refund"
                        ),
                    },
                });
            }
        }
        self.settled(order_id, None).await
    }

    /// Cancels the orders that waited for their payment past `PAYMENT_TIMEOUT` (restocking them,
    /// cancelling their intents), then finishes the payment work a crash or an unreachable Stripe
    /// left. Every instance sweeps; each step is a transaction that only one of them wins.
    pub async fn sweep_payments(&self) -> Result<usize> {
        let mut cancelled = Vec::new();
        let swept = self.expire_unpaid(&mut cancelled).await;
        if !cancelled.is_empty() {
            self.restocked(&cancelled).await;
        }
        swept?;
        self.payments.retry_unfinished().await?;
        Ok(cancelled.len())
    }

    /// Cancels the unpaid orders past their time, each as `cancelled` records it (`None`: moved, but
    /// not readable after), until one fails.
    async fn expire_unpaid(&self, cancelled: &mut Vec<Option<Order>>) -> Result<()> {
        for order_id in self.payments.expired().await? {
            let moved = self
                .store
                .move_order(
                    &order_id,
                    None,
                    &[OrderStatus::Pending],
                    OrderStatus::Cancelled,
                )
                .await?;
            if matches!(moved, MoveOutcome::Moved) {
                tracing::info!(order.id = %order_id, "unpaid order expired: cancelled and restocked");
                let settled = self.settled(&order_id, None).await;
                cancelled.push(settled.as_ref().ok().cloned());
                settled?;
            }
        }
        Ok(())
    }

    /// Moves any order along its state machine (admin).
    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), order.id = %order_id))]
    pub async fn set_status(
        &self,
        admin: &Admin,
        order_id: &OrderId,
        to: OrderStatus,
    ) -> Result<Order> {
        self.apply_move(order_id, None, to).await
    }

    /// The move itself; with `owner`, only that user's order moves (anyone else's is not found).
    async fn apply_move(
        &self,
        order_id: &OrderId,
        owner: Option<&UserId>,
        to: OrderStatus,
    ) -> Result<Order> {
        let from: Vec<OrderStatus> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.can_move_to(to))
            .collect();
        match self.store.move_order(order_id, owner, &from, to).await? {
            MoveOutcome::Moved if to == OrderStatus::Cancelled => {
                let settled = self.settled(order_id, owner).await;
                self.restocked(&[settled.as_ref().ok().cloned()]).await;
                settled
            }
            MoveOutcome::Moved => Ok(shown_to(self.stored(order_id).await?, owner)),
            MoveOutcome::Missing => Err(Error::NotFound("order")),
            MoveOutcome::WrongStatus(current) => Err(Error::Conflict {
                code: "invalid_status_transition",
                message: format!(
                    "the order is {}; it cannot move to {}",
                    current.as_str(),
                    to.as_str()
                ),
            }),
        }
    }

    async fn stored(&self, order_id: &OrderId) -> Result<Order> {
        self.store
            .order(order_id)
            .await?
            .ok_or(Error::NotFound("order"))
    }

    /// Settles the order's payment at Stripe (a refund owed, an intent to cancel), then reads it as
    /// `viewer` may see it.
    /// Cancelled orders' stock came back: the catalog's bodies showing their products are made
    /// again; all of them when an order could not be read after its move (`None`).
    async fn restocked(&self, orders: &[Option<Order>]) {
        let mut products = Vec::new();
        for order in orders {
            match order {
                Some(order) => products.extend(order.lines.iter().map(|l| l.product_id)),
                None => return self.catalog.invalidate().await,
            }
        }
        products.sort_unstable();
        products.dedup();
        self.catalog.stock_changed(&products, true).await;
    }

    async fn settled(&self, order_id: &OrderId, viewer: Option<&UserId>) -> Result<Order> {
        let order = self.stored(order_id).await?;
        if !self.payments.settle(&order).await {
            return Ok(shown_to(order, viewer));
        }
        Ok(shown_to(self.stored(order_id).await?, viewer))
    }
}

/// The order as `viewer` may see it (`None`: an admin's view of everyone's): a client secret is
/// its owner's alone.
fn shown_to(mut order: Order, viewer: Option<&UserId>) -> Order {
    if viewer != Some(&order.user_id)
        && let Some(payment) = &mut order.payment
    {
        payment.client_secret = None;
    }
    order
}
