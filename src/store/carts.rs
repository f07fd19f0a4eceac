//! `cart` and `cart_line`: one cart per user or guest (`cart:⟨key⟩`), one line per product
//! (`cart_line:[key, product]`). The key is the user's id, or a guest cart's `guest_…` id.

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use super::{Store, StoreError};

/// A cart line joined with its product as the product is now.
#[derive(Debug, Clone, SurrealValue, serde::Serialize, serde::Deserialize)]
pub struct CartLineRow {
    pub product_id: i64,
    pub name: String,
    pub image_url: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub archived: bool,
    pub quantity: i64,
    /// The unit price when the line was last added to (none for lines older than that record).
    pub price_when_added: Option<i64>,
}

/// A line as a merged cart holds it.
#[derive(Debug, Clone, SurrealValue)]
pub struct MergedLine {
    pub product_id: i64,
    pub quantity: i64,
    pub price_when_added: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The product does not exist or is archived.
    NoProduct,
    /// The line would hold more than the most a line may hold.
    TooMany,
}

impl Store {
    pub async fn cart_lines(&self, user_id: &str) -> Result<Vec<CartLineRow>, StoreError> {
        let mut response = self
            .db()
            .query(
                "SELECT record::id(product) AS product_id, product.name AS name,
                        product.image_url AS image_url, product.price AS price,
                        product.currency AS currency, product.stock AS stock,
                        product.archived AS archived, quantity, price_when_added, added_at
                 FROM cart_line WHERE cart = type::record('cart', $user)
                   AND (cart.expires_at = NONE OR cart.expires_at > time::now())
                 ORDER BY added_at, product_id",
            )
            .bind(("user", user_id.to_string()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Adds `quantity` of a product, raising the line's quantity when the product is already there.
    /// `guest_expiry` is set for a guest cart: its new idle deadline.
    pub async fn add_to_cart(
        &self,
        user_id: &str,
        guest_expiry: Option<DateTime<Utc>>,
        product_id: i64,
        quantity: i64,
        max_line: i64,
    ) -> Result<AddOutcome, StoreError> {
        let outcome: String = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                            LET $product = type::record('product', $product_id);
                            LET $found = (SELECT archived, price FROM ONLY $product);
                            IF $found = NONE OR $found.archived = true { RETURN 'no_product' };
                            LET $cart = type::record('cart', $user);
                            IF $expires = NONE { UPSERT $cart SET user = type::record('user', $user) }
                            ELSE { UPSERT $cart SET expires_at = $expires };
                            LET $line = type::record('cart_line', [$user, $product_id]);
                            LET $current = (SELECT VALUE quantity FROM ONLY $line) ?? 0;
                            IF $current + $quantity > $max_line { RETURN 'too_many' };
                            UPSERT $line SET cart = $cart, product = $product, quantity = $current + $quantity,
                                price_when_added = $found.price;
                            RETURN 'added';
                         }",
                    )
                    .bind(("user", user_id.to_string()))
                    .bind(("product_id", product_id))
                    .bind(("quantity", quantity))
                    .bind(("max_line", max_line))
                    .bind(("expires", guest_expiry))
                    .await?;
                Ok(response.take::<Option<String>>(0)?.unwrap_or_default())
            })
            .await?;
        Ok(match outcome.as_str() {
            "added" => AddOutcome::Added,
            "too_many" => AddOutcome::TooMany,
            _ => AddOutcome::NoProduct,
        })
    }

    /// Sets a line's quantity; false when the cart has no line for that product.
    pub async fn set_cart_quantity(
        &self,
        user_id: &str,
        product_id: i64,
        quantity: i64,
    ) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query(
                "UPDATE type::record('cart_line', [$user, $product_id]) SET quantity = $quantity
                 RETURN VALUE record::id(id)",
            )
            .bind(("user", user_id.to_string()))
            .bind(("product_id", product_id))
            .bind(("quantity", quantity))
            .await?;
        let updated: Vec<surrealdb::types::Value> = response.take(0)?;
        Ok(!updated.is_empty())
    }

    /// Removes a line; false when the cart has no line for that product.
    pub async fn remove_cart_line(
        &self,
        user_id: &str,
        product_id: i64,
    ) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query("DELETE type::record('cart_line', [$user, $product_id]) RETURN BEFORE")
            .bind(("user", user_id.to_string()))
            .bind(("product_id", product_id))
            .await?;
        let removed: Vec<surrealdb::types::Value> = response.take(0)?;
        Ok(!removed.is_empty())
    }

    pub async fn clear_cart(&self, user_id: &str) -> Result<(), StoreError> {
        self.db()
            .query("DELETE cart_line WHERE cart = type::record('cart', $user)")
            .bind(("user", user_id.to_string()))
            .await?
            .check()?;
        Ok(())
    }

    /// Creates or moves on a guest cart's idle deadline.
    pub async fn touch_guest_cart(
        &self,
        guest_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db()
            .query("UPSERT type::record('cart', $id) SET expires_at = $expires")
            .bind(("id", guest_id.to_string()))
            .bind(("expires", expires_at))
            .await?
            .check()?;
        Ok(())
    }

    /// In one transaction: empties `user_id`'s cart first when `replace`, writes `lines` into it,
    /// and deletes the guest cart.
    pub async fn merge_cart(
        &self,
        guest_id: &str,
        user_id: &str,
        replace: bool,
        lines: Vec<MergedLine>,
    ) -> Result<(), StoreError> {
        self.retry_on_conflict(|| async {
            self.db()
                .query(
                    "{
                        LET $cart = type::record('cart', $user);
                        IF $replace { DELETE cart_line WHERE cart = $cart };
                        UPSERT $cart SET user = type::record('user', $user);
                        FOR $l IN $lines {
                            UPSERT type::record('cart_line', [$user, $l.product_id])
                                SET cart = $cart, product = type::record('product', $l.product_id),
                                    quantity = $l.quantity, price_when_added = $l.price_when_added;
                        };
                        LET $guest_cart = type::record('cart', $guest);
                        DELETE cart_line WHERE cart = $guest_cart;
                        DELETE $guest_cart;
                     }",
                )
                .bind(("user", user_id.to_string()))
                .bind(("guest", guest_id.to_string()))
                .bind(("replace", replace))
                .bind(("lines", lines.clone()))
                .await?
                .check()?;
            Ok(())
        })
        .await
    }

    /// Deletes guest carts (and their lines) idle past their deadline; returns how many.
    pub async fn delete_expired_guest_carts(&self) -> Result<usize, StoreError> {
        let mut response = self
            .db()
            .query(
                "{
                    LET $gone = (SELECT VALUE id FROM cart
                                 WHERE expires_at != NONE AND expires_at < time::now());
                    FOR $cart IN $gone { DELETE cart_line WHERE cart = $cart; };
                    DELETE $gone;
                    RETURN array::len($gone);
                 }",
            )
            .await?;
        let gone: Option<i64> = response.take(0)?;
        Ok(gone.unwrap_or(0).try_into().unwrap_or(0))
    }
}
