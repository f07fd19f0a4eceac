//! The authorization matrix: every operation of `/openapi.json` × {anonymous, the owner, another
//! customer, an admin}, each with the status it must get. The table is checked against the served
//! route table both ways: an operation without an entry (a new route) fails the suite, and so does an
//! entry whose route is gone. Every answer is also checked for the security headers.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::report::report;
use crate::common::{Api, PASSWORD, Res, TestApp, multipart, read, settings, unique};

/// Who asks. `Owner` owns the orders and cart lines the requests name; `Other` is a customer who
/// does not.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Anonymous,
    Owner,
    Other,
    Admin,
}

const ROLES: [Role; 4] = [Role::Anonymous, Role::Owner, Role::Other, Role::Admin];

/// One signed-in (or anonymous) caller.
struct Who {
    api: Api,
    email: String,
    refresh: String,
}

/// A fresh world per operation: three accounts and, for each role's turn, a product of its own and
/// a pending order of the owner's holding that product (the owner's cart holds all four products).
struct World {
    anonymous: Who,
    owner: Who,
    other: Who,
    admin: Who,
    products: [i64; 4],
    /// Each product's one variant (the id of its line in the owner's cart).
    variants: [i64; 4],
    /// A product sold in sizes, and its two variants.
    sized: i64,
    sizes: [i64; 2],
    orders: [String; 4],
    /// A category of this world's own.
    category: String,
    /// A webhook endpoint of this world's own (for an event no request here causes).
    webhook: String,
    /// An image on the admin's turn's product.
    image: String,
    /// The id of the owner's session (the one `owner.api` uses).
    owner_session: String,
}

impl World {
    fn who(&self, role: Role) -> &Who {
        match role {
            Role::Anonymous => &self.anonymous,
            Role::Owner => &self.owner,
            Role::Other => &self.other,
            Role::Admin => &self.admin,
        }
    }

    fn turn(role: Role) -> usize {
        ROLES.iter().position(|r| *r == role).unwrap()
    }

    fn product(&self, role: Role) -> i64 {
        self.products[Self::turn(role)]
    }

    fn variant(&self, role: Role) -> i64 {
        self.variants[Self::turn(role)]
    }

    fn order(&self, role: Role) -> &str {
        &self.orders[Self::turn(role)]
    }
}

