//! `/api/v1/cart`: the caller's cart.

use std::sync::Arc;
use std::time::Duration;

use poem::Request;
use poem::web::cookie::CookieJar;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::products::Money;
use crate::api::body::Body;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::{CartAuth, SessionCookies};
use crate::api::v1::products::product_id;
use crate::api::v1::products::{OptionValues, option_values, variant_id};
use crate::api::{ApiTags, NoContent};
use crate::auth::SessionService;
use crate::domain::{CartOwner, Quantity, VariantId};
use crate::error::Error;
use crate::services::cart::{
    Cart, CartCheck, CartIssue, CartLine, Carts, IssueKind, ItemRef, LineWarning,
};
use crate::services::catalog::Pick;

#[derive(Debug, Object)]
pub struct CartLineView {
    /// The line's id: the id of its variant (a cart holds one line per variant).
    pub id: i64,
    pub product_id: i64,
    pub variant_id: i64,
    pub name: String,
    pub sku: String,
    /// The variant's value of each option of the product (empty for a product without options).
    pub option_values: OptionValues,
    pub image_url: String,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
    /// The unit price when the line was last added to (absent for lines older than that record).
    #[oai(skip_serializing_if_is_none)]
    pub price_when_added: Option<Money>,
    /// `archived`, `out_of_stock` or `insufficient_stock`: what checkout would refuse;
    /// `price_changed`: the unit price is not `price_when_added` (checkout charges `unit_price`).
    pub warnings: Vec<LineWarningView>,
}

/// What checkout would refuse about a line as it stands (`archived`, `out_of_stock`,
/// `insufficient_stock`), or what the buyer should know (`price_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum LineWarningView {
    Archived,
    OutOfStock,
    InsufficientStock,
    PriceChanged,
}

impl From<LineWarning> for LineWarningView {
    fn from(warning: LineWarning) -> Self {
        match warning {
            LineWarning::Archived => Self::Archived,
            LineWarning::OutOfStock => Self::OutOfStock,
            LineWarning::InsufficientStock => Self::InsufficientStock,
            LineWarning::PriceChanged => Self::PriceChanged,
        }
    }
}

/// Something checkout would refuse (`empty_cart`, `archived`, `out_of_stock`,
/// `insufficient_stock`), or the buyer should know before paying (`price_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CartIssueCode {
    EmptyCart,
    Archived,
    OutOfStock,
    InsufficientStock,
    PriceChanged,
}

