//! The catalog: browsing with cursors, filters and sorts; admin-only writes; the cache never stale.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, TestApp, settings};

/// Makes top-level categories (a product names an existing one or none).
async fn categories(admin: &Api, slugs: &[&str]) {
    for slug in slugs {
        let res = admin
            .post(
                "/api/v1/categories",
                json!({"slug": slug, "name": slug.to_uppercase()}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
}

fn product(name: &str, price: i64, category: &str) -> Value {
    json!({"name": name, "description": format!("About {name}"), "category": category,
           "price": {"amount": price, "currency": "GBP"}, "stock": 5, "image_url": "/img/x.jpg"})
}

#[tokio::test]
async fn admins_write_products_and_everyone_reads_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    categories(&admin, &["shirts"]).await;

    let created = admin
        .post("/api/v1/products", product("White Shirt", 1599, "Shirts"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_i64().unwrap();
    assert_eq!(
        created.json["price"],
        json!({"amount": 1599, "currency": "GBP"})
    );
    assert_eq!(created.json["category"], "shirts");

    let got = app.client().get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json["name"], "White Shirt");

    // Writes need the admin role: 403 for a customer, 401 for nobody; nothing changes.
    let body = product("Sneaky", 1, "x");
    customer
        .api
        .post("/api/v1/products", body.clone())
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    app.client()
        .post("/api/v1/products", body.clone())
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    customer
        .api
        .post("/api/v1/products/bulk", json!({"products": [body]}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    customer
        .api
        .patch(&format!("/api/v1/products/{id}"), json!({"stock": 0}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    customer
        .api
        .delete(&format!("/api/v1/products/{id}"))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let list = app.client().get("/api/v1/products").await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.json["items"][0]["stock"], 5);
}

#[tokio::test]
async fn listing_pages_with_cursors_filters_and_sorts() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    categories(&admin, &["hats", "shirts"]).await;
    let products: Vec<Value> = (0..25)
        .map(|i| {
            product(
                &format!("Item {i:02} {}", if i % 5 == 0 { "Blue" } else { "Plain" }),
                100 + (i * 37) % 500,
                if i % 2 == 0 { "hats" } else { "shirts" },
            )
        })
        .collect();
    let res = admin
        .post("/api/v1/products/bulk", json!({"products": products}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.json["items"].as_array().unwrap().len(), 25);

    for sort in ["newest", "price_asc", "price_desc", "name"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/products?limit=10&sort={sort}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = app.client().get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            seen.extend(page.json["items"].as_array().unwrap().iter().cloned());
            match page.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let ids: HashSet<i64> = seen.iter().map(|p| p["id"].as_i64().unwrap()).collect();
        assert_eq!(
            (seen.len(), ids.len()),
            (25, 25),
            "{sort}: every product exactly once"
        );
        let prices: Vec<i64> = seen
            .iter()
            .map(|p| p["price"]["amount"].as_i64().unwrap())
            .collect();
        let names: Vec<&str> = seen.iter().map(|p| p["name"].as_str().unwrap()).collect();
        let created: Vec<chrono::DateTime<chrono::FixedOffset>> = seen
            .iter()
            .map(|p| {
                chrono::DateTime::parse_from_rfc3339(p["created_at"].as_str().unwrap()).unwrap()
            })
            .collect();
        match sort {
            "newest" => assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}"),
            "price_asc" => assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}"),
            "price_desc" => assert!(prices.windows(2).all(|w| w[0] >= w[1]), "{prices:?}"),
            _ => assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}"),
        }
    }

    let search = app.client().get("/api/v1/products?q=bLuE&limit=100").await;
    assert_eq!(
        search.json["items"].as_array().unwrap().len(),
        5,
        "{}",
        search.text
    );
    let hats = app
        .client()
        .get("/api/v1/products?category=hats&limit=100")
        .await;
    assert_eq!(hats.json["items"].as_array().unwrap().len(), 13);
    let range = app
        .client()
        .get("/api/v1/products?min_price=200&max_price=300&limit=100")
        .await;
    for p in range.json["items"].as_array().unwrap() {
        let amount = p["price"]["amount"].as_i64().unwrap();
        assert!((200..=300).contains(&amount), "{amount}");
    }

    let first = app.client().get("/api/v1/products?limit=5&sort=name").await;
    let cursor = first.json["next_cursor"].as_str().unwrap();
    app.client()
        .get(&format!(
            "/api/v1/products?limit=5&sort=price_asc&cursor={cursor}"
        ))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("sort=best", "sort"),
        ("cursor=zzz", "cursor"),
        ("min_price=-1", "min_price"),
    ] {
        let res = app.client().get(&format!("/api/v1/products?{query}")).await;
        assert_eq!(
            res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
            field,
            "{query}"
        );
    }
}

#[tokio::test]
async fn bulk_creation_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    categories(&admin, &["a", "bulk"]).await;
    let res = admin
        .post("/api/v1/products/bulk", json!({"products": [product("Good", 100, "a"), product("Bad", -5, "a"), product("Good 2", 100, "a")]}))
        .await;
    assert_eq!(
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "products[1].price"
    );
    let list = app.client().get("/api/v1/products").await;
    assert_eq!(list.json["items"], json!([]), "a partial write happened");

    admin
        .post("/api/v1/products/bulk", json!({"products": []}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let many: Vec<Value> = (0..1000)
        .map(|i| product(&format!("P{i}"), i, "bulk"))
        .collect();
    let res = admin
        .post("/api/v1/products/bulk", json!({"products": many}))
        .await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "{}",
        &res.text[..res.text.len().min(300)]
    );
    let ids: HashSet<i64> = res.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000);
}

#[tokio::test]
async fn product_writes_are_validated_and_change_nothing_when_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.product(&admin, "Hat", 999, 3).await;
    for (body, field) in [
        (
            json!({"name": "", "price": {"amount": 1, "currency": "GBP"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "x".repeat(201), "price": {"amount": 1, "currency": "GBP"}, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "A", "price": {"amount": -1, "currency": "GBP"}, "stock": 1}),
            "price",
        ),
        (
            json!({"name": "A", "price": {"amount": 1, "currency": "EUR"}, "stock": 1}),
            "currency",
        ),
        (
            json!({"name": "A", "price": {"amount": 1, "currency": "GBP"}, "stock": -1}),
            "stock",
        ),
        (
            json!({"name": "A", "price": {"amount": 1, "currency": "GBP"}, "stock": 1, "image_url": "javascript:x"}),
            "image_url",
        ),
    ] {
        let res = admin.post("/api/v1/products", body).await;
        assert_eq!(
            res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
            field
        );
    }
    let huge = admin.post("/api/v1/products", json!({"name": "A", "price": {"amount": 9_223_372_036_854_775_807i64, "currency": "GBP"}, "stock": 1})).await;
    huge.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let unknown = admin.post("/api/v1/products", json!({"name": "A", "price": {"amount": 1, "currency": "GBP"}, "stock": 1, "archived": true})).await;
    assert_eq!(
        unknown.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "archived"
    );
    admin
        .patch(&format!("/api/v1/products/{id}"), json!({"stock": -3}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let list = app.client().get("/api/v1/products").await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.json["items"][0]["stock"], 3);
}

#[tokio::test]
async fn writes_show_in_the_catalog_at_once_and_archiving_hides() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.product(&admin, "Cap", 1000, 4).await;
    let other = app.product(&admin, "Scarf", 2000, 4).await;
    // Warm the cache.
    assert_eq!(
        app.client().get("/api/v1/products").await.json["items"][1]["price"]["amount"],
        1000
    );

    let res = admin
        .patch(
            &format!("/api/v1/products/{id}"),
            json!({"price": {"amount": 1250, "currency": "GBP"}, "name": "Red Cap"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let list = app.client().get("/api/v1/products").await;
    let cap = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(
        (cap["name"].as_str(), cap["price"]["amount"].as_i64()),
        (Some("Red Cap"), Some(1250))
    );

    assert_eq!(
        admin.delete(&format!("/api/v1/products/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    app.client()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    let list = app.client().get("/api/v1/products").await;
    let ids: Vec<i64> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![other]);
    admin
        .patch(&format!("/api/v1/products/{id}"), json!({"stock": 1}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    admin
        .delete(&format!("/api/v1/products/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    admin
        .delete("/api/v1/products/424242")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_starter_catalog_loads_once_with_the_nextbuy_ids() {
    let app = TestApp::spawn_with(settings(&[("SEED_CATALOG", "true")])).await;
    let page = app
        .client()
        .get("/api/v1/products?limit=100&sort=price_asc")
        .await;
    let items = page.json["items"].as_array().unwrap();
    let mut ids: Vec<i64> = items.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (1..=20).collect::<Vec<i64>>());
    let white = app.client().get("/api/v1/products/1").await;
    assert_eq!(white.json["name"], "White Shirt");
    assert_eq!(
        white.json["image_url"],
        "/compressedImages/white-shirt-4.jpg"
    );
    assert_eq!(white.json["price"]["currency"], "GBP");
    assert!(items.iter().all(
        |p| p["stock"].as_i64().unwrap() > 0 && !p["description"].as_str().unwrap().is_empty()
    ));

    // Seeding again adds nothing and leaves an admin's changes alone.
    let admin = app.admin().await;
    admin.patch("/api/v1/products/1", json!({"stock": 3})).await;
    assert_eq!(app.state.catalog.seed().await.unwrap(), 0);
    assert_eq!(
        app.client().get("/api/v1/products/1").await.json["stock"],
        3
    );
    // New products continue after the seeded ids.
    assert_eq!(app.product(&admin, "New", 100, 1).await, 21);
}

/// Categories are records in a two-level tree: a product names one that exists, the catalog's
/// filter shows a category's products and its children's, and a category in use stays.
#[tokio::test]
async fn categories_are_a_tree_products_name_and_the_catalog_filters_by() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    categories(&admin, &["clothing", "hats"]).await;
    let shirts = admin
        .post(
            "/api/v1/categories",
            json!({"slug": "shirts", "name": "Shirts", "parent": "clothing"}),
        )
        .await;
    assert_eq!(shirts.status, StatusCode::CREATED, "{}", shirts.text);
    assert_eq!(
        shirts.json,
        json!({"slug": "shirts", "name": "Shirts", "parent": "clothing"})
    );

    // Refusals change nothing: a taken slug, a bad slug, an unknown or nested parent, a customer.
    admin
        .post(
            "/api/v1/categories",
            json!({"slug": "shirts", "name": "Again"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "category_taken");
    for (body, field) in [
        (json!({"slug": "Shirts!", "name": "x"}), "slug"),
        (json!({"slug": "t--shirts", "name": "x"}), "slug"),
        (
            json!({"slug": "socks", "name": "x", "parent": "nowhere"}),
            "parent",
        ),
        (
            json!({"slug": "socks", "name": "x", "parent": "shirts"}),
            "parent",
        ),
        (json!({"slug": "socks", "name": " "}), "name"),
    ] {
        let res = admin.post("/api/v1/categories", body.clone()).await;
        assert_eq!(
            res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
            field,
            "{body}"
        );
    }
    customer
        .api
        .post(
            "/api/v1/categories",
            json!({"slug": "socks", "name": "Socks"}),
        )
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let listed = app.client().get("/api/v1/categories").await;
    assert_eq!(
        listed.json["items"],
        json!([
            {"slug": "clothing", "name": "CLOTHING"},
            {"slug": "hats", "name": "HATS"},
            {"slug": "shirts", "name": "Shirts", "parent": "clothing"},
        ])
    );

    // A product names an existing category, in any case; an unknown one is refused, naming it.
    admin
        .post("/api/v1/products", product("Ghost", 100, "nowhere"))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let res = admin
        .post(
            "/api/v1/products/bulk",
            json!({"products": [product("A", 100, "hats"), product("B", 100, "socks")]}),
        )
        .await;
    assert_eq!(
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "products[1].category"
    );
    let mut ids = Vec::new();
    for (name, category) in [
        ("Oxford", "shirts"),
        ("Jumper", "clothing"),
        ("Cap", "HATS"),
    ] {
        let res = admin
            .post("/api/v1/products", product(name, 1000, category))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        ids.push(res.json["id"].as_i64().unwrap());
    }
    let names = |res: &crate::common::Res| {
        let mut names: Vec<String> = res.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    // The parent's filter holds its children's products; the child's only its own.
    let clothing = app.client().get("/api/v1/products?category=clothing").await;
    assert_eq!(names(&clothing), ["Jumper", "Oxford"]);
    let only_shirts = app.client().get("/api/v1/products?category=Shirts").await;
    assert_eq!(names(&only_shirts), ["Oxford"]);
    // `in_stock` leaves out what is sold out, with the category filter or without.
    let mut sold_out = product("Sold out shirt", 900, "shirts");
    sold_out["stock"] = json!(0);
    assert_eq!(
        admin.post("/api/v1/products", sold_out).await.status,
        StatusCode::CREATED
    );
    let shirts = app.client().get("/api/v1/products?category=shirts").await;
    assert_eq!(names(&shirts), ["Oxford", "Sold out shirt"]);
    let in_stock = app
        .client()
        .get("/api/v1/products?category=shirts&in_stock=true")
        .await;
    assert_eq!(names(&in_stock), ["Oxford"]);
    app.client()
        .get("/api/v1/products?in_stock=maybe")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Moving shirts to the top level takes Oxford out of clothing at once (the cached page too).
    admin
        .patch("/api/v1/categories/clothing", json!({"parent": "hats"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let moved = admin
        .patch(
            "/api/v1/categories/shirts",
            json!({"parent": "", "name": "Shirts & tops"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    assert_eq!(
        moved.json,
        json!({"slug": "shirts", "name": "Shirts & tops"})
    );
    let clothing = app.client().get("/api/v1/products?category=clothing").await;
    assert_eq!(names(&clothing), ["Jumper"]);
    let shirts = app.client().get("/api/v1/products?category=shirts").await;
    assert_eq!(names(&shirts), ["Oxford", "Sold out shirt"]);
    admin
        .patch("/api/v1/categories/nowhere", json!({"name": "x"}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    admin
        .patch("/api/v1/categories/NOT%20A%20SLUG", json!({"name": "x"}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");

    // A category a product names (archived ones too) is not deleted; an unused one is.
    admin.delete(&format!("/api/v1/products/{}", ids[2])).await;
    admin
        .delete("/api/v1/categories/hats")
        .await
        .assert_problem(StatusCode::CONFLICT, "category_in_use");
    categories(&admin, &["empty"]).await;
    let gone = admin.delete("/api/v1/categories/empty").await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    admin
        .delete("/api/v1/categories/empty")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
}

/// The starter catalog comes with its categories, and every product names one of them.
#[tokio::test]
async fn the_starter_catalog_has_its_categories() {
    let app = TestApp::spawn_with(settings(&[("SEED_CATALOG", "true")])).await;
    let listed = app.client().get("/api/v1/categories").await;
    let slugs: HashSet<String> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap().to_string())
        .collect();
    let products = app.client().get("/api/v1/products?limit=100").await;
    for p in products.json["items"].as_array().unwrap() {
        assert!(slugs.contains(p["category"].as_str().unwrap()), "{p}");
    }
    let clothing = app
        .client()
        .get("/api/v1/products?category=clothing&limit=100")
        .await;
    assert!(clothing.json["items"].as_array().unwrap().len() > 1);
}

/// A catalog page, a product and the NextBuy catalog are sent as stored, with an `ETag` the client
/// revalidates with (304, no body), gzip for a client that takes it, and a new ETag once a write
/// changes what they show.
#[tokio::test]
async fn catalog_reads_carry_etags_revalidate_and_compress() {
    use std::io::Read as _;

    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    categories(&admin, &["shirts"]).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut body = product(&format!("Shirt {i}"), 1000 + i, "shirts");
        body["description"] =
            json!("A soft cotton shirt with a clean collar and a relaxed fit. ".repeat(12));
        let res = admin.post("/api/v1/products", body).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        ids.push(res.json["id"].as_i64().unwrap());
    }
    let http = reqwest::Client::new();
    let get = |path: String, headers: Vec<(&'static str, String)>| {
        let mut req = http.get(app.url(&path));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { req.send().await.unwrap() }
    };

    for (round, path) in [
        "/api/v1/products?limit=10".to_string(),
        format!("/api/v1/products/{}", ids[3]),
        "/products".to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let plain = get(path.clone(), vec![]).await;
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        assert_eq!(
            plain.headers()["cache-control"],
            "public, no-cache",
            "{path}"
        );
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let etag = plain.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() == 34, "{path}: {etag}");
        let plain: Value = serde_json::from_slice(&plain.bytes().await.unwrap()).unwrap();

        // Gzip for a client that takes it: the same JSON, fewer bytes, the same ETag.
        let packed = get(path.clone(), vec![("accept-encoding", "gzip, br".into())]).await;
        assert_eq!(packed.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(packed.headers()["vary"], "accept-encoding", "{path}");
        assert_eq!(packed.headers()["etag"].to_str().unwrap(), etag, "{path}");
        let bytes = packed.bytes().await.unwrap();
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_ref())
            .read_to_end(&mut unpacked)
            .unwrap();
        assert!(bytes.len() < unpacked.len(), "{path}");
        assert_eq!(
            serde_json::from_slice::<Value>(&unpacked).unwrap(),
            plain,
            "{path}"
        );

        // Revalidation: the current ETag is a 304 with nothing in it; another, or a list without
        // it, is the whole body.
        let again = get(path.clone(), vec![("if-none-match", etag.clone())]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag, "{path}");
        assert!(again.bytes().await.unwrap().is_empty(), "{path}");
        let other = get(path.clone(), vec![("if-none-match", "\"0\", \"1\"".into())]).await;
        assert_eq!(other.status(), StatusCode::OK, "{path}");

        // A write that changes what the body shows changes its ETag: the old one gets the new body.
        let patched = admin
            .patch(
                &format!("/api/v1/products/{}", ids[3]),
                json!({"price": {"amount": 2000 + round as i64, "currency": "GBP"}}),
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
        let changed = get(path.clone(), vec![("if-none-match", etag.clone())]).await;
        assert_eq!(changed.status(), StatusCode::OK, "{path}");
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag, "{path}");
        let changed: Value = serde_json::from_slice(&changed.bytes().await.unwrap()).unwrap();
        assert_ne!(changed, plain, "{path}");
    }

    // What is refused is refused before any cache: no ETag on a problem.
    let bad = get("/api/v1/products?limit=0".into(), vec![]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.headers().get("etag").is_none());
    let missing = get("/api/v1/products/999999".into(), vec![]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers().get("etag").is_none());
}

/// An order keeps every cached listing true to stock: the product it sold out leaves the in-stock
/// listing at once, the pages showing it show the new stock, and a cancellation puts it back.
/// (That pages showing other products are not made again is `catalog::tests`'s to show.)
#[tokio::test]
async fn orders_and_cancellations_keep_cached_listings_true_to_stock() {
    use crate::common::{add, checkout};

    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    categories(&admin, &["hats", "shirts"]).await;
    let mut last = admin
        .post("/api/v1/products", product("Last Hat", 900, "hats"))
        .await;
    assert_eq!(last.status, StatusCode::CREATED, "{}", last.text);
    let last_id = last.json["id"].as_i64().unwrap();
    last = admin
        .patch(&format!("/api/v1/products/{last_id}"), json!({"stock": 1}))
        .await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.text);
    let other = admin
        .post("/api/v1/products", product("Other Hat", 800, "hats"))
        .await;
    let other_id = other.json["id"].as_i64().unwrap();
    let shirt = admin
        .post("/api/v1/products", product("Shirt", 700, "shirts"))
        .await;
    assert_eq!(shirt.status, StatusCode::CREATED, "{}", shirt.text);

    let reader = app.client();
    let ids = |res: &crate::common::Res| -> Vec<i64> {
        res.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let in_stock = "/api/v1/products?category=hats&in_stock=true";
    let stock_of = |res: &crate::common::Res, id: i64| {
        res.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["stock"].as_i64().unwrap())
    };
    // Warm every body.
    assert_eq!(ids(&reader.get(in_stock).await), [other_id, last_id]);
    assert_eq!(
        stock_of(&reader.get("/api/v1/products").await, last_id),
        Some(1)
    );
    assert_eq!(
        reader
            .get(&format!("/api/v1/products/{last_id}"))
            .await
            .json["stock"],
        1
    );
    let shirts = reader.get("/api/v1/products?category=shirts").await;

    let customer = app.customer().await;
    assert_eq!(
        add(&customer.api, last_id, 1).await.status,
        StatusCode::CREATED
    );
    let order = checkout(&customer.api).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert_eq!(
        ids(&reader.get(in_stock).await),
        [other_id],
        "sold out: gone"
    );
    assert_eq!(
        stock_of(&reader.get("/api/v1/products").await, last_id),
        Some(0)
    );
    assert_eq!(
        reader
            .get(&format!("/api/v1/products/{last_id}"))
            .await
            .json["stock"],
        0
    );
    let legacy = reader.get("/products").await;
    let legacy_stock = legacy
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == last_id)
        .unwrap()["stock_quantity"]
        .clone();
    assert_eq!(legacy_stock, 0);
    assert_eq!(
        reader.get("/api/v1/products?category=shirts").await.json,
        shirts.json
    );

    let id = order.json["id"].as_str().unwrap();
    let cancelled = customer
        .api
        .post(&format!("/api/v1/orders/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(
        ids(&reader.get(in_stock).await),
        [other_id, last_id],
        "back in stock"
    );
    assert_eq!(
        reader
            .get(&format!("/api/v1/products/{last_id}"))
            .await
            .json["stock"],
        1
    );
}
