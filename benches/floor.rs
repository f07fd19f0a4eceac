//! The store's floor for the write paths: the very SurrealQL of an add-to-cart and of a 3-line checkout
//! (the store's own functions, as the services call them), run in this process against a fresh
//! embedded SurrealKV directory, with no HTTP, no sessions and no cache: what the load tool's
//! `cart-write` and `checkout` scenarios would reach if everything above the store cost nothing.
//!
//! `cargo bench --bench floor -- [--connections 32] [--seconds 10] [--warmup 2]`
//!
//! Like the load tool, each of `--connections` tasks repeats one iteration: `cart-write` adds a line
//! and removes it (2 transactions), `checkout` adds 3 lines and checks out (4 transactions, one order),
//! every task on a cart of its own. No assertion here: it measures, it does not judge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storefront::config::SurrealSettings;
use storefront::domain::{CartOwner, OrderId, ProductId, UserId, VariantId};
use storefront::metrics::Metrics;
use storefront::store::orders::CheckoutOutcome;
use storefront::store::products::{NewProduct, NewVariant};
use storefront::store::{self, Store};

struct Options {
    connections: usize,
    seconds: u64,
    warmup: u64,
}

fn options() -> Options {
    let mut o = Options {
        connections: 32,
        seconds: 10,
        warmup: 2,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--connections" => o.connections = value.parse().expect("--connections N"),
            "--seconds" => o.seconds = value.parse().expect("--seconds N"),
            "--warmup" => o.warmup = value.parse().expect("--warmup N"),
            // `cargo bench` passes --bench to every bench binary.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn product(n: i64) -> NewProduct {
    NewProduct {
        name: format!("Floor product {n}"),
        description: "A product of the store-floor benchmark.".into(),
        category: String::new(),
        price: 1000 + n,
        currency: "GBP".into(),
        image_url: String::new(),
        options: Vec::new(),
        variants: vec![NewVariant {
            sku: None,
            option_values: Vec::new(),
            price: None,
            stock: 1_000_000_000,
        }],
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// One iteration of `scenario` on the cart of `user`.
async fn iteration(db: &Store, scenario: &str, user: &UserId, task: usize) {
    let cart = CartOwner::User(user.clone());
    if scenario == "cart-write" {
        let variant = VariantId::from_trusted(1 + (task % 3) as i64);
        db.add_to_cart(&cart, None, variant, 1, 999)
            .await
            .expect("add to cart");
        db.remove_cart_line(&cart, None, variant)
            .await
            .expect("remove from cart");
        return;
    }
    for product in 1..=3 {
        db.add_to_cart(&cart, None, VariantId::from_trusted(product), 1, 999)
            .await
            .expect("add to cart");
    }
    let placed = db
        .checkout(user, &OrderId::generate(), "1 Floor Street", None, false, 5)
        .await
        .expect("checkout");
    assert!(matches!(placed, CheckoutOutcome::Placed { .. }));
}

#[tokio::main]
async fn main() {
    let o = options();
    let dir = std::env::temp_dir().join(format!("storefront-floor-{}", uuid::Uuid::new_v4()));
    let settings = SurrealSettings {
        url: format!("surrealkv://{}", dir.display()),
        namespace: "floor".into(),
        database: "floor".into(),
        username: None,
        password: None,
        ca: None,
    };
    let db = Store::connect(&settings, Arc::new(Metrics::default()))
        .await
        .expect("open the store");
    store::migrate(&db).await.expect("apply the schema");
    // Products 1-3, each with one variant numbered as it is.
    db.insert_missing_products(
        (1..=3)
            .map(|n| (ProductId::from_trusted(n), product(n)))
            .collect(),
    )
    .await
    .expect("insert products");

    println!(
        "store floor: {} tasks, {} s warm-up, {} s measured, embedded SurrealKV, in-process",
        o.connections, o.warmup, o.seconds
    );
    println!(
        "{:<16} {:>10} {:>9} {:>9} {:>9}",
        "scenario", "iter/s", "p50 ms", "p90 ms", "p99 ms"
    );
    for scenario in ["cart-write", "checkout"] {
        let clock_starts = Instant::now() + Duration::from_secs(o.warmup);
        let ends = clock_starts + Duration::from_secs(o.seconds);
        let tasks: Vec<_> = (0..o.connections)
            .map(|task| {
                let db = db.clone();
                let user =
                    UserId::from_trusted(format!("floor_{scenario}_{task}").replace('-', "_"));
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let sent = Instant::now();
                        if sent >= ends {
                            break;
                        }
                        iteration(&db, scenario, &user, task).await;
                        if sent >= clock_starts {
                            latencies.push(sent.elapsed());
                        }
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.expect("task"));
        }
        latencies.sort();
        println!(
            "{:<16} {:>10.1} {:>9.2} {:>9.2} {:>9.2}",
            scenario,
            latencies.len() as f64 / o.seconds as f64,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
        );
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
