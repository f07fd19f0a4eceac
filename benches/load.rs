//! Load tool: runs named scenarios against a running Storefront and prints throughput and latency.
//!
//! `cargo bench --bench load -- --url http://127.0.0.1:8080 --admin-email E --admin-password P
//!  [--scenarios ceiling,login,catalog,checkout] [--connections 32] [--seconds 10] [--warmup 2]`
//!
//! Every virtual user registers (or signs in) before the clock starts. `ceiling` (`GET /health`) is
//! the cheapest route, so each other scenario is also shown as a ratio of it, measured in the same run.
//! No assertion here: it measures, it does not judge.

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
        scenarios: vec![
            "ceiling".into(),
            "login".into(),
            "catalog".into(),
            "checkout".into(),
        ],
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

/// What one request of a scenario does; returns the status of its last response.
#[derive(Clone)]
enum Step {
    Health,
    Login { email: String },
    Catalog,
    Checkout { token: String, product: i64 },
}

const PASSWORD: &str = "load test password";

async fn run_step(http: &Client, base: &str, step: &Step) -> StatusCode {
    let result = match step {
        Step::Health => http.get(format!("{base}/health")).send().await,
        Step::Catalog => {
            http.get(format!("{base}/api/v1/products?limit=20"))
                .send()
                .await
        }
        Step::Login { email } => {
            http.post(format!("{base}/api/v1/auth/login"))
                .header("content-type", "application/json")
                .body(json!({"email": email, "password": PASSWORD}).to_string())
                .send()
                .await
        }
        Step::Checkout { token, product } => {
            let added = http
                .post(format!("{base}/api/v1/cart/items"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(json!({"product_id": product, "quantity": 1}).to_string())
                .send()
                .await;
            match added {
                Ok(r) if r.status().is_success() => {
                    http.post(format!("{base}/api/v1/orders"))
                        .bearer_auth(token)
                        .header("content-type", "application/json")
                        .body(json!({"shipping_address": "1 Load Street"}).to_string())
                        .send()
                        .await
                }
                other => other,
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
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}  errors",
        "scenario", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "x ceiling"
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
            "checkout" => {
                let admin = admin_token(&http, &base, &o).await;
                let res = http
                    .post(format!("{base}/api/v1/products"))
                    .bearer_auth(&admin)
                    .header("content-type", "application/json")
                .body(json!({"name": format!("Load {run_id}"), "price": {"amount": 100, "currency": "GBP"}, "stock": 1_000_000_000}).to_string())
                    .send()
                    .await
                    .expect("create product");
                let product: Value = serde_json::from_slice(&res.bytes().await.expect("product"))
                    .expect("product json");
                let product = product["id"].as_i64().expect("product id");
                let mut steps = Vec::new();
                for i in 0..o.connections {
                    let token = register(
                        &http,
                        &base,
                        &format!("buyer-{run_id}-{i}@load.example.com"),
                    )
                    .await;
                    steps.push(Step::Checkout { token, product });
                }
                steps
            }
            other => {
                eprintln!("unknown scenario {other}; known: ceiling, login, catalog, checkout");
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
            "{:<10} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}  {}",
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
