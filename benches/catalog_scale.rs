//! Catalog size: how the uncached catalog page and the cart/checkout transactions cost as the catalog
//! grows, measured on the store itself (an embedded SurrealKV directory, as the default shape runs).
//! Products are shaped as the load tool's: descriptions of 300-600 characters, four sizes each.
//!
//! `cargo bench --bench catalog_scale -- [--sizes 1000,10000,100000] [--samples 30]`
//!
//! Over HTTP a catalog page is served from the cache whatever the catalog's size; what grows with it is
//! the query behind a cache miss (after any product write or checkout), so that is what is timed here,
//! with the cart and checkout transactions beside it. Every figure is also shown as a ratio of the
//! smallest size, measured in the same run. No assertion here: it measures, it does not judge.

use std::time::{Duration, Instant};

use storefront::domain::{CartOwner, OrderId, ProductId, ProductOption, ProductSort, UserId};
use storefront::store::Store;
use storefront::store::products::{NewProduct, NewVariant, ProductQuery};

mod common;
mod shop;
use common::{FreshStore, flags, percentile};
use shop::SIZES;

/// The server's allocator (src/main.rs), so the store's work here costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHUNK: usize = 1000;

/// A size only product 1 comes in.
const RARE_SIZE: &str = "XXS";

/// Product `n`: shaped as the load tool's generated products (four sizes, each with its stock);
/// product 1 also comes in `RARE_SIZE`, which no other product has.
fn product(n: usize) -> NewProduct {
    let sizes: Vec<&str> = SIZES
        .iter()
        .copied()
        .chain((n == 1).then_some(RARE_SIZE))
        .collect();
    NewProduct {
        name: format!("Scale product {n}"),
        description: shop::description(n),
        category: ["books", "garden", "kitchen", "toys"][n % 4].to_string(),
        price: 100 + (n as i64 * 7919) % 100_000,
        currency: "GBP".into(),
        image_url: format!("https://img.example.com/{n}.png"),
        options: vec![ProductOption {
            name: "Size".into(),
            values: sizes.iter().map(|s| s.to_string()).collect(),
        }],
        variants: sizes
            .iter()
            .map(|size| NewVariant {
                sku: None,
                option_values: vec![size.to_string()],
                price: None,
                stock: 1_000_000,
            })
            .collect(),
    }
}

fn page(sort: ProductSort) -> ProductQuery {
    ProductQuery::first_page(sort, 20)
}

/// The load tool's `catalog-miss`: the newest first page under a price bound every product is
/// within, so the whole page still comes back.
fn bounded_page() -> ProductQuery {
    ProductQuery {
        max_price: Some(100_000_000),
        ..page(ProductSort::Newest)
    }
}

/// The newest first page of products with a size M in stock (a filter on the variants).
fn in_stock_page() -> ProductQuery {
    ProductQuery {
        in_stock: true,
        option: Some(("Size".into(), "M".into())),
        ..page(ProductSort::Newest)
    }
}

/// The newest first page of products with a size in stock: `XXL`, which no product has (answered
/// from the known facets), or `RARE_SIZE`, which one product has (the filter's worst case: every
/// product is read to find one).
fn size_page(size: &str) -> ProductQuery {
    ProductQuery {
        in_stock: true,
        option: Some(("Size".into(), size.into())),
        ..page(ProductSort::Newest)
    }
}

/// Times a first page of `query`, checking every time that it is full: 20 products and the one more
/// that says more follow.
async fn time_page(db: &Store, samples: usize, query: ProductQuery) -> (f64, f64) {
    time_page_of(db, samples, query, 21).await
}

/// Times a first page of `query`, checking every time that it holds `len` products.
async fn time_page_of(db: &Store, samples: usize, query: ProductQuery, len: usize) -> (f64, f64) {
    time(samples, || async {
        let page = db.list_products(&query).await.expect("a catalog page");
        assert_eq!(page.len(), len, "the page's products");
    })
    .await
}

