//! Registration, login, profile and password: the accounts API over HTTP.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, TestApp, assert_no_hash, unique};

#[tokio::test]
async fn register_refuses_bad_fields_naming_each_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let api = app.client();
    let email = format!("{}@example.com", unique("v"));
    for (body, field) in [
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "Ann"}),
            "email",
        ),
        (
            json!({"email": email, "password": "short", "name": "Ann"}),
            "password",
        ),
        (
            json!({"email": email, "password": PASSWORD, "name": "   "}),
            "name",
        ),
        (
            json!({"email": email, "password": PASSWORD, "name": "Ann", "address": "x".repeat(501)}),
            "address",
        ),
    ] {
        let res = api.post("/api/v1/auth/register", body).await;
        let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(problem["field"], field);
    }
    // None of those attempts created the account.
    let login = api
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    login.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn register_rejects_an_email_taken_in_another_case() {
    let app = TestApp::spawn().await;
    let api = app.client();
    let local = unique("Case");
    let first = api
        .post(
            "/api/v1/auth/register",
            json!({"email": format!("{local}@Example.com"), "password": PASSWORD, "name": "Ann"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(
        first.json["user"]["email"],
        format!("{}@example.com", local.to_lowercase())
    );
    assert_eq!(first.json["user"]["role"], "customer");

    let again = api
        .post("/api/v1/auth/register", json!({"email": format!("{}@EXAMPLE.COM", local.to_uppercase()), "password": PASSWORD, "name": "Bob"}))
        .await;
    again.assert_problem(StatusCode::CONFLICT, "email_taken");
}

/// Each ASCII character of `s` as its full-width form (U+FF01..U+FF5E), as some keyboards type it.
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
            _ => c,
        })
        .collect()
}

#[tokio::test]
async fn an_email_is_one_identity_however_it_is_typed() {
    let app = TestApp::spawn().await;
    let api = app.client();
    let id = unique("id");
    // The same address four ways: é decomposed (e + U+0301), é composed, full-width letters, and
    // capitals with an internationalised domain in capitals.
    let decomposed = format!("{id}.e\u{301}lodie@e\u{301}xample.com");
    let composed = format!("{id}.\u{e9}lodie@\u{e9}xample.com");
    let wide = full_width(&composed);
    let capitals = format!("{}.\u{c9}LODIE@\u{c9}XAMPLE.COM", id.to_uppercase());
    assert_ne!(decomposed, composed);

    let first = api
        .post(
            "/api/v1/auth/register",
            json!({"email": decomposed, "password": PASSWORD, "name": "Élodie"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // Stored as one canonical spelling: composed, folded, and the domain as IDNA ASCII.
    assert_eq!(
        first.json["user"]["email"],
        format!("{id}.\u{e9}lodie@xn--xample-9ua.com")
    );

    for spelling in [&composed, &wide, &capitals, &decomposed] {
        api.post(
            "/api/v1/auth/register",
            json!({"email": spelling, "password": PASSWORD, "name": "Other"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "email_taken");
    }
    for spelling in [&composed, &wide, &capitals, &decomposed] {
        let res = api
            .post(
                "/api/v1/auth/login",
                json!({"email": spelling, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "login as {spelling:?}: {}",
            res.text
        );
        assert_eq!(res.json["user"]["id"], first.json["user"]["id"]);
    }
}

#[tokio::test]
async fn login_failure_says_the_same_for_unknown_email_and_wrong_password() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let api = app.client();

    let ok = api
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["user"]["id"], customer.id.as_str());
    assert_eq!(ok.json["tokens"]["token_type"], "Bearer");

    let wrong = api
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": "wrong password"}),
        )
        .await;
    let unknown = api
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    let malformed = api
        .post(
            "/api/v1/auth/login",
            json!({"email": "not an email", "password": PASSWORD}),
        )
        .await;
    for res in [&wrong, &unknown, &malformed] {
        let problem = res.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(problem["detail"], "invalid email or password");
    }
}

#[tokio::test]
async fn no_response_ever_carries_a_password_hash() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let api = &customer.api;
    let responses = vec![
        api.get("/api/v1/users/me").await,
        api.patch("/api/v1/users/me", json!({"name": "Renamed"}))
            .await,
        app.client()
            .post(
                "/api/v1/auth/login",
                json!({"email": customer.email, "password": PASSWORD}),
            )
            .await,
        app.client()
            .post(
                "/api/v1/auth/refresh",
                json!({"refresh_token": customer.refresh_token}),
            )
            .await,
        app.client()
            .post(
                "/api/v1/auth/register",
                json!({"email": customer.email, "password": PASSWORD, "name": "Dup"}),
            )
            .await,
    ];
    for res in &responses {
        assert!(res.status.as_u16() < 500, "{}", res.text);
        assert_no_hash(res);
    }
}

#[tokio::test]
async fn profile_changes_are_validated_and_role_cannot_be_self_granted() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let api = &customer.api;

    let res = api
        .patch(
            "/api/v1/users/me",
            json!({"name": "Ann Smith", "address": "1 High St"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.json["name"], "Ann Smith");
    assert_eq!(res.json["address"], "1 High St");

    api.patch("/api/v1/users/me", json!({"email": "nope"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let other = app.customer().await;
    api.patch(
        "/api/v1/users/me",
        json!({"email": other.email.to_uppercase()}),
    )
    .await
    .assert_problem(StatusCode::CONFLICT, "email_taken");

    let escalate = api
        .patch("/api/v1/users/me", json!({"role": "admin"}))
        .await;
    assert_eq!(
        escalate.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "role",
        "{}",
        escalate.text
    );
    let me = api.get("/api/v1/users/me").await;
    assert_eq!(me.json["role"], "customer");
    assert_eq!(me.json["name"], "Ann Smith");
    assert_eq!(me.json["email"], customer.email.as_str());
}

#[tokio::test]
async fn password_change_signs_out_the_other_sessions_only() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let (other_device, other_refresh) = customer.another_session(&app).await;

    customer
        .api
        .put(
            "/api/v1/users/me/password",
            json!({"current_password": "not it at all", "new_password": "a new password"}),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let res = customer
        .api
        .put(
            "/api/v1/users/me/password",
            json!({"current_password": PASSWORD, "new_password": "a new password"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);

    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );
    other_device
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    app.client()
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": other_refresh}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");

    let api = app.client();
    api.post(
        "/api/v1/auth/login",
        json!({"email": customer.email, "password": PASSWORD}),
    )
    .await
    .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let new = api
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": "a new password"}),
        )
        .await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text);
}

#[tokio::test]
async fn deleting_the_account_ends_its_sessions_and_frees_nothing_else() {
    let app = TestApp::spawn().await;
    let customer = app.customer().await;
    let bystander = app.customer().await;

    let res = customer.api.delete("/api/v1/users/me").await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text);

    customer
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    app.client()
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": PASSWORD}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        bystander.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    // The email is free again.
    let again = app
        .client()
        .post(
            "/api/v1/auth/register",
            json!({"email": customer.email, "password": PASSWORD, "name": "Back"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
}
