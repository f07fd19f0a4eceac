//! Outbound webhooks to a real HTTP receiver of the test's own: every delivery's Standard Webhooks
//! signature checked with the spec's library, each event accepted exactly once per endpoint, refused
//! attempts retried and visible in the delivery log, a held endpoint never holding up a request,
//! and replays of what was given up on.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, Received, Receiver, TestApp, add, checkout, settings};
use crate::reliability::report::report;

/// Registers endpoint `name` of `receiver` for `events`, and tells the receiver its secret.
async fn endpoint(admin: &Api, receiver: &Receiver, name: &str, events: &[&str]) -> Value {
    let res = admin
        .post(
            "/api/v1/admin/webhooks",
            json!({"url": receiver.url(name), "events": events, "description": name}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let secret = res.json["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.trust(name, secret);
    res.json.clone()
}

/// What each endpoint accepted, as (endpoint, event type, order or variant id) in arrival order.
fn accepted_events(received: &[Received]) -> Vec<(String, String, String)> {
    received
        .iter()
        .filter(|r| r.answered == 200)
        .map(|r| {
            let data = &r.body["data"];
            let subject = data["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| data["variant_id"].to_string());
            (r.endpoint.clone(), r.event_type().to_string(), subject)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_events_reach_signed_endpoints_once_each_with_retries_in_the_log() {
    // Every message's first two attempts are refused: delivered on the third (2 s + 4 s later).
    let receiver = Receiver::start(2).await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let all = endpoint(
        &admin,
        &receiver,
        "all",
        &[
            "order.placed",
            "order.paid",
            "order.status_changed",
            "order.cancelled",
        ],
    )
    .await;
    endpoint(&admin, &receiver, "paid", &["order.paid"]).await;
    let hat = app.product(&admin, "Hat", 1500, 10).await;
    let customer = app.customer().await;
    add(&customer.api, hat, 2).await;
    let order = checkout(&customer.api).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();
    for status in ["paid", "cancelled"] {
        let res = admin
            .post(
                &format!("/api/v1/admin/orders/{order}/status"),
                json!({"status": status}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    }

    // all: placed, status_changed ×2, paid, cancelled; paid: paid.
    let accepted = receiver.wait_for_accepted(6, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = receiver.received();
    assert!(
        received.iter().all(|r| r.verified),
        "every delivery is signed with its endpoint's secret: {received:?}"
    );
    let mut events = accepted_events(&receiver.accepted());
    events.sort();
    let expect =
        |endpoint: &str, event: &str| (endpoint.to_string(), event.to_string(), order.clone());
    let mut expected = vec![
        expect("all", "order.placed"),
        expect("all", "order.paid"),
        expect("all", "order.status_changed"),
        expect("all", "order.status_changed"),
        expect("all", "order.cancelled"),
        expect("paid", "order.paid"),
    ];
    expected.sort();
    assert_eq!(
        events, expected,
        "each event exactly once per endpoint: {accepted:?}"
    );
    // Each message: refused twice, then accepted, under one webhook-id.
    let mut attempts: HashMap<&str, Vec<u16>> = HashMap::new();
    for r in &received {
        attempts.entry(&r.id).or_default().push(r.answered);
    }
    assert_eq!(attempts.len(), 6, "{attempts:?}");
    assert!(
        attempts.values().all(|a| a == &[503, 503, 200]),
        "{attempts:?}"
    );
    // The data is the order at the event: lines, amounts, and where it came from.
    let placed = received
        .iter()
        .find(|r| r.answered == 200 && r.event_type() == "order.placed")
        .unwrap();
    let data = &placed.body["data"];
    assert_eq!(data["status"], "pending");
    assert_eq!(data["subtotal"], 3000);
    assert_eq!(data["user_id"].as_str(), Some(customer.id.as_str()));
    assert_eq!(data["lines"][0]["quantity"], 2);
    assert!(placed.body["timestamp"].is_string(), "{}", placed.body);
    let changes: Vec<(String, String)> = received
        .iter()
        .filter(|r| r.answered == 200 && r.event_type() == "order.status_changed")
        .map(|r| {
            let d = &r.body["data"];
            (
                d["previous_status"].as_str().unwrap().into(),
                d["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut changes = changes;
    changes.sort();
    assert_eq!(
        changes,
        [
            ("paid".into(), "cancelled".into()),
            ("pending".into(), "paid".into())
        ]
    );

    // The delivery log shows the attempts and what each got.
    let id = all["id"].as_str().unwrap();
    let log = admin
        .get(&format!("/api/v1/admin/webhooks/{id}/deliveries"))
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    let deliveries = log.json["items"].as_array().unwrap();
    assert_eq!(deliveries.len(), 5, "{}", log.text);
    for d in deliveries {
        assert_eq!(d["status"], "sent", "{d}");
        let codes: Vec<i64> = d["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status_code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, [503, 503, 200], "{d}");
        assert!(
            attempts.contains_key(d["webhook_id"].as_str().unwrap()),
            "{d}"
        );
    }
    // The secret is shown to an admin reading the endpoint, never in the list.
    let listed = admin.get("/api/v1/admin/webhooks").await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 2);
    assert!(!listed.text.contains("whsec_"), "{}", listed.text);
    let one = admin.get(&format!("/api/v1/admin/webhooks/{id}")).await;
    assert_eq!(one.json["secret"], all["secret"]);
    report(
        "webhooks",
        format!(
            "{} events to 2 endpoints, each refused twice: {} attempts, all signatures valid, each event accepted exactly once",
            expected.len(),
            received.len()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_low_is_told_once_when_a_checkout_takes_stock_below_the_threshold() {
    let receiver = Receiver::start(0).await;
    let app = TestApp::spawn_with(settings(&[("LOW_STOCK_THRESHOLD", "3")])).await;
    let admin = app.admin().await;
    endpoint(&admin, &receiver, "stock", &["product.stock_low"]).await;
    let scarf = app.product(&admin, "Scarf", 900, 5).await;
    let customer = app.customer().await;
    // 5 → 4 (above), 4 → 2 (crosses), 2 → 1 (already below).
    for quantity in [1, 2, 1] {
        add(&customer.api, scarf, quantity).await;
        assert_eq!(checkout(&customer.api).await.status, StatusCode::CREATED);
    }
    let accepted = receiver.wait_for_accepted(1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted_now = receiver.accepted();
    assert_eq!(accepted_now.len(), 1, "{accepted:?}");
    let data = &accepted_now[0].body["data"];
    assert_eq!(accepted_now[0].event_type(), "product.stock_low");
    assert_eq!(
        (
            data["product_id"].as_i64(),
            data["stock"].as_i64(),
            data["threshold"].as_i64()
        ),
        (Some(scarf), Some(2), Some(3))
    );
    assert!(accepted_now[0].verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_holds_up_no_request() {
    let receiver = Receiver::start(0).await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    endpoint(&admin, &receiver, "hold", &["order.placed"]).await;
    endpoint(&admin, &receiver, "quick", &["order.placed"]).await;
    let hat = app.product(&admin, "Hat", 1000, 50).await;
    let customer = app.customer().await;
    add(&customer.api, hat, 1).await;
    assert_eq!(checkout(&customer.api).await.status, StatusCode::CREATED);
    // The held endpoint has the first order's delivery open...
    for _ in 0..100 {
        if receiver.held() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.held(), 1);
    // ...while more orders are placed, and the other endpoint hears of each of them.
    for _ in 0..3 {
        add(&customer.api, hat, 1).await;
        assert_eq!(checkout(&customer.api).await.status, StatusCode::CREATED);
    }
    let quick = receiver.wait_for_accepted(4, Duration::from_secs(15)).await;
    assert_eq!(
        quick.iter().filter(|r| r.endpoint == "quick").count(),
        4,
        "{quick:?}"
    );
    assert!(receiver.held() >= 1, "the held delivery is still open");
    receiver.release_held();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_given_up_on_is_replayed_under_the_same_id() {
    let receiver = Receiver::start(usize::MAX).await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hook = endpoint(&admin, &receiver, "flaky", &["order.placed"]).await;
    let id = hook["id"].as_str().unwrap();
    let hat = app.product(&admin, "Hat", 1000, 5).await;
    let customer = app.customer().await;
    add(&customer.api, hat, 1).await;
    assert_eq!(checkout(&customer.api).await.status, StatusCode::CREATED);
    // The first attempt is refused; disabling the endpoint gives the delivery up at the next.
    for _ in 0..100 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let disabled = admin
        .patch(
            &format!("/api/v1/admin/webhooks/{id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.json["enabled"], false, "{}", disabled.text);
    let mut delivery = Value::Null;
    for _ in 0..100 {
        let log = admin
            .get(&format!("/api/v1/admin/webhooks/{id}/deliveries"))
            .await;
        delivery = log.json["items"][0].clone();
        if delivery["status"] == "dead" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivery["status"], "dead", "{delivery}");
    assert_eq!(delivery["last_error"], "the endpoint is disabled");
    let delivery_id = delivery["id"].as_str().unwrap();
    let dead = admin.get("/api/v1/admin/messages/dead").await;
    assert!(
        dead.json
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == delivery_id
                && m["kind"] == "webhook"
                && m["purpose"] == "order.placed"),
        "{}",
        dead.text
    );

    // Forged and foreign ids name nothing; an unfinished one cannot be replayed.
    let other = endpoint(&admin, &receiver, "other", &["order.paid"]).await;
    let other_id = other["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/admin/webhooks/{other_id}/deliveries/{delivery_id}/replay"),
        format!("/api/v1/admin/webhooks/{id}/deliveries/nosuchdelivery/replay"),
        format!("/api/v1/admin/webhooks/{id}/deliveries/a'b/replay"),
        "/api/v1/admin/messages/nosuchmessage/retry".to_string(),
    ] {
        admin
            .post(&path, json!({}))
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
    }

    // Enabled again and accepting: the replay is delivered under the id of the refused attempt.
    receiver.refuse_first(0);
    admin
        .patch(
            &format!("/api/v1/admin/webhooks/{id}"),
            json!({"enabled": true}),
        )
        .await;
    let replay = admin
        .post(
            &format!("/api/v1/admin/webhooks/{id}/deliveries/{delivery_id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(replay.status, StatusCode::ACCEPTED, "{}", replay.text);
    let accepted = receiver.wait_for_accepted(1, Duration::from_secs(15)).await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        accepted[0].id,
        receiver.received()[0].id,
        "the same webhook-id"
    );
    assert_eq!(accepted[0].id, delivery["webhook_id"].as_str().unwrap());
    assert!(accepted[0].verified);
    // A delivered one is no longer dead, so the dead-message retry refuses it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    admin
        .post(
            &format!("/api/v1/admin/messages/{delivery_id}/retry"),
            json!({}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "message_not_finished");
}

#[tokio::test]
async fn endpoints_refuse_what_is_not_an_endpoint_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let cases = [
        (
            json!({"url": "ftp://files.example.com/x", "events": ["order.paid"]}),
            "url",
        ),
        (json!({"url": "not a url", "events": ["order.paid"]}), "url"),
        (
            json!({"url": "https://example.com/#top", "events": ["order.paid"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com/h", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["order.paid", "order.shipped"]}),
            "events[1]",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["order.paid"], "secret": "mine"}),
            "",
        ),
    ];
    for (body, field) in cases {
        let res = admin.post("/api/v1/admin/webhooks", body.clone()).await;
        assert!(
            res.status == StatusCode::UNPROCESSABLE_ENTITY || res.status == StatusCode::BAD_REQUEST,
            "{body}: {} {}",
            res.status,
            res.text
        );
        if !field.is_empty() && res.status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(res.json["field"], field, "{body}: {}", res.text);
        }
    }
    assert_eq!(
        admin.get("/api/v1/admin/webhooks").await.json["items"],
        json!([]),
        "nothing was made"
    );
    let made = admin
        .post(
            "/api/v1/admin/webhooks",
            json!({"url": "https://example.com/h", "events": ["order.paid"]}),
        )
        .await;
    let id = made.json["id"].as_str().unwrap();
    let bad = admin
        .patch(
            &format!("/api/v1/admin/webhooks/{id}"),
            json!({"events": ["nope"]}),
        )
        .await;
    assert_eq!(
        bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "events[0]"
    );
    let kept = admin.get(&format!("/api/v1/admin/webhooks/{id}")).await;
    assert_eq!(kept.json["events"], json!(["order.paid"]));
    for path in ["nosuchendpoint", "a'b", "x%20y"] {
        admin
            .get(&format!("/api/v1/admin/webhooks/{path}"))
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(
        admin
            .delete(&format!("/api/v1/admin/webhooks/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    admin
        .delete(&format!("/api/v1/admin/webhooks/{id}"))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
}
