//! `/api/v1/orders` (the caller's) and `/api/v1/admin/orders` (everyone's, for admins).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::products::{Money, OptionValues, option_values};
use crate::api::ApiTags;
use crate::api::body::Body;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::domain::{Order, OrderId, OrderStatus, Payment, PaymentStatus};
use crate::error::Error;
use crate::services::orders::{IdempotencyKey, OrderPage, Orders, ShippingAddress};

#[derive(Debug, Object)]
pub struct OrderLineView {
    pub product_id: i64,
    pub variant_id: i64,
    /// The product's name when it was bought.
    pub name: String,
    /// The variant's SKU when it was bought.
    pub sku: String,
    /// The variant's option values when it was bought.
    pub option_values: OptionValues,
    pub image_url: String,
    /// The price when it was bought.
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
}

/// Where an order is in its life: `pending → paid → shipped → delivered`, or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum OrderStatusView {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl From<OrderStatus> for OrderStatusView {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Pending => Self::Pending,
            OrderStatus::Paid => Self::Paid,
            OrderStatus::Shipped => Self::Shipped,
            OrderStatus::Delivered => Self::Delivered,
            OrderStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<OrderStatusView> for OrderStatus {
    fn from(status: OrderStatusView) -> Self {
        match status {
            OrderStatusView::Pending => Self::Pending,
            OrderStatusView::Paid => Self::Paid,
            OrderStatusView::Shipped => Self::Shipped,
            OrderStatusView::Delivered => Self::Delivered,
            OrderStatusView::Cancelled => Self::Cancelled,
        }
    }
}

/// Where an order's payment through Stripe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PaymentStatusView {
    /// The PaymentIntent is being created (Stripe was unreachable: reading the order retries).
    Creating,
    /// Waiting for the customer: confirm the intent with Stripe.js and `client_secret`.
    RequiresPayment,
    /// The last attempt failed; the same intent can be paid again.
    Failed,
    Succeeded,
    /// The order was cancelled after it was paid: a full refund is being made.
    RefundPending,
    Refunded,
    /// The order was cancelled (or expired) unpaid; the intent is cancelled.
    Cancelled,
}

impl From<PaymentStatus> for PaymentStatusView {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Creating => Self::Creating,
            PaymentStatus::RequiresPayment => Self::RequiresPayment,
            PaymentStatus::Failed => Self::Failed,
            PaymentStatus::Succeeded => Self::Succeeded,
            PaymentStatus::RefundPending => Self::RefundPending,
            PaymentStatus::Refunded => Self::Refunded,
            PaymentStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// The payment provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PaymentProviderView {
    Stripe,
}

/// An order's payment through Stripe.
#[derive(Debug, Object)]
pub struct PaymentView {
    pub provider: PaymentProviderView,
    pub status: PaymentStatusView,
    /// The PaymentIntent (`pi_...`); absent while `creating`.
    #[oai(skip_serializing_if_is_none)]
    pub intent_id: Option<String>,
    /// For Stripe.js's `confirmPayment`; only in the order owner's own responses.
    #[oai(skip_serializing_if_is_none)]
    pub client_secret: Option<String>,
    /// The refund (`re_...`) once a cancelled paid order is refunded.
    #[oai(skip_serializing_if_is_none)]
    pub refund_id: Option<String>,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        Self {
            provider: PaymentProviderView::Stripe,
            status: p.status.into(),
            intent_id: p.intent_id,
            client_secret: p.client_secret,
            refund_id: p.refund_id,
        }
    }
}

#[derive(Debug, Object)]
pub struct OrderView {
    pub id: String,
    pub status: OrderStatusView,
    pub items: Vec<OrderLineView>,
    pub subtotal: Money,
    pub item_count: i64,
    pub shipping_address: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The payment, when orders are paid through Stripe; absent when an admin marks them paid.
    #[oai(skip_serializing_if_is_none)]
    pub payment: Option<PaymentView>,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        let currency = o.currency;
        Self {
            status: o.status.into(),
            items: o
                .lines
                .into_iter()
                .map(|l| OrderLineView {
                    product_id: l.product_id.get(),
                    variant_id: l.variant_id.get(),
                    name: l.name,
                    sku: l.sku,
                    option_values: option_values(l.options),
                    image_url: l.image_url,
                    unit_price: Money::new(l.unit_price, &currency),
                    quantity: l.quantity,
                    line_total: Money::new(l.line_total, &currency),
                })
                .collect(),
            subtotal: Money::new(o.subtotal, &currency),
            id: o.id.to_string(),
            item_count: o.item_count,
            shipping_address: o.shipping_address,
            created_at: o.created_at,
            updated_at: o.updated_at,
            payment: o.payment.map(Into::into),
        }
    }
}

