//! No variant oversold: rounds of 64 concurrent checkouts where half the clients race for the last
//! units of one variant (some with a sibling in the same cart) while the others buy its siblings,
//! which have plenty. Stock lives on each variant: the race for one never touches the others.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use super::report::{Statuses, report};
use crate::common::{
    Api, Customer, TestApp, remote_surreal, settings, surrealkv_url, temp_dir, variant_units,
};

const ROUNDS: usize = 20;
const CLIENTS: usize = 64;
const PLENTY: i64 = 10_000;

async fn variant_stock(api: &Api, product: i64) -> HashMap<i64, i64> {
    let body = api.get(&format!("/api/v1/products/{product}")).await.json;
    body["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| (v["id"].as_i64().unwrap(), v["stock"].as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_units_of_one_variant_are_never_oversold_and_its_siblings_are_untouched() {
    let dir = temp_dir("variant-oversell");
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
    let (mut scarce_sold, mut scarce_stocked, mut sibling_orders) = (0i64, 0i64, 0usize);
    for round in 0..ROUNDS {
        let scarce = 2 + (round % 7) as i64;
        let res = admin
            .post(
                "/api/v1/products",
                json!({
                    "name": format!("Racing tee {round}"), "price": {"amount": 1200, "currency": "GBP"},
                    "options": [{"name": "Size", "values": ["S", "M", "L"]}],
                    "variants": [
                        {"option_values": {"Size": "S"}, "stock": scarce},
                        {"option_values": {"Size": "M"}, "stock": PLENTY},
                        {"option_values": {"Size": "L"}, "stock": PLENTY}
                    ]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        let product = res.json["id"].as_i64().unwrap();
        let ids: Vec<i64> = res.json["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_i64().unwrap())
            .collect();
        let (s, m, l) = (ids[0], ids[1], ids[2]);
        scarce_stocked += scarce;

        // Even clients want the scarce S (a quarter with an M beside it); odd ones only M and L.
        let wanted = |i: usize| -> Vec<(i64, i64)> {
            match (i % 2, i % 4) {
                (0, 0) => vec![(s, 1), (m, 1)],
                (0, _) => vec![(s, 1)],
                _ => vec![(m, 1), (l, 2)],
            }
        };
        let mut fills = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let api = client.api.clone();
            let lines = wanted(i);
            fills.push(tokio::spawn(async move {
                api.delete("/api/v1/cart").await;
                for (variant_id, quantity) in lines {
                    let res = api
                        .post(
                            "/api/v1/cart/items",
                            json!({"variant_id": variant_id, "quantity": quantity}),
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
            .enumerate()
            .map(|(i, c)| {
                let api = c.api.clone();
                tokio::spawn(async move {
                    let res = api
                        .post(
                            "/api/v1/orders",
                            json!({"shipping_address": "1 High Street"}),
                        )
                        .await;
                    (i, api, res)
                })
            })
            .collect();
        let mut sold: HashMap<i64, i64> = HashMap::new();
        for checkout in checkouts {
            let (i, api, res) = checkout.await.unwrap();
            statuses.add(res.status);
            match res.status {
                StatusCode::CREATED => {
                    let id = res.json["id"].as_str().unwrap();
                    let stored = api.get(&format!("/api/v1/orders/{id}")).await;
                    assert_eq!(variant_units(&stored.json), variant_units(&res.json));
                    for (variant, n) in variant_units(&res.json) {
                        *sold.entry(variant).or_default() += n;
                    }
                    if i % 2 == 1 {
                        sibling_orders += 1;
                    }
                }
                StatusCode::CONFLICT if i % 2 == 0 => {
                    assert_eq!(res.json["code"], "insufficient_stock", "{}", res.text);
                    let short: Vec<i64> = res.json["shortages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| l["variant_id"].as_i64().unwrap())
                        .collect();
                    assert_eq!(short, [s], "only S runs out: {}", res.text);
                }
                other => panic!(
                    "round {round}, client {i}: checkout answered {other}: {}",
                    res.text
                ),
            }
        }
        let left = variant_stock(&admin, product).await;
        let taken = |v: i64| sold.get(&v).copied().unwrap_or(0);
        assert!(left[&s] >= 0);
        assert_eq!(scarce - left[&s], taken(s), "round {round}: S");
        assert_eq!(
            taken(s),
            scarce,
            "round {round}: 32 buyers for {scarce} units sell them all"
        );
        assert_eq!(PLENTY - left[&m], taken(m), "round {round}: M");
        assert_eq!(PLENTY - left[&l], taken(l), "round {round}: L");
        assert_eq!(
            taken(l),
            2 * (CLIENTS as i64 / 2),
            "round {round}: every L buyer served"
        );
        scarce_sold += taken(s);
    }
    assert_eq!(statuses.server_errors(), 0, "{statuses}");
    assert_eq!(sibling_orders, ROUNDS * CLIENTS / 2);
    report(
        "variant oversell",
        format!(
            "{ROUNDS} rounds × {CLIENTS} clients on one product's three variants: 32 racing for \
             2-8 units of S (8 with an M in the same cart), 32 buying M and L: {} checkouts \
             ({statuses}); S sold {scarce_sold} of {scarce_stocked}, never below 0; every one of \
             the {sibling_orders} sibling-only carts ordered; each variant's stock = start - sold",
            statuses.total()
        ),
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
