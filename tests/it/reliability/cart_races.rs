//! One owner racing their own cart (issue 15, items 6 and 7): many adds at once, then a read; one
//! guest cart carried into several sign-ins at once. Both run against the real Redis cache.

use reqwest::StatusCode;
use serde_json::json;

use super::report::report;
use crate::common::{Api, TestApp, settings};

const ROUNDS: usize = 40;
/// Adds in flight at once per round, by one owner.
const ADDS: usize = 24;
/// Sign-ins at once carrying the same guest cart (a double- or triple-submitted login form).
const LOGINS: usize = 5;

/// A counter's value in `/metrics`.
async fn counter(app: &TestApp, name: &str) -> u64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

async fn conflict_retries(app: &TestApp) -> u64 {
    counter(app, "storefront_db_conflict_retries_total").await
}

/// The cart's units as `GET /api/v1/cart` shows them (the cached view) and as
/// `POST /api/v1/cart/validate` reads them (past the cache).
async fn units(api: &Api) -> (i64, i64) {
    let shown = api.get("/api/v1/cart").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    let stored = api.post("/api/v1/cart/validate", json!({})).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    (
        shown.json["item_count"].as_i64().unwrap(),
        stored.json["cart"]["item_count"].as_i64().unwrap(),
    )
}

/// Every round a fresh customer fires `ADDS` adds at once (half of them to one product, the rest
/// spread over three others, 1-3 units each), waits for every answer, then reads the cart: it must
/// hold exactly the units acknowledged, as the database does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_read_is_never_older_than_the_owners_acknowledged_writes() {
    let app = TestApp::spawn().await;
    assert!(
        app.state.cache.is_redis(),
        "this test is about the Redis cache"
    );
    let admin = app.admin().await;
    let mut products = Vec::new();
    for name in ["Hat", "Scarf", "Gloves", "Socks"] {
        products.push(app.product(&admin, name, 500, 100_000).await);
    }
    let retries_before = conflict_retries(&app).await;
    let transactions_before = counter(&app, "storefront_cart_write_transactions_total").await;
    let mut stale = Vec::new();
    for round in 0..ROUNDS {
        let customer = app.customer().await;
        let adds: Vec<_> = (0..ADDS)
            .map(|i| {
                let api = customer.api.clone();
                let product = if i % 2 == 0 {
                    products[0]
                } else {
                    products[1 + i % 3]
                };
                let quantity = 1 + (i % 3) as i64;
                tokio::spawn(async move {
                    let res = api
                        .post(
                            "/api/v1/cart/items",
                            json!({"product_id": product, "quantity": quantity}),
                        )
                        .await;
                    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
                    quantity
                })
            })
            .collect();
        let mut acknowledged = 0;
        for add in adds {
            acknowledged += add.await.unwrap();
        }
        let (shown, stored) = units(&customer.api).await;
        assert_eq!(stored, acknowledged, "the database lost an add");
        if shown != acknowledged {
            stale.push((round, shown, acknowledged));
        }
    }
    let retries = conflict_retries(&app).await - retries_before;
    let transactions =
        counter(&app, "storefront_cart_write_transactions_total").await - transactions_before;
    report(
        "cart reads after concurrent adds",
        format!(
            "{ROUNDS} rounds × {ADDS} concurrent adds by one owner: {} reads older than the acknowledged writes {stale:?} (round, shown, acknowledged); {retries} conflict retries; {} adds committed in {transactions} transactions",
            stale.len(),
            ROUNDS * ADDS
        ),
    );
    assert!(
        stale.is_empty(),
        "a read after every add was acknowledged showed fewer units (round, shown, acknowledged): {stale:?}"
    );
    // One instance queues one cart's writes (store::turns): each commits at its first try, so a
    // shopper's burst never runs out of retries into a 409.
    assert_eq!(
        retries, 0,
        "one owner's concurrent adds conflicted with each other inside one instance"
    );
}

/// Every round a guest cart with N units is carried into `LOGINS` sign-ins of one account at once:
/// the account's cart then holds exactly N units, and exactly one sign-in reports the lines merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cart_merges_exactly_once() {
    let app = TestApp::spawn_with(settings(&[
        ("LOGIN_LIMIT_PER_IP", "100000"),
        ("LOGIN_LIMIT_PER_EMAIL", "100000"),
        ("LOGIN_LIMIT_PER_EMAIL_GLOBAL", "100000"),
    ]))
    .await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 100_000).await;
    let scarf = app.product(&admin, "Scarf", 2000, 100_000).await;
    let retries_before = conflict_retries(&app).await;
    let mut doubled = Vec::new();
    for round in 0..ROUNDS {
        let customer = app.customer().await;
        let guest = app.client();
        let started = guest.post("/api/v1/cart", json!({})).await;
        let token = started.json["cart_token"].as_str().unwrap().to_string();
        let guest = guest.with_header("x-cart-token", &token);
        for (product, quantity) in [(hat, 3), (scarf, 2)] {
            let res = guest
                .post(
                    "/api/v1/cart/items",
                    json!({"product_id": product, "quantity": quantity}),
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        }
        let logins: Vec<_> = (0..LOGINS)
            .map(|_| {
                let api = guest.clone();
                let body = json!({"email": customer.email, "password": crate::common::PASSWORD});
                tokio::spawn(async move { api.post("/api/v1/auth/login", body).await })
            })
            .collect();
        let mut merged_lines = Vec::new();
        for login in logins {
            let res = login.await.unwrap();
            assert_eq!(res.status, StatusCode::OK, "{}", res.text);
            merged_lines.push(res.json["cart_merge"]["lines"].as_i64().unwrap_or(0));
        }
        let (shown, stored) = units(&customer.api).await;
        if shown != 5 || stored != 5 || merged_lines.iter().sum::<i64>() != 2 {
            doubled.push((round, shown, stored, merged_lines));
        }
    }
    let retries = conflict_retries(&app).await - retries_before;
    report(
        "guest cart merges",
        format!(
            "{ROUNDS} rounds × {LOGINS} concurrent sign-ins with one 5-unit guest cart: {} rounds not merged exactly once {doubled:?} (round, shown, stored, lines merged per sign-in); {retries} conflict retries",
            doubled.len()
        ),
    );
    assert!(
        doubled.is_empty(),
        "a guest cart merged other than once (round, shown, stored, lines merged per sign-in): {doubled:?}"
    );
}