/// Median and 90th percentile, in milliseconds.
fn summary(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort_unstable();
    (percentile(&times, 0.5), percentile(&times, 0.9))
}

/// Times `f` `samples` times after three untimed runs.
async fn time<F, Fut>(samples: usize, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..3 {
        f().await;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        f().await;
        times.push(start.elapsed());
    }
    summary(times)
}

#[tokio::main]
async fn main() {
    let flags = flags();
    let mut sizes: Vec<usize> = flags.get("sizes").map_or(vec![1000, 10_000, 100_000], |s| {
        s.split(',')
            .map(|n| n.parse().expect("--sizes takes numbers"))
            .collect()
    });
    sizes.sort_unstable();
    let samples: usize = common::flag(&flags, "samples", 30);
    let fresh = FreshStore::open("scale").await;
    let db = fresh.store();

    println!(
        "{:>9} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>9} {:>9}",
        "products",
        "newest p50",
        "newest p90",
        "by price p50",
        "bounded p50",
        "M stock p50",
        "XXL none p50",
        "XXS one p50",
        "add p50",
        "checkout p50",
        "newest x",
        "checkout x"
    );
    let mut stocked = 0;
    let mut base: Option<(f64, f64)> = None;
    let mut run = 0;
    for &size in &sizes {
        while stocked < size {
            let batch = (stocked..size.min(stocked + CHUNK))
                .map(|n| (ProductId::from_trusted((n + 1) as i64), product(n + 1)))
                .collect();
            db.insert_missing_products(batch)
                .await
                .expect("insert products");
            stocked = size.min(stocked + CHUNK);
        }
        let newest = time_page(db, samples, page(ProductSort::Newest)).await;
        let by_price = time_page(db, samples, page(ProductSort::PriceAsc)).await;
        let bounded = time_page(db, samples, bounded_page()).await;
        let in_stock = time_page(db, samples, in_stock_page()).await;
        let unmatched = time_page_of(db, samples, size_page("XXL"), 0).await;
        let rare = time_page_of(db, samples, size_page(RARE_SIZE), 1).await;
        // A 3-line cart over products spread through the catalog, then its checkout: each timed.
        run += 1;
        let mut lines = Vec::new();
        for product in [2, size as i64 / 2, size as i64] {
            let product = db
                .product(ProductId::from_trusted(product))
                .await
                .expect("read a product")
                .expect("a product of the catalog");
            assert_eq!(product.variants.len(), SIZES.len(), "its four sizes");
            lines.push(product.variants[1].id);
        }
        let (mut adds, mut checkouts) = (Vec::new(), Vec::new());
        for i in 0..samples + 3 {
            let user = UserId::from_trusted(format!("scale_{run}_{i}"));
            let cart = CartOwner::User(user.clone());
            for &variant in &lines {
                let start = Instant::now();
                db.add_to_cart(&cart, None, variant, 1, 999)
                    .await
                    .expect("add to cart");
                adds.push(start.elapsed());
            }
            let order = OrderId::generate();
            let start = Instant::now();
            db.checkout(&user, &order, "1 Scale Street", None, false, 5)
                .await
                .expect("checkout");
            checkouts.push(start.elapsed());
        }
        // The first three of each are the warm-up.
        let add_p50 = summary(adds.split_off(9)).0;
        let checkout_p50 = summary(checkouts.split_off(3)).0;
        let (newest_base, checkout_base) = *base.get_or_insert((newest.0, checkout_p50));
        println!(
            "{:>9} {:>13.2} {:>13.2} {:>13.2} {:>13.2} {:>13.2} {:>13.2} {:>13.2} {:>13.2} {:>13.2} {:>9.2} {:>9.2}",
            size,
            newest.0,
            newest.1,
            by_price.0,
            bounded.0,
            in_stock.0,
            unmatched.0,
            rare.0,
            add_p50,
            checkout_p50,
            newest.0 / newest_base,
            checkout_p50 / checkout_base
        );
    }
}
