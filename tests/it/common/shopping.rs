//! A shopper's steps (cart, checkout, stock) and what an order body holds.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::app::{Customer, TestApp};
use super::client::{Api, Res};
use super::processes::PrivateRedis;

/// A sale the cache does not hear of: `customer` puts `units` of `product` in the cart, Redis saves
/// what it holds (the cached bodies from before the sale) and stops, and the order is placed while it
/// is away. Redis stays stopped; its next start brings the old bodies back.
pub async fn sell_while_redis_is_away(
    customer: &Api,
    redis: &mut PrivateRedis,
    product: i64,
    units: i64,
) {
    assert_eq!(
        add(customer, product, units).await.status,
        StatusCode::CREATED
    );
    redis.save();
    redis.stop();
    let order = checkout(customer).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
}

/// The product's stock as the catalog shows it.
pub async fn stock(app: &TestApp, id: i64) -> i64 {
    app.client()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json["stock"]
        .as_i64()
        .unwrap()
}

/// Adds `quantity` of the product to the client's cart.
pub async fn add(api: &Api, product_id: i64, quantity: i64) -> Res {
    api.post(
        "/api/v1/cart/items",
        json!({"product_id": product_id, "quantity": quantity}),
    )
    .await
}

/// Checks out the client's cart to a fixed address.
pub async fn checkout(api: &Api) -> Res {
    api.post(
        "/api/v1/orders",
        json!({"shipping_address": "1 High Street, London"}),
    )
    .await
}

/// `n` fresh customers, each signed in.
pub async fn customers(app: &TestApp, n: usize) -> Vec<Customer> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(app.customer().await);
    }
    out
}

/// Runs every customer's checkout at once; returns the statuses and bodies.
pub async fn checkout_all(customers: &[Customer]) -> Vec<(StatusCode, Value)> {
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

/// Units per product id in an order body (`items[].product_id`, `items[].quantity`).
/// Units per variant id in an order body.
pub fn variant_units(order: &Value) -> HashMap<i64, i64> {
    let mut out = HashMap::new();
    for line in order["items"].as_array().expect("order items") {
        *out.entry(line["variant_id"].as_i64().unwrap()).or_default() +=
            line["quantity"].as_i64().unwrap();
    }
    out
}

pub fn order_units(order: &Value) -> HashMap<i64, i64> {
    let mut out = HashMap::new();
    for line in order["items"].as_array().expect("order items") {
        *out.entry(line["product_id"].as_i64().unwrap()).or_default() +=
            line["quantity"].as_i64().unwrap();
    }
    out
}
