//! `order`, `order_line` and `idempotency`: checkout, order history, cancellation and status moves.
//!
//! Checkout's invariants live in one SurrealQL block, which SurrealDB runs as one transaction: the stock
//! check, every stock decrement, the order and its lines, emptying the cart and marking the idempotency
//! record done commit together or not at all. A concurrent checkout that touched the same products
//! makes one of the two fail at commit; `retry_on_conflict` runs it again on the new state.

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use super::carts::{cart_lines_of, next_revision};
use crate::domain::{
    Order, OrderId, OrderLine, OrderStatus, Payment, PaymentStatus, ProductId, Shortage, UserId,
    VariantId,
};

use super::{Store, StoreError};

#[derive(Debug, Clone, SurrealValue)]
struct OrderLineRow {
    pub product_id: i64,
    pub variant_id: i64,
    pub name: String,
    pub sku: String,
    pub options: Vec<OptionValueRow>,
    pub image_url: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
}

/// An option value as an order line keeps it.
#[derive(Debug, Clone, SurrealValue)]
struct OptionValueRow {
    name: String,
    value: String,
}

/// An order as stored.
#[derive(Debug, Clone, SurrealValue)]
struct OrderRow {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub shipping_address: String,
    pub currency: String,
    pub subtotal: i64,
    pub item_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub lines: Vec<OrderLineRow>,
    pub payment: Option<PaymentRow>,
}

/// An order's payment as stored (schema 0014).
#[derive(Debug, Clone, SurrealValue)]
struct PaymentRow {
    status: String,
    intent_id: Option<String>,
    client_secret: Option<String>,
    refund_id: Option<String>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StoreError;

    fn try_from(r: PaymentRow) -> Result<Self, StoreError> {
        Ok(Self {
            status: PaymentStatus::parse(&r.status).ok_or_else(|| {
                StoreError::UnknownOutcome(format!("payment status {:?}", r.status))
            })?,
            intent_id: r.intent_id,
            client_secret: r.client_secret,
            refund_id: r.refund_id,
        })
    }
}

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;

    fn try_from(r: OrderRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: order_id_of(&r.id)?,
            user_id: UserId::from_trusted(r.user_id),
            status: status_of(&r.status)?,
            shipping_address: r.shipping_address,
            currency: r.currency,
            subtotal: r.subtotal,
            item_count: r.item_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            lines: r
                .lines
                .into_iter()
                .map(|l| OrderLine {
                    product_id: ProductId::from_trusted(l.product_id),
                    variant_id: VariantId::from_trusted(l.variant_id),
                    name: l.name,
                    sku: l.sku,
                    options: l.options.into_iter().map(|o| (o.name, o.value)).collect(),
                    image_url: l.image_url,
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    line_total: l.line_total,
                })
                .collect(),
            payment: r.payment.map(Payment::try_from).transpose()?,
        })
    }
}

/// A cart line checkout could not fill, as the checkout block reports it.
#[derive(Debug, Clone, SurrealValue)]
struct ShortageRow {
    product_id: i64,
    variant_id: i64,
    name: String,
    sku: String,
    requested: i64,
    available: i64,
}

impl From<ShortageRow> for Shortage {
    fn from(r: ShortageRow) -> Self {
        Self {
            product_id: ProductId::from_trusted(r.product_id),
            variant_id: VariantId::from_trusted(r.variant_id),
            name: r.name,
            sku: r.sku,
            requested: r.requested,
            available: r.available,
        }
    }
}

#[derive(Debug, Clone, SurrealValue)]
struct CheckoutResult {
    outcome: String,
    order_id: Option<String>,
    cart_revision: Option<i64>,
    products: Option<Vec<i64>>,
    lines: Option<Vec<ShortageRow>>,
}

#[derive(Debug)]
pub enum CheckoutOutcome {
    Placed {
        order_id: OrderId,
        /// The revision the cart was emptied at.
        cart_revision: i64,
        /// The products whose stock it took.
        products: Vec<ProductId>,
    },
    EmptyCart,
    Short(Vec<Shortage>),
}

