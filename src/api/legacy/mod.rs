//! The NextBuy front-end's routes, at the root, in the original backend's shapes and messages.
//!
//! Thin adapters only: each parses the old shape, calls the same service as `/api/v1`, and answers in
//! the old shape. The original's defects are not reproduced (no hashes, one login failure message,
//! admin-only product writes, a real checkout).

mod replies;
mod shapes;

use std::sync::Arc;

use poem::Request;
use poem::web::cookie::CookieJar;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use serde_json::{Value, json};

use crate::api::ApiTags;
use crate::api::cached::CachedJson;
use crate::api::session_http::{self, AccessToken, Client, REFRESH_COOKIE, SessionCookies};
use crate::api::v1::orders::order_id;
use crate::api::v1::products::product_id;
use crate::auth::{Admin, Principal};
use crate::domain::{Address, CartOwner, DisplayName, Email, Password, Quantity, VariantId};
use crate::error::Error;
use crate::services::accounts::{Accounts, ProfileUpdate, Registration};
use crate::services::cart::{Carts, ItemRef};
use crate::services::catalog::{Catalog, Pick, ProductPatch};
use crate::services::orders::{Orders, ShippingAddress};

use self::replies::{Legacy, LegacyError, Reply, plain, with_success};
use self::shapes::{
    cart_items_json, cart_json, draft_from, int_field, order_json, product_json, str_field,
    user_json,
};

const CART_UNAUTHORIZED: &str = "Unauthorized, Please Login to access cart";

pub struct LegacyApi {
    pub accounts: Arc<Accounts>,
    pub catalog: Arc<Catalog>,
    pub carts: Arc<Carts>,
    pub orders: Arc<Orders>,
    pub cookies: SessionCookies,
}

impl LegacyApi {
    /// The caller's session, by the credential rule every route follows (`session_http::access_token`:
    /// the `Authorization` header when present, else the session cookie). An expired or missing access
    /// cookie is renewed from the refresh cookie, since the NextBuy front-end never calls a refresh
    /// route; a failed `Authorization` header is not.
    async fn session(&self, req: &Request, jar: &CookieJar) -> Result<Principal, Error> {
        match session_http::access_token(req) {
            Some(cookie @ AccessToken::Cookie(_)) => {
                if let Ok(principal) = session_http::authenticate(req, &cookie).await {
                    return Ok(principal);
                }
            }
            Some(header) => return session_http::authenticate(req, &header).await,
            None => {}
        }
        let sessions = self.accounts.sessions();
        let refresh = jar
            .get(REFRESH_COOKIE)
            .map(|c| c.value_str().to_string())
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthenticated)?;
        let pair = sessions.refresh(&refresh).await?;
        self.cookies.set(jar, &pair);
        sessions.authenticate(&pair.access_token).await
    }

    async fn cart_session(&self, req: &Request, jar: &CookieJar) -> Result<Principal, LegacyError> {
        self.session(req, jar)
            .await
            .map_err(|_| LegacyError::Unauthorized(Json(json!({"message": CART_UNAUTHORIZED}))))
    }

    /// The caller's cart in the original's record shape (GET, POST and PUT `/cart` all answer it).
    async fn cart_record(&self, req: &Request, jar: &CookieJar) -> Result<Value, LegacyError> {
        let principal = self.cart_session(req, jar).await?;
        let cart = plain(self.carts.cart(&CartOwner::from(&principal)).await)?;
        Ok(cart_json(&cart, &principal))
    }

    async fn admin_session(&self, req: &Request, jar: &CookieJar) -> Result<Admin, LegacyError> {
        let principal = self
            .session(req, jar)
            .await
            .map_err(|e| LegacyError::from_error(e, false))?;
        principal
            .admin()
            .map_err(|e| LegacyError::from_error(e, false))
    }
}

