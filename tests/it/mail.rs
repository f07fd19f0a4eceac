//! Mail that leaves the store, through the outbox, to a real SMTP server (`aiosmtpd`): the password
//! reset journey, answers that do not tell whether an account exists, retries of a refusing relay,
//! and an outbox that survives SIGKILL between the commit and the send.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{
    PASSWORD, ServerProcess, SmtpCapture, TestApp, VERIFY_SUBJECT, free_port, remote_surreal,
    reset_token, settings, surrealkv_url, temp_dir, unique,
};
use crate::reliability::report::report;

fn mail_vars(smtp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", smtp.to_string()),
        ("MAIL_FROM", "Test Shop <shop@example.com>".into()),
        ("STORE_NAME", "Test Shop".into()),
        ("PUBLIC_URL", "https://shop.example.com".into()),
    ]
}

async fn mail_app(smtp: &SmtpCapture) -> TestApp {
    let vars = mail_vars(&smtp.url());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(settings(&vars)).await
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let smtp = SmtpCapture::start().ignoring(VERIFY_SUBJECT);
    let app = mail_app(&smtp).await;
    let customer = app.customer().await;
    let (second_device, _) = customer.another_session(&app).await;

    let known = app
        .client()
        .post(
            "/api/v1/auth/password-reset",
            json!({"email": customer.email.to_uppercase()}),
        )
        .await;
    let unknown = app
        .client()
        .post(
            "/api/v1/auth/password-reset",
            json!({"email": format!("{}@example.com", unique("nobody"))}),
        )
        .await;
    // Indistinguishable to the caller.
    assert_eq!(known.status, StatusCode::ACCEPTED, "{}", known.text);
    assert_eq!((unknown.status, &unknown.text), (known.status, &known.text));
    // What is no address at all is refused as such, whoever asks.
    let malformed = app
        .client()
        .post("/api/v1/auth/password-reset", json!({"email": ""}))
        .await;
    assert_eq!(
        malformed.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "email"
    );

    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["to"], json!([customer.email]));
    assert_eq!(mail["from"], "shop@example.com");
    assert_eq!(mail["subject"], "Reset your password");
    assert!(mail["text"].as_str().unwrap().contains("Test Shop"));
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("https://shop.example.com/reset-password?token=")
    );
    let token = reset_token(mail);
    assert!(mail["html"].as_str().unwrap().contains(&token));

    // Refusals change nothing.
    let confirm = "/api/v1/auth/password-reset/confirm";
    let forged = app
        .client()
        .post(
            confirm,
            json!({"token": "not-a-token", "password": "a brand new password"}),
        )
        .await;
    assert_eq!(
        forged.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "token"
    );
    let short = app
        .client()
        .post(confirm, json!({"token": token, "password": "short"}))
        .await;
    assert_eq!(
        short.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        short.text
    );
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::OK
    );

    let done = app
        .client()
        .post(
            confirm,
            json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.text);
    // Every session is signed out; the old password is gone; the new one signs in.
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        second_device.get("/api/v1/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let old = app
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = app
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text);
    // The link works once.
    let again = app
        .client()
        .post(
            confirm,
            json!({"token": token, "password": "yet another password"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.mails().len(), 1, "no mail for the unknown address");
    app.stop().await;
}

#[tokio::test]
async fn reset_requests_are_limited_like_sign_ins() {
    let smtp = SmtpCapture::start().ignoring(VERIFY_SUBJECT);
    let mut vars = mail_vars(&smtp.url());
    vars.push(("LOGIN_LIMIT_PER_EMAIL", "3".into()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(settings(&vars)).await;
    let customer = app.customer().await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = app
            .client()
            .post(
                "/api/v1/auth/password-reset",
                json!({"email": customer.email}),
            )
            .await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.header("retry-after").is_some());
        }
        statuses.push(res.status.as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    // Reset counters are their own: the owner still signs in (SPEC: limits cannot lock an
    // account's owner out).
    let login = app
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": customer.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let mails = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 3, "one mail per accepted request");
    app.stop().await;
}

#[tokio::test]
async fn a_refusing_relay_is_retried_with_backoff_until_it_accepts() {
    // The relay answers 451 to the first two attempts.
    let smtp = SmtpCapture::start_on(free_port(), 2).ignoring(VERIFY_SUBJECT);
    let app = mail_app(&smtp).await;
    let customer = app.customer().await;
    let res = app
        .client()
        .post(
            "/api/v1/auth/password-reset",
            json!({"email": customer.email}),
        )
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED);
    // Tries at about 0 s, 2 s and 6 s.
    let mails = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "delivered on the third attempt");
    // The relay accepted it; the sender records that just after.
    let mut counts = Vec::new();
    for _ in 0..100 {
        counts = app.state.store.outbox_counts().await.unwrap();
        // The reset mail, and the registration's verification mail (refused twice too).
        if counts == [("sent".to_string(), 2)] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counts, [("sent".to_string(), 2)]);
    report(
        "mail retries",
        "a relay refusing the first 2 attempts (451): delivered on the third, after 2 s and 4 s of backoff; recorded sent once",
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_committed_before_a_sigkill_is_sent_after_the_restart() {
    // No relay answers at first: the mail waits in the outbox.
    let smtp_port = free_port();
    let dir = temp_dir("outbox-crash");
    let mut vars: Vec<(&str, String)> = match remote_surreal() {
        Some(remote) => remote.into_iter().collect(),
        None => vec![("SURREAL_URL", surrealkv_url(&dir))],
    };
    vars.push(("SURREAL_NS", unique("outbox")));
    vars.extend(mail_vars(&format!("smtp://127.0.0.1:{smtp_port}")));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = ServerProcess::start(&vars).await;
    let email = format!("{}@example.com", unique("crash"));
    let reg = server
        .client()
        .post(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "name": "C"}),
        )
        .await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
    let res = server
        .client()
        .post("/api/v1/auth/password-reset", json!({"email": email}))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();

    let smtp = SmtpCapture::start_on(smtp_port, 0).ignoring(VERIFY_SUBJECT);
    let server = ServerProcess::start(&vars).await;
    let mails = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "the committed mail survives the kill");
    assert_eq!(mails[0]["to"], json!([email]));
    report(
        "outbox crash",
        "a reset mail committed while no relay answered, the server SIGKILLed, restarted with the relay up: the mail arrives, once",
    );
    server.kill();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_order_mails_its_customer_as_it_is_placed_paid_shipped_and_cancelled() {
    let smtp = SmtpCapture::start().ignoring(VERIFY_SUBJECT);
    let app = mail_app(&smtp).await;
    let admin = app.admin().await;
    let tee = app.product(&admin, "Linen tee", 2250, 10).await;
    let customer = app.customer().await;
    let subjects = |mails: &[serde_json::Value]| -> Vec<String> {
        let mut s: Vec<String> = mails
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_string())
            .collect();
        s.sort();
        s
    };

    assert_eq!(
        crate::common::add(&customer.api, tee, 2).await.status,
        StatusCode::CREATED
    );
    let first = crate::common::checkout(&customer.api).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let id = first.json["id"].as_str().unwrap().to_string();
    let placed = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(subjects(&placed), ["Your order is placed"]);
    let text = placed[0]["text"].as_str().unwrap();
    assert_eq!(placed[0]["to"], json!([customer.email]));
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("2 × Linen tee: 45.00 GBP"), "{text}");
    assert!(text.contains("Total: 45.00 GBP"), "{text}");
    assert!(
        text.contains(&format!("https://shop.example.com/orders/{id}")),
        "{text}"
    );

    for to in ["paid", "shipped"] {
        let moved = admin
            .post(
                &format!("/api/v1/admin/orders/{id}/status"),
                json!({"status": to}),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    }
    // Delivered sends nothing.
    let delivered = admin
        .post(
            &format!("/api/v1/admin/orders/{id}/status"),
            json!({"status": "delivered"}),
        )
        .await;
    assert_eq!(delivered.status, StatusCode::OK);

    assert_eq!(
        crate::common::add(&customer.api, tee, 1).await.status,
        StatusCode::CREATED
    );
    let second = crate::common::checkout(&customer.api).await;
    let second_id = second.json["id"].as_str().unwrap();
    let cancelled = customer
        .api
        .post(&format!("/api/v1/orders/{second_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK);

    let mails = smtp.wait_for(5, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = if mails.len() < smtp.mails().len() {
        smtp.mails()
    } else {
        mails
    };
    assert_eq!(
        subjects(&mails),
        [
            "Payment received for your order",
            "Your order has shipped",
            "Your order is cancelled",
            "Your order is placed",
            "Your order is placed",
        ]
    );
    app.stop().await;
}

/// The verification mails received so far for `email`, oldest unknown: their tokens.
fn verification_tokens(smtp: &SmtpCapture, email: &str) -> Vec<String> {
    smtp.mails()
        .iter()
        .filter(|m| m["subject"] == VERIFY_SUBJECT && m["to"] == json!([email]))
        .map(|m| {
            assert!(
                m["text"]
                    .as_str()
                    .unwrap()
                    .contains("https://shop.example.com/verify-email?token=")
            );
            reset_token(m)
        })
        .collect()
}

async fn wait_for_verifications(smtp: &SmtpCapture, email: &str, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let tokens = verification_tokens(smtp, email);
        if tokens.len() >= n {
            return tokens;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    verification_tokens(smtp, email)
}

#[tokio::test]
async fn an_email_is_verified_by_the_mailed_link_and_a_new_email_needs_it_again() {
    let smtp = SmtpCapture::start();
    let app = mail_app(&smtp).await;
    let customer = app.customer().await;
    let me = customer.api.get("/api/v1/users/me").await;
    assert_eq!(me.json["email_verified"], false, "{}", me.text);
    let tokens = wait_for_verifications(&smtp, &customer.email, 1).await;
    assert_eq!(tokens.len(), 1, "registration mails a link");
    let confirm = "/api/v1/auth/verify-email";
    for forged in ["not-a-token", &"x".repeat(40)] {
        let res = app.client().post(confirm, json!({"token": forged})).await;
        assert_eq!(
            res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
            "token"
        );
    }
    let ok = app
        .client()
        .post(confirm, json!({"token": tokens[0]}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text);
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.json["email_verified"],
        true
    );
    // Used once only; nothing left to verify.
    let again = app
        .client()
        .post(confirm, json!({"token": tokens[0]}))
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    customer
        .api
        .post("/api/v1/users/me/verify-email", json!({}))
        .await
        .assert_problem(StatusCode::CONFLICT, "email_already_verified");

    // A new email is unverified, and its own link comes to it.
    let new_email = format!("{}@example.com", unique("moved"));
    let moved = customer
        .api
        .patch("/api/v1/users/me", json!({"email": new_email}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    assert_eq!(moved.json["email_verified"], false);
    let new_tokens = wait_for_verifications(&smtp, &new_email, 1).await;
    assert_eq!(new_tokens.len(), 1);
    // A name change alone mails nothing and keeps the state.
    let renamed = customer
        .api
        .patch("/api/v1/users/me", json!({"name": "Renamed"}))
        .await;
    assert_eq!(renamed.json["email_verified"], false);
    // Asking again mails a fresh link and retires the earlier one.
    let asked = customer
        .api
        .post("/api/v1/users/me/verify-email", json!({}))
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    let new_tokens = wait_for_verifications(&smtp, &new_email, 2).await;
    assert_eq!(new_tokens.len(), 2);
    let (older, newer) = if new_tokens[0] == new_tokens[1] {
        panic!("two mails, one token")
    } else {
        // Which is which: only the newer one works.
        let first = app
            .client()
            .post(confirm, json!({"token": new_tokens[0]}))
            .await;
        if first.status == StatusCode::NO_CONTENT {
            (new_tokens[1].clone(), new_tokens[0].clone())
        } else {
            assert_eq!(first.status, StatusCode::UNPROCESSABLE_ENTITY);
            let second = app
                .client()
                .post(confirm, json!({"token": new_tokens[1]}))
                .await;
            assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.text);
            (new_tokens[0].clone(), new_tokens[1].clone())
        }
    };
    assert_ne!(older, newer);
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.json["email_verified"],
        true
    );
    // No mail for the name change, none to the old address after the move.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(verification_tokens(&smtp, &new_email).len(), 2);
    assert_eq!(verification_tokens(&smtp, &customer.email).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_link_mailed_to_an_old_address_verifies_nothing() {
    let smtp = SmtpCapture::start();
    let app = mail_app(&smtp).await;
    let customer = app.customer().await;
    let old = wait_for_verifications(&smtp, &customer.email, 1).await;
    let new_email = format!("{}@example.com", unique("moved"));
    customer
        .api
        .patch("/api/v1/users/me", json!({"email": new_email}))
        .await;
    let res = app
        .client()
        .post("/api/v1/auth/verify-email", json!({"token": old[0]}))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);
    assert_eq!(
        customer.api.get("/api/v1/users/me").await.json["email_verified"],
        false
    );
    app.stop().await;
}

#[tokio::test]
async fn with_verified_email_required_checkout_waits_for_the_link() {
    let smtp = SmtpCapture::start();
    let mut vars = mail_vars(&smtp.url());
    vars.push(("REQUIRE_VERIFIED_EMAIL", "true".into()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(settings(&vars)).await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 5).await;
    let customer = app.customer().await;
    crate::common::add(&customer.api, hat, 2).await;
    let refused = crate::common::checkout(&customer.api).await;
    refused.assert_problem(StatusCode::CONFLICT, "email_not_verified");
    // Nothing changed: the cart and the stock are as they were.
    assert_eq!(crate::common::stock(&app, hat).await, 5);
    let cart = customer.api.get("/api/v1/cart").await;
    assert_eq!(
        cart.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        cart.text
    );
    let token = wait_for_verifications(&smtp, &customer.email, 1).await;
    let ok = app
        .client()
        .post("/api/v1/auth/verify-email", json!({"token": token[0]}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let placed = crate::common::checkout(&customer.api).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    assert_eq!(crate::common::stock(&app, hat).await, 3);
    app.stop().await;
}
