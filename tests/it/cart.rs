//! The signed-in customer's cart: lines, validation, privacy and warnings that follow the catalog.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, add, checkout, stock};

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
