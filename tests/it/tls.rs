//! Managed services over TLS: a SurrealDB server with a certificate (`wss://`) and a Redis that
//! speaks only TLS (`rediss://`), both on loopback with a CA this test makes, which the instances
//! are given as `SURREAL_CA_FILE` and `REDIS_CA_FILE`.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{SurrealServer, TestApp, TestCa, TlsRedis, add, checkout, settings};
use crate::reliability::report::report;

/// The variables of an instance over `surreal` and `redis`, trusting `ca` (or not, when `None`).
fn tls_vars<'a>(
    surreal: &'a SurrealServer,
    redis: &'a str,
    ca: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut vars = surreal.vars().to_vec();
    vars.push(("REDIS_URL", redis));
    if let Some(ca) = ca {
        vars.push(("SURREAL_CA_FILE", ca));
        vars.push(("REDIS_CA_FILE", ca));
    }
    vars
}

async fn ready(app: &TestApp) -> serde_json::Value {
    let mut res = app.client().get("/ready").await;
    for _ in 0..40 {
        if res.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        res = app.client().get("/ready").await;
    }
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_wss_and_rediss_check_out_and_sign_out_across_each_other() {
    let ca = TestCa::new();
    let surreal = SurrealServer::start_tls(&ca).await;
    let redis = TlsRedis::start(&ca);
    let redis_url = redis.url();
    assert!(surreal.url.starts_with("wss://") && redis_url.starts_with("rediss://"));
    let vars = tls_vars(&surreal, &redis_url, Some(ca.ca_path()));

    let started = Instant::now();
    let a = TestApp::spawn_with(settings(&vars)).await;
    assert_eq!(ready(&a).await, json!({"database": "ok", "cache": "redis"}));
    report(
        "tls",
        format_args!(
            "start to ready over wss:// + rediss:// (connect, TLS handshakes, schema): {} ms",
            started.elapsed().as_millis()
        ),
    );
    let mut second = vars.clone();
    second.push(("SURREAL_NS", a.namespace.as_str()));
    let b = TestApp::spawn_with(settings(&second)).await;
    ready(&b).await;

    // A product made on A is bought on B, and the order is the customer's on A.
    let admin = a.admin().await;
    let hat = a.product(&admin, "Hat", 1500, 3).await;
    let customer = a.customer().await;
    let on_b = b
        .client()
        .with_token(customer.api.token.as_deref().unwrap());
    assert_eq!(add(&on_b, hat, 2).await.status, StatusCode::CREATED);
    assert_eq!(customer.api.get("/api/v1/cart").await.json["item_count"], 2);
    let order = checkout(&on_b).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    let id = order.json["id"].as_str().unwrap();
    let mine = customer.api.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(
        b.client()
            .get(&format!("/api/v1/products/{hat}"))
            .await
            .json["stock"],
        1
    );

    // B has checked the session (and cached it in the shared Redis); signing out on A ends it on B.
    assert_eq!(on_b.get("/api/v1/users/me").await.status, StatusCode::OK);
    assert_eq!(
        customer
            .api
            .post("/api/v1/auth/logout", json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    on_b.get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_whose_certificates_are_not_trusted_are_refused() {
    let ca = TestCa::new();
    let surreal = SurrealServer::start_tls(&ca).await;
    let redis = TlsRedis::start(&ca);
    let redis_url = redis.url();

    // Without the CA file, the SurrealDB server's certificate verifies against nothing the system
    // trusts: start-up stops, saying so.
    let vars = tls_vars(&surreal, &redis_url, None);
    let err = match storefront::Application::build(settings(&vars)).await {
        Ok(_) => panic!("connected to a server whose certificate nobody vouches for"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("connecting to SurrealDB"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // Redis connects lazily (a Redis down at start is picked up later), so an untrusted one shows
    // as unreachable: `/ready` says 503, and requests still succeed from SurrealDB.
    let mut vars = tls_vars(&surreal, &redis_url, None);
    vars.push(("SURREAL_CA_FILE", ca.ca_path()));
    let app = TestApp::spawn_with(settings(&vars)).await;
    let res = app.client().get("/ready").await;
    res.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(res.text.contains("Redis"), "{}", res.text);
    let customer = app.customer().await;
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
    app.stop().await;

    // A certificate from the trusted CA but for another name is refused too: the host is verified,
    // not only the signature.
    let elsewhere = TestCa::for_names("DNS:db.elsewhere.example");
    let surreal = SurrealServer::start_tls(&elsewhere).await;
    let mut vars = surreal.vars().to_vec();
    vars.push(("SURREAL_CA_FILE", elsewhere.ca_path()));
    let err = match storefront::Application::build(settings(&vars)).await {
        Ok(_) => panic!("accepted a certificate issued for another host"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
