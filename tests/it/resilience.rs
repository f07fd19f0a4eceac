//! What must hold when parts fail: Redis going away and coming back, restarts on the same data,
//! and the admin command.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{
    PASSWORD, PrivateRedis, ServerProcess, TestApp, cli, free_port, redis_url, settings,
    surrealkv_url, temp_dir, unique,
};

#[tokio::test]
async fn redis_stopping_mid_run_degrades_to_the_database_and_recovers() {
    let mut redis = PrivateRedis::start();
    let app = TestApp::spawn_with(settings(&[("REDIS_URL", &redis.url())])).await;
    let customer = app.customer().await;
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    redis.stop();
    // Sign-in, token checks, profile reads and sign-out all still work, from SurrealDB.
    let (second, _) = customer.another_session(&app).await;
    let me = second.get("/api/v1/users/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
    assert_eq!(
        second.post("/api/v1/auth/logout", json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    second
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    app.client()
        .get("/ready")
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let metrics = app.metrics().await;
    assert!(
        !metrics.contains("storefront_redis_errors_total 0"),
        "Redis errors not counted"
    );

    redis.restart();
    // The connection manager reconnects by itself: readiness returns and the cache is used again.
    assert!(
        app.becomes_ready(Duration::from_secs(5)).await,
        "never became ready after Redis came back"
    );
    let hits = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("storefront_cache_hits_total "))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let before = hits(&app.metrics().await);
    for _ in 0..3 {
        assert_eq!(
            customer.api.get("/api/v1/users/me").await.status,
            StatusCode::OK
        );
    }
    let after = hits(&app.metrics().await);
    assert!(
        after >= before + 2,
        "cache not used after Redis returned ({before} -> {after})"
    );
    // The session signed out while Redis was down stays signed out.
    second
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}

/// Redis going away while a sale is made, and coming back with what it held before (a restart of a
/// persisted Redis, a failover to a replica that lagged): the cached bodies it brings back show the
/// old stock, and no read may be served one of them.
#[tokio::test]
async fn a_sale_made_while_redis_is_away_shows_once_it_is_back_with_its_old_data() {
    use crate::common::sell_while_redis_is_away;

    let mut redis = PrivateRedis::start();
    let app = TestApp::spawn_with(settings(&[("REDIS_URL", &redis.url())])).await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Away Hat", 1200, 10).await;
    let reader = app.client();
    let product = format!("/api/v1/products/{hat}");
    let find = |listing: &serde_json::Value, field: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == hat)
            .map(|p| p[field].as_i64().unwrap())
    };
    // Cached in Redis: the product, the first page, the NextBuy catalog.
    assert_eq!(reader.get(&product).await.json["stock"], 10);
    let page = reader.get("/api/v1/products").await;
    assert_eq!(find(&page.json["items"], "stock"), Some(10));
    let legacy = reader.get("/products").await;
    assert_eq!(find(&legacy.json, "stock_quantity"), Some(10));
    let customer = app.customer().await;
    sell_while_redis_is_away(&customer.api, &mut redis, hat, 3).await;
    assert_eq!(
        reader.get(&product).await.json["stock"],
        7,
        "read past the cache while Redis is away"
    );

    redis.restart();
    assert!(
        app.becomes_ready(Duration::from_secs(10)).await,
        "never ready after Redis came back"
    );
    for round in 0..3 {
        assert_eq!(
            reader.get(&product).await.json["stock"],
            7,
            "round {round}: the product's body from before the sale"
        );
        let page = reader.get("/api/v1/products").await;
        assert_eq!(
            find(&page.json["items"], "stock"),
            Some(7),
            "round {round}: the first page from before the sale"
        );
        let legacy = reader.get("/products").await;
        assert_eq!(
            find(&legacy.json, "stock_quantity"),
            Some(7),
            "round {round}: the NextBuy catalog from before the sale"
        );
    }
}

