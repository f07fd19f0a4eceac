//! Crash durability: the real binary on a SurrealKV directory (or, in the remote pass, over the shared
//! SurrealDB server), under checkout load, is killed with SIGKILL at a random moment, restarted on
//! the same data and checked, several times over. Carts mix the starter catalog's one-variant
//! products with sized ones (three variants each), and every check is per variant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::report::{Statuses, report};
use crate::common::{
    Api, PASSWORD, ServerProcess, remote_surreal, surrealkv_url, temp_dir, unique, variant_units,
};

const KILLS: usize = 5;
const BUYERS: usize = 12;
/// The starter catalog's products (one variant each).
const SEEDED: i64 = 20;
/// Products added in sizes S, M and L.
const SIZED: usize = 3;

/// An order the server answered 201 for: whose it is and what it holds.
#[derive(Clone)]
struct Acknowledged {
    token: String,
    id: String,
    units: HashMap<i64, i64>,
}

/// One buyer's loop: fill a cart with 1-3 random variants, check out with an Idempotency-Key,
/// record every 201; stops at the first transport error (the server was killed).
async fn buy_until_killed(
    api: Api,
    token: String,
    variants: Arc<Vec<i64>>,
    acknowledged: Arc<Mutex<Vec<Acknowledged>>>,
) -> Statuses {
    let mut statuses = Statuses::default();
    loop {
        let lines: Vec<i64> = {
            let mut rng = rand::rng();
            let n = rng.random_range(1..=3);
            (0..n)
                .map(|_| variants[rng.random_range(0..variants.len())])
                .collect()
        };
        for variant_id in lines {
            let body = json!({"variant_id": variant_id, "quantity": 1});
            match api
                .try_send(Method::POST, "/api/v1/cart/items", Some(body))
                .await
            {
                Ok(res) => statuses.add(res.status),
                Err(_) => return statuses,
            }
        }
        let checkout = api
            .http
            .post(format!("{}/api/v1/orders", api.base))
            .bearer_auth(&token)
            .header("idempotency-key", unique("crash"))
            .header("content-type", "application/json")
            .body(json!({"shipping_address": "1 High Street, London"}).to_string())
            .send()
            .await;
        let Ok(response) = checkout else {
            return statuses;
        };
        let res = crate::common::read(response).await;
        statuses.add(res.status);
        match res.status {
            StatusCode::CREATED => acknowledged.lock().unwrap().push(Acknowledged {
                token: token.clone(),
                id: res.json["id"].as_str().unwrap().to_string(),
                units: variant_units(&res.json),
            }),
            // Sold out: empty the cart and go on.
            _ => {
                if api
                    .try_send(Method::DELETE, "/api/v1/cart", None)
                    .await
                    .is_err()
                {
                    return statuses;
                }
            }
        }
    }
}

/// Every unit in every stored order of these buyers, by variant.
async fn units_in_orders(server: &ServerProcess, tokens: &[String]) -> (usize, HashMap<i64, i64>) {
    let (mut orders, mut total) = (0, HashMap::new());
    for token in tokens {
        let api = server.client().with_token(token);
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/orders?limit=100&cursor={c}"),
                None => "/api/v1/orders?limit=100".to_string(),
            };
            let page = api.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            for order in page.json["items"].as_array().unwrap() {
                orders += 1;
                for (variant, n) in variant_units(order) {
                    *total.entry(variant).or_default() += n;
                }
            }
            match page.json["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
    }
    (orders, total)
}

