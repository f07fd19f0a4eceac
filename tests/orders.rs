//! Carts, atomic checkout and orders, over HTTP against real engines.

mod common;

use std::time::{Duration, Instant};

use common::{Api, Customer, EventReader, TestApp, settings, surrealkv_url, temp_dir};
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

/// Lines are shown oldest first, not in product-id order (the store reads them in key order, which is
/// product order, and sorts them): in the write's own answer, in a read, and after a line's quantity
/// changes (its place stays).
#[tokio::test]
async fn cart_lines_are_shown_oldest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let first = app.product(&admin, "Added first", 100, 10).await;
    let second = app.product(&admin, "Added second", 100, 10).await;
    let third = app.product(&admin, "Added third", 100, 10).await;
    let customer = app.customer().await;
    let api = &customer.api;
    let ids = |cart: &Value| -> Vec<i64> {
        cart["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["product_id"].as_i64().unwrap())
            .collect()
    };

    // Highest id first, so that oldest-first and product order disagree.
    add(api, third, 1).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    add(api, first, 1).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let answer = add(api, second, 1).await;
    assert_eq!(ids(&answer.json), [third, first, second], "{}", answer.text);
    let more = add(api, third, 2).await;
    assert_eq!(ids(&more.json), [third, first, second], "{}", more.text);
    let read = api.get("/api/v1/cart").await;
    assert_eq!(ids(&read.json), [third, first, second], "{}", read.text);
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
        if cart["items"][0]["warnings"] == json!(["insufficient_stock", "price_changed"]) {
            assert_eq!(cart["items"][0]["unit_price"]["amount"], 1200);
            assert_eq!(cart["items"][0]["price_when_added"]["amount"], 1000);
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
        json!(["archived", "price_changed"])
    );
    checkout(&customer.api)
        .await
        .assert_problem(StatusCode::CONFLICT, "insufficient_stock");
}