#[OpenApi(tag = "ApiTags::Legacy")]
impl LegacyApi {
    /// Register (NextBuy)
    #[oai(
        path = "/authentication/register",
        method = "post",
        operation_id = "legacyRegister",
        deprecated
    )]
    async fn register(&self, body: Json<Value>) -> Reply {
        let b = &body.0;
        let registration = with_success((|| {
            Ok(Registration {
                email: Email::parse(str_field(b, "email")?)?,
                password: Password::parse("password", str_field(b, "password")?.to_string())?,
                name: DisplayName::parse(str_field(b, "name")?)?,
                address: Address::parse(b["address"].as_str().unwrap_or_default())?,
            })
        })())?;
        with_success(self.accounts.register(registration).await)?;
        Ok(Legacy::Ok(Json(
            json!({"success": true, "message": "User registered successfully!"}),
        )))
    }

    /// Sign in (NextBuy): sets the session cookies
    #[oai(
        path = "/authentication/login",
        method = "post",
        operation_id = "legacyLogin",
        deprecated
    )]
    async fn login(&self, body: Json<Value>, client: Client, jar: &CookieJar) -> Reply {
        let email = body.0["email"].as_str().unwrap_or_default();
        let password = body.0["password"].as_str().unwrap_or_default();
        let (_, pair) = with_success(self.accounts.login(email, password, &client.0).await)?;
        self.cookies.set(jar, &pair);
        Ok(Legacy::Ok(Json(
            json!({"success": true, "message": "Successfully logged in!"}),
        )))
    }

    /// Sign out (NextBuy): clears the cookies and ends the session
    #[oai(
        path = "/authentication/logout",
        method = "post",
        operation_id = "legacyLogout",
        deprecated
    )]
    async fn logout(&self, req: &Request, jar: &CookieJar) -> Reply {
        if let Ok(principal) = self.session(req, jar).await {
            let sessions = self.accounts.sessions();
            with_success(
                sessions
                    .revoke(principal.session_id(), principal.user_id())
                    .await,
            )?;
        }
        self.cookies.clear(jar);
        Ok(Legacy::Ok(Json(
            json!({"success": true, "message": "Successfully logged out!"}),
        )))
    }

    /// Sign out (NextBuy, GET form)
    #[oai(
        path = "/authentication/logout",
        method = "get",
        operation_id = "legacyLogoutGet",
        deprecated
    )]
    async fn logout_get(&self, req: &Request, jar: &CookieJar) -> Reply {
        self.logout(req, jar).await
    }

    /// Your profile (NextBuy)
    #[oai(
        path = "/user/profile",
        method = "get",
        operation_id = "legacyProfile",
        deprecated
    )]
    async fn profile(&self, req: &Request, jar: &CookieJar) -> Reply {
        let principal = plain(self.session(req, jar).await)?;
        let account = plain(self.accounts.account(&principal).await)?;
        Ok(Legacy::Ok(Json(user_json(&account))))
    }

    /// Update your profile (NextBuy)
    #[oai(
        path = "/user/profile",
        method = "put",
        operation_id = "legacyUpdateProfile",
        deprecated
    )]
    async fn update_profile(&self, req: &Request, jar: &CookieJar, body: Json<Value>) -> Reply {
        let principal = plain(self.session(req, jar).await)?;
        let b = &body.0;
        let update = plain((|| {
            Ok(ProfileUpdate {
                email: b["email"].as_str().map(Email::parse).transpose()?,
                name: b["name"].as_str().map(DisplayName::parse).transpose()?,
                address: b["address"].as_str().map(Address::parse).transpose()?,
            })
        })())?;
        let account = plain(self.accounts.update_profile(&principal, update).await)?;
        Ok(Legacy::Ok(Json(
            json!({"message": "Profile updated successfully", "user": user_json(&account)}),
        )))
    }

    /// Delete your account (NextBuy)
    #[oai(
        path = "/user/profile",
        method = "delete",
        operation_id = "legacyDeleteProfile",
        deprecated
    )]
    async fn delete_profile(&self, req: &Request, jar: &CookieJar) -> Reply {
        let principal = plain(self.session(req, jar).await)?;
        plain(self.accounts.delete(&principal).await)?;
        self.cookies.clear(jar);
        Ok(Legacy::Ok(Json(
            json!({"message": "User deleted successfully"}),
        )))
    }

    /// The whole catalog (NextBuy): prices in pounds
    #[oai(
        path = "/products",
        method = "get",
        operation_id = "legacyProducts",
        deprecated
    )]
    async fn products(&self, req: &Request) -> Result<CachedJson<Value>, LegacyError> {
        let body = plain(
            self.catalog
                .all_body("legacy", |products| {
                    let mut all: Vec<Value> = products.iter().map(product_json).collect();
                    all.sort_by_key(|p| p["id"].as_i64());
                    serde_json::to_vec(&all).unwrap_or_default()
                })
                .await,
        )?;
        Ok(CachedJson::answer(req, body))
    }

    /// Add a product (NextBuy, admin)
    #[oai(
        path = "/products/create",
        method = "post",
        operation_id = "legacyCreateProduct",
        deprecated
    )]
    async fn create_product(&self, req: &Request, jar: &CookieJar, body: Json<Value>) -> Reply {
        let admin = self.admin_session(req, jar).await?;
        let draft = plain(draft_from(&body.0))?;
        let created = plain(self.catalog.create(&admin, vec![draft]).await)?;
        Ok(Legacy::Created(Json(
            created.first().map(product_json).unwrap_or(Value::Null),
        )))
    }

    /// Change a product's description (NextBuy, admin)
    #[oai(
        path = "/products/update",
        method = "put",
        operation_id = "legacyUpdateProduct",
        deprecated
    )]
    async fn update_product(&self, req: &Request, jar: &CookieJar, body: Json<Value>) -> Reply {
        let admin = self.admin_session(req, jar).await?;
        let id = plain(int_field(&body.0, "id").and_then(product_id))?;
        let description = plain(str_field(&body.0, "newDescription"))?.to_string();
        let patch = ProductPatch {
            description: Some(description),
            ..Default::default()
        };
        let updated = plain(self.catalog.update(&admin, id, patch).await)?;
        Ok(Legacy::Ok(Json(product_json(&updated))))
    }

    /// Add many products (NextBuy, admin): all or nothing
    #[oai(
        path = "/products/bulk",
        method = "post",
        operation_id = "legacyBulkProducts",
        deprecated
    )]
    async fn bulk_products(&self, req: &Request, jar: &CookieJar, body: Json<Value>) -> Reply {
        let admin = self.admin_session(req, jar).await?;
        let items = plain(
            body.0["products"]
                .as_array()
                .ok_or_else(|| Error::validation("products", "must be an array")),
        )?;
        let drafts = plain(
            items
                .iter()
                .enumerate()
                .map(|(i, p)| draft_from(p).map_err(|e| e.within(&format!("products[{i}]"))))
                .collect::<Result<Vec<_>, _>>(),
        )?;
        let created = plain(self.catalog.create(&admin, drafts).await)?;
        Ok(Legacy::Created(Json(Value::Array(
            created.iter().map(product_json).collect(),
        ))))
    }

    /// Add to cart (NextBuy)
    #[oai(
        path = "/cart_items/add-item",
        method = "post",
        operation_id = "legacyAddItem",
        deprecated
    )]
    async fn add_item(&self, req: &Request, jar: &CookieJar, body: Json<Value>) -> Reply {
        let principal = self.cart_session(req, jar).await?;
        let product_id = plain(int_field(&body.0, "product_id").and_then(product_id))?;
        let quantity = plain(
            int_field(&body.0, "quantity").and_then(|q| Ok(Quantity::parse("quantity", q)?)),
        )?;
        plain(
            self.carts
                .add(
                    &CartOwner::from(&principal),
                    ItemRef::Product(product_id, Pick::FirstInStock),
                    quantity,
                )
                .await,
        )?;
        Ok(Legacy::Created(Json(
            json!({"message": "Item added to cart"}),
        )))
    }

    /// Cart items (NextBuy): prices in pounds
    #[oai(
        path = "/cart_items/items",
        method = "get",
        operation_id = "legacyItems",
        deprecated
    )]
    async fn items(&self, req: &Request, jar: &CookieJar) -> Reply {
        let principal = self.cart_session(req, jar).await?;
        let cart = plain(self.carts.cart(&CartOwner::from(&principal)).await)?;
        Ok(Legacy::Ok(Json(cart_items_json(
            &cart,
            principal.user_id().as_str(),
        ))))
    }

    /// Remove a cart item (NextBuy): `{id}` in the body
    #[oai(
        path = "/cart_items/remove-item",
        method = "delete",
        operation_id = "legacyRemoveItem",
        deprecated
    )]
    async fn remove_item(&self, req: &Request, jar: &CookieJar, body: Json<Value>) -> Reply {
        let principal = self.cart_session(req, jar).await?;
        let id = plain(
            int_field(&body.0, "id")
                .and_then(|id| VariantId::new(id).ok_or(Error::NotFound("cart line"))),
        )?;
        plain(self.carts.remove(&CartOwner::from(&principal), id).await)?;
        Ok(Legacy::Ok(Json(
            json!({"message": "Item removed from cart"}),
        )))
    }

    /// Your cart (NextBuy)
    #[oai(
        path = "/cart",
        method = "get",
        operation_id = "legacyCart",
        deprecated
    )]
    async fn cart(&self, req: &Request, jar: &CookieJar) -> Reply {
        Ok(Legacy::Ok(Json(self.cart_record(req, jar).await?)))
    }

    /// Create your cart (NextBuy): carts exist on demand, so this returns it
    #[oai(
        path = "/cart",
        method = "post",
        operation_id = "legacyCreateCart",
        deprecated
    )]
    async fn create_cart(&self, req: &Request, jar: &CookieJar) -> Reply {
        let cart = self.cart_record(req, jar).await?;
        Ok(Legacy::Created(Json(
            json!({"message": "Cart created successfully", "cart": cart}),
        )))
    }

    /// Update your cart (NextBuy): returns it
    #[oai(
        path = "/cart",
        method = "put",
        operation_id = "legacyUpdateCart",
        deprecated
    )]
    async fn update_cart(&self, req: &Request, jar: &CookieJar) -> Reply {
        let cart = self.cart_record(req, jar).await?;
        Ok(Legacy::Ok(Json(
            json!({"message": "Cart updated successfully", "cart": cart}),
        )))
    }

    /// Empty your cart (NextBuy)
    #[oai(
        path = "/cart",
        method = "delete",
        operation_id = "legacyDeleteCart",
        deprecated
    )]
    async fn delete_cart(&self, req: &Request, jar: &CookieJar) -> Reply {
        let principal = self.cart_session(req, jar).await?;
        plain(self.carts.clear(&CartOwner::from(&principal)).await)?;
        Ok(Legacy::Ok(Json(
            json!({"message": "Cart deleted successfully"}),
        )))
    }

    /// Place an order from your cart (NextBuy): a real, atomic checkout
    #[oai(
        path = "/cart/place-order",
        method = "post",
        operation_id = "legacyPlaceOrder",
        deprecated
    )]
    async fn place_order(&self, req: &Request, jar: &CookieJar, body: Json<Value>) -> Reply {
        let principal = self.cart_session(req, jar).await?;
        let address =
            plain(str_field(&body.0, "shipping_address").and_then(ShippingAddress::parse))?;
        let placed = plain(self.orders.checkout(&principal, address, None).await)?;
        Ok(Legacy::Created(Json(
            json!({"message": "Order placed successfully", "newOrder": order_json(&placed.order)}),
        )))
    }

    /// Add an item to your pending order (NextBuy)
    #[oai(
        path = "/cart/add-item-to-order/:order_id",
        method = "post",
        operation_id = "legacyAddItemToOrder",
        deprecated
    )]
    async fn add_item_to_order(
        &self,
        req: &Request,
        jar: &CookieJar,
        #[oai(name = "order_id")] id: Path<String>,
        body: Json<Value>,
    ) -> Reply {
        let principal = self.cart_session(req, jar).await?;
        let product_id = plain(int_field(&body.0, "product_id").and_then(product_id))?;
        let quantity = plain(
            int_field(&body.0, "quantity").and_then(|q| Ok(Quantity::parse("quantity", q)?)),
        )?;
        let order_id = plain(order_id(&id.0))?;
        plain(
            self.orders
                .add_item(&principal, &order_id, product_id, quantity)
                .await,
        )?;
        Ok(Legacy::Created(Json(
            json!({"message": "Item added to order"}),
        )))
    }
}