/// Stock per variant of the given products.
async fn stock_levels(server: &ServerProcess, products: &[i64]) -> HashMap<i64, i64> {
    let mut out = HashMap::new();
    for id in products {
        let res = server.client().get(&format!("/api/v1/products/{id}")).await;
        for variant in res.json["variants"].as_array().expect("variants") {
            out.insert(
                variant["id"].as_i64().unwrap(),
                variant["stock"].as_i64().expect("stock"),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_answered_201_survive_sigkill_under_checkout_load() {
    // SurrealKV in a directory of its own; in the remote pass, the shared SurrealDB server (then it
    // is the application that dies, and the orders must be in the server).
    let dir = temp_dir("crash");
    let namespace = unique("crash");
    let admin_email = format!("{}@example.com", unique("crash-admin"));
    let mut vars: Vec<(&str, String)> = match remote_surreal() {
        Some(remote) => remote.into_iter().collect(),
        None => vec![("SURREAL_URL", surrealkv_url(&dir))],
    };
    vars.extend([
        ("SURREAL_NS", namespace),
        // The starter catalog, loaded at the first start (into an empty catalog only).
        ("SEED_CATALOG", "true".into()),
        ("LOGIN_LIMIT_PER_IP", "100000".into()),
        // An admin made at start, who adds the sized products.
        ("STOREFRONT_ADMIN_EMAIL", admin_email.clone()),
        ("STOREFRONT_ADMIN_PASSWORD", PASSWORD.into()),
    ]);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = ServerProcess::start(&vars).await;
    let login = server
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": admin_email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.json["user"]["role"], "admin", "{}", login.text);
    let admin = server
        .client()
        .with_token(login.json["tokens"]["access_token"].as_str().unwrap());
    let mut products: Vec<i64> = (1..=SEEDED).collect();
    for n in 0..SIZED {
        let res = admin
            .post(
                "/api/v1/products",
                json!({
                    "name": format!("Crash tee {n}"),
                    "price": {"amount": 2000, "currency": "GBP"},
                    "options": [{"name": "Size", "values": ["S", "M", "L"]}],
                    "variants": [
                        {"option_values": {"Size": "S"}, "stock": 30},
                        {"option_values": {"Size": "M"}, "stock": 30},
                        {"option_values": {"Size": "L"}, "stock": 30}
                    ]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        products.push(res.json["id"].as_i64().unwrap());
    }
    let start = stock_levels(&server, &products).await;
    let variants: Arc<Vec<i64>> = Arc::new(start.keys().copied().collect());
    assert_eq!(variants.len(), SEEDED as usize + 3 * SIZED);

    // Buyers sign up once; their tokens stay valid across restarts (sessions live in the database).
    let mut tokens = Vec::new();
    for _ in 0..BUYERS {
        let email = format!("{}@example.com", unique("buyer"));
        let res = server
            .client()
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": PASSWORD, "name": "Buyer"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        tokens.push(
            res.json["tokens"]["access_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    let acknowledged = Arc::new(Mutex::new(Vec::<Acknowledged>::new()));
    let mut statuses = Statuses::default();
    let mut unanswered = 0;
    for kill in 1..=KILLS {
        let before = acknowledged.lock().unwrap().len();
        let buyers: Vec<_> = tokens
            .iter()
            .map(|token| {
                let api = server.client().with_token(token);
                tokio::spawn(buy_until_killed(
                    api,
                    token.clone(),
                    variants.clone(),
                    acknowledged.clone(),
                ))
            })
            .collect();
        // Let orders flow, then kill at a random moment while checkouts are in flight.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while acknowledged.lock().unwrap().len() < before + 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "kill {kill}: no orders flowing"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wait = rand::rng().random_range(0..400);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill();
        for buyer in buyers {
            let seen = buyer.await.unwrap();
            // Each buyer's last request died with the server: its outcome is unknown to the client.
            unanswered += 1;
            statuses.merge(&seen);
        }

        server = ServerProcess::start(&vars).await;
        let answered: Vec<Acknowledged> = acknowledged.lock().unwrap().clone();
        let acked = answered.len();
        for order in &answered {
            let api = server.client().with_token(&order.token);
            let kept = api.get(&format!("/api/v1/orders/{}", order.id)).await;
            assert_eq!(
                kept.status,
                StatusCode::OK,
                "kill {kill}: order {} answered 201 is gone: {}",
                order.id,
                kept.text
            );
            assert_eq!(
                variant_units(&kept.json),
                order.units,
                "kill {kill}: order {}",
                order.id
            );
        }
        let (stored, sold) = units_in_orders(&server, &tokens).await;
        let now = stock_levels(&server, &products).await;
        for id in variants.iter() {
            let sold = sold.get(id).copied().unwrap_or(0);
            assert!(now[id] >= 0);
            assert_eq!(
                now[id] + sold,
                start[id],
                "kill {kill}: variant {id}: stock {} + sold {sold} != start {}",
                now[id],
                start[id]
            );
        }
        assert!(
            stored >= acked,
            "kill {kill}: {stored} stored < {acked} acknowledged"
        );
        report(
            "crash",
            format!(
                "kill {kill}/{KILLS} after {wait} ms of random wait: {acked} orders answered 201 so far, \
                 all present with their lines; {stored} orders stored; stock + sold = start for all \
                 {} variants ({SEEDED} one-variant products, {SIZED} in three sizes)",
                variants.len()
            ),
        );
    }
    assert_eq!(statuses.server_errors(), 0, "{statuses}");
    report(
        "crash",
        format!(
            "{KILLS} SIGKILLs under {BUYERS}-buyer checkout load: {} answered requests \
             ({statuses}), {unanswered} cut off by the kills, 0 server errors",
            statuses.total()
        ),
    );
    server.kill();
    let _ = std::fs::remove_dir_all(dir);
}
