//! Carts: one per user, read from the cache, never stale after the user's own write.

use std::time::Duration;

use crate::auth::Principal;
use crate::cache::Cache;
use crate::domain::{MAX_QUANTITY, Quantity, STORE_CURRENCY};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::carts::{AddOutcome, CartLineRow};

/// A cached cart may lag product price and stock changes by at most this; the user's own writes
/// drop it at once.
const CART_TTL: Duration = Duration::from_secs(5);

/// Why a line may not check out as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LineWarning {
    Archived,
    OutOfStock,
    InsufficientStock,
}

impl LineWarning {
    pub fn as_str(self) -> &'static str {
        match self {
            LineWarning::Archived => "archived",
            LineWarning::OutOfStock => "out_of_stock",
            LineWarning::InsufficientStock => "insufficient_stock",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CartLine {
    pub product_id: i64,
    pub name: String,
    pub image_url: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
    /// Units in stock now.
    pub stock: i64,
    pub warnings: Vec<LineWarning>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    pub subtotal: i64,
    pub currency: String,
    pub item_count: i64,
}

impl Cart {
    fn from_rows(rows: Vec<CartLineRow>) -> Self {
        let lines: Vec<CartLine> = rows
            .into_iter()
            .map(|row| {
                let mut warnings = Vec::new();
                if row.archived {
                    warnings.push(LineWarning::Archived);
                } else if row.stock == 0 {
                    warnings.push(LineWarning::OutOfStock);
                } else if row.stock < row.quantity {
                    warnings.push(LineWarning::InsufficientStock);
                }
                CartLine {
                    product_id: row.product_id,
                    name: row.name,
                    image_url: row.image_url,
                    unit_price: row.price,
                    quantity: row.quantity,
                    line_total: row.price * row.quantity,
                    stock: row.stock,
                    warnings,
                }
            })
            .collect();
        Cart {
            subtotal: lines.iter().map(|l| l.line_total).sum(),
            item_count: lines.iter().map(|l| l.quantity).sum(),
            currency: STORE_CURRENCY.to_string(),
            lines,
        }
    }
}

pub struct Carts {
    store: Store,
    cache: Cache,
}

fn cache_key(user_id: &str) -> String {
    format!("cart:{user_id}")
}

impl Carts {
    pub fn new(store: Store, cache: Cache) -> Self {
        Self { store, cache }
    }

    pub async fn cart(&self, principal: &Principal) -> Result<Cart> {
        let key = cache_key(&principal.user_id);
        if let Some(bytes) = self.cache.get(&key).await
            && let Ok(cart) = serde_json::from_slice::<Cart>(&bytes)
        {
            return Ok(cart);
        }
        let cart = Cart::from_rows(self.store.cart_lines(&principal.user_id).await?);
        if let Ok(bytes) = serde_json::to_vec(&cart) {
            self.cache.set(&key, &bytes, CART_TTL).await;
        }
        Ok(cart)
    }

    /// Adds a product; a product already in the cart gets its quantity raised.
    #[tracing::instrument(skip_all, fields(user.id = %principal.user_id, product.id = product_id))]
    pub async fn add(
        &self,
        principal: &Principal,
        product_id: i64,
        quantity: Quantity,
    ) -> Result<Cart> {
        let outcome = self
            .store
            .add_to_cart(&principal.user_id, product_id, quantity.get(), MAX_QUANTITY)
            .await?;
        match outcome {
            AddOutcome::Added => self.changed(principal).await,
            AddOutcome::NoProduct => Err(Error::NotFound("product")),
            AddOutcome::TooMany => Err(Error::validation(
                "quantity",
                format!("a cart line holds at most {MAX_QUANTITY} units"),
            )),
        }
    }

    pub async fn set_quantity(
        &self,
        principal: &Principal,
        product_id: i64,
        quantity: Quantity,
    ) -> Result<Cart> {
        if !self
            .store
            .set_cart_quantity(&principal.user_id, product_id, quantity.get())
            .await?
        {
            return Err(Error::NotFound("cart line"));
        }
        self.changed(principal).await
    }

    pub async fn remove(&self, principal: &Principal, product_id: i64) -> Result<Cart> {
        if !self
            .store
            .remove_cart_line(&principal.user_id, product_id)
            .await?
        {
            return Err(Error::NotFound("cart line"));
        }
        self.changed(principal).await
    }

    pub async fn clear(&self, principal: &Principal) -> Result<()> {
        self.store.clear_cart(&principal.user_id).await?;
        self.forget(&principal.user_id).await;
        Ok(())
    }

    /// Drops the cached cart of `user_id` (after any write to it, checkout included).
    pub async fn forget(&self, user_id: &str) {
        self.cache.delete(&cache_key(user_id)).await;
    }

    async fn changed(&self, principal: &Principal) -> Result<Cart> {
        self.forget(&principal.user_id).await;
        self.cart(principal).await
    }
}