#[tokio::test]
async fn validating_the_cart_reports_what_checkout_would_refuse_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let scarf = app.product(&admin, "Scarf", 2000, 5).await;
    let gloves = app.product(&admin, "Gloves", 1500, 5).await;
    let customer = app.customer().await;

    let empty = customer.api.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.json["ok"], false);
    assert_eq!(empty.json["issues"][0]["code"], "empty_cart");

    add(&customer.api, hat, 2).await;
    add(&customer.api, scarf, 3).await;
    add(&customer.api, gloves, 1).await;
    let clean = customer.api.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(clean.json["ok"], true, "{}", clean.text);
    assert_eq!(clean.json["issues"], json!([]));

    // Price up on the hat (checkout would still go through), too little scarf, gloves withdrawn.
    admin
        .patch(
            &format!("/api/v1/products/{hat}"),
            json!({"price": {"amount": 1100, "currency": "GBP"}}),
        )
        .await;
    admin
        .patch(&format!("/api/v1/products/{scarf}"), json!({"stock": 1}))
        .await;
    admin.delete(&format!("/api/v1/products/{gloves}")).await;
    let (stocks_before, cart_before) = (
        [stock(&app, hat).await, stock(&app, scarf).await],
        customer.api.get("/api/v1/cart").await.json["items"].clone(),
    );
    // No waiting for caches: the pre-check reads the database.
    let check = customer.api.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.text);
    assert_eq!(check.json["ok"], false);
    let issues: Vec<(i64, &str, bool)> = check.json["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["product_id"].as_i64().unwrap(),
                i["code"].as_str().unwrap(),
                i["blocking"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        issues,
        vec![
            (hat, "price_changed", false),
            (scarf, "insufficient_stock", true),
            (gloves, "archived", true)
        ],
        "{}",
        check.text
    );
    assert_eq!(
        check.json["issues"][0]["message"],
        "the price of Hat changed from GBP 10.00 to GBP 11.00 since it was added"
    );
    assert_eq!(check.json["cart"]["items"][0]["unit_price"]["amount"], 1100);
    // Nothing changed: stock, cart lines.
    assert_eq!(
        [stock(&app, hat).await, stock(&app, scarf).await],
        stocks_before
    );
    let cart_after = customer.api.get("/api/v1/cart").await.json["items"].clone();
    assert_eq!(cart_after.as_array().unwrap().len(), 3);
    assert_eq!(
        cart_after
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["quantity"].clone())
            .collect::<Vec<_>>(),
        cart_before
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["quantity"].clone())
            .collect::<Vec<_>>()
    );
    // And checkout refuses it for the reasons given.
    checkout(&customer.api)
        .await
        .assert_problem(StatusCode::CONFLICT, "insufficient_stock");
    // Another customer's cart is their own: validating it says nothing about this one.
    let other = app.customer().await;
    let theirs = other.api.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(theirs.json["issues"][0]["code"], "empty_cart");
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
        // Not one of the document's enum values: a field that breaks its schema, named.
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
    let email = format!("{}@example.com", common::unique("guest"));
    let registered = browser
        .post(
            "/api/v1/auth/register",
            json!({"email": email, "password": common::PASSWORD, "name": "Guest"}),
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
    let login = |api: &common::Api, mode: Option<&str>| {
        let mut body = json!({"email": customer.email, "password": common::PASSWORD});
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
        json!([
            {"product_id": hat, "requested": 5, "kept": 4, "reason": "stock"},
            {"product_id": gloves, "requested": 3, "kept": 1, "reason": "archived"}
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
    let stale = common::read(stale).await;
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

    let swept = |app: &TestApp| {
        let api = app.client();
        async move {
            let metrics = api.get("/metrics").await.text;
            metrics
                .lines()
                .find_map(|l| l.strip_prefix("storefront_guest_carts_expired_total "))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
        }
    };
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

/// Places an order of one unit of a fresh product; returns (order id, product id).
async fn placed_order(app: &TestApp, admin: &Api, customer: &Customer) -> (String, i64) {
    let hat = app.product(admin, "Hat", 1000, 10).await;
    add(&customer.api, hat, 1).await;
    let order = checkout(&customer.api).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    (order.json["id"].as_str().unwrap().to_string(), hat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_status_changes_reach_the_owners_event_stream_within_a_second() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let (order, _) = placed_order(&app, &admin, &customer).await;
    let path = format!("/api/v1/orders/{order}/events");

    // Nobody else follows it; without credentials, 401.
    let stranger = app.customer().await;
    let refused = EventReader::open(&stranger.api, &path, None)
        .await
        .err()
        .unwrap();
    refused.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let refused = EventReader::open(&app.client(), &path, None)
        .await
        .err()
        .unwrap();
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let mut events = EventReader::open(&customer.api, &path, None)
        .await
        .ok()
        .unwrap();
    let first = events.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(first.event, "status");
    assert_eq!(first.data["status"], "pending");
    assert_eq!(first.data["order_id"], order.as_str());

    let mut last = first.id.clone();
    for status in ["paid", "shipped"] {
        let moved_at = Instant::now();
        let res = admin
            .post(
                &format!("/api/v1/admin/orders/{order}/status"),
                json!({"status": status}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let event = events
            .next(Duration::from_secs(1))
            .await
            .expect("the change arrives within a second")
            .unwrap();
        assert_eq!(event.data["status"], status);
        last = event.id;
        eprintln!(
            "[live] {status} reached the stream after {:?}",
            moved_at.elapsed()
        );
    }

    // Resuming with the last id sent: no repeat of the current state, only what comes next.
    let mut resumed = EventReader::open(&customer.api, &path, Some(&last))
        .await
        .ok()
        .unwrap();
    assert!(
        resumed.next(Duration::from_millis(500)).await.is_err(),
        "nothing new yet"
    );
    admin
        .post(
            &format!("/api/v1/admin/orders/{order}/status"),
            json!({"status": "delivered"}),
        )
        .await;
    let event = resumed.next(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(event.data["status"], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_sessions_event_streams() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let (order, _) = placed_order(&app, &admin, &customer).await;
    let mut events = EventReader::open(
        &customer.api,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await
    .ok()
    .unwrap();
    events.next(Duration::from_secs(5)).await.unwrap().unwrap();
    let res = customer.api.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    // Sessions are checked every 5 s; keep-alive comments do not count as events.
    let ended = events.next(Duration::from_secs(8)).await;
    assert!(
        matches!(ended, Ok(None)),
        "the stream is still open: {ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_streams_are_public_follow_every_sale_and_are_bounded_per_watcher() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let path = format!("/api/v1/products/{hat}/stock/events");
    let mut events = EventReader::open(&app.client(), &path, None)
        .await
        .ok()
        .unwrap();
    let first = events.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(first.event, "stock");
    assert_eq!(
        (first.data["stock"].clone(), first.data["available"].clone()),
        (json!(10), json!(true))
    );

    let customer = app.customer().await;
    add(&customer.api, hat, 3).await;
    assert_eq!(checkout(&customer.api).await.status, StatusCode::CREATED);
    let sold = events.next(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(sold.data["stock"], 7);
    admin.delete(&format!("/api/v1/products/{hat}")).await;
    let withdrawn = events.next(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(withdrawn.data["available"], false);

    EventReader::open(&app.client(), "/api/v1/products/999999/stock/events", None)
        .await
        .err()
        .unwrap()
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    // One watcher (here: one address) holds a bounded number of streams; the next is refused.
    let scarf = app.product(&admin, "Scarf", 1000, 10).await;
    let path = format!("/api/v1/products/{scarf}/stock/events");
    let mut open = vec![events];
    let refused = loop {
        match EventReader::open(&app.client(), &path, None).await {
            Ok(stream) => open.push(stream),
            Err(res) => break res,
        }
        assert!(open.len() <= 64, "no limit on streams");
    };
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text
    );
    assert!(refused.header("retry-after").is_some());
    eprintln!("[live] one address held {} stock streams", open.len());
    // Closing one frees its slot: the server notices when a write to it fails (a change, or a
    // keep-alive every 15 s; the first write after the close still succeeds at the socket).
    open.pop();
    for stock in [9, 8] {
        admin
            .patch(
                &format!("/api/v1/products/{scarf}"),
                json!({"stock": stock}),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed_at = Instant::now();
    while EventReader::open(&app.client(), &path, None).await.is_err() {
        assert!(
            closed_at.elapsed() < Duration::from_secs(35),
            "a closed stream's slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_holds_at_most_event_streams_max_streams() {
    let app = TestApp::spawn_with(settings(&[("EVENT_STREAMS_MAX", "3")])).await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let path = format!("/api/v1/products/{hat}/stock/events");
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            EventReader::open(&app.client(), &path, None)
                .await
                .ok()
                .unwrap(),
        );
    }
    // A fourth, even from another watcher (a signed-in customer's order stream): 503.
    let customer = app.customer().await;
    let (order, _) = placed_order(&app, &admin, &customer).await;
    EventReader::open(
        &customer.api,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await
    .err()
    .unwrap()
    .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    // The rest of the API is unaffected.
    assert_eq!(
        app.client()
            .get(&format!("/api/v1/products/{hat}"))
            .await
            .status,
        StatusCode::OK
    );
}
