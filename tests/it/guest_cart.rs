//! A guest's cart (cookie or `X-Cart-Token`): carried into an account on sign-up or sign-in, kept
//! apart from others, and swept when idle.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, PASSWORD, TestApp, add, checkout, read, settings, stock, unique};

fn quantities(cart: &Value) -> Vec<(i64, i64)> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].as_i64().unwrap(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_guest_cart_follows_the_shopper_into_a_new_account_and_checks_out() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let scarf = app.product(&admin, "Scarf", 2000, 10).await;

    // A browser with no account: the cart lives in the HttpOnly sf_cart cookie.
    let browser = app.browser();
    let started = browser.post("/api/v1/cart", json!({})).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    assert!(started.json["cart_token"].is_string());
    let cookie = started.header("set-cookie").unwrap_or_default().to_string();
    assert!(
        cookie.starts_with("sf_cart=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Starting again with the cookie gives the same cart back.
    let again = browser.post("/api/v1/cart", json!({})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json["cart_token"], started.json["cart_token"]);

    assert_eq!(add(&browser, hat, 2).await.status, StatusCode::CREATED);
    assert_eq!(add(&browser, scarf, 1).await.status, StatusCode::CREATED);
    let res = browser
        .patch(
            &format!("/api/v1/cart/items/{scarf}"),
            json!({"quantity": 3}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(quantities(&res.json), vec![(hat, 2), (scarf, 3)]);
    let check = browser.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(check.json["ok"], true, "{}", check.text);
    // Checkout needs an account.
    checkout(&browser)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(stock(&app, hat).await, 10);

    // Registering takes the guest cart into the account and drops the guest cookie.
    let email = format!("{}@example.com", unique("guest"));
    let registered = browser
        .post(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "name": "Guest"}),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    assert_eq!(registered.json["cart_merge"]["lines"], 2);
    assert_eq!(registered.json["cart_merge"]["capped"], json!([]));
    let cart = browser.get("/api/v1/cart").await;
    assert_eq!(quantities(&cart.json), vec![(hat, 2), (scarf, 3)]);

    let order = checkout(&browser).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert_eq!(stock(&app, hat).await, 8);
    assert_eq!(stock(&app, scarf).await, 7);
    // The guest cart is gone: its token now names an empty cart.
    let token = started.json["cart_token"].as_str().unwrap();
    let old = app.client().with_header("x-cart-token", token);
    assert_eq!(old.get("/api/v1/cart").await.json["items"], json!([]));
}

#[tokio::test]
async fn signing_in_merges_or_replaces_a_guest_cart_and_reports_every_capped_line() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 4).await;
    let scarf = app.product(&admin, "Scarf", 2000, 10).await;
    let gloves = app.product(&admin, "Gloves", 1500, 10).await;
    let customer = app.customer().await;
    add(&customer.api, hat, 2).await;
    add(&customer.api, gloves, 1).await;

    let guest_cart = |app: &TestApp| {
        let client = app.client();
        async move {
            let started = client.post("/api/v1/cart", json!({})).await;
            let token = started.json["cart_token"].as_str().unwrap().to_string();
            client.with_header("x-cart-token", &token)
        }
    };
    let guest = guest_cart(&app).await;
    add(&guest, hat, 3).await;
    add(&guest, scarf, 1).await;
    add(&guest, gloves, 2).await;
    // Gloves are withdrawn while they sit in the guest cart.
    admin.delete(&format!("/api/v1/products/{gloves}")).await;
    let login = |api: &Api, mode: Option<&str>| {
        let mut body = json!({"email": customer.email, "password": PASSWORD});
        if let Some(mode) = mode {
            body["cart_merge"] = json!(mode);
        }
        let api = api.clone();
        async move { api.post("/api/v1/auth/login", body).await }
    };

    // A bad mode is refused before anything happens: no session, the guest cart untouched.
    let refused = login(&guest, Some("combine")).await;
    assert_eq!(
        refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "cart_merge"
    );
    assert_eq!(quantities(&guest.get("/api/v1/cart").await.json).len(), 3);

    let merged = login(&guest, None).await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    assert_eq!(merged.json["cart_merge"]["mode"], "merge");
    assert_eq!(
        merged.json["cart_merge"]["capped"],
        // Each product made here has one variant, numbered as the product (made in step with it).
        json!([
            {"product_id": hat, "variant_id": hat, "requested": 5, "kept": 4, "reason": "stock"},
            {"product_id": gloves, "variant_id": gloves, "requested": 3, "kept": 1, "reason": "archived"}
        ]),
        "{}",
        merged.text
    );
    let mut cart = quantities(&customer.api.get("/api/v1/cart").await.json);
    cart.sort();
    let mut want = vec![(hat, 4), (gloves, 1), (scarf, 1)];
    want.sort();
    assert_eq!(cart, want);

    // replace: the account's cart becomes the guest's.
    let guest = guest_cart(&app).await;
    add(&guest, scarf, 2).await;
    let replaced = login(&guest, Some("replace")).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.json["cart_merge"]["mode"], "replace");
    assert_eq!(
        quantities(&customer.api.get("/api/v1/cart").await.json),
        vec![(scarf, 2)]
    );

    // Signing in without a guest cart leaves the account's cart alone and says nothing of merging.
    let plain = login(&app.client(), None).await;
    assert!(
        plain.json.get("cart_merge").is_none_or(Value::is_null),
        "{}",
        plain.text
    );
    assert_eq!(
        quantities(&customer.api.get("/api/v1/cart").await.json),
        vec![(scarf, 2)]
    );
}

