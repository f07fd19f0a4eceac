//! Token attacks: every forged, stale or replayed credential is refused with a 401, on the v1 API
//! (bearer), through the session cookie, and on a legacy route; none is a server error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::report::report;
use crate::common::{JWT_SECRET, TestApp};

fn sign(alg: Algorithm, claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn segment(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

/// Presents `token` as a bearer to two v1 routes, as the `sf_access` cookie, and to a legacy route:
/// every one must be refused with 401.
async fn assert_refused(app: &TestApp, attack: &str, token: &str) -> usize {
    let http = reqwest::Client::new();
    let mut tried = 0;
    for path in ["/api/v1/users/me", "/api/v1/cart"] {
        let res = app.client().with_token(token).get(path).await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{attack} on {path}: {}",
            res.text
        );
        assert_eq!(
            res.json["code"], "invalid_token",
            "{attack} on {path}: {}",
            res.text
        );
        tried += 1;
    }
    for path in ["/api/v1/users/me", "/user/profile"] {
        let res = http
            .get(app.url(path))
            .header("cookie", format!("sf_access={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{attack} as cookie on {path}"
        );
        tried += 1;
    }
    let res = app.client().with_token(token).get("/user/profile").await;
    assert_eq!(
        res.status,
        StatusCode::UNAUTHORIZED,
        "{attack} on legacy: {}",
        res.text
    );
    tried + 1
}

#[tokio::test]
async fn forged_stale_and_replayed_tokens_are_all_refused() {
    let app = TestApp::spawn().await;
    let victim = app.customer().await;
    let token = victim.api.token.clone().unwrap();
    let mut parts = token.split('.');
    let (header, body, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    let now = claims["iat"].as_u64().unwrap();
    let mut as_admin = claims.clone();
    as_admin["role"] = json!("admin");
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 3600);
    expired["exp"] = json!(now - 1800);
    let mut no_expiry = claims.clone();
    no_expiry.as_object_mut().unwrap().remove("exp");

    let mut attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{body}.", segment(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg None with the original signature",
            format!(
                "{}.{body}.{signature}",
                segment(r#"{"alg":"None","typ":"JWT"}"#)
            ),
        ),
        (
            "wrong signing key",
            sign(
                Algorithm::HS256,
                &claims,
                "another-secret-another-secret-12345",
            ),
        ),
        (
            "role raised to admin, signature kept",
            format!("{header}.{}.{signature}", segment(&as_admin.to_string())),
        ),
        (
            "wrong algorithm HS512, right key",
            sign(Algorithm::HS512, &claims, JWT_SECRET),
        ),
        (
            "wrong algorithm HS384, right key",
            sign(Algorithm::HS384, &claims, JWT_SECRET),
        ),
        (
            "RS256 header over an HMAC signature",
            format!(
                "{}.{body}.{signature}",
                segment(r#"{"alg":"RS256","typ":"JWT"}"#)
            ),
        ),
        ("expired", sign(Algorithm::HS256, &expired, JWT_SECRET)),
        (
            "no expiry claim",
            sign(Algorithm::HS256, &no_expiry, JWT_SECRET),
        ),
        ("empty signature", format!("{header}.{body}.")),
        ("garbage", "not.a.jwt".into()),
        ("one segment", "abc".into()),
        ("huge", "a".repeat(6000)),
    ];

    // Stale credentials of real sessions: a revoked session, a deleted user.
    let (revoked, _) = victim.another_session(&app).await;
    assert_eq!(
        revoked.post("/api/v1/auth/logout", json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    attacks.push((
        "revoked session (logged out)",
        revoked.token.clone().unwrap(),
    ));
    let doomed = app.customer().await;
    assert_eq!(
        doomed.api.delete("/api/v1/users/me").await.status,
        StatusCode::NO_CONTENT
    );
    attacks.push(("deleted user", doomed.api.token.clone().unwrap()));

    let mut requests = 0;
    for (attack, token) in &attacks {
        requests += assert_refused(&app, attack, token).await;
    }
    // The victim's real token still works: nothing above touched the session.
    assert_eq!(
        victim.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    // A refresh token replayed after two rotations (older than any second tab's): refused, and the
    // whole session ends (theft).
    let api = app.client();
    let rotated = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": victim.refresh_token}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let rotated = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": rotated.json["refresh_token"]}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    api.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": victim.refresh_token}),
    )
    .await
    .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    victim
        .api
        .get("/api/v1/users/me")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
    for forged in [
        "",
        "x",
        "a.b.c",
        &format!("{}.0.AAAA", uuid::Uuid::new_v4().simple()),
    ] {
        let res = api
            .post("/api/v1/auth/refresh", json!({"refresh_token": forged}))
            .await;
        assert!(
            matches!(
                res.status,
                StatusCode::UNAUTHORIZED | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "forged refresh {forged:?}: {}",
            res.text
        );
        requests += 1;
    }
    report(
        "tokens",
        format!(
            "{} access-token attacks ({}) × 5 ways in (bearer on 2 v1 routes, cookie on v1 and legacy, \
             bearer on legacy) = {requests} requests incl. 4 forged refresh tokens: all 401, none 5xx; \
             a replayed refresh token refused and its session ended",
            attacks.len(),
            attacks
                .iter()
                .map(|(a, _)| *a)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
}
