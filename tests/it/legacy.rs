//! The NextBuy front-end's contract: its own sequence of calls, with a cookie jar, unchanged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, Res, TestApp, assert_no_hash, read, settings, unique};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

async fn seeded() -> TestApp {
    TestApp::spawn_with(settings(&[("SEED_CATALOG", "true")])).await
}

#[tokio::test]
async fn the_front_ends_whole_journey_works_with_cookies() {
    journey(&seeded().await, None).await;
}

#[tokio::test]
async fn the_same_journey_works_cross_site_from_a_listed_origin() {
    let origin = "https://shop.example.com";
    let app = TestApp::spawn_with(settings(&[
        ("SEED_CATALOG", "true"),
        ("CORS_ORIGINS", origin),
        ("COOKIE_SECURE", "true"),
        ("COOKIE_SAMESITE", "none"),
    ]))
    .await;
    journey(&app, Some(origin)).await;
}

/// The NextBuy front-end's sequence; with `origin`, every answer must grant that origin credentials.
async fn journey(app: &TestApp, origin: Option<&str>) {
    let browser = app.browser_at(origin);
    let granted = |res: &Res| {
        if let Some(origin) = origin {
            assert_eq!(
                res.header("access-control-allow-origin"),
                Some(origin),
                "{}",
                res.text
            );
            assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
        }
    };
    let email = format!("{}@example.com", unique("shopper"));

    let res = browser
        .post("/authentication/register", json!({"email": email, "password": PASSWORD, "name": "Shopper", "address": "1 High St"}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(
        res.json,
        json!({"success": true, "message": "User registered successfully!"})
    );
    let taken = browser
        .post("/authentication/register", json!({"email": email.to_uppercase(), "password": PASSWORD, "name": "Again", "address": "x"}))
        .await;
    assert_eq!(
        (taken.status, taken.json.clone()),
        (
            StatusCode::BAD_REQUEST,
            json!({"success": false, "message": "Email already in use"})
        )
    );

    let wrong = browser
        .post(
            "/authentication/login",
            json!({"email": email, "password": "wrong password"}),
        )
        .await;
    let unknown = browser
        .post(
            "/authentication/login",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json, unknown.json,
        "login failures must not tell unknown emails apart"
    );
    assert_eq!(wrong.json["success"], false);

    let login = browser
        .post(
            "/authentication/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(
        login.json,
        json!({"success": true, "message": "Successfully logged in!"})
    );
    assert!(
        login
            .header("set-cookie")
            .unwrap_or_default()
            .contains("HttpOnly")
    );

    let products = browser.get("/products").await;
    let list = products.json.as_array().expect("an array of products");
    assert_eq!(list.len(), 20);
    assert_eq!(
        keys(&list[0]),
        [
            "createdAt",
            "description",
            "id",
            "image_url",
            "name",
            "price",
            "stock_quantity",
            "updatedAt"
        ]
    );
    let white = list.iter().find(|p| p["id"] == 1).unwrap();
    // The original's PostgreSQL DECIMAL through Sequelize: a string with two decimals.
    assert_eq!(white["price"], json!("24.99"));
    assert!(
        white["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24),
        "{white}"
    );
    assert_eq!(white["image_url"], "/compressedImages/white-shirt-4.jpg");
    let stock_before = white["stock_quantity"].as_i64().unwrap();

    for (product_id, quantity) in [(1, 2), (7, 1)] {
        let res = browser
            .post(
                "/cart_items/add-item",
                json!({"product_id": product_id, "quantity": quantity}),
            )
            .await;
        assert_eq!(
            (res.status, res.json.clone()),
            (
                StatusCode::CREATED,
                json!({"message": "Item added to cart"})
            ),
            "{}",
            res.text
        );
    }
    let items = browser.get("/cart_items/items").await;
    let items = items
        .json
        .as_array()
        .expect("an array of cart items")
        .clone();
    assert_eq!(items.len(), 2);
    assert_eq!(
        keys(&items[0]),
        ["cartId", "id", "product", "productId", "quantity"]
    );
    assert_eq!(keys(&items[0]["product"]), ["image_url", "name", "price"]);
    let shirt = items.iter().find(|i| i["productId"] == 1).unwrap();
    assert_eq!(
        (
            shirt["quantity"].as_i64(),
            shirt["product"]["price"].as_str()
        ),
        (Some(2), Some("24.99"))
    );

    let hat_line = items.iter().find(|i| i["productId"] == 7).unwrap()["id"].clone();
    let removed = browser
        .send(
            Method::DELETE,
            "/cart_items/remove-item",
            Some(json!({"id": hat_line})),
        )
        .await;
    assert_eq!(
        removed.json,
        json!({"message": "Item removed from cart"}),
        "{}",
        removed.text
    );
    assert_eq!(
        browser
            .get("/cart_items/items")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let profile = browser.get("/user/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.json.get("message").is_none(), "{}", profile.text);
    assert_eq!(profile.json["email"], email.as_str());
    assert_eq!(profile.json["address"], "1 High St");
    assert_no_hash(&profile);
    let updated = browser
        .put(
            "/user/profile",
            json!({"email": email, "name": "Renamed Shopper", "address": "2 Low St"}),
        )
        .await;
    assert_eq!(
        updated.json["message"], "Profile updated successfully",
        "{}",
        updated.text
    );
    assert_eq!(updated.json["user"]["name"], "Renamed Shopper");
    assert_no_hash(&updated);
    assert_eq!(
        browser.get("/user/profile").await.json["address"],
        "2 Low St"
    );

    let cart = browser.get("/cart").await;
    assert_eq!(cart.status, StatusCode::OK);
    assert_eq!(cart.json["items"].as_array().unwrap().len(), 1);

    let order = browser
        .post("/cart/place-order", json!({"shipping_address": "2 Low St"}))
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    granted(&order);
    assert_eq!(order.json["message"], "Order placed successfully");
    assert_eq!(order.json["newOrder"]["total_amount"], json!("49.98"));
    let order_id = order.json["newOrder"]["id"].as_str().unwrap().to_string();
    let after = browser.get("/products").await;
    let white_after = after
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == 1)
        .unwrap()["stock_quantity"]
        .as_i64()
        .unwrap();
    assert_eq!(
        white_after,
        stock_before - 2,
        "place-order is a real checkout"
    );
    assert_eq!(browser.get("/cart_items/items").await.json, json!([]));

    let added = browser
        .post(
            &format!("/cart/add-item-to-order/{order_id}"),
            json!({"product_id": 3, "quantity": 1}),
        )
        .await;
    assert_eq!(
        (added.status, added.json.clone()),
        (
            StatusCode::CREATED,
            json!({"message": "Item added to order"})
        ),
        "{}",
        added.text
    );

    let out = browser.post("/authentication/logout", json!({})).await;
    assert_eq!(
        out.json,
        json!({"success": true, "message": "Successfully logged out!"})
    );
    let refused = browser.get("/cart_items/items").await;
    assert_eq!(
        (refused.status, refused.json.clone()),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "Unauthorized, Please Login to access cart"})
        )
    );
    let refused = browser
        .post(
            "/cart_items/add-item",
            json!({"product_id": 1, "quantity": 1}),
        )
        .await;
    assert_eq!(
        refused.json,
        json!({"message": "Unauthorized, Please Login to access cart"})
    );

    browser
        .post(
            "/authentication/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    let deleted = browser.delete("/user/profile").await;
    assert_eq!(
        deleted.json,
        json!({"message": "User deleted successfully"}),
        "{}",
        deleted.text
    );
    assert_eq!(
        browser.get("/user/profile").await.status,
        StatusCode::UNAUTHORIZED
    );
    let gone = browser
        .post(
            "/authentication/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn legacy_logout_by_get_and_cart_routes() {
    let app = seeded().await;
    let browser = app.browser();
    let customer = app.customer().await;
    browser
        .post(
            "/authentication/login",
            json!({"email": customer.email, "password": PASSWORD}),
        )
        .await;
    let created = browser.post("/cart", json!({})).await;
    assert_eq!(
        created.json["message"], "Cart created successfully",
        "{}",
        created.text
    );
    let updated = browser.put("/cart", json!({})).await;
    assert_eq!(updated.json["message"], "Cart updated successfully");
    browser
        .post(
            "/cart_items/add-item",
            json!({"product_id": 2, "quantity": 1}),
        )
        .await;
    let deleted = browser.delete("/cart").await;
    assert_eq!(
        deleted.json,
        json!({"message": "Cart deleted successfully"})
    );
    assert_eq!(browser.get("/cart_items/items").await.json, json!([]));
    let out = browser.get("/authentication/logout").await;
    assert_eq!(
        out.json,
        json!({"success": true, "message": "Successfully logged out!"})
    );
    assert_eq!(browser.get("/cart").await.status, StatusCode::UNAUTHORIZED);
    // The session really ended: its bearer token is refused too.
    let empty_cart = browser
        .post("/cart/place-order", json!({"shipping_address": "x"}))
        .await;
    assert_eq!(empty_cart.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn legacy_product_writes_need_an_admin() {
    let app = seeded().await;
    let customer = app.browser();
    let c = app.customer().await;
    customer
        .post(
            "/authentication/login",
            json!({"email": c.email, "password": PASSWORD}),
        )
        .await;
    let product = json!({"name": "Cap", "description": "A cap", "price": 15.99, "stock_quantity": 5, "image_url": "/compressedImages/cap.jpg"});
    assert_eq!(
        customer
            .post("/products/create", product.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.browser()
            .post("/products/create", product.clone())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        customer
            .put(
                "/products/update",
                json!({"id": 1, "newDescription": "hacked"})
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let admin = app.admin().await;
    let created = admin.post("/products/create", product.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json["price"], json!("15.99"));
    assert_eq!(created.json["id"], 21);
    let updated = admin
        .put(
            "/products/update",
            json!({"id": 21, "newDescription": "A better cap"}),
        )
        .await;
    assert_eq!(
        updated.json["description"], "A better cap",
        "{}",
        updated.text
    );
    let bulk = admin
        .post(
            "/products/bulk",
            json!({"products": [product.clone(), product]}),
        )
        .await;
    assert_eq!(bulk.json.as_array().map(Vec::len), Some(2), "{}", bulk.text);
    let v1 = app.client().get("/api/v1/products/21").await;
    assert_eq!(v1.json["price"]["amount"], 1599);
    assert_eq!(
        app.client()
            .get("/products")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        23
    );
    let bad = admin
        .post(
            "/products/create",
            json!({"name": "X", "price": -1, "stock_quantity": 1}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
}

#[tokio::test]
async fn cross_site_front_ends_get_credentials_only_from_listed_origins() {
    let app = TestApp::spawn_with(settings(&[
        ("SEED_CATALOG", "true"),
        ("CORS_ORIGINS", "https://shop.example.com"),
        ("COOKIE_SECURE", "true"),
        ("COOKIE_SAMESITE", "none"),
    ]))
    .await;
    let http = reqwest::Client::new();
    let preflight = read(
        http.request(Method::OPTIONS, app.url("/cart_items/add-item"))
            .header("origin", "https://shop.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(preflight.status.is_success(), "{:?}", preflight);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );

    let customer = app.customer().await;
    let login = read(
        http.post(app.url("/authentication/login"))
            .header("origin", "https://shop.example.com")
            .header("content-type", "application/json")
            .body(json!({"email": customer.email, "password": PASSWORD}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(
        login.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    let cookie = login.header("set-cookie").unwrap();
    assert!(
        cookie.contains("SameSite=None") && cookie.contains("Secure"),
        "{cookie}"
    );

    let evil = read(
        http.get(app.url("/products"))
            .header("origin", "https://evil.example.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(evil.header("access-control-allow-origin"), None);
    assert_eq!(evil.header("access-control-allow-credentials"), None);
    let evil_preflight = read(
        http.request(Method::OPTIONS, app.url("/cart_items/add-item"))
            .header("origin", "https://evil.example.com")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(evil_preflight.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn the_legacy_routes_are_documented_under_their_own_tag() {
    let app = TestApp::spawn().await;
    let spec = app.client().get("/openapi.json").await.json;
    for path in [
        "/authentication/login",
        "/cart_items/items",
        "/cart/place-order",
        "/products/create",
    ] {
        let item = spec["paths"][path]
            .as_object()
            .unwrap_or_else(|| panic!("{path} not documented"));
        for op in item.values() {
            assert_eq!(op["tags"], json!(["Legacy"]), "{path}");
        }
    }
    let tag = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Legacy")
        .unwrap()
        .clone();
    assert!(
        tag["description"]
            .as_str()
            .unwrap()
            .contains("Compatibility")
    );
}

/// The NextBuy front-end never calls a refresh route: a stale access cookie is renewed from the
/// refresh cookie (new cookies set), while a failing `Authorization` header is refused, not renewed.
#[tokio::test]
async fn a_stale_access_cookie_is_renewed_from_the_refresh_cookie_but_a_bad_header_is_not() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let http = reqwest::Client::new();
    let profile = |cookie: String, bearer: Option<&'static str>| {
        let mut request = http.get(app.url("/user/profile")).header("cookie", cookie);
        if let Some(bearer) = bearer {
            request = request.header("authorization", format!("Bearer {bearer}"));
        }
        async move { request.send().await.unwrap() }
    };
    let cookies = format!(
        "sf_access=stale-or-forged; sf_refresh={}",
        customer.refresh_token
    );
    let renewed = profile(cookies, None).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let set: Vec<String> = renewed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.starts_with("sf_access=") && !c.starts_with("sf_access=;")),
        "no new access cookie: {set:?}"
    );
    let body: Value = serde_json::from_str(&renewed.text().await.unwrap()).unwrap();
    assert_eq!(body["id"], customer.id.as_str());

    // The refresh token above was rotated; sign in again for a fresh one.
    let (_, refresh) = customer.another_session(&app).await;
    let refused = profile(
        format!("sf_access=stale-or-forged; sf_refresh={refresh}"),
        Some("not-a-token"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

/// The NextBuy catalog is one body of every product on sale, however many store pages it takes to
/// read: none missed or repeated at a page's edge (products made in one request share their
/// creation time), archived ones left out, in id order as the original sent them.
#[tokio::test]
async fn the_whole_catalog_spans_many_store_pages_without_gaps_or_repeats() {
    let app = seeded().await;
    let admin = app.admin().await;
    let products: Vec<Value> = (0..230)
        .map(|i| json!({"name": format!("Bulk Tee {i:03}"), "price": {"amount": 1000 + i, "currency": "GBP"}, "stock": 3}))
        .collect();
    let made = admin
        .post("/api/v1/products/bulk", json!({"products": products}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let archived = made.json["items"][17]["id"].as_i64().unwrap();
    let gone = admin.delete(&format!("/api/v1/products/{archived}")).await;
    assert!(gone.status.is_success(), "{}", gone.text);

    let mut expected = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/products?limit=100&sort=newest".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.client().get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        expected.extend(
            page.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let whole = app.client().get("/products").await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
    let ids: Vec<i64> = whole
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 20 + 230 - 1, "seeded, made, one archived");
    assert!(!ids.contains(&archived));
    expected.sort();
    assert_eq!(ids, expected, "the v1 listing page by page, in id order");
}
