//! Carts, atomic checkout and orders, over HTTP against real engines.

mod common;

use std::time::{Duration, Instant};

use common::{Api, Customer, TestApp, settings, surrealkv_url, temp_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn stock(app: &TestApp, id: i64) -> i64 {
    app.client()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json["stock"]
        .as_i64()
        .unwrap()
}

async fn add(api: &Api, product_id: i64, quantity: i64) -> common::Res {
    api.post(
        "/api/v1/cart/items",
        json!({"product_id": product_id, "quantity": quantity}),
    )
    .await
}

async fn checkout(api: &Api) -> common::Res {
    api.post(
        "/api/v1/orders",
        json!({"shipping_address": "1 High Street, London"}),
    )
    .await
}

async fn customers(app: &TestApp, n: usize) -> Vec<Customer> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(app.customer().await);
    }
    out
}

/// Runs every customer's checkout at once; returns the statuses and bodies.
async fn checkout_all(customers: &[Customer]) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = customers
        .iter()
        .map(|c| {
            let api = c.api.clone();
            tokio::spawn(async move {
                let res = checkout(&api).await;
                (res.status, res.json)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test]
async fn the_cart_merges_lines_and_shows_current_product_details() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1599, 10).await;
    let shirt = app.product(&admin, "Shirt", 2500, 10).await;
    let customer = app.customer().await;
    let api = &customer.api;

    let empty = api.get("/api/v1/cart").await;
    assert_eq!(empty.json["items"], json!([]));
    assert_eq!(
        empty.json["subtotal"],
        json!({"amount": 0, "currency": "GBP"})
    );

    assert_eq!(add(api, hat, 2).await.status, StatusCode::CREATED);
    assert_eq!(add(api, shirt, 1).await.status, StatusCode::CREATED);
    let res = add(api, hat, 1).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let cart = api.get("/api/v1/cart").await.json;
    assert_eq!(cart["items"].as_array().unwrap().len(), 2, "{cart}");
    let line = cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["product_id"] == hat)
        .unwrap();
    assert_eq!(line["quantity"], 3);
    assert_eq!(line["name"], "Hat");
    assert_eq!(line["unit_price"]["amount"], 1599);
    assert_eq!(line["line_total"]["amount"], 4797);
    assert_eq!(line["warnings"], json!([]));
    assert_eq!(cart["subtotal"]["amount"], 4797 + 2500);
    assert_eq!(cart["item_count"], 4);

    let res = api
        .patch(&format!("/api/v1/cart/items/{hat}"), json!({"quantity": 1}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.json["item_count"], 2);
    let res = api.delete(&format!("/api/v1/cart/items/{shirt}")).await;
    assert_eq!(res.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.delete("/api/v1/cart").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get("/api/v1/cart").await.json["item_count"], 0);
}

#[tokio::test]
async fn cart_input_is_validated_and_lines_are_private() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1599, 10).await;
    let gone = app.product(&admin, "Gone", 100, 10).await;
    assert_eq!(
        admin
            .delete(&format!("/api/v1/products/{gone}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let a = app.customer().await;
    let b = app.customer().await;

    for q in [0, -1, 1000] {
        add(&a.api, hat, q)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    add(&a.api, 424242, 1)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    add(&a.api, gone, 1)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(add(&a.api, hat, 999).await.status, StatusCode::CREATED);
    add(&a.api, hat, 1)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // B cannot see or touch A's line.
    b.api
        .patch(&format!("/api/v1/cart/items/{hat}"), json!({"quantity": 1}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    b.api
        .delete(&format!("/api/v1/cart/items/{hat}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(b.api.get("/api/v1/cart").await.json["items"], json!([]));
    assert_eq!(
        b.api.delete("/api/v1/cart").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(a.api.get("/api/v1/cart").await.json["item_count"], 999);
}

#[tokio::test]
async fn cart_warnings_follow_stock_and_price_changes_within_seconds() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let customer = app.customer().await;
    add(&customer.api, hat, 4).await;
    assert_eq!(
        customer.api.get("/api/v1/cart").await.json["items"][0]["warnings"],
        json!([])
    );

    admin
        .patch(
            &format!("/api/v1/products/{hat}"),
            json!({"stock": 2, "price": {"amount": 1200, "currency": "GBP"}}),
        )
        .await;
    let started = Instant::now();
    loop {
        let cart = customer.api.get("/api/v1/cart").await.json;
        if cart["items"][0]["warnings"] == json!(["insufficient_stock"]) {
            assert_eq!(cart["items"][0]["unit_price"]["amount"], 1200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "cart still stale: {cart}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    admin.delete(&format!("/api/v1/products/{hat}")).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        customer.api.get("/api/v1/cart").await.json["items"][0]["warnings"],
        json!(["archived"])
    );
    checkout(&customer.api)
        .await
        .assert_problem(StatusCode::CONFLICT, "insufficient_stock");
}

async fn fifty_checkouts_against_ten_units(app: &TestApp) {
    let admin = app.admin().await;
    let hat = app.product(&admin, "Limited Hat", 1000, 10).await;
    let buyers = customers(app, 50).await;
    for c in &buyers {
        assert_eq!(add(&c.api, hat, 1).await.status, StatusCode::CREATED);
    }
    let results = checkout_all(&buyers).await;
    let placed = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .map(|(_, b)| b)
        .collect();
    assert!(
        results.iter().all(|(s, _)| !s.is_server_error()),
        "{results:?}"
    );
    assert_eq!((placed, refused.len()), (10, 40), "{results:?}");
    for body in refused {
        assert_eq!(body["code"], "insufficient_stock");
        assert_eq!(body["shortages"][0]["available"], 0);
    }
    assert_eq!(stock(app, hat).await, 0);
    let orders = admin.get("/api/v1/admin/orders?limit=100").await;
    let items = orders.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(
        items
            .iter()
            .all(|o| o["items"][0]["quantity"] == 1 && o["items"][0]["product_id"] == hat)
    );
}

#[tokio::test]
async fn concurrent_checkouts_never_sell_more_than_stock_in_memory() {
    fifty_checkouts_against_ten_units(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn concurrent_checkouts_never_sell_more_than_stock_on_surrealkv() {
    let dir = temp_dir("oversell");
    let app = TestApp::spawn_with(settings(&[("SURREAL_URL", &surrealkv_url(&dir))])).await;
    fifty_checkouts_against_ten_units(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_multi_line_cart_with_one_short_line_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let plenty = app.product(&admin, "Plenty", 500, 100).await;
    let scarce = app.product(&admin, "Scarce", 700, 5).await;
    let buyers = customers(&app, 20).await;
    for c in &buyers {
        add(&c.api, plenty, 2).await;
        add(&c.api, scarce, 1).await;
    }
    let results = checkout_all(&buyers).await;
    assert!(
        results.iter().all(|(s, _)| !s.is_server_error()),
        "{results:?}"
    );
    let placed = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(placed, 5, "{results:?}");
    // The refused carts took nothing: only the five orders' units left the plenty product.
    assert_eq!(
        (stock(&app, plenty).await, stock(&app, scarce).await),
        (90, 0)
    );
    for (status, body) in &results {
        if *status == StatusCode::CONFLICT {
            let short = body["shortages"].as_array().unwrap();
            assert_eq!(short.len(), 1);
            assert_eq!(short[0]["product_id"], scarce);
        }
    }
    // A refused buyer still has the whole cart.
    let (_, refused_buyer) = results
        .iter()
        .zip(&buyers)
        .find(|((s, _), _)| *s == StatusCode::CONFLICT)
        .unwrap();
    assert_eq!(
        refused_buyer.api.get("/api/v1/cart").await.json["item_count"],
        3
    );
}

#[tokio::test]
async fn checkout_places_an_order_from_the_cart_and_empties_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1599, 10).await;
    let customer = app.customer().await;
    checkout(&customer.api)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    add(&customer.api, hat, 3).await;
    customer
        .api
        .post("/api/v1/orders", json!({"shipping_address": ""}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Warm the catalog page cache, so the stock shown afterwards proves checkout dropped it.
    assert_eq!(
        app.client().get("/api/v1/products").await.json["items"][0]["stock"],
        10
    );
    let res = checkout(&customer.api).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(
        app.client().get("/api/v1/products").await.json["items"][0]["stock"],
        7
    );
    let order = &res.json;
    assert_eq!(order["status"], "pending");
    assert_eq!(
        order["subtotal"],
        json!({"amount": 4797, "currency": "GBP"})
    );
    assert_eq!(order["items"][0]["name"], "Hat");
    assert_eq!(order["items"][0]["unit_price"]["amount"], 1599);
    assert_eq!(stock(&app, hat).await, 7);
    assert_eq!(
        customer.api.get("/api/v1/cart").await.json["items"],
        json!([])
    );

    let id = order["id"].as_str().unwrap();
    let got = customer.api.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(got.json["id"], id);
    let mine = customer.api.get("/api/v1/orders").await;
    assert_eq!(mine.json["items"].as_array().unwrap().len(), 1);

    // A later price change and archiving leave the order as it was bought.
    admin
        .patch(
            &format!("/api/v1/products/{hat}"),
            json!({"price": {"amount": 9999, "currency": "GBP"}, "name": "Renamed"}),
        )
        .await;
    admin.delete(&format!("/api/v1/products/{hat}")).await;
    let later = customer.api.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(later.json["items"][0]["name"], "Hat");
    assert_eq!(later.json["items"][0]["unit_price"]["amount"], 1599);
    assert_eq!(later.json["subtotal"]["amount"], 4797);
}

#[tokio::test]
async fn a_retried_checkout_with_the_same_key_orders_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let customer = app.customer().await;
    add(&customer.api, hat, 2).await;

    let send = |key: &'static str, address: &'static str| {
        let api = customer.api.clone();
        async move {
            let req = api
                .http
                .request(Method::POST, format!("{}/api/v1/orders", api.base))
                .bearer_auth(api.token.as_deref().unwrap())
                .header("Idempotency-Key", key)
                .header("content-type", "application/json")
                .body(json!({"shipping_address": address}).to_string());
            common::read(req.send().await.unwrap()).await
        }
    };
    let first = send("order-123", "1 High Street").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = send("order-123", "1 High Street").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    send("order-123", "2 Other Road")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        customer.api.get("/api/v1/orders").await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(stock(&app, hat).await, 8);

    // Two at once with a fresh key: one order, the other replays it or is told to wait.
    add(&customer.api, hat, 1).await;
    let (a, b) = tokio::join!(
        send("order-456", "1 High Street"),
        send("order-456", "1 High Street")
    );
    let statuses = [a.status, b.status];
    assert!(statuses.contains(&StatusCode::CREATED), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{} {}",
        a.text,
        b.text
    );
    assert_eq!(
        customer.api.get("/api/v1/orders").await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(stock(&app, hat).await, 7);

    let bad = customer
        .api
        .http
        .post(format!("{}/api/v1/orders", customer.api.base))
        .bearer_auth(customer.api.token.as_deref().unwrap())
        .header("Idempotency-Key", "x".repeat(300))
        .header("content-type", "application/json")
        .body(json!({"shipping_address": "1 High Street"}).to_string());
    common::read(bad.send().await.unwrap())
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn orders_move_only_along_the_state_machine_and_cancelling_restores_stock() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let customer = app.customer().await;

    add(&customer.api, hat, 4).await;
    let first = checkout(&customer.api).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(stock(&app, hat).await, 6);
    let res = customer
        .api
        .post(&format!("/api/v1/orders/{first}/cancel"), json!({}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.json["status"], "cancelled");
    assert_eq!(stock(&app, hat).await, 10);
    let again = customer
        .api
        .post(&format!("/api/v1/orders/{first}/cancel"), json!({}))
        .await;
    again.assert_problem(StatusCode::CONFLICT, "invalid_status_transition");
    assert_eq!(
        stock(&app, hat).await,
        10,
        "a second cancel must not add stock again"
    );

    add(&customer.api, hat, 1).await;
    let second = checkout(&customer.api).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/admin/orders/{second}/status");
    let refused = admin.post(&path, json!({"status": "shipped"})).await;
    let problem = refused.assert_problem(StatusCode::CONFLICT, "invalid_status_transition");
    assert!(
        problem["detail"].as_str().unwrap().contains("pending"),
        "{problem}"
    );
    for status in ["paid", "shipped", "delivered"] {
        let res = admin.post(&path, json!({"status": status})).await;
        assert_eq!(
            (res.status, res.json["status"].as_str()),
            (StatusCode::OK, Some(status)),
            "{}",
            res.text
        );
    }
    for status in ["paid", "cancelled", "pending"] {
        admin
            .post(&path, json!({"status": status}))
            .await
            .assert_problem(StatusCode::CONFLICT, "invalid_status_transition");
    }
    customer
        .api
        .post(&format!("/api/v1/orders/{second}/cancel"), json!({}))
        .await
        .assert_problem(StatusCode::CONFLICT, "invalid_status_transition");
    admin
        .post(&path, json!({"status": "lost"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(stock(&app, hat).await, 9);

    let delivered = admin.get("/api/v1/admin/orders?status=delivered").await;
    assert_eq!(delivered.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(delivered.json["items"][0]["id"], second.as_str());
}

#[tokio::test]
async fn nobody_reaches_another_customers_orders_or_admin_routes() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let owner = app.customer().await;
    let other = app.customer().await;
    add(&owner.api, hat, 1).await;
    let id = checkout(&owner.api).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();

    other
        .api
        .get(&format!("/api/v1/orders/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    other
        .api
        .post(&format!("/api/v1/orders/{id}/cancel"), json!({}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        other.api.get("/api/v1/orders").await.json["items"],
        json!([])
    );
    // An id that does not exist looks the same as someone else's.
    let missing = uuid::Uuid::now_v7();
    other
        .api
        .get(&format!("/api/v1/orders/{missing}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    // Admins read any order.
    assert_eq!(
        admin.get(&format!("/api/v1/orders/{id}")).await.status,
        StatusCode::OK
    );

    for (method, path) in [
        (Method::GET, "/api/v1/admin/orders".to_string()),
        (Method::POST, format!("/api/v1/admin/orders/{id}/status")),
    ] {
        let body = (method == Method::POST).then(|| json!({"status": "paid"}));
        other
            .api
            .send(method.clone(), &path, body.clone())
            .await
            .assert_problem(StatusCode::FORBIDDEN, "forbidden");
        app.client()
            .send(method, &path, body)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    for (method, path, body) in [
        (Method::GET, "/api/v1/cart".to_string(), None),
        (
            Method::POST,
            "/api/v1/cart/items".to_string(),
            Some(json!({"product_id": hat, "quantity": 1})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/cart/items/{hat}"),
            Some(json!({"quantity": 1})),
        ),
        (Method::DELETE, format!("/api/v1/cart/items/{hat}"), None),
        (Method::DELETE, "/api/v1/cart".to_string(), None),
        (
            Method::POST,
            "/api/v1/orders".to_string(),
            Some(json!({"shipping_address": "x"})),
        ),
        (Method::GET, "/api/v1/orders".to_string(), None),
        (Method::GET, format!("/api/v1/orders/{id}"), None),
        (
            Method::POST,
            format!("/api/v1/orders/{id}/cancel"),
            Some(json!({})),
        ),
    ] {
        app.client()
            .send(method, &path, body)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    assert_eq!(
        owner.api.get(&format!("/api/v1/orders/{id}")).await.json["status"],
        "pending"
    );
}
