//! `/api/v1/cart`: the caller's cart.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::products::Money;
use crate::api::problem::ApiResult;
use crate::api::session_http::Auth;
use crate::api::{ApiTags, NoContent};
use crate::domain::Quantity;
use crate::services::cart::{Cart, CartLine, Carts};

#[derive(Debug, Object)]
pub struct CartLineView {
    /// The line's id: the id of its product (a cart holds one line per product).
    pub id: i64,
    pub product_id: i64,
    pub name: String,
    pub image_url: String,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
    /// `archived`, `out_of_stock` or `insufficient_stock`: what checkout would refuse.
    pub warnings: Vec<String>,
}

#[derive(Debug, Object)]
pub struct CartView {
    pub items: Vec<CartLineView>,
    pub subtotal: Money,
    pub currency: String,
    /// Units in the cart, over all lines.
    pub item_count: i64,
}

impl From<Cart> for CartView {
    fn from(cart: Cart) -> Self {
        let currency = cart.currency;
        let line = |l: CartLine| CartLineView {
            id: l.product_id,
            product_id: l.product_id,
            unit_price: Money::new(l.unit_price, &currency),
            line_total: Money::new(l.line_total, &currency),
            name: l.name,
            image_url: l.image_url,
            quantity: l.quantity,
            warnings: l.warnings.iter().map(|w| w.as_str().to_string()).collect(),
        };
        Self {
            subtotal: Money::new(cart.subtotal, &currency),
            item_count: cart.item_count,
            items: cart.lines.into_iter().map(line).collect(),
            currency,
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct AddItem {
    pub product_id: i64,
    /// 1-999 (a line holds at most 999).
    pub quantity: i64,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SetQuantity {
    /// 1-999.
    pub quantity: i64,
}

#[derive(ApiResponse)]
pub enum ItemAdded {
    /// The cart after the addition.
    #[oai(status = 201)]
    Created(Json<CartView>),
}

pub struct CartApi {
    pub carts: Arc<Carts>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Cart")]
impl CartApi {
    /// Your cart
    ///
    /// Lines with the products' current names, images and prices, line totals, the subtotal and
    /// the item count. `warnings` flag lines checkout would refuse.
    #[oai(path = "/cart", method = "get")]
    async fn get(&self, auth: Auth) -> ApiResult<Json<CartView>> {
        Ok(Json(self.carts.cart(auth.principal()).await?.into()))
    }

    /// Add a product to your cart
    ///
    /// A product already in the cart gets its quantity raised. Unknown or archived products: 404.
    #[oai(path = "/cart/items", method = "post")]
    async fn add(&self, auth: Auth, body: Json<AddItem>) -> ApiResult<ItemAdded> {
        let quantity = Quantity::parse("quantity", body.0.quantity)?;
        let cart = self
            .carts
            .add(auth.principal(), body.0.product_id, quantity)
            .await?;
        Ok(ItemAdded::Created(Json(cart.into())))
    }

    /// Change a line's quantity
    #[oai(path = "/cart/items/:id", method = "patch")]
    async fn set_quantity(
        &self,
        auth: Auth,
        id: Path<i64>,
        body: Json<SetQuantity>,
    ) -> ApiResult<Json<CartView>> {
        let quantity = Quantity::parse("quantity", body.0.quantity)?;
        Ok(Json(
            self.carts
                .set_quantity(auth.principal(), id.0, quantity)
                .await?
                .into(),
        ))
    }

    /// Remove a line
    #[oai(path = "/cart/items/:id", method = "delete")]
    async fn remove(&self, auth: Auth, id: Path<i64>) -> ApiResult<Json<CartView>> {
        Ok(Json(
            self.carts.remove(auth.principal(), id.0).await?.into(),
        ))
    }

    /// Empty your cart
    #[oai(path = "/cart", method = "delete")]
    async fn clear(&self, auth: Auth) -> ApiResult<NoContent> {
        self.carts.clear(auth.principal()).await?;
        Ok(NoContent::Done)
    }
}