async fn signed_in(app: &TestApp, email: &str) -> Who {
    let res = app
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    Who {
        api: app
            .client()
            .with_token(res.json["tokens"]["access_token"].as_str().unwrap()),
        email: email.to_string(),
        refresh: res.json["tokens"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

async fn world(app: &TestApp) -> World {
    let owner = app.customer().await;
    let other = app.customer().await;
    let admin_api = app.admin().await;
    let admin_email = admin_api.get("/api/v1/users/me").await.json["email"]
        .as_str()
        .unwrap()
        .to_string();
    let category = format!("matrix-{}", uuid::Uuid::new_v4().simple());
    let made = admin_api
        .post(
            "/api/v1/categories",
            json!({"slug": category, "name": "Matrix"}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let hook = admin_api
        .post(
            "/api/v1/admin/webhooks",
            json!({"url": "https://hooks.example.com/matrix", "events": ["product.stock_low"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let webhook = hook.json["id"].as_str().unwrap().to_string();
    let mut products = [0; 4];
    for p in &mut products {
        *p = app.product(&admin_api, "Matrix product", 1000, 100).await;
    }
    let mut variants = [0; 4];
    for (p, v) in products.iter().zip(&mut variants) {
        let read = admin_api.get(&format!("/api/v1/products/{p}")).await;
        *v = read.json["variants"][0]["id"].as_i64().unwrap();
    }
    let sized = admin_api
        .post(
            "/api/v1/products",
            json!({"name": "Sized", "price": {"amount": 1000, "currency": "GBP"},
                   "options": [{"name": "Size", "values": ["S", "M", "L"]}],
                   "variants": [{"option_values": {"Size": "S"}, "stock": 5},
                                {"option_values": {"Size": "M"}, "stock": 5}]}),
        )
        .await;
    assert_eq!(sized.status, StatusCode::CREATED, "{}", sized.text);
    let sizes = [0, 1].map(|i| sized.json["variants"][i]["id"].as_i64().unwrap());
    let sized = sized.json["id"].as_i64().unwrap();
    let mut orders: [String; 4] = Default::default();
    for (i, order) in orders.iter_mut().enumerate() {
        let api = &owner.api;
        let res = api
            .post(
                "/api/v1/cart/items",
                json!({"product_id": products[i], "quantity": 1}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        let res = api
            .post(
                "/api/v1/orders",
                json!({"shipping_address": "1 High Street"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        *order = res.json["id"].as_str().unwrap().to_string();
    }
    for p in products {
        let res = owner
            .api
            .post(
                "/api/v1/cart/items",
                json!({"product_id": p, "quantity": 1}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    let sessions = owner.api.get("/api/v1/auth/sessions").await;
    let owner_session = sessions.json["items"][0]["id"]
        .as_str()
        .expect("the owner has a session")
        .to_string();
    let added = admin_api
        .upload(
            &format!("/api/v1/products/{}/images", products[3]),
            "view.png",
            b"\x89PNG\r\n\x1a\n-image-",
            None,
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let image = added.json["images"][0]["id"].as_str().unwrap().to_string();
    World {
        category,
        webhook,
        image,
        owner_session,
        anonymous: Who {
            api: app.client(),
            email: format!("{}@example.com", unique("nobody")),
            refresh: "not-a-refresh-token".into(),
        },
        owner: Who {
            api: owner.api.clone(),
            email: owner.email.clone(),
            refresh: owner.refresh_token.clone(),
        },
        other: Who {
            api: other.api.clone(),
            email: other.email.clone(),
            refresh: other.refresh_token.clone(),
        },
        admin: Who {
            refresh: signed_in(app, &admin_email).await.refresh,
            api: admin_api,
            email: admin_email,
        },
        products,
        variants,
        sized,
        sizes,
        orders,
    }
}

/// The request a role makes: the concrete path and the body.
/// What a request sends: nothing, a JSON body, or an image upload form.
enum Send {
    Nothing,
    Json(Value),
    Upload,
}

type Call = fn(&World, Role) -> (String, Send);

struct Entry {
    method: &'static str,
    /// As `/openapi.json` spells it.
    route: &'static str,
    call: Call,
    /// Anonymous, owner, other customer, admin.
    expect: [u16; 4],
}

fn product_input() -> Value {
    json!({"name": "New", "price": {"amount": 500, "currency": "GBP"}, "stock": 3})
}

fn legacy_product() -> Value {
    json!({"name": "New", "price": 5.0, "stock_quantity": 3})
}

fn none(path: &str) -> (String, Send) {
    (path.to_string(), Send::Nothing)
}

fn with(path: String, body: Value) -> (String, Send) {
    (path, Send::Json(body))
}

fn upload(path: String) -> (String, Send) {
    (path, Send::Upload)
}

#[rustfmt::skip]
fn table() -> Vec<Entry> {
    let e = |method, route, call: Call, expect| Entry { method, route, call, expect };
    vec![
        // Operations: public.
        e("get", "/health", |_, _| none("/health"), [200, 200, 200, 200]),
        e("get", "/ready", |_, _| none("/ready"), [200, 200, 200, 200]),
        // Accounts and sessions.
        e("post", "/api/v1/auth/register", |_, _| with("/api/v1/auth/register".into(),
            json!({"email": format!("{}@example.com", unique("new")), "password": PASSWORD, "name": "New"})),
            [201, 201, 201, 201]),
        e("post", "/api/v1/auth/login", |w, r| with("/api/v1/auth/login".into(),
            json!({"email": w.who(r).email, "password": PASSWORD})),
            [401, 200, 200, 200]),
        e("post", "/api/v1/auth/refresh", |w, r| with("/api/v1/auth/refresh".into(),
            json!({"refresh_token": w.who(r).refresh})),
            [401, 200, 200, 200]),
        e("post", "/api/v1/auth/logout", |_, _| with("/api/v1/auth/logout".into(), json!({})), [401, 204, 204, 204]),
        e("post", "/api/v1/auth/logout-all", |_, _| with("/api/v1/auth/logout-all".into(), json!({})), [401, 204, 204, 204]),
        e("get", "/api/v1/auth/sessions", |_, _| none("/api/v1/auth/sessions"), [401, 200, 200, 200]),
        // Password resets are for anyone, and answer alike whoever asks.
        e("post", "/api/v1/auth/password-reset", |w, r| with("/api/v1/auth/password-reset".into(),
            json!({"email": w.who(r).email})), [202, 202, 202, 202]),
        e("post", "/api/v1/auth/password-reset/confirm", |_, _| with("/api/v1/auth/password-reset/confirm".into(),
            json!({"token": "forged", "password": "a long new password"})), [422, 422, 422, 422]),
        // Only its owner ends a session; to anyone else it does not exist.
        e("delete", "/api/v1/auth/sessions/{id}", |w, _| none(&format!("/api/v1/auth/sessions/{}", w.owner_session)),
            [401, 204, 404, 404]),
        e("get", "/api/v1/users/me", |_, _| none("/api/v1/users/me"), [401, 200, 200, 200]),
        e("patch", "/api/v1/users/me", |_, _| with("/api/v1/users/me".into(), json!({"name": "Renamed"})), [401, 200, 200, 200]),
        e("delete", "/api/v1/users/me", |_, _| none("/api/v1/users/me"), [401, 204, 204, 204]),
        e("put", "/api/v1/users/me/password", |_, _| with("/api/v1/users/me/password".into(),
            json!({"current_password": PASSWORD, "new_password": "another long password"})),
            [401, 204, 204, 204]),
        // Catalog: reads are public, writes are the admin's.
        e("get", "/api/v1/products", |_, _| none("/api/v1/products"), [200, 200, 200, 200]),
        e("get", "/api/v1/products/{id}", |w, r| none(&format!("/api/v1/products/{}", w.product(r))), [200, 200, 200, 200]),
        e("post", "/api/v1/products", |_, _| with("/api/v1/products".into(), product_input()), [401, 403, 403, 201]),
        e("post", "/api/v1/products/bulk", |_, _| with("/api/v1/products/bulk".into(),
            json!({"products": [product_input(), product_input()]})), [401, 403, 403, 201]),
        e("patch", "/api/v1/products/{id}", |w, r| with(format!("/api/v1/products/{}", w.product(r)),
            json!({"stock": 7})), [401, 403, 403, 200]),
        e("delete", "/api/v1/products/{id}", |w, r| none(&format!("/api/v1/products/{}", w.product(r))), [401, 403, 403, 204]),
        e("post", "/api/v1/products/{id}/images", |w, r| upload(format!("/api/v1/products/{}/images", w.product(r))),
            [401, 403, 403, 201]),
        // The world's image is on the admin's turn's product.
        e("delete", "/api/v1/products/{id}/images/{image_id}", |w, _| none(&format!(
            "/api/v1/products/{}/images/{}", w.product(Role::Admin), w.image)), [401, 403, 403, 204]),
        // Variants: the admin's.
        e("post", "/api/v1/products/{id}/variants", |w, _| with(format!("/api/v1/products/{}/variants", w.sized),
            json!({"option_values": {"Size": "L"}, "stock": 1})), [401, 403, 403, 201]),
        e("patch", "/api/v1/products/{id}/variants/{variant_id}", |w, _| with(format!(
            "/api/v1/products/{}/variants/{}", w.sized, w.sizes[0]), json!({"stock": 9})), [401, 403, 403, 200]),
        e("delete", "/api/v1/products/{id}/variants/{variant_id}", |w, _| none(&format!(
            "/api/v1/products/{}/variants/{}", w.sized, w.sizes[1])), [401, 403, 403, 204]),
        // Categories: the tree is public, its writes the admin's.
        e("get", "/api/v1/categories", |_, _| none("/api/v1/categories"), [200, 200, 200, 200]),
        e("post", "/api/v1/categories", |w, _| with("/api/v1/categories".into(),
            json!({"slug": format!("new-{}", w.category), "name": "New"})), [401, 403, 403, 201]),
        e("patch", "/api/v1/categories/{slug}", |w, _| with(format!("/api/v1/categories/{}", w.category),
            json!({"name": "Renamed"})), [401, 403, 403, 200]),
        e("delete", "/api/v1/categories/{slug}", |w, _| none(&format!("/api/v1/categories/{}", w.category)),
            [401, 403, 403, 204]),
        // Carts: one's own only; lines name the owner's products.
        // Without credentials, starting a cart makes a guest cart; with them, it is the caller's own.
        e("post", "/api/v1/cart", |_, _| none("/api/v1/cart"), [201, 200, 200, 200]),
        e("get", "/api/v1/cart", |_, _| none("/api/v1/cart"), [401, 200, 200, 200]),
        e("delete", "/api/v1/cart", |_, _| none("/api/v1/cart"), [401, 204, 204, 204]),
        e("post", "/api/v1/cart/validate", |_, _| none("/api/v1/cart/validate"), [401, 200, 200, 200]),
        e("post", "/api/v1/cart/items", |w, r| with("/api/v1/cart/items".into(),
            json!({"product_id": w.product(r), "quantity": 1})), [401, 201, 201, 201]),
        e("patch", "/api/v1/cart/items/{id}", |w, r| with(format!("/api/v1/cart/items/{}", w.variant(r)),
            json!({"quantity": 2})), [401, 200, 404, 404]),
        e("delete", "/api/v1/cart/items/{id}", |w, r| none(&format!("/api/v1/cart/items/{}", w.variant(r))), [401, 200, 404, 404]),
        // Orders: the owner's, and the admin's to read and move; nobody else's.
        e("post", "/api/v1/orders", |_, _| with("/api/v1/orders".into(), json!({"shipping_address": "2 Low Road"})),
            [401, 201, 422, 422]),
        e("get", "/api/v1/orders", |_, _| none("/api/v1/orders"), [401, 200, 200, 200]),
        // Live updates: an order's stream to its owner (and admins), stock streams to anyone.
        e("get", "/api/v1/orders/{id}/events", |w, r| none(&format!("/api/v1/orders/{}/events", w.order(r))),
            [401, 200, 404, 200]),
        e("get", "/api/v1/products/{id}/stock/events", |w, r| none(&format!("/api/v1/products/{}/stock/events", w.product(r))),
            [200, 200, 200, 200]),
        e("get", "/api/v1/orders/{id}", |w, r| none(&format!("/api/v1/orders/{}", w.order(r))), [401, 200, 404, 200]),
        // Cancelling is the owner's; an admin cancels through the status route below.
        e("post", "/api/v1/orders/{id}/cancel", |w, r| none(&format!("/api/v1/orders/{}/cancel", w.order(r))), [401, 200, 404, 404]),
        e("get", "/api/v1/admin/orders", |_, _| none("/api/v1/admin/orders"), [401, 403, 403, 200]),
        e("post", "/api/v1/admin/orders/{id}/status", |w, r| with(format!("/api/v1/admin/orders/{}/status", w.order(r)),
            json!({"status": "paid"})), [401, 403, 403, 200]),
        // Stripe's webhook: its credential is Stripe's signature, never a role, so every role is
        // answered alike (404 here, where payments are manual; tests/it/payments.rs checks signatures).
        e("post", "/api/v1/payments/stripe/webhook", |_, _| with("/api/v1/payments/stripe/webhook".into(),
            json!({"id": "evt_1", "type": "payment_intent.succeeded"})), [404, 404, 404, 404]),
        // Verifying an email: the token is the credential (a forged one is 422 for everyone);
        // asking for a fresh link is one's own.
        e("post", "/api/v1/auth/verify-email", |_, _| with("/api/v1/auth/verify-email".into(),
            json!({"token": "not-a-token"})), [422, 422, 422, 422]),
        e("post", "/api/v1/users/me/verify-email", |_, _| with("/api/v1/users/me/verify-email".into(), json!({})),
            [401, 202, 202, 202]),
        e("get", "/api/v1/admin/messages/dead", |_, _| none("/api/v1/admin/messages/dead"), [401, 403, 403, 200]),
        e("post", "/api/v1/admin/messages/{id}/retry", |_, _| with("/api/v1/admin/messages/nosuchmessage/retry".into(),
            json!({})), [401, 403, 403, 404]),
        // Webhook endpoints: the admin's alone.
        e("get", "/api/v1/admin/webhooks", |_, _| none("/api/v1/admin/webhooks"), [401, 403, 403, 200]),
        e("post", "/api/v1/admin/webhooks", |_, _| with("/api/v1/admin/webhooks".into(),
            json!({"url": "https://hooks.example.com/new", "events": ["product.stock_low"]})), [401, 403, 403, 201]),
        e("get", "/api/v1/admin/webhooks/{id}", |w, _| none(&format!("/api/v1/admin/webhooks/{}", w.webhook)),
            [401, 403, 403, 200]),
        e("patch", "/api/v1/admin/webhooks/{id}", |w, _| with(format!("/api/v1/admin/webhooks/{}", w.webhook),
            json!({"enabled": false})), [401, 403, 403, 200]),
        e("delete", "/api/v1/admin/webhooks/{id}", |w, _| none(&format!("/api/v1/admin/webhooks/{}", w.webhook)),
            [401, 403, 403, 204]),
        e("get", "/api/v1/admin/webhooks/{id}/deliveries", |w, _| none(&format!(
            "/api/v1/admin/webhooks/{}/deliveries", w.webhook)), [401, 403, 403, 200]),
        // The world's endpoint has had no delivery.
        e("post", "/api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/replay", |w, _| with(format!(
            "/api/v1/admin/webhooks/{}/deliveries/nosuchdelivery/replay", w.webhook), json!({})), [401, 403, 403, 404]),
        // Refunds are the admin's; the world's orders are pending and paid by hand, so none is refundable.
        e("post", "/api/v1/admin/orders/{id}/refund", |w, r| none(&format!("/api/v1/admin/orders/{}/refund", w.order(r))),
            [401, 403, 403, 409]),
        // Legacy NextBuy routes.
        e("post", "/authentication/register", |_, _| with("/authentication/register".into(),
            json!({"email": format!("{}@example.com", unique("legacy")), "password": PASSWORD, "name": "L", "address": "x"})),
            [200, 200, 200, 200]),
        e("post", "/authentication/login", |w, r| with("/authentication/login".into(),
            json!({"email": w.who(r).email, "password": PASSWORD})), [401, 200, 200, 200]),
        e("post", "/authentication/logout", |_, _| with("/authentication/logout".into(), json!({})), [200, 200, 200, 200]),
        e("get", "/authentication/logout", |_, _| none("/authentication/logout"), [200, 200, 200, 200]),
        e("get", "/user/profile", |_, _| none("/user/profile"), [401, 200, 200, 200]),
        e("put", "/user/profile", |w, r| with("/user/profile".into(),
            json!({"email": w.who(r).email, "name": "Renamed", "address": "3 Mid Lane"})), [401, 200, 200, 200]),
        e("delete", "/user/profile", |_, _| none("/user/profile"), [401, 200, 200, 200]),
        e("get", "/products", |_, _| none("/products"), [200, 200, 200, 200]),
        e("post", "/products/create", |_, _| with("/products/create".into(), legacy_product()), [401, 403, 403, 201]),
        e("put", "/products/update", |w, r| with("/products/update".into(),
            json!({"id": w.product(r), "newDescription": "Changed"})), [401, 403, 403, 200]),
        e("post", "/products/bulk", |_, _| with("/products/bulk".into(),
            json!({"products": [legacy_product()]})), [401, 403, 403, 201]),
        e("post", "/cart_items/add-item", |w, r| with("/cart_items/add-item".into(),
            json!({"product_id": w.product(r), "quantity": 1})), [401, 201, 201, 201]),
        e("get", "/cart_items/items", |_, _| none("/cart_items/items"), [401, 200, 200, 200]),
        e("delete", "/cart_items/remove-item", |w, r| with("/cart_items/remove-item".into(),
            json!({"id": w.variant(r)})), [401, 200, 404, 404]),
        e("get", "/cart", |_, _| none("/cart"), [401, 200, 200, 200]),
        e("post", "/cart", |_, _| with("/cart".into(), json!({})), [401, 201, 201, 201]),
        e("put", "/cart", |_, _| with("/cart".into(), json!({})), [401, 200, 200, 200]),
        e("delete", "/cart", |_, _| none("/cart"), [401, 200, 200, 200]),
        e("post", "/cart/place-order", |_, _| with("/cart/place-order".into(), json!({"shipping_address": "2 Low Road"})),
            [401, 201, 400, 400]),
        e("post", "/cart/add-item-to-order/{order_id}", |w, r| with(format!("/cart/add-item-to-order/{}", w.order(r)),
            json!({"product_id": w.product(r), "quantity": 1})), [401, 201, 404, 404]),
    ]
}

/// Every (method, path) the server documents.
fn served_operations(spec: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert((method.clone(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let app = TestApp::spawn_with(settings(&[("LOGIN_LIMIT_PER_IP", "100000")])).await;
    let spec = app.client().get("/openapi.json").await.json;
    let served = served_operations(&spec);
    let table = table();
    let listed: BTreeSet<(String, String)> = table
        .iter()
        .map(|e| (e.method.to_string(), e.route.to_string()))
        .collect();
    let unlisted: Vec<_> = served.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "operations without an authorization entry: {unlisted:?}"
    );
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "entries for routes no longer served: {stale:?}"
    );
    assert_eq!(listed.len(), table.len(), "an operation is listed twice");

    let mut mismatches = Vec::new();
    let mut requests = 0;
    for entry in &table {
        let world = world(&app).await;
        for (turn, role) in ROLES.iter().enumerate() {
            let (path, body) = (entry.call)(&world, *role);
            let method = Method::from_bytes(entry.method.to_uppercase().as_bytes()).unwrap();
            let mut req = world.who(*role).api.http.request(method, app.url(&path));
            if let Some(token) = &world.who(*role).api.token {
                req = req.bearer_auth(token);
            }
            match body {
                Send::Nothing => {}
                Send::Json(body) => {
                    req = req
                        .header("content-type", "application/json")
                        .body(body.to_string());
                }
                Send::Upload => {
                    let (content_type, form) =
                        multipart("view.png", b"\x89PNG\r\n\x1a\n-image-", Some("A view"));
                    req = req.header("content-type", content_type).body(form);
                }
            }
            let response = req.send().await.unwrap();
            // An event stream answers 200 and stays open: take the status, then hang up.
            let res = if response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
            {
                Res {
                    status: response.status(),
                    headers: response.headers().clone(),
                    text: String::new(),
                    json: Value::Null,
                }
            } else {
                read(response).await
            };
            requests += 1;
            assert!(
                !res.status.is_server_error(),
                "{} {path} as {role:?}: {}",
                entry.method,
                res.text
            );
            // Every answer, whatever its status, carries the security headers.
            for (name, value) in [
                ("x-content-type-options", "nosniff"),
                ("referrer-policy", "no-referrer"),
                ("x-frame-options", "DENY"),
            ] {
                assert_eq!(
                    res.header(name),
                    Some(value),
                    "{name} on {} {path}",
                    entry.method
                );
            }
            if res.status.as_u16() != entry.expect[turn] {
                mismatches.push(format!(
                    "{} {} as {role:?}: expected {}, got {} {}",
                    entry.method, entry.route, entry.expect[turn], res.status, res.text
                ));
            }
        }
    }
    // The documentation and the explorer are public.
    for path in ["/openapi.json", "/docs"] {
        assert_eq!(
            app.client().get(path).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    report(
        "authz",
        format!(
            "{} operations (the whole of /openapi.json) × 4 roles = {requests} requests, each with its \
             expected status; 0 mismatches, 0 server errors; nosniff, Referrer-Policy and X-Frame-Options: DENY \
             on every one of them",
            table.len()
        ),
    );
}
