//! The HTTP contract every route shares: problem documents, request ids, limits, headers, docs, operations.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Api, PASSWORD, TestApp, read, settings};

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    let api = app.client();
    api.get("/api/v1/nothing-here")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    api.send(Method::DELETE, "/api/v1/auth/login", None)
        .await
        .assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn unreadable_bodies_are_400_problems() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    for body in ["{not json", "{\"email\": ", ""] {
        let res = read(
            http.post(app.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        res.assert_problem(StatusCode::BAD_REQUEST, "bad_request");
    }
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let res = read(
        http.post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(nested)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_problem(StatusCode::BAD_REQUEST, "bad_request");
}

/// A body that is JSON but does not fit the operation's schema is a validation problem naming the
/// field at fault (its path for nested ones), in `field` and in RFC 9457's `invalid_params`, and
/// changes nothing.
#[tokio::test]
async fn body_fields_that_do_not_fit_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let anonymous = app.client();
    let cases: [(&Api, &str, Value, &str, &str); 12] = [
        (
            &anonymous,
            "/api/v1/auth/login",
            json!({"email": "a@b.co", "password": "x", "cart_merge": null}),
            "cart_merge",
            "must not be null",
        ),
        (
            &anonymous,
            "/api/v1/auth/register",
            json!({"email": "a@b.co", "password": "short", "name": "A"}),
            "password",
            "must be at least 8 characters",
        ),
        (
            &admin,
            "/api/v1/products",
            json!({"name": "x", "price": {"amount": 1, "currency": "GBP"}, "stock": -1}),
            "stock",
            "must be at least 0",
        ),
        (
            &anonymous,
            "/api/v1/auth/login",
            json!({"password": "x"}),
            "email",
            "is required",
        ),
        (
            &anonymous,
            "/api/v1/auth/login",
            json!({"email": [1], "password": "x"}),
            "email",
            "must be a string",
        ),
        (
            &anonymous,
            "/api/v1/auth/login",
            json!({"email": "a@b.co", "password": "x", "cart_merge": "string"}),
            "cart_merge",
            "must be one of merge, replace",
        ),
        (
            &anonymous,
            "/api/v1/auth/login",
            json!([]),
            "body",
            "must be an object",
        ),
        (
            &admin,
            "/api/v1/products",
            json!({"name": "x", "price": {"amount": "12", "currency": "GBP"}, "stock": 1}),
            "price.amount",
            "must be a whole number",
        ),
        (
            &admin,
            "/api/v1/products",
            json!({"name": "x", "price": {"amount": 1}, "stock": 1}),
            "price.currency",
            "is required",
        ),
        (
            &admin,
            "/api/v1/products",
            json!({"name": "x", "price": {"amount": 1, "currency": "GBP"}, "stock": 1, "colour": "red"}),
            "colour",
            "is not a field of this request",
        ),
        (
            &admin,
            "/api/v1/products/bulk",
            json!({"products": [{"name": "a", "price": {"amount": 1, "currency": "GBP"}, "stock": 1}, {"name": "b", "stock": 1}]}),
            "products[1].price",
            "is required",
        ),
        (
            &admin,
            "/api/v1/admin/orders/0192f0c4-5e1b-7a3c-8d2e-1f0a9b8c7d6e/status",
            json!({"status": "shiped"}),
            "status",
            "must be one of pending, paid, shipped, delivered, cancelled",
        ),
    ];
    for (api, path, body, field, reason) in cases {
        let res = api.post(path, body.clone()).await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(problem["field"], field, "{path} {body}: {}", res.text);
        assert_eq!(
            problem["invalid_params"],
            json!([{"name": field, "reason": reason}]),
            "{path} {body}"
        );
    }
    let listed = app.client().get("/api/v1/products").await;
    assert_eq!(
        listed.json["items"],
        json!([]),
        "a refused body created nothing"
    );
    // A path id past i64 names nothing, as an id that parses but is nobody's.
    for path in [
        "/api/v1/products/9223372036854775808",
        "/api/v1/products/abc",
    ] {
        app.client()
            .get(path)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_before_anything_is_read() {
    let app = TestApp::spawn().await;
    let huge = json!({"email": "a@example.com", "password": "x".repeat(70 * 1024), "name": "A"});
    app.client()
        .post("/api/v1/auth/register", huge)
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Chunked, with no Content-Length to check up front.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let res = read(
        reqwest::Client::new()
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated_and_quoted_in_problems() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let res = read(
        http.get(app.url("/health"))
            .header("x-request-id", "trace-42")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.header("x-request-id"), Some("trace-42"));

    let res = read(http.get(app.url("/api/v1/users/me")).send().await.unwrap()).await;
    let generated = res
        .header("x-request-id")
        .expect("generated id")
        .to_string();
    assert_eq!(
        res.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated")["request_id"],
        generated
    );

    // A hostile id is replaced, not echoed.
    let res = read(
        http.get(app.url("/health"))
            .header("x-request-id", "a\"b<script>")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(res.header("x-request-id"), Some("a\"b<script>"));
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/api/v1/users/me", "/nope"] {
        let res = app.client().get(path).await;
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(res.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            res.header("strict-transport-security"),
            None,
            "no HSTS in development"
        );
    }
    let docs = app.client().get("/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert_eq!(docs.header("x-frame-options"), None);
}

#[tokio::test]
async fn production_adds_hsts_and_secure_cookies() {
    let settings = settings(&[("APP_ENV", "production")]);
    let app = TestApp::spawn_with(settings).await;
    let res = app.client().get("/health").await;
    assert!(
        res.header("strict-transport-security")
            .unwrap()
            .starts_with("max-age=")
    );
    let reg = app
        .client()
        .post(
            "/api/v1/auth/register",
            json!({"email": "p@example.com", "password": PASSWORD, "name": "P"}),
        )
        .await;
    let cookie = reg.header("set-cookie").unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn operations_report_health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let api = app.client();
    let health = api.get("/health").await;
    assert_eq!(
        (health.status, &health.json["status"]),
        (StatusCode::OK, &json!("ok"))
    );
    assert_eq!(health.json["version"], storefront::VERSION);
    // Off the public port: Prometheus scrapes METRICS_PORT over the private network.
    api.get("/metrics")
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "storefront_build_info{{version=\"{}\"}} 1",
            storefront::VERSION
        )),
        "{metrics}"
    );
    // Readiness may fail a probe while the machine is saturated (its database probe has 500 ms):
    // it must answer 200 within a few tries, not necessarily the first.
    let mut ready = api.get("/ready").await;
    for _ in 0..20 {
        if ready.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        ready = api.get("/ready").await;
    }
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json, json!({"database": "ok", "cache": "redis"}));

    let customer = app.customer().await;
    customer.api.get("/api/v1/users/me").await;
    api.get("/no/such/route").await;
    let metrics = app.metrics().await;
    for expected in [
        "storefront_http_requests_total{method=\"GET\",route=\"/api/v1/users/me\",status=\"200\"} 1",
        "storefront_http_requests_total{method=\"POST\",route=\"/api/v1/auth/register\",status=\"201\"} 1",
        "storefront_http_request_duration_seconds_bucket{route=\"/api/v1/users/me\",le=\"+Inf\"} 1",
        "storefront_cache_hits_total",
        "storefront_cache_misses_total",
        "storefront_redis_errors_total 0",
        "storefront_db_conflict_retries_total",
        "storefront_db_errors_total 0",
        "storefront_open_event_streams 0",
        "storefront_cache_breaker_open 0",
        // Unmatched paths (here /metrics and /no/such/route) share one label, whatever is asked.
        "storefront_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 2",
    ] {
        assert!(metrics.contains(expected), "missing {expected}\n{metrics}");
    }
    let queries = metrics
        .lines()
        .find_map(|l| l.strip_prefix("storefront_db_query_duration_seconds_count "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("storefront_db_query_duration_seconds_count");
    assert!(
        queries > 0,
        "the register and me requests queried the database"
    );
}

#[tokio::test]
async fn the_root_points_at_the_docs() {
    let app = TestApp::spawn().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/docs");
    // Not an operation of the API: a typed client has no `root` to call.
    let spec = app.client().get("/openapi.json").await.json;
    assert!(spec["paths"].get("/").is_none());
}

#[tokio::test]
async fn the_spec_documents_every_operation_with_summary_security_and_errors() {
    let app = TestApp::spawn().await;
    let spec = app.client().get("/openapi.json").await.json;
    let paths = spec["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let responses = op["responses"].as_object().unwrap();
            // Stripe's webhook: its credential is Stripe's signature over the raw body, which the
            // handler checks itself, so it has no security scheme and nothing answers 422 (neither
            // the body nor the signature header is parsed before the signature holds).
            let signed = path == "/api/v1/payments/stripe/webhook";
            let public = signed
                || matches!(path.as_str(), "/health" | "/ready")
                || path.starts_with("/api/v1/auth/register")
                || path.starts_with("/api/v1/auth/login")
                || path.starts_with("/api/v1/auth/refresh")
                || path.starts_with("/api/v1/auth/password-reset")
                || path == "/api/v1/auth/verify-email"
                || (method == "get" && path.starts_with("/api/v1/products"))
                || (method == "get" && path == "/api/v1/categories")
                // The NextBuy routes check the session cookie themselves, to answer in the old shapes.
                || op["tags"] == serde_json::json!(["Legacy"]);
            if !public {
                assert!(
                    op["security"].is_array(),
                    "{method} {path} has no security requirement"
                );
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} does not document 401"
                );
            }
            if path.starts_with("/api/v1") {
                // Each operation documents the error statuses its inputs can lead to, and no other:
                // body ones only with a body, 401 only where credentials count, 403 only for admins.
                let body = op["requestBody"].is_object();
                let params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
                let credentials = op["security"].is_array()
                    || path.ends_with("/auth/login")
                    || path.ends_with("/auth/refresh");
                let admin = op["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.contains(&json!("Admin")))
                    || ((path.starts_with("/api/v1/products")
                        || path.starts_with("/api/v1/categories"))
                        && method != "get");
                for (status, documented) in [
                    ("400", body),
                    ("401", credentials),
                    ("403", admin),
                    ("413", body),
                    ("415", body),
                    ("422", (body || params) && !signed),
                    ("500", true),
                    ("503", true),
                ] {
                    assert_eq!(
                        responses.contains_key(status),
                        documented,
                        "{method} {path}: documents {status}?"
                    );
                    if documented {
                        assert!(
                            responses[status]["content"]["application/problem+json"].is_object(),
                            "{method} {path} does not document {status} as a problem"
                        );
                    }
                }
            }
        }
    }
    assert!(operations >= 28, "only {operations} operations documented");
    assert!(spec["components"]["securitySchemes"]["BearerAuth"].is_object());
    assert!(spec["components"]["securitySchemes"]["CookieAuth"].is_object());
}

/// Parses JSON like a strict parser (`openapi-typescript`'s YAML loader, say): a key given twice in one
/// object is an error, where `serde_json::Value` would silently keep the last.
fn duplicated_keys(text: &str) -> Vec<String> {
    use serde::de::{MapAccess, SeqAccess, Visitor};

    struct Strict<'a>(&'a mut Vec<String>, String);

    impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Strict<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = format!("{}/{key}", self.1);
                if !seen.insert(key) {
                    self.0.push(path.clone());
                }
                map.next_value_seed(Strict(&mut *self.0, path))?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Strict(&mut *self.0, format!("{}/{i}", self.1)))?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(Strict(&mut found, String::new()), &mut de)
        .expect("valid JSON");
    found
}

