//! Redis faults under load: stopped mid-load, started again, flushed. No request may fail, every
//! shopper must always read their own cart as written, and the cache must be used again afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::report::{Statuses, report};
use crate::common::{Api, PrivateRedis, TestApp, settings};

const SHOPPERS: usize = 8;

/// One shopper's loop: catalog page, profile, add one unit to their cart, read the cart back (it
/// must hold exactly what was added), the legacy cart view. Returns the statuses seen.
async fn shop(api: Api, product: i64, stop: Arc<AtomicBool>) -> (Statuses, u64) {
    let mut statuses = Statuses::default();
    let (mut expected, mut carts_checked) = (0i64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        statuses.add(api.get("/api/v1/products?limit=20").await.status);
        statuses.add(api.get("/api/v1/users/me").await.status);
        if expected == 900 {
            let cleared = api.delete("/api/v1/cart").await;
            statuses.add(cleared.status);
            expected = 0;
        }
        let added = api
            .send(
                Method::POST,
                "/api/v1/cart/items",
                Some(json!({"product_id": product, "quantity": 1})),
            )
            .await;
        statuses.add(added.status);
        if added.status == StatusCode::CREATED {
            expected += 1;
        }
        let cart = api.get("/api/v1/cart").await;
        statuses.add(cart.status);
        if cart.status == StatusCode::OK {
            assert_eq!(
                cart.json["items"][0]["quantity"], expected,
                "a shopper read a stale cart: {}",
                cart.text
            );
            carts_checked += 1;
        }
        statuses.add(api.get("/cart_items/items").await.status);
    }
    (statuses, carts_checked)
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

async fn ready_again(app: &TestApp) {
    for _ in 0..100 {
        if app.client().get("/ready").await.status == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never ready again after Redis came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_restarted_and_flushed_mid_load_fails_no_request() {
    let mut redis = PrivateRedis::start();
    let app = TestApp::spawn_with(settings(&[
        ("REDIS_URL", &redis.url()),
        ("SEED_CATALOG", "true"),
    ]))
    .await;
    // A session signed out before the faults must stay signed out through all of them.
    let quitter = app.customer().await;
    assert_eq!(
        quitter
            .api
            .post("/api/v1/auth/logout", json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut shoppers = Vec::new();
    for i in 0..SHOPPERS {
        let customer = app.customer().await;
        shoppers.push(tokio::spawn(shop(
            customer.api.clone(),
            1 + i as i64,
            stop.clone(),
        )));
    }
    let phase = Duration::from_millis(1500);
    let hits = |metrics: &str| counter(metrics, "storefront_cache_hits_total");

    tokio::time::sleep(phase).await;
    redis.stop();
    tokio::time::sleep(phase).await;
    let down = app.metrics().await;
    app.client()
        .get("/ready")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");

    redis.restart();
    ready_again(&app).await;
    let back = app.metrics().await;
    tokio::time::sleep(phase).await;
    let later = app.metrics().await;
    assert!(
        hits(&later) > hits(&back),
        "the cache is not used again after Redis came back ({} -> {})",
        hits(&back),
        hits(&later)
    );

    let flushed = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "FLUSHALL"])
        .output()
        .unwrap();
    assert!(flushed.status.success());
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);

    let (mut statuses, mut carts_checked) = (Statuses::default(), 0);
    for shopper in shoppers {
        let (seen, checked) = shopper.await.unwrap();
        statuses.merge(&seen);
        carts_checked += checked;
    }
    assert_eq!(statuses.server_errors(), 0, "{statuses}");
    assert!(
        statuses.0.keys().all(|s| (200..300).contains(s)),
        "a request failed during the faults: {statuses}"
    );
    quitter
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    report(
        "redis-faults",
        format!(
            "{SHOPPERS} shoppers for 4 phases of {} ms (up, stopped, restarted, flushed): {} requests \
             ({statuses}), {carts_checked} cart reads all exact, {} Redis errors absorbed while down, \
             cache hits {} -> {} after restart without an app restart, signed-out session still refused",
            phase.as_millis(),
            statuses.total(),
            counter(&down, "storefront_redis_errors_total"),
            hits(&back),
            hits(&later),
        ),
    );
}

/// With Redis stopped, requests do not each wait out the Redis call timeout: after a few failed
/// calls the breaker turns calls away (counted in `storefront_cache_bypassed_total`), so Redis is
/// tried far less often than requests are made; sessions are checked in the database meanwhile, so a
/// sign-out made during the outage takes effect; when Redis is back, a probe closes the breaker and
/// the cache is used again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_breaker_sends_requests_straight_to_the_database() {
    let mut redis = PrivateRedis::start();
    let app = TestApp::spawn_with(settings(&[
        ("REDIS_URL", &redis.url()),
        ("SEED_CATALOG", "true"),
    ]))
    .await;
    let shopper = app.customer().await;
    let quitter = app.customer().await;
    let add = json!({"product_id": 1, "quantity": 1});
    assert_eq!(
        shopper
            .api
            .post("/api/v1/cart/items", add.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    let metrics = || async { app.metrics().await };

    redis.stop();
    let before = metrics().await;
    const ROUNDS: usize = 40;
    for _ in 0..ROUNDS {
        for path in [
            "/api/v1/products?limit=20",
            "/api/v1/cart",
            "/api/v1/users/me",
        ] {
            let res = shopper.api.get(path).await;
            assert_eq!(
                res.status,
                StatusCode::OK,
                "{path} with Redis down: {}",
                res.text
            );
        }
    }
    assert_eq!(
        quitter
            .api
            .post("/api/v1/auth/logout", json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    quitter
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    // Readiness says Redis is down and which way requests go meanwhile; the gauge says the same.
    let ready = app.client().get("/ready").await;
    ready.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(
        ready.text.contains("the cache is bypassed"),
        "{}",
        ready.text
    );
    let during = metrics().await;
    assert!(
        during.contains("storefront_cache_breaker_open 1"),
        "{during}"
    );
    let tried = counter(&during, "storefront_redis_errors_total")
        - counter(&before, "storefront_redis_errors_total");
    let bypassed = counter(&during, "storefront_cache_bypassed_total")
        - counter(&before, "storefront_cache_bypassed_total");
    let requests = 3 * ROUNDS as u64;
    assert!(
        bypassed > 0,
        "the breaker never opened ({tried} Redis calls tried)"
    );
    assert!(
        tried < requests / 2,
        "Redis was tried {tried} times for {requests} requests: the breaker did not hold calls back"
    );

    redis.restart();
    let mut hits = 0;
    for _ in 0..100 {
        shopper.api.get("/api/v1/products?limit=20").await;
        let now = metrics().await;
        hits = counter(&now, "storefront_cache_hits_total")
            - counter(&during, "storefront_cache_hits_total");
        if hits > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        hits > 0,
        "the cache was never used again after Redis came back"
    );
    assert!(metrics().await.contains("storefront_cache_breaker_open 0"));
    quitter
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    report(
        "redis-breaker",
        format!(
            "Redis stopped: {requests} requests all 200 with {tried} Redis calls tried and {bypassed} \
             turned away by the breaker; a sign-out during the outage refused the token at once; \
             the cache used again after the restart"
        ),
    );
}
