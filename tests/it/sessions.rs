//! Sessions: tokens, rotation, theft detection, sign-out, cookies and rate limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Api, PASSWORD, Res, TestApp, read, settings};

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let api = app.client();

    let first = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": customer.refresh_token}),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let next_refresh = first.json["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(next_refresh, customer.refresh_token);

    let fresh = api.with_token(first.json["access_token"].as_str().unwrap());
    assert_eq!(fresh.get("/api/v1/users/me").await.status, StatusCode::OK);

    let second = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": next_refresh}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_session() {
    let app = TestApp::spawn_with(settings(&[("REFRESH_REUSE_GRACE", "1s")])).await;
    let customer = app.customer().await;
    let api = app.client();

    let rotated = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": customer.refresh_token}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let thief_copy = customer.refresh_token.clone();
    // Past the grace window a second tab would have had: this is a replay.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    api.post("/api/v1/auth/refresh", json!({"refresh_token": thief_copy}))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");

    // The legitimate holder's newer tokens die with the session.
    let newer_refresh = rotated.json["refresh_token"].as_str().unwrap();
    api.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": newer_refresh}),
    )
    .await
    .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    api.with_token(rotated.json["access_token"].as_str().unwrap())
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    customer
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn forged_refresh_tokens_are_refused_without_touching_the_session() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let forged = {
        let mut parts: Vec<&str> = customer.refresh_token.splitn(3, '.').collect();
        parts[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        parts.join(".")
    };
    for token in [forged.as_str(), "garbage", ""] {
        let res = app
            .client()
            .post("/api/v1/auth/refresh", json!({"refresh_token": token}))
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text);
    }
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_refuses_the_access_token_on_the_next_request() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let (other_device, _) = customer.another_session(&app).await;
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    let res = customer.api.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    customer
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    app.client()
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": customer.refresh_token}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    // Only that session ended.
    assert_eq!(
        other_device.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let (other_device, _) = customer.another_session(&app).await;

    let res = customer
        .api
        .post("/api/v1/auth/logout-all", json!({}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    for api in [&customer.api, &other_device] {
        api.get("/api/v1/users/me")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    }
    // Signing in again works.
    customer.another_session(&app).await;
}

#[tokio::test]
async fn cookies_and_bearer_tokens_are_both_accepted() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let browser = app.browser();

    let login = browser
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let cookies: Vec<&str> = login
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for name in ["sf_access=", "sf_refresh="] {
        let cookie = cookies
            .iter()
            .find(|c| c.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not set: {cookies:?}"));
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
    }

    // Cookie only (this client sends no Authorization header).
    let me = browser.get("/api/v1/users/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["email"], customer.email.as_str());
    // Refresh from the cookie, with an empty body.
    let refreshed = browser.post("/api/v1/auth/refresh", json!({})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(browser.get("/api/v1/users/me").await.status, StatusCode::OK);
    // Bearer only.
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    // Logout through the cookie clears it and ends that session.
    let out = browser.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    browser
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn login_floods_get_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let api = app.client();
    let mut limited = None;
    for attempt in 1..=12 {
        let res = api
            .post(
                "/api/v1/auth/login",
                json!({"email": customer.email, "password": "wrong password"}),
            )
            .await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((attempt, res));
            break;
        }
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let (attempt, res) = limited.expect("the limit never engaged");
    assert_eq!(
        attempt, 11,
        "limit is 10 failures per email and address per minute"
    );
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // The right password is refused too from that address while limited: guessing gains nothing.
    let res = api
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    // Other accounts are unaffected.
    let other = app.customer().await;
    let res = api
        .post(
            "/api/v1/auth/login",
            json!({"email": other.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

/// Logins from a given client address, as a trusted proxy reports it (`CLIENT_IP_HEADER`).
fn from_address(app: &TestApp, ip: &str) -> Api {
    app.client().with_header("x-test-client-ip", ip)
}

fn limits_by_proxy_header() -> storefront::Settings {
    settings(&[("CLIENT_IP_HEADER", "X-Test-Client-IP")])
}

async fn login(api: &Api, email: &str, password: &str) -> Res {
    api.post(
        "/api/v1/auth/login",
        json!({"email": email, "password": password}),
    )
    .await
}

#[tokio::test]
async fn the_owner_can_sign_in_while_an_attacker_is_limited() {
    let app = TestApp::spawn_with(limits_by_proxy_header()).await;
    let owner = app.customer().await;
    let attacker = from_address(&app, "203.0.113.7");
    for _ in 0..10 {
        login(&attacker, &owner.email, "a guess")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    // Past the limit the attacker's address is refused, and keeps being refused, without a word on
    // whether a guess was right.
    for _ in 0..20 {
        let res = login(&attacker, &owner.email, "another guess").await;
        res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert!(res.header("retry-after").is_some());
    }
    login(&attacker, &owner.email, PASSWORD)
        .await
        .assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // The owner, from their own address, signs in at once, the same spelling or another.
    let owner_api = from_address(&app, "198.51.100.20");
    let res = login(&owner_api, &owner.email, PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let res = login(&owner_api, &owner.email.to_uppercase(), PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    // The owner's own typos are theirs to make: a few, then the right password.
    for _ in 0..3 {
        login(&owner_api, &owner.email, "typo")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let res = login(&owner_api, &owner.email, PASSWORD).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
}

#[tokio::test]
async fn successful_logins_do_not_count_toward_the_limit() {
    let app = TestApp::spawn_with(settings(&[
        ("CLIENT_IP_HEADER", "X-Test-Client-IP"),
        ("LOGIN_LIMIT_PER_EMAIL", "3"),
    ]))
    .await;
    let customer = app.customer().await;
    let api = from_address(&app, "192.0.2.1");
    // The limit is 3 per email and address; twelve sign-ins from one address all succeed, and so
    // does each one after a couple of typos (a success clears the pair's failures).
    for round in 0..12 {
        let res = login(&api, &customer.email, PASSWORD).await;
        assert_eq!(res.status, StatusCode::OK, "sign-in {round}: {}", res.text);
        if round % 4 == 1 {
            for _ in 0..2 {
                login(&api, &customer.email, "typo")
                    .await
                    .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
            }
        }
    }
    // Failures still count: three more and the fourth attempt is refused.
    for _ in 0..3 {
        login(&api, &customer.email, "typo")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    login(&api, &customer.email, PASSWORD)
        .await
        .assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test]
async fn the_per_address_login_limit_engages_across_emails() {
    let app = TestApp::spawn_with(settings(&[("LOGIN_LIMIT_PER_IP", "3")])).await;
    let api = app.client();
    for i in 0..3 {
        let res = api
            .post(
                "/api/v1/auth/login",
                json!({"email": format!("guess{i}@example.com"), "password": PASSWORD}),
            )
            .await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let res = api
        .post(
            "/api/v1/auth/login",
            json!({"email": "guess9@example.com", "password": PASSWORD}),
        )
        .await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(res.header("retry-after").is_some());
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_stay_signed_in() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let api = app.client();
    let refresh = || {
        api.post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": customer.refresh_token}),
        )
    };
    // Both tabs hold the same refresh token and present it at the same moment.
    let (a, b) = tokio::join!(refresh(), refresh());
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    // Both end up with the current refresh token, and both access tokens work.
    assert_eq!(a.json["refresh_token"], b.json["refresh_token"]);
    for tab in [&a, &b] {
        let me = api
            .with_token(tab.json["access_token"].as_str().unwrap())
            .get("/api/v1/users/me")
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    }
    let next = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": a.json["refresh_token"]}),
        )
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    // A token two generations old is never a second tab: the session ends.
    refresh()
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    api.with_token(next.json["access_token"].as_str().unwrap())
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn sessions_are_listed_and_ended_one_by_one() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let phone = app
        .client()
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", "PhoneBrowser/1.0")
        .header("content-type", "application/json")
        .body(json!({"email": customer.email, "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    let phone = read(phone).await;
    assert_eq!(phone.status, StatusCode::OK, "{}", phone.text);
    let phone = phone.json;
    let phone_session = phone["tokens"]["session_id"].as_str().unwrap().to_string();
    let phone_api = app
        .client()
        .with_token(phone["tokens"]["access_token"].as_str().unwrap());

    let list = customer.api.get("/api/v1/auth/sessions").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let items = list.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", list.text);
    let current: Vec<_> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_ne!(current[0]["id"], phone_session.as_str());
    let listed_phone = items
        .iter()
        .find(|s| s["id"] == phone_session.as_str())
        .unwrap();
    assert_eq!(listed_phone["user_agent"], "PhoneBrowser/1.0");
    assert_eq!(listed_phone["ip_prefix"], "127.0.0.0/24");
    assert!(listed_phone["created_at"].is_string() && listed_phone["last_used_at"].is_string());

    // Someone else cannot end it: 404, and it stays signed in.
    let stranger = app.customer().await;
    stranger
        .api
        .delete(&format!("/api/v1/auth/sessions/{phone_session}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        phone_api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    let ended = customer
        .api
        .delete(&format!("/api/v1/auth/sessions/{phone_session}"))
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.text);
    phone_api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    // Ending it again, or a session that never was: 404.
    for id in [phone_session.as_str(), "no-such-session"] {
        customer
            .api
            .delete(&format!("/api/v1/auth/sessions/{id}"))
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
    let list = customer.api.get("/api/v1/auth/sessions").await;
    assert_eq!(
        list.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_scopes_end_this_the_others_or_every_session() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let (laptop, _) = customer.another_session(&app).await;
    let (tablet, _) = customer.another_session(&app).await;

    // An unknown scope is refused and signs nobody out.
    customer
        .api
        .post("/api/v1/auth/logout?scope=everywhere", json!({}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    for api in [&customer.api, &laptop, &tablet] {
        assert_eq!(api.get("/api/v1/users/me").await.status, StatusCode::OK);
    }

    // others: every session but the caller's.
    let res = customer
        .api
        .post("/api/v1/auth/logout?scope=others", json!({}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
    for api in [&laptop, &tablet] {
        api.get("/api/v1/users/me")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    }

    // local (the default): only the caller's.
    let (phone, _) = customer.another_session(&app).await;
    let res = phone.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    phone
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    // global: all of them, the caller's included.
    let (watch, _) = customer.another_session(&app).await;
    let res = watch
        .post("/api/v1/auth/logout?scope=global", json!({}))
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    for api in [&customer.api, &watch] {
        api.get("/api/v1/users/me")
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

#[tokio::test]
async fn with_no_grace_window_any_reuse_ends_the_session() {
    let app = TestApp::spawn_with(settings(&[("REFRESH_REUSE_GRACE", "0")])).await;
    let customer = app.customer().await;
    let api = app.client();
    let body = json!({"refresh_token": customer.refresh_token});
    let rotated = api.post("/api/v1/auth/refresh", body.clone()).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    // Replayed at once, as a second tab would: refused, and the session is over.
    api.post("/api/v1/auth/refresh", body)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    api.with_token(rotated.json["access_token"].as_str().unwrap())
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}