#[test]
fn the_strict_parser_finds_duplicated_keys() {
    assert_eq!(
        duplicated_keys(r#"{"a": {"x": 1, "x": 2}, "b": [{"y": 1, "y": 1}]}"#),
        ["/a/x", "/b/0/y"]
    );
    assert!(duplicated_keys(r#"{"a": 1, "b": {"a": 1}}"#).is_empty());
}

#[tokio::test]
async fn the_openapi_document_has_no_duplicated_key() {
    let app = TestApp::spawn().await;
    let res = app.client().get("/openapi.json").await;
    assert_eq!(res.status, StatusCode::OK);
    let duplicated = duplicated_keys(&res.text);
    assert!(
        duplicated.is_empty(),
        "{} duplicated keys, e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)]
    );
}

#[tokio::test]
async fn every_operation_has_a_unique_operation_id_a_summary_and_legacy_ones_are_deprecated() {
    let app = TestApp::spawn().await;
    let spec = app.client().get("/openapi.json").await.json;
    let mut ids = std::collections::HashSet::new();
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str();
            assert!(
                id.is_some_and(|id| !id.is_empty()),
                "{method} {path} has no operationId"
            );
            assert!(
                ids.insert(id.unwrap().to_string()),
                "{method} {path}: operationId repeated"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
            // The NextBuy routes are there for that front-end only: a client generated for v1
            // should not offer them.
            let legacy =
                !path.starts_with("/api/v1") && !["/health", "/ready"].contains(&path.as_str());
            assert_eq!(
                op["deprecated"].as_bool().unwrap_or(false),
                legacy,
                "{method} {path}: deprecated exactly when it is a legacy route"
            );
        }
    }
    assert!(operations >= 58, "{operations} operations");
}

/// The schema at `pointer`, with a `$ref` (also inside `allOf`, as poem-openapi wraps optional refs)
/// followed.
fn resolved<'a>(
    spec: &'a serde_json::Value,
    schema: &'a serde_json::Value,
) -> &'a serde_json::Value {
    let target = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match target {
        Some(r) => resolved(spec, spec.pointer(&r[1..]).expect("a $ref that resolves")),
        None => schema,
    }
}