#[tokio::test]
async fn without_redis_the_in_process_cache_serves() {
    let app = TestApp::spawn_with(settings(&[("REDIS_URL", "")])).await;
    let ready = app.client().get("/ready").await;
    assert_eq!(ready.json["cache"], "in-process", "{}", ready.text);
    let customer = app.customer().await;
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
    assert_eq!(
        customer
            .api
            .post("/api/v1/auth/logout", json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    customer
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn users_survive_a_kill_and_restart_on_the_same_surrealkv_directory() {
    let dir = temp_dir("kv");
    let url = surrealkv_url(&dir);
    let vars = [("SURREAL_URL", url.as_str()), ("SURREAL_NS", "restart")];
    let server = ServerProcess::start(&vars).await;
    let api = server.client();
    let email = format!("{}@example.com", unique("kept"));
    let res = api
        .post(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "name": "Kept"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let id = res.json["user"]["id"].clone();
    let token = res.json["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    server.kill();

    let server = ServerProcess::start(&vars).await;
    let login = server
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.json["user"]["id"], id);
    // Its session (signed with the same JWT_SECRET) is still valid too.
    let me = server
        .client()
        .with_token(&token)
        .get("/api/v1/users/me")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    server.kill();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn create_admin_makes_or_promotes_an_admin_and_only_from_the_command_line() {
    let dir = temp_dir("cli");
    let url = surrealkv_url(&dir);

    let migrate = cli(&url, &["migrate"], None, None);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let created = cli(
        &url,
        &["create-admin", "--email", "Boss@Example.com"],
        Some("admin password 1"),
        None,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created admin boss@example.com"));

    let bad = cli(
        &url,
        &["create-admin", "--email", "x@example.com"],
        None,
        Some("short\n"),
    );
    assert!(!bad.status.success(), "a short password was accepted");

    let vars = [("SURREAL_URL", url.as_str()), ("SURREAL_NS", "cli")];
    let server = ServerProcess::start(&vars).await;
    let login = server
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": "boss@example.com", "password": "admin password 1"}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.json["user"]["role"], "admin");
    let email = format!("{}@example.com", unique("promoted"));
    let res = server
        .client()
        .post(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "name": "Soon Admin"}),
        )
        .await;
    assert_eq!(res.json["user"]["role"], "customer");
    let token = res.json["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    server.kill();

    // An existing user is promoted; no password is asked for.
    let promoted = cli(&url, &["create-admin", "--email", &email], None, None);
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("promoted"));

    let server = ServerProcess::start(&vars).await;
    // The customer-role token of before the promotion was revoked with its session.
    server
        .client()
        .with_token(&token)
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    let login = server
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.json["user"]["role"], "admin", "{}", login.text);
    server.kill();

    let usage = cli(&url, &["create-admin", "--password", "x"], None, None);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a password flag must not be accepted"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .env_clear()
        .env("APP_ENV", "production")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .env_clear()
        .env("PORT", "http")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid PORT"));
}

#[tokio::test]
async fn sigterm_stops_gracefully_and_json_logs_carry_the_request_id() {
    use std::io::BufRead as _;
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("METRICS_PORT", "0")
        .env("SURREAL_URL", "mem://")
        .env("SEED_CATALOG", "true")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if http
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready);
    let res = http
        .get(format!("{base}/health"))
        .header("x-request-id", "json-log-probe")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // An open event stream must not hold the shutdown for its whole grace period.
    let mut stream = http
        .get(format!("{base}/api/v1/products/1/stock/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.chunk().await.unwrap().is_some(), "the first event");

    let pid = child.id().to_string();
    let signalled = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        signalled.elapsed() < storefront::app::SHUTDOWN_GRACE / 2,
        "the open stream held the shutdown for {:?}",
        signalled.elapsed()
    );
    assert!(
        !matches!(stream.chunk().await, Ok(Some(_))),
        "the stream still sends after the shutdown"
    );
    assert!(
        status.status.success(),
        "exit status after SIGTERM: {:?}",
        status.status
    );
    let lines: Vec<serde_json::Value> = status
        .stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every log line is JSON"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.to_string().contains("json-log-probe")),
        "no log line carries the request id: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "shutting down: finishing in-flight requests")
    );
    assert!(
        http.get(format!("{base}/health")).send().await.is_err(),
        "still serving after SIGTERM"
    );
}

#[tokio::test]
async fn serve_makes_the_named_account_an_admin_once_and_keeps_its_sessions() {
    let dir = temp_dir("bootstrap");
    let url = surrealkv_url(&dir);
    let email = format!("{}@example.com", unique("boss"));
    let vars = [
        ("SURREAL_URL", url.as_str()),
        ("SURREAL_NS", "cli"),
        ("STOREFRONT_ADMIN_EMAIL", email.as_str()),
        ("STOREFRONT_ADMIN_PASSWORD", PASSWORD),
    ];
    let server = ServerProcess::start(&vars).await;
    let login = server
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.json["user"]["role"], "admin", "{}", login.text);
    let token = login.json["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    server.kill();

    // Every later start finds it an admin already: nothing changes, its session stays valid.
    let server = ServerProcess::start(&vars).await;
    let me = server
        .client()
        .with_token(&token)
        .get("/api/v1/users/me")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["role"], "admin");
    server.kill();

    // Naming an account that does not exist without a password stops start-up, saying why.
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .env_clear()
        .env("SURREAL_URL", &url)
        .env("REDIS_URL", redis_url())
        .env("PORT", "0")
        .env("METRICS_PORT", "0")
        .env("STOREFRONT_ADMIN_EMAIL", "nobody-yet@example.com")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STOREFRONT_ADMIN_PASSWORD"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `storefront --version` answers without any configuration (no database is opened), and says the
/// version `/health` and `storefront_build_info` report.
#[test]
fn the_version_is_printed_without_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
        .arg("--version")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("storefront {}\n", storefront::VERSION)
    );
}
