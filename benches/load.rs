//! Load tool: runs named scenarios against a running Storefront and prints throughput and latency.
//!
//! `cargo bench --bench load -- --url http://127.0.0.1:8080 --admin-email E --admin-password P
//!  [--scenarios ceiling,login,...] [--connections 32] [--seconds 10] [--warmup 2]
//!  [--catalog-size N]`
//!
//! Before any scenario the catalog is topped up to `--catalog-size` products on sale (default: what
//! it holds, at least 20) with products shaped like a clothing shop's: a name, a description of a few
//! sentences (300-600 characters), a category of the starter catalog's, four sizes with stock each.
//!
//! Scenarios: `ceiling` (`GET /health`), `login`, `catalog` (the first page of 20, v1, asking for gzip
//! as browsers do), `catalog-deep` (a page of 20 halfway through the catalog, reached by its cursor),
//! `catalog-miss` (a first page of 20 under a price bound no request repeats, so never cached: what a
//! miss costs), `catalog-legacy` (`GET /products`: the whole catalog, up to 10,000 products),
//! `cart-read` (a 3-line cart, v1), `cart-read-legacy` (`GET /cart_items/items`, signed in through the
//! NextBuy routes and their cookies only), `cart-write` (add a line, remove it: one iteration is 2
//! requests), `cart-write-hot` (the same, every connection on one customer's cart, each its own
//! product), `checkout` (fill a 3-line cart, check out: one iteration is 4 requests and one order),
//! `mixed` (three connections in four read the catalog's first page while the rest check out; a row
//! for each, so what each order's cache invalidation costs the readers shows). A catalog scenario
//! refuses to run on a page smaller than it claims. Every virtual user registers (or signs in) before
//! the clock starts.
//! `ceiling` is the cheapest route, so each other scenario is also shown as a ratio of it, measured in
//! the same run. No assertion here: it measures, it does not judge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

mod shop;

struct Options {
    url: String,
    admin_email: Option<String>,
    admin_password: Option<String>,
    scenarios: Vec<String>,
    connections: usize,
    seconds: u64,
    warmup: u64,
    catalog_size: usize,
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
        catalog_size: PAGE,
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
            "--catalog-size" => o.catalog_size = value.parse().expect("--catalog-size N"),
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
    /// A catalog URL (path and query).
    Catalog {
        path: String,
    },
    /// The first page under a price bound of its own each time: never a cache hit.
    CatalogMiss,
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
        item: Item,
    },
    Checkout {
        token: String,
        products: Vec<i64>,
    },
}

const PASSWORD: &str = "load test password";
/// A catalog page as a shopper's first view holds it.
const PAGE: usize = 20;
/// `catalog-miss`: the price bounds handed out so far.
static MISSES: AtomicI64 = AtomicI64::new(0);

fn post_json(http: &Client, url: String, token: &str, body: Value) -> reqwest::RequestBuilder {
    http.post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
}

async fn run_step(http: &Client, base: &str, step: &Step) -> StatusCode {
    let result = match step {
        Step::Health => http.get(format!("{base}/health")).send().await,
        Step::Catalog { path } => {
            http.get(format!("{base}{path}"))
                .header("accept-encoding", "gzip")
                .send()
                .await
        }
        Step::CatalogMiss => {
            let bound = 100_000_000 - MISSES.fetch_add(1, Ordering::Relaxed);
            http.get(format!(
                "{base}/api/v1/products?limit={PAGE}&max_price={bound}"
            ))
            .header("accept-encoding", "gzip")
            .send()
            .await
        }
        Step::CatalogLegacy => {
            http.get(format!("{base}/products"))
                .header("accept-encoding", "gzip")
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
        Step::CartWrite { token, item } => {
            let line = json!({"product_id": item.product, "quantity": 1});
            match post_json(http, format!("{base}/api/v1/cart/items"), token, line)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    // Read every body: a response dropped unread closes its connection, and the
                    // next request would pay for a new one.
                    let _ = r.bytes().await;
                    http.delete(format!("{base}/api/v1/cart/items/{}", item.line))
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

impl Step {
    /// What the step is, for the rows of a scenario that mixes steps.
    fn label(&self) -> &'static str {
        match self {
            Step::Checkout { .. } => "checkout",
            Step::Catalog { .. } | Step::CatalogMiss | Step::CatalogLegacy => "catalog",
            Step::CartWrite { .. } => "cart-write",
            Step::CartRead { .. } | Step::CartReadLegacy { .. } => "cart-read",
            Step::Login { .. } => "login",
            Step::Health => "health",
        }
    }
}

/// One kind of step's figures in a scenario.
#[derive(Default)]
struct Outcome {
    requests: usize,
    latencies: Vec<Duration>,
    errors: BTreeMap<u16, usize>,
}

/// Runs every step on its own connection; the figures of each kind of step.
async fn drive(
    base: Arc<str>,
    http: Client,
    steps: Vec<Step>,
    warmup: Duration,
    measure: Duration,
) -> BTreeMap<&'static str, Outcome> {
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
                (step.label(), latencies, errors)
            })
        })
        .collect();
    let mut outcomes: BTreeMap<&'static str, Outcome> = BTreeMap::new();
    for task in tasks {
        let (label, latencies, errors) = task.await.expect("virtual user");
        let outcome = outcomes.entry(label).or_default();
        outcome.requests += latencies.len();
        outcome.latencies.extend(latencies);
        for (status, n) in errors {
            *outcome.errors.entry(status).or_default() += n;
        }
    }
    for outcome in outcomes.values_mut() {
        outcome.latencies.sort();
    }
    outcomes
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