#[tokio::test]
async fn closed_sets_are_enums_in_the_document() {
    let app = TestApp::spawn().await;
    let spec = app.client().get("/openapi.json").await.json;
    let enum_of = |schema: &serde_json::Value| -> Vec<String> {
        let schema = resolved(&spec, schema);
        let schema = if schema["type"] == "array" {
            resolved(&spec, &schema["items"])
        } else {
            schema
        };
        schema["enum"]
            .as_array()
            .map(|v| v.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    for (object, field, values) in [
        (
            "OrderView",
            "status",
            "pending paid shipped delivered cancelled",
        ),
        (
            "StatusMove",
            "status",
            "pending paid shipped delivered cancelled",
        ),
        (
            "OrderStatusEvent",
            "status",
            "pending paid shipped delivered cancelled",
        ),
        ("UserView", "role", "customer admin"),
        (
            "CartLineView",
            "warnings",
            "archived out_of_stock insufficient_stock price_changed",
        ),
        (
            "CartIssueView",
            "code",
            "empty_cart archived out_of_stock insufficient_stock price_changed",
        ),
        ("LoginRequest", "cart_merge", "merge replace"),
        ("CartMergeView", "mode", "merge replace"),
        ("CappedLineView", "reason", "stock line_limit archived"),
    ] {
        let schema = &spec["components"]["schemas"][object]["properties"][field];
        assert_eq!(
            enum_of(schema),
            values.split(' ').collect::<Vec<_>>(),
            "{object}.{field} is not the closed set: {schema}"
        );
    }
    for (path, method, param, values) in [
        (
            "/api/v1/products",
            "get",
            "sort",
            "newest price_asc price_desc name",
        ),
        (
            "/api/v1/auth/logout",
            "post",
            "scope",
            "local others global",
        ),
        (
            "/api/v1/admin/orders",
            "get",
            "status",
            "pending paid shipped delivered cancelled",
        ),
    ] {
        let params = spec["paths"][path][method]["parameters"]
            .as_array()
            .unwrap();
        let p = params.iter().find(|p| p["name"] == param).unwrap();
        assert_eq!(
            enum_of(&p["schema"]),
            values.split(' ').collect::<Vec<_>>(),
            "{method} {path} ?{param}"
        );
    }
}

#[tokio::test]
async fn page_sizes_and_price_filters_carry_their_bounds() {
    let app = TestApp::spawn().await;
    let spec = app.client().get("/openapi.json").await.json;
    for (path, param, min, max) in [
        ("/api/v1/products", "limit", 1, 100),
        ("/api/v1/orders", "limit", 1, 100),
        ("/api/v1/admin/orders", "limit", 1, 100),
        ("/api/v1/products", "min_price", 0, 100_000_000),
        ("/api/v1/products", "max_price", 0, 100_000_000),
    ] {
        let params = spec["paths"][path]["get"]["parameters"].as_array().unwrap();
        let schema = &params.iter().find(|p| p["name"] == param).unwrap()["schema"];
        assert_eq!(
            schema["minimum"].as_f64(),
            Some(min as f64),
            "{path} ?{param}: {schema}"
        );
        assert_eq!(
            schema["maximum"].as_f64(),
            Some(max as f64),
            "{path} ?{param}: {schema}"
        );
    }
    // Out of bounds: a 422 naming the parameter, as before the bounds were in the document.
    let res = app.client().get("/api/v1/orders?limit=0").await;
    assert!(res.status.is_client_error(), "{}", res.text);
    let res = app.client().get("/api/v1/products?limit=101").await;
    assert_eq!(
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "limit"
    );
}

/// Swagger's "Try it out" fills each request body from its schema's example. Taken in a shopper's
/// order, every example succeeds: sign up, sign in, fill the cart, check out, edit the profile,
/// change the password; then the admin's catalog writes and order move.
#[tokio::test]
async fn request_examples_succeed_in_a_shoppers_order() {
    let app = TestApp::spawn_with(settings(&[("SEED_CATALOG", "true")])).await;
    let spec = app.client().get("/openapi.json").await.json;
    let example = |schema: &str| {
        let example = spec["components"]["schemas"][schema]["example"].clone();
        assert!(example.is_object(), "{schema} has no example");
        example
    };
    let visitor = app.client();
    let res = visitor
        .post("/api/v1/auth/register", example("RegisterRequest"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "register: {}", res.text);
    let res = visitor
        .post("/api/v1/auth/login", example("LoginRequest"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "login: {}", res.text);
    let shopper = app
        .client()
        .with_token(res.json["tokens"]["access_token"].as_str().unwrap());
    let mut order_id = String::new();
    for (method, path, schema, status) in [
        (
            Method::POST,
            "/api/v1/cart/items",
            "AddItem",
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            "/api/v1/cart/items/1",
            "SetQuantity",
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/v1/orders",
            "CheckoutRequest",
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            "/api/v1/users/me",
            "ProfilePatch",
            StatusCode::OK,
        ),
        (
            Method::PUT,
            "/api/v1/users/me/password",
            "PasswordChange",
            StatusCode::NO_CONTENT,
        ),
    ] {
        let res = shopper.send(method, path, Some(example(schema))).await;
        assert_eq!(
            res.status, status,
            "{path} with the {schema} example: {}",
            res.text
        );
        if schema == "CheckoutRequest" {
            order_id = res.json["id"].as_str().unwrap().to_string();
        }
    }
    let admin = app.admin().await;
    let mut product_id = 0;
    let move_path = format!("/api/v1/admin/orders/{order_id}/status");
    for (method, path, schema, status) in [
        (
            Method::POST,
            "/api/v1/products",
            "ProductInput",
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            "/api/v1/products/bulk",
            "BulkProducts",
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            "/api/v1/products/1",
            "ProductUpdate",
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/v1/categories",
            "CategoryInput",
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            "/api/v1/categories/hats",
            "CategoryUpdate",
            StatusCode::OK,
        ),
        (
            Method::POST,
            move_path.as_str(),
            "StatusMove",
            StatusCode::OK,
        ),
    ] {
        let res = admin.send(method, path, Some(example(schema))).await;
        assert_eq!(
            res.status, status,
            "{path} with the {schema} example: {}",
            res.text
        );
        if schema == "ProductInput" {
            product_id = res.json["id"].as_i64().unwrap();
        }
    }
    // The product the example made takes the third size the example offers, then changes it.
    let path = format!("/api/v1/products/{product_id}/variants");
    let res = admin
        .send(Method::POST, &path, Some(example("VariantInput")))
        .await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "VariantInput: {}",
        res.text
    );
    let variant = res.json["id"].as_i64().unwrap();
    let res = admin
        .send(
            Method::PATCH,
            &format!("{path}/{variant}"),
            Some(example("VariantUpdate")),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "VariantUpdate: {}", res.text);
}

/// Event streams are documented as what they are: `text/event-stream` text, not a JSON array; the
/// schema of each event's data is in the components, named in the description.
#[tokio::test]
async fn event_streams_are_documented_as_text_event_streams() {
    let app = TestApp::spawn().await;
    let spec = app.client().get("/openapi.json").await.json;
    for (path, event) in [
        ("/api/v1/orders/{id}/events", "OrderStatusEvent"),
        ("/api/v1/products/{id}/stock/events", "StockEvent"),
    ] {
        let ok = &spec["paths"][path]["get"]["responses"]["200"];
        let content = ok["content"].as_object().unwrap();
        assert_eq!(
            content.keys().collect::<Vec<_>>(),
            ["text/event-stream"],
            "{path}"
        );
        let schema = &content["text/event-stream"]["schema"];
        assert_eq!(schema["type"], "string", "{path}");
        assert_eq!(
            schema["items"]["$ref"],
            format!("#/components/schemas/{event}"),
            "{path}: each event's data"
        );
        assert!(
            ok["description"].as_str().unwrap().contains(event),
            "{path}"
        );
        assert!(spec["components"]["schemas"][event].is_object(), "{event}");
    }
}

/// Body fields carry the bounds the services enforce, so a typed client (or a form built from the
/// document) knows them before it sends anything.
#[tokio::test]
async fn body_fields_carry_their_bounds() {
    let app = TestApp::spawn().await;
    let spec = app.client().get("/openapi.json").await.json;
    let schemas = &spec["components"]["schemas"];
    for (schema, field, bounds) in [
        (
            "RegisterRequest",
            "password",
            json!({"minLength": 8, "maxLength": 128}),
        ),
        ("RegisterRequest", "email", json!({"maxLength": 254})),
        ("RegisterRequest", "email", json!({"format": "email"})),
        ("LoginRequest", "email", json!({"format": "email"})),
        (
            "ProfilePatch",
            "email",
            json!({"format": "email", "maxLength": 254}),
        ),
        (
            "ProductInput",
            "name",
            json!({"minLength": 1, "maxLength": 200}),
        ),
        (
            "ProductInput",
            "stock",
            json!({"minimum": 0, "maximum": 1_000_000_000}),
        ),
        ("AddItem", "product_id", json!({"minimum": 1})),
        ("AddItem", "quantity", json!({"minimum": 1, "maximum": 999})),
        (
            "CheckoutRequest",
            "shipping_address",
            json!({"minLength": 1, "maxLength": 500}),
        ),
        (
            "PasswordChange",
            "new_password",
            json!({"minLength": 8, "maxLength": 128}),
        ),
    ] {
        let property = &schemas[schema]["properties"][field];
        for (key, value) in bounds.as_object().unwrap() {
            // Bounds are written as floats (`1000000000.0`): compare numbers as numbers.
            let same = match value.as_f64() {
                Some(n) => property[key].as_f64() == Some(n),
                None => &property[key] == value,
            };
            assert!(same, "{schema}.{field} {key}: {property}");
        }
    }
}

/// The two big static answers are compressed when the client accepts it, and the document carries an
/// `ETag`: holding the current one, a client gets 304 and no body.
#[tokio::test]
async fn the_docs_and_the_document_are_compressed_and_revalidated() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut req = http.get(app.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let plain = get("/openapi.json", &[]).await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let plain_len = plain.bytes().await.unwrap().len();
    for (accept, coding) in [
        ("gzip", "gzip"),
        ("br, gzip", "gzip"),
        ("gzip;q=0.5", "gzip"),
    ] {
        let packed = get("/openapi.json", &[("accept-encoding", accept)])
            .await
            .unwrap();
        assert_eq!(packed.headers()["content-encoding"], coding, "{accept}");
        let packed_len = packed.bytes().await.unwrap().len();
        assert!(
            packed_len * 4 < plain_len,
            "{accept}: {packed_len} bytes of {plain_len}"
        );
    }
    let again = get("/openapi.json", &[("if-none-match", &etag)])
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = get("/openapi.json", &[("if-none-match", "\"old\"")])
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    let docs = get("/docs", &[("accept-encoding", "gzip")]).await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert_eq!(docs.headers()["content-encoding"], "gzip");
    // Other API answers are not compressed by the middleware (an event stream must not be held
    // back); the catalog's stored bodies are, past 1 KiB, and an empty catalog's page is not.
    let api = get("/api/v1/products", &[("accept-encoding", "gzip")])
        .await
        .unwrap();
    assert!(api.headers().get("content-encoding").is_none());
}