impl From<LineWarning> for CartIssueCode {
    fn from(warning: LineWarning) -> Self {
        match warning {
            LineWarning::Archived => Self::Archived,
            LineWarning::OutOfStock => Self::OutOfStock,
            LineWarning::InsufficientStock => Self::InsufficientStock,
            LineWarning::PriceChanged => Self::PriceChanged,
        }
    }
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
            id: l.variant_id.get(),
            product_id: l.product_id.get(),
            variant_id: l.variant_id.get(),
            sku: l.sku,
            option_values: option_values(l.options),
            unit_price: Money::new(l.unit_price, &currency),
            line_total: Money::new(l.line_total, &currency),
            price_when_added: l.price_when_added.map(|p| Money::new(p, &currency)),
            name: l.name,
            image_url: l.image_url,
            quantity: l.quantity,
            warnings: l.warnings.iter().map(|w| (*w).into()).collect(),
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
#[oai(deny_unknown_fields, example)]
pub struct AddItem {
    /// The variant to add (`GET /api/v1/products/{id}` lists them).
    #[oai(skip_serializing_if_is_none, validator(minimum(value = "1")))]
    pub variant_id: Option<i64>,
    /// Enough alone for a product with one variant; beside `variant_id`, it must be the variant's.
    #[oai(skip_serializing_if_is_none, validator(minimum(value = "1")))]
    pub product_id: Option<i64>,
    /// 1-999 (a line holds at most 999).
    #[oai(validator(minimum(value = "1"), maximum(value = "999")))]
    pub quantity: i64,
}

impl Example for AddItem {
    fn example() -> Self {
        // Product 1 is the first of the starter catalog (`SEED_CATALOG`).
        Self {
            variant_id: None,
            product_id: Some(1),
            quantity: 1,
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct SetQuantity {
    /// 1-999.
    #[oai(validator(minimum(value = "1"), maximum(value = "999")))]
    pub quantity: i64,
}

impl Example for SetQuantity {
    fn example() -> Self {
        Self { quantity: 2 }
    }
}

#[derive(Debug, Object)]
pub struct CartIssueView {
    /// The line's product; absent for the whole cart.
    #[oai(skip_serializing_if_is_none)]
    pub product_id: Option<i64>,
    /// The line (its variant) concerned; absent for the whole cart.
    #[oai(skip_serializing_if_is_none)]
    pub variant_id: Option<i64>,
    pub code: CartIssueCode,
    /// True when checkout would refuse the cart because of it.
    pub blocking: bool,
    pub message: String,
}

impl From<CartIssue> for CartIssueView {
    fn from(i: CartIssue) -> Self {
        Self {
            product_id: i.product_id.map(|p| p.get()),
            variant_id: i.variant_id.map(VariantId::get),
            code: match i.kind {
                IssueKind::EmptyCart => CartIssueCode::EmptyCart,
                IssueKind::Line(warning) => warning.into(),
            },
            blocking: i.blocking,
            message: i.message,
        }
    }
}

#[derive(Debug, Object)]
pub struct CartValidation {
    /// True when checkout would accept the cart as it stands now.
    pub ok: bool,
    pub issues: Vec<CartIssueView>,
    /// The cart as it stands now.
    pub cart: CartView,
}

impl From<CartCheck> for CartValidation {
    fn from(check: CartCheck) -> Self {
        Self {
            ok: check.ok(),
            issues: check.issues.into_iter().map(Into::into).collect(),
            cart: check.cart.into(),
        }
    }
}

/// A cart and, for a guest cart, the token that names it.
#[derive(Debug, Object)]
pub struct StartedCart {
    /// For a guest: send it back as `X-Cart-Token` (it is also set as the HttpOnly `sf_cart` cookie)
    /// on every cart route, and to sign-in to merge the cart into the account. Absent when signed in.
    #[oai(skip_serializing_if_is_none)]
    pub cart_token: Option<String>,
    pub cart: CartView,
}

#[derive(ApiResponse)]
pub enum CartStarted {
    /// A new guest cart.
    #[oai(status = 201)]
    Created(Json<StartedCart>),
    /// The caller already has a cart (signed in, or a guest with a genuine cart token): that one.
    #[oai(status = 200)]
    Existing(Json<StartedCart>),
}

#[derive(ApiResponse)]
pub enum ItemAdded {
    /// The cart after the addition.
    #[oai(status = 201)]
    Created(Json<CartView>),
}

pub struct CartApi {
    pub carts: Arc<Carts>,
    pub sessions: Arc<SessionService>,
    pub cookies: SessionCookies,
    pub guest_ttl: Duration,
}

impl CartApi {
    /// A guest's cookie lives as long as the cart may idle, counted from its last change.
    fn renew(&self, jar: &CookieJar, owner: &CartOwner) {
        if let CartOwner::Guest(id) = owner {
            self.cookies
                .set_cart(jar, &self.sessions.cart_token(id), self.guest_ttl);
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Cart")]
impl CartApi {
    /// Start a cart
    ///
    /// Without credentials: a new guest cart (201), named by the returned `cart_token`, also set as
    /// the HttpOnly `sf_cart` cookie. Every cart route then works with either; checkout needs an
    /// account, and signing in or registering with the token merges the cart into the account's.
    /// A guest cart is deleted after `GUEST_CART_TTL` without a change. With credentials: the
    /// caller's cart (200).
    #[oai(path = "/cart", method = "post", operation_id = "startCart")]
    async fn start(
        &self,
        auth: CartAuth,
        jar: &CookieJar,
        req: &Request,
    ) -> ApiResult<CartStarted, Problems<UNAUTHORIZED>> {
        let (owner, created) = match auth.maybe_owner(req)? {
            Some(owner) => (owner, false),
            None => (self.carts.new_guest().await?, true),
        };
        self.renew(jar, &owner);
        let started = StartedCart {
            cart_token: match &owner {
                CartOwner::Guest(id) => Some(self.sessions.cart_token(id)),
                CartOwner::User(_) => None,
            },
            cart: self.carts.cart(&owner).await?.into(),
        };
        Ok(if created {
            CartStarted::Created(Json(started))
        } else {
            CartStarted::Existing(Json(started))
        })
    }

    /// Your cart
    ///
    /// Lines with the products' current names, images and prices, line totals, the subtotal and
    /// the item count. `warnings` flag lines checkout would refuse.
    #[oai(path = "/cart", method = "get", operation_id = "getCart")]
    async fn get(
        &self,
        auth: CartAuth,
        req: &Request,
    ) -> ApiResult<Json<CartView>, Problems<UNAUTHORIZED>> {
        Ok(Json(self.carts.cart(&auth.owner(req)?).await?.into()))
    }

    /// Check your cart before checkout
    ///
    /// What checkout would refuse now (an empty cart, archived products, too little stock) and
    /// prices changed since lines were added, read from the database. Changes nothing.
    #[oai(
        path = "/cart/validate",
        method = "post",
        operation_id = "validateCart"
    )]
    async fn validate(
        &self,
        auth: CartAuth,
        req: &Request,
    ) -> ApiResult<Json<CartValidation>, Problems<UNAUTHORIZED>> {
        Ok(Json(self.carts.check(&auth.owner(req)?).await?.into()))
    }

    /// Add a variant to your cart
    ///
    /// Name the variant (`variant_id`), or only the product (`product_id`) when it has one variant;
    /// a product with several is refused (422 naming `variant_id`). A variant already in the cart
    /// gets its quantity raised. Unknown or archived products and variants: 404.
    #[oai(path = "/cart/items", method = "post", operation_id = "addCartItem")]
    async fn add(
        &self,
        auth: CartAuth,
        body: Body<AddItem>,
        jar: &CookieJar,
        req: &Request,
    ) -> ApiResult<ItemAdded, Problems<{ BODY | UNAUTHORIZED | NOT_FOUND }>> {
        let quantity = Quantity::parse("quantity", body.0.quantity)?;
        let owner = auth.owner(req)?;
        let item = match (body.0.product_id, body.0.variant_id) {
            (None, None) => {
                return Err(
                    Error::validation("variant_id", "give variant_id (or product_id)").into(),
                );
            }
            (Some(p), None) => ItemRef::Product(product_id(p)?, Pick::Only),
            (None, Some(v)) => ItemRef::Variant(variant_id(v)?),
            (Some(p), Some(v)) => ItemRef::VariantOf(product_id(p)?, variant_id(v)?),
        };
        let cart = self.carts.add(&owner, item, quantity).await?;
        self.renew(jar, &owner);
        Ok(ItemAdded::Created(Json(cart.into())))
    }

    /// Change a line's quantity
    #[oai(
        path = "/cart/items/:id",
        method = "patch",
        operation_id = "setCartItemQuantity"
    )]
    async fn set_quantity(
        &self,
        auth: CartAuth,
        id: Path<i64>,
        body: Body<SetQuantity>,
        jar: &CookieJar,
        req: &Request,
    ) -> ApiResult<Json<CartView>, Problems<{ BODY | PARAMS | UNAUTHORIZED | NOT_FOUND }>> {
        let quantity = Quantity::parse("quantity", body.0.quantity)?;
        let owner = auth.owner(req)?;
        let cart = self
            .carts
            .set_quantity(&owner, line(id.0)?, quantity)
            .await?;
        self.renew(jar, &owner);
        Ok(Json(cart.into()))
    }

    /// Remove a line
    #[oai(
        path = "/cart/items/:id",
        method = "delete",
        operation_id = "removeCartItem"
    )]
    async fn remove(
        &self,
        auth: CartAuth,
        id: Path<i64>,
        jar: &CookieJar,
        req: &Request,
    ) -> ApiResult<Json<CartView>, Problems<{ PARAMS | UNAUTHORIZED | NOT_FOUND }>> {
        let owner = auth.owner(req)?;
        let cart = self.carts.remove(&owner, line(id.0)?).await?;
        self.renew(jar, &owner);
        Ok(Json(cart.into()))
    }

    /// Empty your cart
    #[oai(path = "/cart", method = "delete", operation_id = "clearCart")]
    async fn clear(
        &self,
        auth: CartAuth,
        jar: &CookieJar,
        req: &Request,
    ) -> ApiResult<NoContent, Problems<UNAUTHORIZED>> {
        let owner = auth.owner(req)?;
        self.carts.clear(&owner).await?;
        self.renew(jar, &owner);
        Ok(NoContent::Done)
    }
}

/// The variant id of a cart line, from a path: one no variant can have is no line of the cart.
fn line(id: i64) -> Result<VariantId, Error> {
    VariantId::new(id).ok_or(Error::NotFound("cart line"))
}
