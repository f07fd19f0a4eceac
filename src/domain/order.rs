use chrono::{DateTime, Utc};

use super::{OrderId, OrderStatus, ProductId, UserId, VariantId};

/// An order: what was bought, at what price, and where it is in its life. Amounts are in minor
/// units of `currency`.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub shipping_address: String,
    pub currency: String,
    pub subtotal: i64,
    pub item_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub lines: Vec<OrderLine>,
    /// Set when the order is paid through Stripe; `None` for orders an admin marks paid by hand.
    pub payment: Option<super::Payment>,
}

/// A line of an order, with the product's name, image and price and the variant's SKU and option
/// values as they were when it was bought.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub name: String,
    pub sku: String,
    /// Option values by option name, in the options' order.
    pub options: Vec<(String, String)>,
    pub image_url: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
}

/// An order's status as it is after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderChange {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub updated_at: DateTime<Utc>,
}

impl From<&Order> for OrderChange {
    fn from(o: &Order) -> Self {
        Self {
            order_id: o.id,
            status: o.status,
            updated_at: o.updated_at,
        }
    }
}

/// A cart line checkout could not fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub name: String,
    pub sku: String,
    pub requested: i64,
    pub available: i64,
}
