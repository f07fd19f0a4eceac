//! The store's floor for the write paths: the very SurrealQL of an add-to-cart and of a 3-line checkout
//! (the store's own functions, as the services call them), run in this process against a fresh
//! embedded SurrealKV directory, with no HTTP, no sessions and no cache: what the load tool's
//! `cart-write` and `checkout` scenarios would reach if everything above the store cost nothing.
//!
//! `cargo bench --bench floor -- [--connections 32] [--seconds 10] [--warmup 2]
//! [--scenarios cart-write,cart-write-hot,checkout,checkout-disjoint]`
//!
//! Like the load tool, each of `--connections` tasks repeats one iteration: `cart-write` adds a line
//! and removes it (2 writes), `checkout` adds 3 lines and checks out (4 writes, one order), every
//! task on a cart of its own; `cart-write-hot` is `cart-write` with every task on one cart, each with
//! a product of its own (the writes queued on that cart commit together). `checkout` buys the same 3 products in every task, as the load
//! tool's scenario does (every order takes stock from the same variants); `checkout-disjoint` buys 3
//! products of the task's own, so no two orders touch one variant. Both checkouts run under each
//! `StockPolicy` (one stock transaction at a time, one per variant, none queued: conflicts retried);
//! a checkout that runs out of retries is counted as failed. No assertion here: it measures, it does
//! not judge.

use std::time::{Duration, Instant};

use storefront::domain::{CartOwner, OrderId, ProductId, UserId, VariantId};
use storefront::store::orders::CheckoutOutcome;
use storefront::store::products::{NewProduct, NewVariant};
use storefront::store::{StockPolicy, Store, StoreError};

mod common;
use common::{FreshStore, flag, flags, percentile};

/// The server's allocator (src/main.rs), so the store's work here costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// One iteration of `scenario` on the cart of `user`: false when a write ran out of retries.
async fn iteration(db: &Store, scenario: &str, user: &UserId, task: usize) -> bool {
    let cart = CartOwner::User(user.clone());
    let settled = |result: Result<(), StoreError>| match result {
        Ok(()) => true,
        Err(StoreError::Conflict) => false,
        Err(other) => panic!("{scenario}: {other}"),
    };
    if scenario.starts_with("cart-write") {
        let variant = VariantId::from_trusted(if scenario == "cart-write-hot" {
            4 + task as i64
        } else {
            1 + (task % 3) as i64
        });
        let added = db.add_to_cart(&cart, None, variant, 1, 999).await;
        if !settled(added.map(drop)) {
            return false;
        }
        return settled(db.remove_cart_line(&cart, None, variant).await.map(drop));
    }
    let first = if scenario == "checkout-disjoint" {
        4 + 3 * task as i64
    } else {
        1
    };
    for product in first..first + 3 {
        let added = db
            .add_to_cart(&cart, None, VariantId::from_trusted(product), 1, 999)
            .await;
        if !settled(added.map(drop)) {
            return false;
        }
    }
    let placed = db
        .checkout(user, &OrderId::generate(), "1 Floor Street", None, false, 5)
        .await;
    settled(placed.map(|placed| {
        assert!(
            matches!(placed, CheckoutOutcome::Placed { .. }),
            "{placed:?}"
        );
    }))
}

#[tokio::main]
async fn main() {
    let flags = flags();
    let connections: usize = flag(&flags, "connections", 32);
    let seconds: u64 = flag(&flags, "seconds", 10);
    let warmup: u64 = flag(&flags, "warmup", 2);
    let only: Vec<String> = flags
        .get("scenarios")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let fresh = FreshStore::open("floor").await;
    let db = fresh.store();
    // Products 1-3 for every task, then 3 of each task's own; each with one variant numbered as it is.
    db.insert_missing_products(
        (1..=3 + 3 * connections as i64)
            .map(|n| (ProductId::from_trusted(n), product(n)))
            .collect(),
    )
    .await
    .expect("insert products");

    println!(
        "store floor: {} tasks, {} s warm-up, {} s measured, embedded SurrealKV, in-process",
        connections, warmup, seconds
    );
    println!(
        "{:<30} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "scenario", "iter/s", "p50 ms", "p90 ms", "p99 ms", "failed"
    );
    let runs = [
        ("cart-write", StockPolicy::Gate),
        ("cart-write-hot", StockPolicy::Gate),
        ("checkout", StockPolicy::Gate),
        ("checkout", StockPolicy::PerVariant),
        ("checkout", StockPolicy::Retries),
        ("checkout-disjoint", StockPolicy::Gate),
        ("checkout-disjoint", StockPolicy::PerVariant),
        ("checkout-disjoint", StockPolicy::Retries),
    ];
    for (run, (scenario, policy)) in runs.into_iter().enumerate() {
        if !only.is_empty() && !only.iter().any(|s| s == scenario) {
            continue;
        }
        let db = db.clone().with_stock_policy(policy);
        let clock_starts = Instant::now() + Duration::from_secs(warmup);
        let ends = clock_starts + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..connections)
            .map(|task| {
                let db = db.clone();
                let user = UserId::from_trusted(if scenario == "cart-write-hot" {
                    format!("floor_{run}_hot")
                } else {
                    format!("floor_{run}_{task}")
                });
                tokio::spawn(async move {
                    let (mut latencies, mut failed) = (Vec::new(), 0u64);
                    loop {
                        let sent = Instant::now();
                        if sent >= ends {
                            break;
                        }
                        let done = iteration(&db, scenario, &user, task).await;
                        if sent >= clock_starts {
                            if done {
                                latencies.push(sent.elapsed());
                            } else {
                                failed += 1;
                            }
                        }
                    }
                    (latencies, failed)
                })
            })
            .collect();
        let (mut latencies, mut failed) = (Vec::new(), 0);
        for task in tasks {
            let (l, f) = task.await.expect("task");
            latencies.extend(l);
            failed += f;
        }
        latencies.sort();
        let policy = match policy {
            StockPolicy::Gate => "",
            StockPolicy::PerVariant => " (per variant)",
            StockPolicy::Retries => " (retries only)",
        };
        println!(
            "{:<30} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            format!("{scenario}{policy}"),
            latencies.len() as f64 / seconds as f64,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
            failed,
        );
    }
}
