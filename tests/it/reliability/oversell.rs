//! No oversell under load: rounds of concurrent HTTP checkouts against small stock, with multi-line
//! carts over overlapping products, on SurrealKV (the default engine) or the shared SurrealDB server.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use super::report::{Statuses, report};
use crate::common::{
    Api, Customer, TestApp, order_units, remote_surreal, settings, surrealkv_url, temp_dir,
};

const ROUNDS: usize = 20;
const CLIENTS: usize = 64;

/// The lines client `i` puts in its cart, as (index into the round's products, quantity): everyone
/// wants one product, a quarter also the next one, an eighth all three, so the carts overlap.
fn wanted(i: usize) -> Vec<(usize, i64)> {
    let mut lines = vec![(i % 3, 1 + (i % 2) as i64)];
    if i.is_multiple_of(4) {
        lines.push(((i + 1) % 3, 1));
    }
    if i.is_multiple_of(8) {
        lines.push(((i + 2) % 3, 2));
    }
    lines
}

async fn stock(api: &Api, id: i64) -> i64 {
    api.get(&format!("/api/v1/products/{id}")).await.json["stock"]
        .as_i64()
        .expect("stock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_of_concurrent_checkouts_never_oversell() {
    // SurrealKV, the default engine; in the remote pass, the shared SurrealDB server.
    let dir = temp_dir("oversell");
    let app = match remote_surreal() {
        Some(_) => TestApp::spawn().await,
        None => TestApp::spawn_with(settings(&[("SURREAL_URL", &surrealkv_url(&dir))])).await,
    };
    let admin = app.admin().await;
    let mut clients: Vec<Customer> = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(app.customer().await);
    }

    let mut statuses = Statuses::default();
    let (mut placed, mut units_sold, mut units_stocked) = (0usize, 0i64, 0i64);
    for round in 0..ROUNDS {
        // Small stock, different each round; demand per product is several times larger.
        let mut products = Vec::new();
        for k in 0..3 {
            let start = 3 + ((round * 7 + k * 5) % 11) as i64;
            let id = app
                .product(&admin, &format!("Scarce {round}-{k}"), 500, start)
                .await;
            products.push((id, start));
            units_stocked += start;
        }

        // Fill every cart (concurrently across clients), then check everyone out at once.
        let mut fills = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let api = client.api.clone();
            let lines: Vec<(i64, i64)> = wanted(i)
                .into_iter()
                .map(|(k, q)| (products[k].0, q))
                .collect();
            fills.push(tokio::spawn(async move {
                assert_eq!(
                    api.delete("/api/v1/cart").await.status,
                    StatusCode::NO_CONTENT
                );
                for (product_id, quantity) in lines {
                    let res = api
                        .post(
                            "/api/v1/cart/items",
                            json!({"product_id": product_id, "quantity": quantity}),
                        )
                        .await;
                    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
                }
            }));
        }
        for fill in fills {
            fill.await.unwrap();
        }
        let checkouts: Vec<_> = clients
            .iter()
            .map(|c| {
                let api = c.api.clone();
                tokio::spawn(async move {
                    let res = api
                        .post(
                            "/api/v1/orders",
                            json!({"shipping_address": "1 High Street, London"}),
                        )
                        .await;
                    (api, res)
                })
            })
            .collect();

        let mut sold: HashMap<i64, i64> = HashMap::new();
        for checkout in checkouts {
            let (api, res) = checkout.await.unwrap();
            statuses.add(res.status);
            match res.status {
                StatusCode::CREATED => {
                    placed += 1;
                    // The order as stored says what the answer said.
                    let id = res.json["id"].as_str().unwrap();
                    let stored = api.get(&format!("/api/v1/orders/{id}")).await;
                    assert_eq!(
                        order_units(&stored.json),
                        order_units(&res.json),
                        "order {id}"
                    );
                    for (product, n) in order_units(&res.json) {
                        *sold.entry(product).or_default() += n;
                    }
                }
                StatusCode::CONFLICT => {
                    assert_eq!(res.json["code"], "insufficient_stock", "{}", res.text)
                }
                other => panic!("round {round}: checkout answered {other}: {}", res.text),
            }
        }
        for (id, start) in &products {
            let left = stock(&admin, *id).await;
            let taken = sold.get(id).copied().unwrap_or(0);
            assert!(left >= 0, "round {round}: product {id} stock {left}");
            assert_eq!(
                start - left,
                taken,
                "round {round}: product {id} started at {start}, has {left}, orders hold {taken}"
            );
            units_sold += taken;
        }
        assert!(
            sold.values().sum::<i64>() > 0,
            "round {round}: nothing sold at all"
        );
    }

    let metrics = app.metrics().await;
    let retries = metrics
        .lines()
        .find_map(|l| l.strip_prefix("storefront_db_conflict_retries_total "))
        .unwrap_or("?")
        .to_string();
    assert_eq!(statuses.server_errors(), 0, "{statuses}");
    report(
        "oversell",
        format!(
            "{ROUNDS} rounds × {CLIENTS} clients, 3 overlapping products per round, 1-3 lines per cart: \
             {} checkouts ({statuses}), {placed} orders, {units_sold} of {units_stocked} units sold, \
             stock = start - sold for every product, none below 0, 0 server errors, \
             {retries} conflict retries",
            statuses.total()
        ),
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