/// What an `Idempotency-Key` already stands for.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub state: KeyState,
    /// Seconds since the first request claimed the key.
    pub age_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Claimed by a request that has not finished (or died).
    Pending,
    /// The request placed this order.
    Done(OrderId),
}

#[derive(Debug, Clone, SurrealValue)]
struct IdempotencyRow {
    request_hash: String,
    state: String,
    order_id: Option<String>,
    age_secs: i64,
}

impl TryFrom<IdempotencyRow> for IdempotencyRecord {
    type Error = StoreError;

    fn try_from(row: IdempotencyRow) -> Result<Self, StoreError> {
        let state = match (row.state.as_str(), row.order_id) {
            ("pending", _) => KeyState::Pending,
            ("done", Some(order_id)) => KeyState::Done(order_id_of(&order_id)?),
            (state, _) => {
                return Err(StoreError::UnknownOutcome(format!(
                    "idempotency state {state}"
                )));
            }
        };
        Ok(Self {
            request_hash: row.request_hash,
            state,
            age_secs: row.age_secs,
        })
    }
}

#[derive(Debug, Clone, SurrealValue)]
struct MoveResult {
    outcome: String,
    status: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AddToOrder {
    Added,
    Missing,
    NotPending,
    NoProduct,
    Short,
    /// The line would hold more than the per-line limit.
    TooMany,
}

#[derive(Debug)]
pub enum MoveOutcome {
    Moved,
    /// No such order (or not the given owner's).
    Missing,
    /// The order is not in the status the move starts from.
    WrongStatus(OrderStatus),
}

/// An order as `OrderRow` reads it. A macro so that it can be `concat!`ed into query text. Lines
/// are keyed `[order, variant]`: the range of the order's keys holds its lines in variant order.
macro_rules! order_columns {
    () => {
        concat!(
            order_fields!(),
            ", (IF payment != NONE { payment.{status, intent_id, client_secret, refund_id} }) AS payment"
        )
    };
}

/// What every reader of an order sees: the order and its lines, without its payment.
macro_rules! order_fields {
    () => {
        "record::id(id) AS id, record::id(user) AS user_id, status,
     shipping_address, currency, subtotal, item_count, created_at, updated_at,
     (SELECT record::id(product) AS product_id, record::id(variant) AS variant_id, name, sku,
             options, image_url, unit_price, quantity, line_total
        FROM order_line:[record::id($parent.id), NONE]..[record::id($parent.id), ..]) AS lines"
    };
}

/// An order event's `data` for webhooks: the block's `$order` as it is at that point of the
/// transaction, its payment without the client secret (that is the customer's alone), and
/// `$extra` fields (`, expr AS name`).
macro_rules! order_event_data {
    ($extra:literal) => {
        concat!(
            "(SELECT ",
            super::orders::order_fields!(),
            ", (IF payment != NONE { payment.{status, intent_id, refund_id} }) AS payment",
            $extra,
            " FROM ONLY $order)"
        )
    };
}
pub(super) use {order_event_data, order_fields};

/// The snapshot of a variant's option values an order line keeps, for the line `$l` of a block
/// (`$l.p`: its product's fields, `$l.v`: its variant's).
macro_rules! line_options {
    () => {
        "array::map($l.v.option_values, |$value, $i| { name: ($l.p.options ?? [])[$i].name, value: $value })"
    };
}

/// An order id as the store holds it: a UUID, or the store is not one this code wrote.
pub(super) fn order_id_of(text: &str) -> Result<OrderId, StoreError> {
    OrderId::parse(text).ok_or_else(|| StoreError::UnknownOutcome(format!("order id {text:?}")))
}

/// An order status as the store holds it; one this code does not know is an error.
pub(super) fn status_of(text: &str) -> Result<OrderStatus, StoreError> {
    OrderStatus::parse(text)
        .ok_or_else(|| StoreError::UnknownOutcome(format!("order status {text:?}")))
}

impl Store {
    /// Turns the user's cart into an order, atomically (see the module comment).
    pub async fn checkout(
        &self,
        user_id: &UserId,
        order_id: &OrderId,
        shipping_address: &str,
        idempotency_key: Option<&str>,
        paid_through_provider: bool,
        low_stock: i64,
    ) -> Result<CheckoutOutcome, StoreError> {
        // The cart's turn before the stock turn, the one order both are taken in: a write to the
        // cart queues behind its checkout rather than conflicting with it.
        let _turn = self.cart_turns.take(&[user_id.as_str()]).await;
        // The cart's lines cannot change while its turn is held (another instance's write would
        // conflict with the checkout and be retried).
        let variants = if self.queues_per_variant() {
            self.cart_variants(user_id).await?
        } else {
            Vec::new()
        };
        let result: CheckoutResult = self
            .with_stock_turn(&variants, || async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                            -- `p` and `v`: the product and the variant fetched once per line (one
                            -- destructuring idiom each); the lines come in variant order, the order of
                            -- their keys.
                            LET $lines = (SELECT record::id(product) AS product_id,
                                    record::id(variant) AS variant_id, product, variant, quantity,
                                    product.{name, price, archived, image_url, options} AS p,
                                    variant.{sku, option_values, price, stock, archived} AS v
                                FROM ", cart_lines_of!("$user"), ");
                            IF array::len($lines) = 0 { RETURN { outcome: 'empty' } };
                            -- Paths and `[WHERE]` rather than closures where they do: SurrealDB
                            -- 3.3.5 spends about 15 µs on each call of a closure.
                            LET $short = $lines[WHERE p.archived OR v.archived OR v.stock < quantity];
                            IF array::len($short) > 0 {
                                RETURN { outcome: 'short', lines: array::map($short, |$l| {
                                    product_id: $l.product_id, variant_id: $l.variant_id, name: $l.p.name,
                                    sku: $l.v.sku, requested: $l.quantity,
                                    available: IF $l.p.archived OR $l.v.archived { 0 } ELSE { $l.v.stock }
                                }) }
                            };
                            -- Only the narrow variant records are written for stock.
                            FOR $l IN $lines {
                                LET $taken = (UPDATE $l.variant SET stock -= $l.quantity
                                    WHERE stock >= $l.quantity RETURN VALUE stock);
                                IF array::len($taken) = 0 { THROW 'stock changed during checkout' };
                                -- Told once, when this checkout takes the stock below the threshold.
                                IF $taken[0] < $low AND $taken[0] + $l.quantity >= $low {
                                    ", super::outbox::enqueue_webhook!("product.stock_low", "{
                                        product_id: $l.product_id, variant_id: $l.variant_id,
                                        sku: $l.v.sku, name: $l.p.name, stock: $taken[0], threshold: $low
                                    }"), "
                                };
                            };
                            LET $order = type::record('order', $order_id);
                            CREATE $order CONTENT {
                                user: type::record('user', $user),
                                status: 'pending',
                                shipping_address: $address,
                                currency: 'GBP',
                                subtotal: <int> math::sum(array::map($lines,
                                    |$l| ($l.v.price ?? $l.p.price) * $l.quantity)),
                                item_count: <int> math::sum($lines.quantity),
                                -- Paid through Stripe: its intent is attached once created.
                                payment: IF $provider { { status: 'creating' } }
                            };
                            FOR $l IN $lines {
                                LET $unit = $l.v.price ?? $l.p.price;
                                CREATE type::record('order_line', [$order_id, $l.variant_id]) CONTENT {
                                    `order`: $order, product: $l.product, variant: $l.variant,
                                    name: $l.p.name, sku: $l.v.sku, options: ", line_options!(), ",
                                    image_url: $l.p.image_url, unit_price: $unit,
                                    quantity: $l.quantity, line_total: $unit * $l.quantity
                                };
                            };
                            DELETE ", cart_lines_of!("$user"), ";
                            LET $cart = type::record('cart', $user);
                            LET $cart_revision = ", next_revision!("$cart"), ";
                            UPDATE $cart SET revision = $cart_revision;
                            IF $key != NONE {
                                UPDATE type::record('idempotency', [$user, $key])
                                    SET state = 'done', `order` = $order;
                            };
                            ", super::outbox::enqueue_order_mail!("order_placed"), "
                            ", super::outbox::enqueue_webhook!("order.placed", order_event_data!("")), "
                            -- The caller reads the order after this: not inside the stock turn, where
                            -- every millisecond holds up the next checkout.
                            RETURN { outcome: 'placed', order_id: $order_id, cart_revision: $cart_revision,
                                products: array::distinct($lines.product_id) };
                         }"
                    ))
                    .bind(("user", user_id.to_string()))
                    .bind(("order_id", order_id.to_string()))
                    .bind(("address", shipping_address.to_string()))
                    .bind(("key", idempotency_key.map(str::to_string)))
                    .bind(("provider", paid_through_provider))
                    .bind(("low", low_stock))
                    .await?;
                let result: Option<CheckoutResult> = response.take(0)?;
                result.ok_or_else(|| {
                    StoreError::Database(surrealdb::Error::internal("checkout returned nothing".into()))
                })
            })
            .await?;
        Ok(
            match (
                result.outcome.as_str(),
                result.order_id,
                result.cart_revision,
                result.lines,
            ) {
                ("placed", Some(order_id), Some(cart_revision), _) => CheckoutOutcome::Placed {
                    order_id: order_id_of(&order_id)?,
                    cart_revision,
                    products: result
                        .products
                        .unwrap_or_default()
                        .into_iter()
                        .map(ProductId::from_trusted)
                        .collect(),
                },
                ("short", _, _, Some(lines)) => {
                    CheckoutOutcome::Short(lines.into_iter().map(Shortage::from).collect())
                }
                ("empty", ..) => CheckoutOutcome::EmptyCart,
                (outcome @ ("placed" | "short"), ..) => {
                    return Err(StoreError::UnknownOutcome(format!(
                        "{outcome} without its fields"
                    )));
                }
                (outcome, ..) => return Err(StoreError::UnknownOutcome(outcome.to_string())),
            },
        )
    }

    /// Claims an idempotency key for a new request. `None` when claimed now; otherwise what the key
    /// already stands for. Expired keys are replaced.
    pub async fn claim_idempotency_key(
        &self,
        user_id: &UserId,
        key: &str,
        request_hash: &str,
        ttl_secs: i64,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let mut response = self
            .db()
            .query(
                "{
                    LET $id = type::record('idempotency', [$user, $key]);
                    DELETE $id WHERE expires_at < time::now();
                    LET $existing = (SELECT request_hash, state,
                            (IF `order` != NONE { record::id(`order`) }) AS order_id,
                            duration::secs(time::now() - created_at) AS age_secs
                        FROM ONLY $id);
                    IF $existing != NONE { RETURN $existing };
                    CREATE $id SET request_hash = $hash, state = 'pending',
                        expires_at = time::now() + duration::from_secs($ttl);
                    RETURN NONE;
                 }",
            )
            .bind(("user", user_id.to_string()))
            .bind(("key", key.to_string()))
            .bind(("hash", request_hash.to_string()))
            .bind(("ttl", ttl_secs))
            .await?;
        match response.take::<Option<IdempotencyRow>>(0) {
            Ok(existing) => existing.map(IdempotencyRecord::try_from).transpose(),
            // Two first requests at once: the loser sees the winner's pending claim.
            Err(e) if matches!(StoreError::from(e.clone()), StoreError::Conflict) => {
                Ok(Some(IdempotencyRecord {
                    request_hash: request_hash.to_string(),
                    state: KeyState::Pending,
                    age_secs: 0,
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Takes over a pending claim whose request died before finishing.
    pub async fn reclaim_idempotency_key(
        &self,
        user_id: &UserId,
        key: &str,
    ) -> Result<(), StoreError> {
        self.db()
            .query("UPDATE type::record('idempotency', [$user, $key]) SET created_at = time::now() WHERE state = 'pending'")
            .bind(("user", user_id.to_string()))
            .bind(("key", key.to_string()))
            .await?
            .check()?;
        Ok(())
    }

    /// Lets a key go after its request failed without effect, so a retry runs again.
    pub async fn release_idempotency_key(
        &self,
        user_id: &UserId,
        key: &str,
    ) -> Result<(), StoreError> {
        self.db()
            .query("DELETE type::record('idempotency', [$user, $key]) WHERE state = 'pending'")
            .bind(("user", user_id.to_string()))
            .bind(("key", key.to_string()))
            .await?
            .check()?;
        Ok(())
    }

    /// Adds units of a variant to the user's own pending order, taking the stock in the same
    /// transaction (the NextBuy front-end's "add item to order").
    pub async fn add_to_order(
        &self,
        order_id: &OrderId,
        user_id: &UserId,
        variant_id: VariantId,
        quantity: i64,
        max_line: i64,
    ) -> Result<AddToOrder, StoreError> {
        let outcome: String = self
            .with_stock_turn(&[variant_id.get()], || async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                            LET $order = type::record('order', $id);
                            LET $o = (SELECT status, user FROM ONLY $order);
                            IF $o = NONE OR $o.user != type::record('user', $user) { RETURN 'missing' };
                            IF $o.status != 'pending' { RETURN 'not_pending' };
                            LET $variant = type::record('variant', $variant_id);
                            LET $l = {
                                v: $variant.{sku, option_values, price, stock, archived, product},
                                p: $variant.product.{price, name, image_url, archived, options}
                            };
                            IF $l.v.product = NONE OR $l.v.archived OR $l.p.archived { RETURN 'no_product' };
                            LET $line = type::record('order_line', [$id, $variant_id]);
                            LET $existing = (SELECT unit_price, quantity FROM ONLY $line);
                            -- Before anything is written: a RETURN commits what came before it.
                            IF ($existing.quantity ?? 0) + $quantity > $max_line { RETURN 'too_many' };
                            IF $l.v.stock < $quantity { RETURN 'short' };
                            UPDATE $variant SET stock -= $quantity;
                            LET $unit = IF $existing = NONE { $l.v.price ?? $l.p.price } ELSE { $existing.unit_price };
                            IF $existing = NONE {
                                CREATE $line CONTENT {
                                    `order`: $order, product: $l.v.product, variant: $variant,
                                    name: $l.p.name, sku: $l.v.sku, options: ", line_options!(), ",
                                    image_url: $l.p.image_url, unit_price: $unit,
                                    quantity: $quantity, line_total: $unit * $quantity
                                };
                            } ELSE {
                                UPDATE $line SET quantity += $quantity, line_total += $unit * $quantity;
                            };
                            UPDATE $order SET subtotal += $unit * $quantity, item_count += $quantity;
                            RETURN 'added';
                         }"
                    ))
                    .bind(("id", order_id.to_string()))
                    .bind(("user", user_id.to_string()))
                    .bind(("variant_id", variant_id.get()))
                    .bind(("quantity", quantity))
                    .bind(("max_line", max_line))
                    .await?;
                Ok(response.take::<Option<String>>(0)?.unwrap_or_default())
            })
            .await?;
        Ok(match outcome.as_str() {
            "added" => AddToOrder::Added,
            "missing" => AddToOrder::Missing,
            "not_pending" => AddToOrder::NotPending,
            "no_product" => AddToOrder::NoProduct,
            "short" => AddToOrder::Short,
            "too_many" => AddToOrder::TooMany,
            other => return Err(StoreError::UnknownOutcome(other.to_string())),
        })
    }

    pub async fn order(&self, order_id: &OrderId) -> Result<Option<Order>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "SELECT ",
                order_columns!(),
                " FROM ONLY type::record('order', $id)"
            ))
            .bind(("id", order_id.to_string()))
            .await?;
        response
            .take::<Option<OrderRow>>(0)?
            .map(Order::try_from)
            .transpose()
    }

    /// Orders newest first, optionally of one user and in one status, after the cursor's order.
    pub async fn list_orders(
        &self,
        user_id: Option<&UserId>,
        status: Option<OrderStatus>,
        after: Option<&OrderId>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let mut conditions = vec!["true"];
        if user_id.is_some() {
            conditions.push("user = type::record('user', $user)");
        }
        if status.is_some() {
            conditions.push("status = $status");
        }
        if after.is_some() {
            conditions.push("id < type::record('order', $after)");
        }
        let mut response = self
            .db()
            .query(format!(
                "{}{} ORDER BY id DESC LIMIT $limit",
                concat!("SELECT ", order_columns!(), " FROM `order` WHERE "),
                conditions.join(" AND ")
            ))
            .bind(("user", user_id.map(ToString::to_string)))
            .bind(("status", status.map(|s| s.as_str().to_string())))
            .bind(("after", after.map(ToString::to_string)))
            .bind(("limit", i64::from(limit) + 1))
            .await?;
        let rows: Vec<OrderRow> = response.take(0)?;
        rows.into_iter().map(Order::try_from).collect()
    }

    /// Moves an order from `from` to `to` in one transaction; a move to `cancelled` puts the stock of
    /// every line back and, for an order paid through Stripe, marks its payment: a refund owed if it
    /// was paid, cancelled otherwise. With `owner`, only that user's order is touched.
    pub async fn move_order(
        &self,
        order_id: &OrderId,
        owner: Option<&UserId>,
        from: &[OrderStatus],
        to: OrderStatus,
    ) -> Result<MoveOutcome, StoreError> {
        let from: Vec<String> = from.iter().map(|s| s.as_str().to_string()).collect();
        let result: MoveResult = self
            .with_stock_turn(&[], || async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                            LET $order = type::record('order', $id);
                            LET $current = (SELECT status, user, payment FROM ONLY $order);
                            IF $current = NONE OR ($owner != NONE AND $current.user != type::record('user', $owner)) {
                                RETURN { outcome: 'missing' }
                            };
                            IF $current.status NOT IN $from { RETURN { outcome: 'wrong_status', status: $current.status } };
                            UPDATE $order SET status = $to;
                            IF $to IN ['paid', 'shipped', 'cancelled'] {
                                CREATE outbox CONTENT { kind: 'order_mail', purpose: 'order_' + $to, `order`: $order };
                            };
                            IF $to = 'cancelled' {
                                FOR $l IN (SELECT variant, quantity FROM order_line:[$id, NONE]..[$id, ..]) {
                                    UPDATE $l.variant SET stock += $l.quantity;
                                };
                                IF $current.payment != NONE {
                                    UPDATE $order SET payment.status =
                                        IF $current.payment.status = 'succeeded' { 'refund_pending' } ELSE { 'cancelled' };
                                };
                                ", super::outbox::enqueue_webhook!("order.cancelled", order_event_data!("")), "
                            };
                            IF $to = 'paid' {
                                ", super::outbox::enqueue_webhook!("order.paid", order_event_data!("")), "
                            };
                            ", super::outbox::enqueue_webhook!("order.status_changed",
                                order_event_data!(", $current.status AS previous_status")), "
                            RETURN { outcome: 'moved' };
                         }"
                    ))
                    .bind(("id", order_id.to_string()))
                    .bind(("owner", owner.map(ToString::to_string)))
                    .bind(("from", from.clone()))
                    .bind(("to", to.as_str().to_string()))
                    .await?;
                let result: Option<MoveResult> = response.take(0)?;
                result.ok_or_else(|| {
                    StoreError::Database(surrealdb::Error::internal("move returned nothing".into()))
                })
            })
            .await?;
        Ok(match (result.outcome.as_str(), result.status) {
            ("moved", _) => MoveOutcome::Moved,
            ("missing", _) => MoveOutcome::Missing,
            ("wrong_status", Some(status)) => MoveOutcome::WrongStatus(status_of(&status)?),
            (outcome, _) => return Err(StoreError::UnknownOutcome(outcome.to_string())),
        })
    }
}