/// A product made for the cart scenarios, and its one variant: what a cart line is keyed by, which
/// is the product's own number only while every product before it has one variant.
#[derive(Debug, Clone, Copy)]
struct Item {
    product: i64,
    line: i64,
}

/// Creates `n` products with stock enough for any run; returns their ids.
async fn products(http: &Client, base: &str, o: &Options, run_id: &str, n: usize) -> Vec<i64> {
    items(http, base, o, run_id, n)
        .await
        .into_iter()
        .map(|i| i.product)
        .collect()
}

/// Creates `n` products with stock enough for any run; returns each with its variant.
async fn items(http: &Client, base: &str, o: &Options, run_id: &str, n: usize) -> Vec<Item> {
    let admin = admin_token(http, base, o).await;
    let mut ids = Vec::new();
    for i in 0..n {
        // Shaped like the catalog's own (a catalog page after it still holds real products), with
        // one variant and stock enough for any run.
        let mut body = generated_product(run_id, i);
        body["options"] = json!([]);
        body["stock"] = json!(1_000_000_000);
        if let Some(fields) = body.as_object_mut() {
            fields.remove("variants");
        }
        let res = post_json(http, format!("{base}/api/v1/products"), &admin, body)
            .send()
            .await
            .expect("create product");
        let product: Value =
            serde_json::from_slice(&res.bytes().await.expect("product")).expect("product json");
        ids.push(Item {
            product: product["id"].as_i64().expect("product id"),
            line: product["variants"][0]["id"]
                .as_i64()
                .expect("the product's variant"),
        });
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

const SCENARIOS: &str = "ceiling, login, catalog, catalog-deep, catalog-miss, catalog-legacy, \
     cart-read, cart-read-legacy, cart-write, cart-write-hot, checkout, mixed";

/// The catalog's products on sale, walked page by page; returns their count and the path of the
/// page of 20 halfway through (reached by its cursor).
async fn walk_catalog(http: &Client, base: &str) -> (usize, String) {
    let mut count = 0;
    let mut cursors = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/products?limit={PAGE}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = serde_json::from_slice(
            &http
                .get(url)
                .send()
                .await
                .expect("catalog")
                .bytes()
                .await
                .expect("catalog body"),
        )
        .expect("catalog json");
        count += page["items"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(next) => {
                cursors.push(next.to_string());
                cursor = Some(next.to_string());
            }
            None => break,
        }
    }
    let deep = match cursors.get(cursors.len().saturating_sub(1) / 2) {
        Some(c) => format!("/api/v1/products?limit={PAGE}&cursor={c}"),
        None => format!("/api/v1/products?limit={PAGE}"),
    };
    (count, deep)
}

const WORDS: [&str; 12] = [
    "Linen",
    "Merino",
    "Organic",
    "Relaxed",
    "Tailored",
    "Washed",
    "Heavyweight",
    "Everyday",
    "Recycled",
    "Brushed",
    "Slim",
    "Classic",
];
const KINDS: [(&str, &str); 4] = [
    ("Shirt", "shirts"),
    ("Shorts", "shorts"),
    ("Trousers", "trousers"),
    ("Cap", "hats"),
];
/// Product `n` of a generated catalog: as a clothing shop lists one.
fn generated_product(run_id: &str, n: usize) -> Value {
    let (kind, category) = KINDS[n % KINDS.len()];
    let price = 1500 + (n as i64 * 37) % 8000;
    let sizes = shop::SIZES;
    json!({
        "name": format!("{} {} {kind} {}", WORDS[n % WORDS.len()], WORDS[(n / 7) % WORDS.len()], &run_id[..6]),
        "description": shop::description(n),
        "category": category,
        "price": {"amount": price, "currency": "GBP"},
        "image_url": format!("/images/generated-{n}.jpg"),
        "options": [{"name": "Size", "values": sizes}],
        "variants": sizes.iter().enumerate().map(|(i, size)| json!({
            "option_values": {"Size": size},
            "stock": 50 + ((n + i) % 7) as i64 * 10,
        })).collect::<Vec<_>>(),
    })
}

/// Tops the catalog up to `size` products on sale (bulk writes of 250); returns the deep page's path.
async fn fill_catalog(http: &Client, base: &str, o: &Options, run_id: &str) -> String {
    let (held, _) = walk_catalog(http, base).await;
    if held < o.catalog_size {
        let admin = admin_token(http, base, o).await;
        let missing: Vec<usize> = (held..o.catalog_size).collect();
        for chunk in missing.chunks(250) {
            let products: Vec<Value> = chunk
                .iter()
                .map(|&n| generated_product(run_id, n))
                .collect();
            let res = post_json(
                http,
                format!("{base}/api/v1/products/bulk"),
                &admin,
                json!({ "products": products }),
            )
            .send()
            .await
            .expect("bulk products");
            assert!(res.status().is_success(), "bulk products: {}", res.status());
        }
    }
    let (count, deep) = walk_catalog(http, base).await;
    assert!(
        count >= o.catalog_size.max(PAGE),
        "the catalog holds {count} products; the run claims {}",
        o.catalog_size.max(PAGE)
    );
    println!("catalog: {count} products on sale");
    deep
}

/// The products of a page (`path` on the v1 catalog); a catalog scenario is never run on fewer.
async fn page_size(http: &Client, base: &str, path: &str) -> usize {
    let page: Value = serde_json::from_slice(
        &http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("page")
            .bytes()
            .await
            .expect("page body"),
    )
    .expect("page json");
    page["items"].as_array().map_or(0, Vec::len)
}

/// Virtual users each with a signed-in account; `per_user` makes each one's step from its token and
/// index.
async fn customers(
    http: &Client,
    base: &str,
    o: &Options,
    prefix: &str,
    per_user: impl Fn(String, usize) -> Step,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0..o.connections {
        let email = format!("{prefix}-{i}@load.example.com");
        steps.push(per_user(register(http, base, &email).await, i));
    }
    steps
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
    let first_page = format!("/api/v1/products?limit={PAGE}");
    let deep_page = fill_catalog(&http, &base, &o, &run_id).await;
    for path in [&first_page, &deep_page] {
        let held = page_size(&http, &base, path).await;
        assert_eq!(held, PAGE, "{path} holds {held} products, not {PAGE}");
    }
    println!(
        "storefront load: {} connections, {} s warm-up, {} s measured, against {}",
        o.connections, o.warmup, o.seconds, base
    );
    println!(
        "{:<20} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}  errors",
        "scenario", "iter/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "x ceiling"
    );
    let mut ceiling: Option<f64> = None;
    for scenario in &o.scenarios {
        let prefix = format!("{scenario}-{run_id}");
        let steps: Vec<Step> = match scenario.as_str() {
            "ceiling" => vec![Step::Health; o.connections],
            "catalog" => vec![
                Step::Catalog {
                    path: first_page.clone()
                };
                o.connections
            ],
            "catalog-deep" => vec![
                Step::Catalog {
                    path: deep_page.clone()
                };
                o.connections
            ],
            "catalog-miss" => vec![Step::CatalogMiss; o.connections],
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
            "cart-read" => {
                let products = products(&http, &base, &o, &run_id, 3).await;
                let mut steps = customers(&http, &base, &o, &prefix, |token, _| Step::CartRead {
                    token,
                })
                .await;
                // Three lines to show, as a shopper's cart has.
                for step in &mut steps {
                    let Step::CartRead { token } = step else {
                        continue;
                    };
                    for product in &products {
                        let line = json!({"product_id": product, "quantity": 1});
                        post_json(&http, format!("{base}/api/v1/cart/items"), token, line)
                            .send()
                            .await
                            .expect("fill cart");
                    }
                }
                steps
            }
            "cart-write" => {
                let items = items(&http, &base, &o, &run_id, 3).await;
                customers(&http, &base, &o, &prefix, |token, i| Step::CartWrite {
                    token,
                    item: items[i % items.len()],
                })
                .await
            }
            "cart-write-hot" => {
                // One customer, every connection on its cart, each with a product of its own.
                let items = items(&http, &base, &o, &run_id, o.connections).await;
                let token = register(&http, &base, &format!("{prefix}@load.example.com")).await;
                items
                    .into_iter()
                    .map(|item| Step::CartWrite {
                        token: token.clone(),
                        item,
                    })
                    .collect()
            }
            "checkout" | "mixed" => {
                let products = products(&http, &base, &o, &run_id, 3).await;
                let mixed = scenario == "mixed";
                customers(&http, &base, &o, &prefix, |token, i| {
                    if mixed && i % 4 != 0 {
                        Step::Catalog {
                            path: first_page.clone(),
                        }
                    } else {
                        Step::Checkout {
                            token,
                            products: products.clone(),
                        }
                    }
                })
                .await
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
        let measure = Duration::from_secs(o.seconds);
        let outcomes = drive(
            base.clone(),
            http.clone(),
            steps,
            Duration::from_secs(o.warmup),
            measure,
        )
        .await;
        let several = outcomes.len() > 1;
        for (label, outcome) in &outcomes {
            let rps = outcome.requests as f64 / measure.as_secs_f64();
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
            let name = if several {
                format!("{scenario}/{label}")
            } else {
                scenario.clone()
            };
            println!(
                "{:<20} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}  {}",
                name,
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
}