#[derive(Debug, Object)]
pub struct OrderPageView {
    pub items: Vec<OrderView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

impl From<OrderPage> for OrderPageView {
    fn from(page: OrderPage) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// An order id from a path: text that is no UUID names no order.
pub fn order_id(text: &str) -> Result<OrderId, Error> {
    OrderId::parse(text).ok_or(Error::NotFound("order"))
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CheckoutRequest {
    /// 1-500 characters.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub shipping_address: String,
}

impl Example for CheckoutRequest {
    fn example() -> Self {
        Self {
            shipping_address: "12 St James's Square, London SW1Y 4JH".into(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct StatusMove {
    /// The status to move to.
    pub status: OrderStatusView,
}

impl Example for StatusMove {
    fn example() -> Self {
        Self {
            status: OrderStatusView::Paid,
        }
    }
}

#[derive(ApiResponse)]
pub enum OrderPlaced {
    /// The order was placed (or, for a repeated `Idempotency-Key`, had been placed: see
    /// `Idempotency-Replayed`).
    #[oai(status = 201)]
    Created(
        Json<OrderView>,
        #[oai(header = "Idempotency-Replayed")] Option<String>,
    ),
}

pub struct OrdersApi {
    pub orders: Arc<Orders>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Orders")]
impl OrdersApi {
    /// Check out your cart
    ///
    /// One transaction takes the stock of every line, creates the order and its lines (prices and
    /// names as they are now) and empties the cart, or changes nothing. Not enough stock: 409 with
    /// `shortages`. Empty cart: 422. Send an `Idempotency-Key` to retry safely: a repeat returns the
    /// first order, never a second one.
    #[oai(path = "/orders", method = "post", operation_id = "checkout")]
    async fn checkout(
        &self,
        auth: Auth,
        body: Body<CheckoutRequest>,
        /// 1-255 visible ASCII characters, unique per checkout you mean to make; remembered 24 hours.
        #[oai(name = "Idempotency-Key")]
        _documented_key: Header<Option<String>>,
        req: &Request,
    ) -> ApiResult<OrderPlaced, Problems<{ BODY | SIGNED_IN | CONFLICT }>> {
        let address = ShippingAddress::parse(&body.0.shipping_address)?;
        // Read raw: a value that is not UTF-8 reaches the typed parameter as absent, which would
        // turn a retry-safe checkout into an unprotected one.
        let key = req
            .headers()
            .get("idempotency-key")
            .map(|v| IdempotencyKey::parse(v.as_bytes()))
            .transpose()?;
        let placed = self.orders.checkout(auth.principal(), address, key).await?;
        let replayed = placed.replayed.then(|| "true".to_string());
        Ok(OrderPlaced::Created(Json(placed.order.into()), replayed))
    }

    /// Your orders, newest first
    #[oai(path = "/orders", method = "get", operation_id = "listOrders")]
    async fn list(
        &self,
        auth: Auth,
        cursor: Query<Option<String>>,
        /// Items per page, 1-100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<OrderPageView>, Problems<{ PARAMS | SIGNED_IN }>> {
        let page = self
            .orders
            .list(auth.principal(), None, cursor.0.as_deref(), limit.0)
            .await?;
        Ok(Json(page.into()))
    }

    /// One of your orders
    ///
    /// Admins may read any order. Anyone else's order is not found.
    #[oai(path = "/orders/:id", method = "get", operation_id = "getOrder")]
    async fn get(
        &self,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<OrderView>, Problems<{ PARAMS | SIGNED_IN | NOT_FOUND }>> {
        let order = self
            .orders
            .order_of(auth.principal(), &order_id(&id.0)?)
            .await?;
        Ok(Json(order.into()))
    }

    /// Cancel your order
    ///
    /// Only while `pending` or `paid`; the stock goes back in the same transaction. Otherwise 409.
    #[oai(
        path = "/orders/:id/cancel",
        method = "post",
        operation_id = "cancelOrder"
    )]
    async fn cancel(
        &self,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<OrderView>, Problems<{ PARAMS | SIGNED_IN | NOT_FOUND | CONFLICT }>> {
        let order = self
            .orders
            .cancel(auth.principal(), &order_id(&id.0)?)
            .await?;
        Ok(Json(order.into()))
    }

    /// Every order, newest first (admin)
    #[oai(
        path = "/admin/orders",
        method = "get",
        tag = "ApiTags::Admin",
        operation_id = "listAllOrders"
    )]
    async fn list_all(
        &self,
        auth: Auth,
        /// Only orders in this status.
        status: Query<Option<OrderStatusView>>,
        cursor: Query<Option<String>>,
        /// Items per page, 1-100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<OrderPageView>, Problems<{ PARAMS | ADMIN }>> {
        let page = self
            .orders
            .list_all(
                &auth.admin()?,
                status.0.map(Into::into),
                cursor.0.as_deref(),
                limit.0,
            )
            .await?;
        Ok(Json(page.into()))
    }

    /// Refund a shipped or delivered order (admin)
    ///
    /// A full refund at Stripe, once (a return). The order keeps its status; its payment moves to
    /// `refund_pending`, then `refunded` with the refund's id. A paid order not yet shipped is
    /// refunded by cancelling it (which also restocks it). Anything else, or a second request: 409.
    #[oai(
        path = "/admin/orders/:id/refund",
        method = "post",
        tag = "ApiTags::Admin",
        operation_id = "refundOrder"
    )]
    async fn refund(
        &self,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<OrderView>, Problems<{ PARAMS | ADMIN | NOT_FOUND | CONFLICT }>> {
        let order = self
            .orders
            .refund(&auth.admin()?, &order_id(&id.0)?)
            .await?;
        Ok(Json(order.into()))
    }

    /// Move an order along its life (admin)
    ///
    /// `pending → paid → shipped → delivered`; `pending` or `paid` → `cancelled` (stock goes back).
    /// Any other move: 409 naming the current status.
    #[oai(
        path = "/admin/orders/:id/status",
        method = "post",
        tag = "ApiTags::Admin",
        operation_id = "moveOrderStatus"
    )]
    async fn set_status(
        &self,
        auth: Auth,
        id: Path<String>,
        body: Body<StatusMove>,
    ) -> ApiResult<Json<OrderView>, Problems<{ BODY | ADMIN | NOT_FOUND | CONFLICT }>> {
        let order = self
            .orders
            .set_status(&auth.admin()?, &order_id(&id.0)?, body.0.status.into())
            .await?;
        Ok(Json(order.into()))
    }
}
