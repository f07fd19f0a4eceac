//! Options and variants: a product with sizes, each variant with its own SKU, price and stock;
//! carts, checkout and orders by variant; every bad combination refused by field, changing nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, TestApp};

/// A T-shirt in S/M/L; M costs more. Returns the product's body.
async fn tee(admin: &Api, sku: &str) -> Value {
    let res = admin
        .post(
            "/api/v1/products",
            json!({
                "name": "Organic tee", "price": {"amount": 1500, "currency": "GBP"},
                "options": [{"name": "Size", "values": ["S", "M", "L"]}],
                "variants": [
                    {"sku": format!("{sku}-S"), "option_values": {"Size": "S"}, "stock": 2},
                    {"sku": format!("{sku}-M"), "option_values": {"Size": "M"}, "stock": 0,
                     "price": {"amount": 1800, "currency": "GBP"}},
                    {"sku": format!("{sku}-L"), "option_values": {"Size": "L"}, "stock": 5}
                ]
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.json
}

fn variant<'a>(product: &'a Value, size: &str) -> &'a Value {
    product["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["option_values"]["Size"] == size)
        .unwrap_or_else(|| panic!("no variant {size}: {product}"))
}

#[tokio::test]
async fn a_product_with_options_lists_its_variants_prices_and_stock() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let tee = tee(&admin, "TEE1").await;
    assert_eq!(
        tee["options"],
        json!([{"name": "Size", "values": ["S", "M", "L"]}])
    );
    assert_eq!(tee["stock"], 7);
    assert_eq!(tee["in_stock"], true);
    assert_eq!(tee["price_range"]["min"]["amount"], 1500);
    assert_eq!(tee["price_range"]["max"]["amount"], 1800);
    let m = variant(&tee, "M");
    assert_eq!(
        (m["sku"].as_str(), m["price"]["amount"].as_i64()),
        (Some("TEE1-M"), Some(1800))
    );
    assert_eq!(
        (m["available"].as_bool(), m["price_overridden"].as_bool()),
        (Some(false), Some(true))
    );
    let id = tee["id"].as_i64().unwrap();
    let read = app.client().get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(read.json["variants"], tee["variants"]);

    // The catalog filters by option value, and by a variant in stock.
    let client = app.client();
    let ids = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let sized = client.get("/api/v1/products?option=Size:M&limit=100").await;
    assert_eq!(ids(&sized.json), [id], "{}", sized.text);
    let in_stock = client
        .get("/api/v1/products?option=Size:M&in_stock=true&limit=100")
        .await;
    assert_eq!(ids(&in_stock.json), Vec::<i64>::new(), "M has none left");
    let large = client
        .get("/api/v1/products?option=Size:L&in_stock=true&limit=100")
        .await;
    assert_eq!(ids(&large.json), [id]);
    client
        .get("/api/v1/products?option=Size")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.stop().await;
}

#[tokio::test]
async fn bad_combinations_are_refused_by_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let existing = tee(&admin, "TAKEN").await;
    let before = app.client().get("/api/v1/products?limit=100").await.json;
    let product = |variants: Value| {
        json!({
            "name": "Cap", "price": {"amount": 900, "currency": "GBP"},
            "options": [{"name": "Colour", "values": ["red", "blue"]}], "variants": variants
        })
    };
    let cases = [
        (
            product(json!([{"option_values": {"Colour": "green"}, "stock": 1}])),
            "variants[0].option_values.Colour",
        ),
        (
            product(json!([
                {"option_values": {"Colour": "red"}, "stock": 1},
                {"option_values": {"Colour": "red"}, "stock": 1}
            ])),
            "variants[1].option_values",
        ),
        (
            product(json!([
                {"sku": "CAP-1", "option_values": {"Colour": "red"}, "stock": 1},
                {"sku": "CAP-1", "option_values": {"Colour": "blue"}, "stock": 1}
            ])),
            "variants[1].sku",
        ),
        (
            product(json!([{"sku": "TAKEN-S", "option_values": {"Colour": "red"}, "stock": 1}])),
            "variants[0].sku",
        ),
        (
            product(json!([{"option_values": {}, "stock": 1}])),
            "variants[0].option_values",
        ),
        (
            product(json!([{"option_values": {"Colour": "red", "Size": "S"}, "stock": 1}])),
            "variants[0].option_values",
        ),
        (product(json!([])), "variants"),
        (
            json!({"name": "Cap", "price": {"amount": 900, "currency": "GBP"},
                   "options": [{"name": "Colour", "values": ["red"]}], "stock": 3}),
            "variants",
        ),
        (
            json!({"name": "Cap", "price": {"amount": 900, "currency": "GBP"},
                   "options": [{"name": "Colour", "values": ["red", "red"]}],
                   "variants": [{"option_values": {"Colour": "red"}, "stock": 1}]}),
            "options[0].values[1]",
        ),
    ];
    for (body, field) in cases {
        let res = admin.post("/api/v1/products", body.clone()).await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(problem["field"], field, "{body}: {}", res.text);
    }
    // In a bulk request, the product is named too; nothing of the batch is made.
    let bulk = admin
        .post(
            "/api/v1/products/bulk",
            json!({"products": [
                {"name": "Fine", "price": {"amount": 100, "currency": "GBP"}, "stock": 1},
                product(json!([{"sku": "TAKEN-M", "option_values": {"Colour": "red"}, "stock": 1}]))
            ]}),
        )
        .await;
    let problem = bulk.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        problem["field"], "products[1].variants[0].sku",
        "{}",
        bulk.text
    );
    assert_eq!(
        app.client().get("/api/v1/products?limit=100").await.json,
        before
    );

    // The variant routes refuse the same way, and leave the product as it was.
    let id = existing["id"].as_i64().unwrap();
    let s = variant(&existing, "S")["id"].as_i64().unwrap();
    let path = format!("/api/v1/products/{id}/variants");
    for (body, field) in [
        (
            json!({"option_values": {"Size": "XL"}, "stock": 1}),
            "option_values.Size",
        ),
        (
            json!({"option_values": {"Size": "S"}, "stock": 1}),
            "option_values",
        ),
    ] {
        let res = admin.post(&path, body.clone()).await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(problem["field"], field, "{body}: {}", res.text);
    }
    for (body, field) in [
        (json!({"option_values": {"Size": "L"}}), "option_values"),
        (json!({"sku": "TAKEN-L"}), "sku"),
        (
            json!({"price": {"amount": 5, "currency": "USD"}}),
            "price.currency",
        ),
    ] {
        let res = admin.patch(&format!("{path}/{s}"), body.clone()).await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(problem["field"], field, "{body}: {}", res.text);
    }
    // One variant's stock through the product: refused while it has several.
    let res = admin
        .patch(&format!("/api/v1/products/{id}"), json!({"stock": 9}))
        .await;
    assert_eq!(
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "stock"
    );
    let after = app
        .client()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json;
    assert_eq!(after["variants"], existing["variants"]);
    app.stop().await;
}

