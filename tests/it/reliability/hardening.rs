//! The defects a hostile client found from outside (issue 15): forged cursors, two credentials at
//! once, tokens that disagree with their session, a line grown past its limit, a 413 that named the
//! wrong limit. Each test fails on the code before its fix.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::report::report;
use crate::common::{Customer, JWT_SECRET, Res, TestApp, read, settings};

const SORTS: [&str; 4] = ["newest", "price_asc", "price_desc", "name"];

fn assert_cursor_refused(res: &Res, what: &str) {
    assert!(
        res.status.is_client_error(),
        "{what}: {} {}",
        res.status,
        res.text
    );
    assert_eq!(
        res.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(res.json["field"], "cursor", "{what}: {}", res.text);
}

/// A cursor as the code before the fix made them (unsigned base64 JSON), carrying `key`.
fn unsigned_cursor(sort: &str, key: Value) -> String {
    let fingerprint = match sort {
        "newest" => "Newest",
        "price_asc" => "PriceAsc",
        "price_desc" => "PriceDesc",
        _ => "Name",
    };
    let payload = json!({"q": format!("{fingerprint}|None|None|None|None"), "k": key, "id": 1});
    URL_SAFE_NO_PAD.encode(payload.to_string())
}

#[tokio::test]
async fn every_sort_refuses_forged_edited_and_foreign_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for i in 0..5 {
        app.product(&admin, &format!("Cursor product {i}"), 100 + i, 3)
            .await;
    }
    let anon = app.client();
    let mut tried = 0;
    let mut cursors = Vec::new();
    for sort in SORTS {
        let first = anon
            .get(&format!("/api/v1/products?limit=2&sort={sort}"))
            .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let cursor = first.json["next_cursor"].as_str().unwrap().to_string();
        // A genuine cursor still pages on.
        let next = anon
            .get(&format!(
                "/api/v1/products?limit=2&sort={sort}&cursor={cursor}"
            ))
            .await;
        assert_eq!(next.status, StatusCode::OK, "{sort}: {}", next.text);
        cursors.push((sort, cursor));
    }
    for (sort, cursor) in &cursors {
        let mut attacks: Vec<(String, String)> = Vec::new();
        // Every character of the cursor changed in turn.
        for at in 0..cursor.len() {
            let mut chars: Vec<char> = cursor.chars().collect();
            chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
            attacks.push((format!("edited at {at}"), chars.into_iter().collect()));
        }
        attacks.push(("cut short".into(), cursor[..cursor.len() - 3].to_string()));
        attacks.push(("extended".into(), format!("{cursor}AAAA")));
        for (other, foreign) in &cursors {
            if other != sort {
                attacks.push((format!("a {other} cursor"), foreign.clone()));
            }
        }
        // What the unsigned cursors of before allowed: keys of another type, extreme values.
        for key in [
            json!({"Price": i64::MIN}),
            json!({"Price": i64::MAX}),
            json!({"Price": -1}),
            json!({"Time": "+262142-12-31T23:59:59Z"}),
            json!({"Time": "1000-01-01T00:00:00Z"}),
            json!({"Name": 5}),
            json!({"Name": "x".repeat(5000)}),
            json!({"Price": 5}),
            json!({"Time": "2026-01-01T00:00:00Z"}),
            json!({"Name": "a"}),
        ] {
            attacks.push((format!("unsigned {key}"), unsigned_cursor(sort, key)));
        }
        for (what, forged) in attacks {
            let res = anon
                .get(&format!(
                    "/api/v1/products?limit=2&sort={sort}&cursor={}",
                    urlencode(&forged)
                ))
                .await;
            assert_cursor_refused(&res, &format!("{sort}: {what}"));
            tried += 1;
        }
    }
    report(
        "cursors",
        format!("{tried} forged, edited or foreign cursors over 4 sorts: all 4xx naming `cursor`"),
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET `path` with `cookie` as the `sf_access` cookie and `bearer` in the `Authorization` header.
async fn get_with(app: &TestApp, path: &str, cookie: &str, bearer: &str) -> Res {
    let res = reqwest::Client::new()
        .get(app.url(path))
        .header("cookie", format!("sf_access={cookie}"))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap();
    read(res).await
}

fn token(customer: &Customer) -> String {
    customer.api.token.clone().unwrap()
}

#[tokio::test]
async fn the_authorization_header_wins_over_the_cookie_on_every_surface() {
    let app = TestApp::spawn().await;
    let (x, y) = (app.customer().await, app.customer().await);
    let mut tried = 0;
    for path in ["/api/v1/users/me", "/user/profile"] {
        let res = get_with(&app, path, &token(&x), &token(&y)).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text);
        assert_eq!(
            res.json["id"],
            y.id.as_str(),
            "{path} answered as the cookie's user"
        );
        // A header that fails is not replaced by a cookie that works.
        let res = get_with(&app, path, &token(&x), "not-a-token").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}: {}", res.text);
        tried += 2;
    }
    // The cart too (it also takes guest cart tokens): the header decides whose cart it is.
    let res = get_with(&app, "/cart_items/items", &token(&x), "not-a-token").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text);
    let res = get_with(&app, "/api/v1/cart", &token(&x), "not-a-token").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text);
    report(
        "credential rule",
        format!(
            "{} requests with a cookie for one user and a bearer for another (or a bad one): answered as the bearer's or 401, v1 and legacy alike",
            tried + 2
        ),
    );
}