#[tokio::test]
async fn guest_cart_tokens_are_checked_and_carts_stay_apart() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let first = app.client().post("/api/v1/cart", json!({})).await;
    let token = first.json["cart_token"].as_str().unwrap().to_string();
    let guest = app.client().with_header("x-cart-token", &token);
    add(&guest, hat, 1).await;

    // A token that was not issued here (edited id, edited MAC, garbage): 401, nothing created.
    let (id, mac) = token.split_once('.').unwrap();
    for forged in [
        format!("{id}x.{mac}"),
        format!("{id}.{}", mac.chars().rev().collect::<String>()),
        "guest_1".to_string(),
        String::new(),
    ] {
        let api = app.client().with_header("x-cart-token", &forged);
        let res = api.get("/api/v1/cart").await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{forged:?}: {}",
            res.text
        );
        assert_eq!(add(&api, hat, 1).await.status, StatusCode::UNAUTHORIZED);
    }
    // Another guest sees only their own cart.
    let second = app.client().post("/api/v1/cart", json!({})).await;
    let other = app
        .client()
        .with_header("x-cart-token", second.json["cart_token"].as_str().unwrap());
    assert_eq!(other.get("/api/v1/cart").await.json["items"], json!([]));
    assert_eq!(
        quantities(&guest.get("/api/v1/cart").await.json),
        vec![(hat, 1)]
    );
    // A signed-in customer's credentials win over a guest token sent along.
    let customer = app.customer().await;
    let both = customer.api.with_header("x-cart-token", &token);
    assert_eq!(both.get("/api/v1/cart").await.json["items"], json!([]));
    // Without any credential the cart routes answer 401.
    app.client()
        .get("/api/v1/cart")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // A browser whose sf_cart cookie went stale (say, JWT_SECRET rotated) cannot clear it: starting
    // a cart gives it a new one instead of a 401. A failed user credential is still a 401.
    let stale = app
        .client()
        .http
        .post(app.url("/api/v1/cart"))
        .header("cookie", "sf_cart=guest_0.AAAA")
        .send()
        .await
        .unwrap();
    let stale = read(stale).await;
    assert_eq!(stale.status, StatusCode::CREATED, "{}", stale.text);
    assert!(
        stale
            .header("set-cookie")
            .unwrap_or_default()
            .starts_with("sf_cart=")
    );
    app.client()
        .with_token("not-a-token")
        .post("/api/v1/cart", json!({}))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn idle_guest_carts_expire_and_are_swept() {
    let app = TestApp::spawn_with(settings(&[("GUEST_CART_TTL", "1s")])).await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let started = app.client().post("/api/v1/cart", json!({})).await;
    let guest = app
        .client()
        .with_header("x-cart-token", started.json["cart_token"].as_str().unwrap());
    add(&guest, hat, 1).await;
    assert_eq!(
        quantities(&guest.get("/api/v1/cart").await.json),
        vec![(hat, 1)]
    );

    async fn swept(app: &TestApp) -> u64 {
        app.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("storefront_guest_carts_expired_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    }
    let started_at = Instant::now();
    while swept(&app).await < 1 {
        assert!(
            started_at.elapsed() < Duration::from_secs(10),
            "the sweeper did not delete the idle guest carts"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Past its idle time the cart is empty (the cache may hold the last view for up to 5 s).
    let validated = guest.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(
        validated.json["cart"]["items"],
        json!([]),
        "{}",
        validated.text
    );
    // The admin's session and the customer side are unaffected: a customer cart never expires.
    let customer = app.customer().await;
    add(&customer.api, hat, 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let check = customer.api.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(quantities(&check.json["cart"]), vec![(hat, 1)]);
}
