//! The HTTP contract every route shares: problem documents, request ids, limits, headers, docs, operations.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, TestApp, read, settings};

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
    for body in [
        "{not json",
        "{\"password\": \"x\"}",
        "{\"email\": [1], \"password\": \"x\"}",
        "[]",
        "",
    ] {
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
    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    for expected in [
        "storefront_http_requests_total{method=\"GET\",route=\"/api/v1/users/me\",status=\"200\"} 1",
        "storefront_http_requests_total{method=\"POST\",route=\"/api/v1/auth/register\",status=\"201\"} 1",
        "storefront_http_request_duration_seconds_bucket{route=\"/api/v1/users/me\",le=\"+Inf\"} 1",
        "storefront_cache_hits_total",
        "storefront_cache_misses_total",
        "storefront_redis_errors_total 0",
        "storefront_db_conflict_retries_total",
    ] {
        assert!(
            metrics.text.contains(expected),
            "missing {expected}\n{}",
            metrics.text
        );
    }
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
            let public = matches!(path.as_str(), "/health" | "/ready" | "/metrics")
                || path.starts_with("/api/v1/auth/register")
                || path.starts_with("/api/v1/auth/login")
                || path.starts_with("/api/v1/auth/refresh")
                || (method == "get" && path.starts_with("/api/v1/products"))
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
                for status in ["400", "422", "500"] {
                    let response = &responses[status];
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path} does not document {status} as a problem"
                    );
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
            let legacy = !path.starts_with("/api/v1")
                && !["/health", "/ready", "/metrics"].contains(&path.as_str());
            assert_eq!(
                op["deprecated"].as_bool().unwrap_or(false),
                legacy,
                "{method} {path}: deprecated exactly when it is a legacy route"
            );
        }
    }
    assert!(operations >= 55, "{operations} operations");
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