fn claims_of(access_token: &str) -> Value {
    let body = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
}

/// A token signed with the service's own key (as a leaked key or a signing bug would give one).
fn signed(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_token_is_only_as_good_as_its_session() {
    // Each round signs the owner in again.
    let app = TestApp::spawn_with(settings(&[
        ("LOGIN_LIMIT_PER_EMAIL", "1000"),
        ("LOGIN_LIMIT_PER_EMAIL_GLOBAL", "1000"),
    ]))
    .await;
    let (owner, other) = (app.customer().await, app.customer().await);
    let rounds = 20;
    for round in 0..rounds {
        // A fresh session of the owner's, not yet checked (no marker cached), and one in use.
        let (fresh, _) = owner.another_session(&app).await;
        let fresh_token = fresh.token.clone().unwrap();
        let used = owner.api.get("/api/v1/users/me").await;
        assert_eq!(used.status, StatusCode::OK);

        let mut forgeries = Vec::new();
        for genuine in [&fresh_token, &token(&owner)] {
            let claims = claims_of(genuine);
            let mut as_other = claims.clone();
            as_other["sub"] = json!(other.id);
            let mut as_admin = claims.clone();
            as_admin["role"] = json!("admin");
            forgeries.push(("another user's id", signed(&as_other)));
            forgeries.push(("the admin role", signed(&as_admin)));
        }
        for (what, forged) in &forgeries {
            for path in ["/api/v1/users/me", "/api/v1/admin/orders", "/user/profile"] {
                let res = app.client().with_token(forged).get(path).await;
                assert_eq!(
                    res.status,
                    StatusCode::UNAUTHORIZED,
                    "round {round}: a token naming {what} on {path}: {}",
                    res.text
                );
            }
        }
        // The refusals changed nothing: both of the owner's sessions still work.
        for (what, genuine) in [("fresh", &fresh_token), ("in use", &token(&owner))] {
            let res = app
                .client()
                .with_token(genuine)
                .get("/api/v1/users/me")
                .await;
            assert_eq!(
                res.status,
                StatusCode::OK,
                "round {round}: the owner's {what} session was signed out by a forgery: {}",
                res.text
            );
            assert_eq!(res.json["id"], owner.id.as_str());
        }
    }
    report(
        "token vs session",
        format!(
            "{rounds} rounds × 4 correctly signed tokens naming another user or the admin role, on 3 routes, for a cached and an uncached session: all 401; the owner's sessions stayed signed in"
        ),
    );
}

#[tokio::test]
async fn no_path_grows_a_line_past_999_units() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let product = app.product(&admin, "Bulk socks", 100, 5000).await;
    let buyer = app.customer().await;
    let res = buyer
        .api
        .post(
            "/api/v1/cart/items",
            json!({"product_id": product, "quantity": 999}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let res = buyer
        .api
        .post("/api/v1/orders", json!({"shipping_address": "1 Test St"}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let order_id = res.json["id"].as_str().unwrap().to_string();
    for quantity in [1, 999] {
        let res = buyer
            .api
            .post(
                &format!("/cart/add-item-to-order/{order_id}"),
                json!({"product_id": product, "quantity": quantity}),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "adding {quantity} to a line of 999: {}",
            res.text
        );
    }
    let order = buyer.api.get(&format!("/api/v1/orders/{order_id}")).await;
    assert_eq!(order.json["items"][0]["quantity"], 999, "{}", order.text);
    assert_eq!(order.json["item_count"], 999, "{}", order.text);
    let stock = app
        .client()
        .get(&format!("/api/v1/products/{product}"))
        .await;
    assert_eq!(
        stock.json["stock"],
        5000 - 999,
        "stock moved by a refused add: {}",
        stock.text
    );
    report(
        "line limit",
        "legacy add-item-to-order on a line of 999: refused (400) for 1 and 999 more; line, order and stock unchanged",
    );
}

#[tokio::test]
async fn a_413_names_the_limit_of_its_route() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let http = reqwest::Client::new();
    for (path, size, limit) in [
        ("/api/v1/auth/login", 70 * 1024, "64 KiB"),
        ("/api/v1/products/bulk", 1100 * 1024, "1024 KiB"),
        ("/products/bulk", 1100 * 1024, "1024 KiB"),
    ] {
        let res = http
            .post(app.url(path))
            .header("content-type", "application/json")
            .header(
                "authorization",
                admin
                    .token
                    .as_deref()
                    .map(|t| format!("Bearer {t}"))
                    .unwrap(),
            )
            .body("x".repeat(size))
            .send()
            .await
            .unwrap();
        let res = read(res).await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(
            res.json["code"], "payload_too_large",
            "{path}: {}",
            res.text
        );
        let detail = res.json["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(limit), "{path}: {detail}");
        assert!(res.json["request_id"].is_string(), "{path}: {}", res.text);
    }
}