#[tokio::test]
async fn admins_add_change_and_archive_variants() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let tee = tee(&admin, "TEE2").await;
    let id = tee["id"].as_i64().unwrap();
    let path = format!("/api/v1/products/{id}/variants");

    // A customer may not.
    let customer = app.customer().await;
    customer
        .api
        .post(&path, json!({"option_values": {"Size": "S"}, "stock": 1}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");

    let m = variant(&tee, "M")["id"].as_i64().unwrap();
    let changed = admin
        .patch(
            &format!("{path}/{m}"),
            json!({"stock": 4, "clear_price": true, "sku": "TEE2-MEDIUM"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json["price"]["amount"], 1500);
    assert_eq!(
        (changed.json["stock"].as_i64(), changed.json["sku"].as_str()),
        (Some(4), Some("TEE2-MEDIUM"))
    );

    let s = variant(&tee, "S")["id"].as_i64().unwrap();
    assert_eq!(
        admin.delete(&format!("{path}/{s}")).await.status,
        StatusCode::NO_CONTENT
    );
    // Archived, S may be sold again as a new variant (its SKU stays taken).
    let again = admin
        .post(
            &path,
            json!({"sku": "TEE2-S2", "option_values": {"Size": "S"}, "stock": 3}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    let product = app
        .client()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json;
    let skus: Vec<&str> = product["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["TEE2-MEDIUM", "TEE2-L", "TEE2-S2"]);
    assert_eq!(product["stock"], 4 + 5 + 3);

    // A variant of another product, or an archived one, is not found.
    let other = app.product(&admin, "Plain", 100, 1).await;
    admin
        .patch(
            &format!("/api/v1/products/{other}/variants/{m}"),
            json!({"stock": 1}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    admin
        .delete(&format!("{path}/{s}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    // A product keeps one variant on sale.
    let plain = app
        .client()
        .get(&format!("/api/v1/products/{other}"))
        .await
        .json;
    let only = plain["variants"][0]["id"].as_i64().unwrap();
    admin
        .delete(&format!("/api/v1/products/{other}/variants/{only}"))
        .await
        .assert_problem(StatusCode::CONFLICT, "last_variant");
    app.stop().await;
}

#[tokio::test]
async fn carts_and_orders_hold_variants_and_checkout_takes_only_their_stock() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let tee = tee(&admin, "TEE3").await;
    let id = tee["id"].as_i64().unwrap();
    let (s, l) = (
        variant(&tee, "S")["id"].as_i64().unwrap(),
        variant(&tee, "L")["id"].as_i64().unwrap(),
    );
    let buyer = app.customer().await.api;

    // Naming only a product with several variants is refused, naming the field to give.
    let res = buyer
        .post(
            "/api/v1/cart/items",
            json!({"product_id": id, "quantity": 1}),
        )
        .await;
    assert_eq!(
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "variant_id"
    );
    // A variant with another product's id is not found.
    let other = app.product(&admin, "Socks", 500, 10).await;
    buyer
        .post(
            "/api/v1/cart/items",
            json!({"product_id": other, "variant_id": s, "quantity": 1}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");

    for (variant, quantity) in [(s, 2), (l, 1), (s, 0)] {
        if quantity == 0 {
            continue;
        }
        let res = buyer
            .post(
                "/api/v1/cart/items",
                json!({"variant_id": variant, "quantity": quantity}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    }
    let added = buyer
        .post(
            "/api/v1/cart/items",
            json!({"product_id": other, "quantity": 1}),
        )
        .await;
    assert_eq!(
        added.status,
        StatusCode::CREATED,
        "one variant: the product is enough"
    );
    let cart = buyer.get("/api/v1/cart").await.json;
    let lines: Vec<(i64, &str, &Value)> = cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["sku"].as_str().unwrap(),
                &l["option_values"],
            )
        })
        .collect();
    assert_eq!(lines[0], (s, "TEE3-S", &json!({"Size": "S"})));
    assert_eq!(lines[1], (l, "TEE3-L", &json!({"Size": "L"})));
    assert_eq!(cart["subtotal"]["amount"], 1500 * 3 + 500);

    let order = buyer
        .post(
            "/api/v1/orders",
            json!({"shipping_address": "1 High Street"}),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    let sold: Vec<(i64, &str, &Value, i64)> = order.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["variant_id"].as_i64().unwrap(),
                l["sku"].as_str().unwrap(),
                &l["option_values"],
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        sold.contains(&(s, "TEE3-S", &json!({"Size": "S"}), 2)),
        "{sold:?}"
    );
    assert!(
        sold.contains(&(l, "TEE3-L", &json!({"Size": "L"}), 1)),
        "{sold:?}"
    );
    let after = app
        .client()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json;
    let stock = |size| variant(&after, size)["stock"].as_i64().unwrap();
    assert_eq!((stock("S"), stock("M"), stock("L")), (0, 0, 4));

    // The order line keeps its SKU after the variant is renamed; cancelling puts the stock back.
    admin
        .patch(
            &format!("/api/v1/products/{id}/variants/{s}"),
            json!({"sku": "RENAMED"}),
        )
        .await;
    let order_id = order.json["id"].as_str().unwrap();
    let kept = buyer.get(&format!("/api/v1/orders/{order_id}")).await.json;
    assert!(
        kept["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["sku"] == "TEE3-S")
    );
    let cancelled = buyer
        .post(&format!("/api/v1/orders/{order_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    let restocked = app
        .client()
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json;
    assert_eq!(variant(&restocked, "S")["stock"], 2);
    assert_eq!(variant(&restocked, "L")["stock"], 5);
    app.stop().await;
}

/// The NextBuy routes know nothing of variants: `stock_quantity` is the total, and adding a product
/// with several variants adds its first in stock.
#[tokio::test]
async fn legacy_routes_see_a_products_total_and_add_its_first_variant_in_stock() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let tee = tee(&admin, "TEE4").await;
    let id = tee["id"].as_i64().unwrap();
    let listed = app.client().get("/products").await.json;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(row["stock_quantity"], 7);

    // S is first and in stock; once S is gone, L (M has none).
    let s = variant(&tee, "S")["id"].as_i64().unwrap();
    admin
        .patch(
            &format!("/api/v1/products/{id}/variants/{s}"),
            json!({"stock": 0}),
        )
        .await;
    let buyer = app.customer().await.api;
    let res = buyer
        .post(
            "/cart_items/add-item",
            json!({"product_id": id, "quantity": 1}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let cart = buyer.get("/api/v1/cart").await.json;
    assert_eq!(cart["items"][0]["sku"], "TEE4-L");
    let legacy = buyer.get("/cart_items/items").await.json;
    assert_eq!(legacy[0]["productId"], id);
    app.stop().await;
}
