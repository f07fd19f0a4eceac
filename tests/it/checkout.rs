//! Atomic checkout: never more sold than in stock, all lines or none, and a retried request orders once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{
    TestApp, add, checkout, checkout_all, customers, read, settings, stock, surrealkv_url, temp_dir,
};

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
            read(req.send().await.unwrap()).await
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
    read(bad.send().await.unwrap())
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}
