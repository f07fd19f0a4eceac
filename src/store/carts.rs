//! `cart` and `cart_line`: one cart per user (`cart:⟨user⟩`), one line per product (`cart_line:[user, product]`).

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
                        product.archived AS archived, quantity, added_at
                 FROM cart_line WHERE cart = type::record('cart', $user) ORDER BY added_at, product_id",
            )
            .bind(("user", user_id.to_string()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Adds `quantity` of a product, raising the line's quantity when the product is already there.
    pub async fn add_to_cart(
        &self,
        user_id: &str,
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
                            LET $archived = (SELECT VALUE archived FROM ONLY $product);
                            IF $archived = NONE OR $archived = true { RETURN 'no_product' };
                            LET $cart = type::record('cart', $user);
                            UPSERT $cart SET user = type::record('user', $user);
                            LET $line = type::record('cart_line', [$user, $product_id]);
                            LET $current = (SELECT VALUE quantity FROM ONLY $line) ?? 0;
                            IF $current + $quantity > $max_line { RETURN 'too_many' };
                            UPSERT $line SET cart = $cart, product = $product, quantity = $current + $quantity;
                            RETURN 'added';
                         }",
                    )
                    .bind(("user", user_id.to_string()))
                    .bind(("product_id", product_id))
                    .bind(("quantity", quantity))
                    .bind(("max_line", max_line))
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
}
