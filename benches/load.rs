//! Load tool: runs named scenarios against a running Storefront and prints throughput and latency.
//!
//! `cargo bench --bench load -- --url http://127.0.0.1:8080 --admin-email E --admin-password P
//!  [--scenarios ceiling,login,...] [--connections 32] [--seconds 10] [--warmup 2]`
//!
//! Scenarios: `ceiling` (`GET /health`), `login`, `catalog` (first page, v1), `catalog-legacy`
//! (`GET /products`), `cart-read` (a 3-line cart, v1), `cart-read-legacy` (`GET /cart_items/items`,
//! signed in through the NextBuy routes and their cookies only), `cart-write` (add a line, remove it:
//! one iteration is 2 requests), `checkout` (fill a 3-line cart, check out: one iteration is 4
//! requests and one order). Every virtual user registers (or signs in) before the clock starts.
//! `ceiling` is the cheapest route, so each other scenario is also shown as a ratio of it, measured in
//! the same run. No assertion here: it measures, it does not judge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

struct Options {
    url: String,
    admin_email: Option<String>,
    admin_password: Option<String>,
    scenarios: Vec<String>,
    connections: usize,
    seconds: u64,
    warmup: u64,
}

fn options() -> Options {
    let mut o = Options {
        url: "http://127.0.0.1:8080".into(),
        admin_email: None,
        admin_password: None,
        scenarios: SCENARIOS.split(", ").map(str::to_string).collect(),
        connections: 32,
        seconds: 10,
        warmup: 2,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--url" => o.url = value,
            "--admin-email" => o.admin_email = Some(value),
            "--admin-password" => o.admin_password = Some(value),
            "--scenarios" => o.scenarios = value.split(',').map(str::to_string).collect(),
            "--connections" => o.connections = value.parse().expect("--connections N"),
            "--seconds" => o.seconds = value.parse().expect("--seconds N"),
            "--warmup" => o.warmup = value.parse().expect("--warmup N"),
            // `cargo bench` passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// What one virtual user repeats; returns the status of its last response. Multi-request steps
/// (cart-write, checkout) count as one iteration.
#[derive(Clone)]
enum Step {
    Health,
    Login {
        email: String,
    },
    Catalog,
    CatalogLegacy,
    CartRead {
        token: String,
    },
    /// The NextBuy contract only: the cookies its login set.
    CartReadLegacy {
        cookies: String,
    },
    CartWrite {
        token: String,
        product: i64,
    },
    Checkout {
        token: String,
        products: Vec<i64>,
    },
}

const PASSWORD: &str = "load test password";

fn post_json(http: &Client, url: String, token: &str, body: Value) -> reqwest::RequestBuilder {
    http.post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
}

async fn run_step(http: &Client, base: &str, step: &Step) -> StatusCode {
    let result = match step {
        Step::Health => http.get(format!("{base}/health")).send().await,
        Step::Catalog => {
            http.get(format!("{base}/api/v1/products?limit=20"))
                .send()
                .await
        }
        Step::CatalogLegacy => http.get(format!("{base}/products")).send().await,
        Step::Login { email } => {
            http.post(format!("{base}/api/v1/auth/login"))
                .header("content-type", "application/json")
                .body(json!({"email": email, "password": PASSWORD}).to_string())
                .send()
                .await
        }
        Step::CartRead { token } => {
            http.get(format!("{base}/api/v1/cart"))
                .bearer_auth(token)
                .send()
                .await
        }
        Step::CartReadLegacy { cookies } => {
            http.get(format!("{base}/cart_items/items"))
                .header("cookie", cookies)
                .send()
                .await
        }
        Step::CartWrite { token, product } => {
            let line = json!({"product_id": product, "quantity": 1});
            match post_json(http, format!("{base}/api/v1/cart/items"), token, line)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    // Read every body: a response dropped unread closes its connection, and the
                    // next request would pay for a new one.
                    let _ = r.bytes().await;
                    http.delete(format!("{base}/api/v1/cart/items/{product}"))
                        .bearer_auth(token)
                        .send()
                        .await
                }
                other => other,
            }
        }
        Step::Checkout { token, products } => {
            let mut failed = None;
            for product in products {
                let line = json!({"product_id": product, "quantity": 1});
                match post_json(http, format!("{base}/api/v1/cart/items"), token, line)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    other => {
                        failed = Some(other);
                        break;
                    }
                }
            }
            match failed {
                Some(other) => other,
                None => {
                    let address = json!({"shipping_address": "1 Load Street"});
                    post_json(http, format!("{base}/api/v1/orders"), token, address)
                        .send()
                        .await
                }
            }
        }
    };
    match result {
        Ok(response) => {
            let status = response.status();
            let _ = response.bytes().await;
            status
        }
        Err(_) => StatusCode::from_u16(599).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

struct Outcome {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: BTreeMap<u16, usize>,
}

async fn drive(
    base: Arc<str>,
    http: Client,
    steps: Vec<Step>,
    warmup: Duration,
    measure: Duration,
) -> Outcome {
    let start = Instant::now();
    let clock_starts = start + warmup;
    let ends = clock_starts + measure;
    let tasks: Vec<_> = steps
        .into_iter()
        .map(|step| {
            let http = http.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors: BTreeMap<u16, usize> = BTreeMap::new();
                loop {
                    let sent = Instant::now();
                    if sent >= ends {
                        break;
                    }
                    let status = run_step(&http, &base, &step).await;
                    if sent >= clock_starts {
                        latencies.push(sent.elapsed());
                        if !status.is_success() {
                            *errors.entry(status.as_u16()).or_default() += 1;
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut outcome = Outcome {
        requests: 0,
        elapsed: measure,
        latencies: Vec::new(),
        errors: BTreeMap::new(),
    };
    for task in tasks {
        let (latencies, errors) = task.await.expect("virtual user");
        outcome.requests += latencies.len();
        outcome.latencies.extend(latencies);
        for (status, n) in errors {
            *outcome.errors.entry(status).or_default() += n;
        }
    }
    outcome.latencies.sort();
    outcome
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn register(http: &Client, base: &str, email: &str) -> String {
    let res = http
        .post(format!("{base}/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(json!({"email": email, "password": PASSWORD, "name": "Load"}).to_string())
        .send()
        .await
        .expect("register");
    let body: Value =
        serde_json::from_slice(&res.bytes().await.expect("register body")).expect("register json");
    body["tokens"]["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

async fn admin_token(http: &Client, base: &str, o: &Options) -> String {
    let (Some(email), Some(password)) = (&o.admin_email, &o.admin_password) else {
        panic!(
            "the checkout scenario needs --admin-email and --admin-password (storefront create-admin)"
        );
    };
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(json!({"email": email, "password": password}).to_string())
        .send()
        .await
        .expect("admin login");
    let body: Value = serde_json::from_slice(&res.bytes().await.expect("admin login body"))
        .expect("admin login json");
    body["tokens"]["access_token"]
        .as_str()
        .expect("admin token")
        .to_string()
}

/// Creates `n` products with stock enough for any run; returns their ids.
async fn products(http: &Client, base: &str, o: &Options, run_id: &str, n: usize) -> Vec<i64> {
    let admin = admin_token(http, base, o).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let body = json!({"name": format!("Load {run_id} {i}"), "price": {"amount": 100 + i as i64, "currency": "GBP"}, "stock": 1_000_000_000});
        let res = post_json(http, format!("{base}/api/v1/products"), &admin, body)
            .send()
            .await
            .expect("create product");
        let product: Value =
            serde_json::from_slice(&res.bytes().await.expect("product")).expect("product json");
        ids.push(product["id"].as_i64().expect("product id"));
    }
    ids
}

/// Registers and signs in through the NextBuy routes only; returns the cookies to send back.
async fn legacy_session(http: &Client, base: &str, email: &str) -> String {
    let account =
        json!({"email": email, "password": PASSWORD, "name": "Load", "address": "1 Load Street"});
    http.post(format!("{base}/authentication/register"))
        .header("content-type", "application/json")
        .body(account.to_string())
        .send()
        .await
        .expect("legacy register");
    let res = http
        .post(format!("{base}/authentication/login"))
        .header("content-type", "application/json")
        .body(json!({"email": email, "password": PASSWORD}).to_string())
        .send()
        .await
        .expect("legacy login");
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

const SCENARIOS: &str =
    "ceiling, login, catalog, catalog-legacy, cart-read, cart-read-legacy, cart-write, checkout";

#[tokio::main]
async fn main() {
    let o = options();
    let base: Arc<str> = o.url.trim_end_matches('/').into();
    let http = Client::builder()
        .pool_max_idle_per_host(o.connections)
        .build()
        .expect("client");
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    println!(
        "storefront load: {} connections, {} s warm-up, {} s measured, against {}",
        o.connections, o.warmup, o.seconds, base
    );
    println!(
        "{:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}  errors",
        "scenario", "iter/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "x ceiling"
    );
    let mut ceiling: Option<f64> = None;
    for scenario in &o.scenarios {
        let steps: Vec<Step> = match scenario.as_str() {
            "ceiling" => vec![Step::Health; o.connections],
            "catalog" => vec![Step::Catalog; o.connections],
            "login" => {
                let mut steps = Vec::new();
                for i in 0..o.connections {
                    let email = format!("login-{run_id}-{i}@load.example.com");
                    register(&http, &base, &email).await;
                    steps.push(Step::Login { email });
                }
                steps
            }
            "catalog-legacy" => vec![Step::CatalogLegacy; o.connections],
            "cart-read" | "cart-write" | "checkout" => {
                let products = products(&http, &base, &o, &run_id, 3).await;
                let mut steps = Vec::new();
                for i in 0..o.connections {
                    let email = format!("{scenario}-{run_id}-{i}@load.example.com");
                    let token = register(&http, &base, &email).await;
                    steps.push(match scenario.as_str() {
                        "cart-read" => {
                            // Three lines to show, as a shopper's cart has.
                            for product in &products {
                                let line = json!({"product_id": product, "quantity": 1});
                                post_json(&http, format!("{base}/api/v1/cart/items"), &token, line)
                                    .send()
                                    .await
                                    .expect("fill cart");
                            }
                            Step::CartRead { token }
                        }
                        "cart-write" => Step::CartWrite {
                            token,
                            product: products[i % products.len()],
                        },
                        _ => Step::Checkout {
                            token,
                            products: products.clone(),
                        },
                    });
                }
                steps
            }
            "cart-read-legacy" => {
                let products = products(&http, &base, &o, &run_id, 3).await;
                let mut steps = Vec::new();
                for i in 0..o.connections {
                    let email = format!("legacy-{run_id}-{i}@load.example.com");
                    let cookies = legacy_session(&http, &base, &email).await;
                    for product in &products {
                        http.post(format!("{base}/cart_items/add-item"))
                            .header("cookie", &cookies)
                            .header("content-type", "application/json")
                            .body(json!({"product_id": product, "quantity": 1}).to_string())
                            .send()
                            .await
                            .expect("fill legacy cart");
                    }
                    steps.push(Step::CartReadLegacy { cookies });
                }
                steps
            }
            other => {
                eprintln!("unknown scenario {other}; known: {SCENARIOS}");
                continue;
            }
        };
        let outcome = drive(
            base.clone(),
            http.clone(),
            steps,
            Duration::from_secs(o.warmup),
            Duration::from_secs(o.seconds),
        )
        .await;
        let rps = outcome.requests as f64 / outcome.elapsed.as_secs_f64();
        if scenario == "ceiling" {
            ceiling = Some(rps);
        }
        let ratio = ceiling.map_or("-".to_string(), |c| format!("{:.3}", rps / c));
        let errors = if outcome.errors.is_empty() {
            "none".to_string()
        } else {
            outcome
                .errors
                .iter()
                .map(|(s, n)| format!("{s}x{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{:<16} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}  {}",
            scenario,
            rps,
            percentile(&outcome.latencies, 0.50),
            percentile(&outcome.latencies, 0.90),
            percentile(&outcome.latencies, 0.99),
            outcome
                .latencies
                .last()
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            ratio,
            errors
        );
    }
}
