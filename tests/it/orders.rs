//! Orders after checkout: the status state machine, restocking on cancel, and who may see what.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, add, checkout, stock};

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
