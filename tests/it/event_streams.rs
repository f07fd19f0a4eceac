//! Server-Sent Event streams: an order's status changes, stock levels, their end on sign-out and the
//! cap per instance.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Api, Customer, EventReader, TestApp, add, checkout, settings};

/// Places an order of one unit of a fresh product; returns (order id, product id).
async fn placed_order(app: &TestApp, admin: &Api, customer: &Customer) -> (String, i64) {
    let hat = app.product(admin, "Hat", 1000, 10).await;
    add(&customer.api, hat, 1).await;
    let order = checkout(&customer.api).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    (order.json["id"].as_str().unwrap().to_string(), hat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_status_changes_reach_the_owners_event_stream_within_a_second() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let (order, _) = placed_order(&app, &admin, &customer).await;
    let path = format!("/api/v1/orders/{order}/events");

    // Nobody else follows it; without credentials, 401.
    let stranger = app.customer().await;
    let refused = EventReader::open(&stranger.api, &path, None)
        .await
        .err()
        .unwrap();
    refused.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let refused = EventReader::open(&app.client(), &path, None)
        .await
        .err()
        .unwrap();
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let mut events = EventReader::open(&customer.api, &path, None)
        .await
        .ok()
        .unwrap();
    let first = events.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(first.event, "status");
    assert_eq!(first.data["status"], "pending");
    assert_eq!(first.data["order_id"], order.as_str());

    let mut last = first.id.clone();
    for status in ["paid", "shipped"] {
        let moved_at = Instant::now();
        let res = admin
            .post(
                &format!("/api/v1/admin/orders/{order}/status"),
                json!({"status": status}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text);
        let event = events
            .next(Duration::from_secs(1))
            .await
            .expect("the change arrives within a second")
            .unwrap();
        assert_eq!(event.data["status"], status);
        last = event.id;
        eprintln!(
            "[live] {status} reached the stream after {:?}",
            moved_at.elapsed()
        );
    }

    // Resuming with the last id sent: no repeat of the current state, only what comes next.
    let mut resumed = EventReader::open(&customer.api, &path, Some(&last))
        .await
        .ok()
        .unwrap();
    assert!(
        resumed.next(Duration::from_millis(500)).await.is_err(),
        "nothing new yet"
    );
    admin
        .post(
            &format!("/api/v1/admin/orders/{order}/status"),
            json!({"status": "delivered"}),
        )
        .await;
    let event = resumed.next(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(event.data["status"], "delivered");
}

/// A change made while the client was away is sent on resuming: an event's id is the record's
/// `updated_at`, which must move with every write (it kept the creation time before schema 0012,
/// so the resumed stream took the changed state for the one the client had seen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_away_is_sent_on_resuming() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1500, 10).await;
    let path = format!("/api/v1/products/{hat}/stock/events");
    let mut events = EventReader::open(&app.client(), &path, None)
        .await
        .ok()
        .unwrap();
    let seen = events.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(seen.data["stock"], 10);
    drop(events);
    let res = admin
        .patch(&format!("/api/v1/products/{hat}"), json!({"stock": 4}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert!(
        res.json["updated_at"].as_str() > res.json["created_at"].as_str(),
        "updated_at moved with the write: {}",
        res.text
    );
    let mut resumed = EventReader::open(&app.client(), &path, Some(&seen.id))
        .await
        .ok()
        .unwrap();
    let event = resumed
        .next(Duration::from_secs(2))
        .await
        .expect("the current state is sent: the client has not seen it")
        .unwrap();
    assert_eq!(event.data["stock"], 4);
    assert_ne!(event.id, seen.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_sessions_event_streams() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let (order, _) = placed_order(&app, &admin, &customer).await;
    let mut events = EventReader::open(
        &customer.api,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await
    .ok()
    .unwrap();
    events.next(Duration::from_secs(5)).await.unwrap().unwrap();
    let res = customer.api.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    // Sessions are checked every 5 s; keep-alive comments do not count as events.
    let ended = events.next(Duration::from_secs(8)).await;
    assert!(
        matches!(ended, Ok(None)),
        "the stream is still open: {ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_streams_are_public_follow_every_sale_and_are_bounded_per_watcher() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let path = format!("/api/v1/products/{hat}/stock/events");
    let mut events = EventReader::open(&app.client(), &path, None)
        .await
        .ok()
        .unwrap();
    let first = events.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(first.event, "stock");
    assert_eq!(
        (first.data["stock"].clone(), first.data["available"].clone()),
        (json!(10), json!(true))
    );

    let customer = app.customer().await;
    add(&customer.api, hat, 3).await;
    assert_eq!(checkout(&customer.api).await.status, StatusCode::CREATED);
    let sold = events.next(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(sold.data["stock"], 7);
    admin.delete(&format!("/api/v1/products/{hat}")).await;
    let withdrawn = events.next(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(withdrawn.data["available"], false);

    EventReader::open(&app.client(), "/api/v1/products/999999/stock/events", None)
        .await
        .err()
        .unwrap()
        .assert_problem(StatusCode::NOT_FOUND, "not_found");
    // One watcher (here: one address) holds a bounded number of streams; the next is refused.
    let scarf = app.product(&admin, "Scarf", 1000, 10).await;
    let path = format!("/api/v1/products/{scarf}/stock/events");
    let mut open = vec![events];
    let refused = loop {
        match EventReader::open(&app.client(), &path, None).await {
            Ok(stream) => open.push(stream),
            Err(res) => break res,
        }
        assert!(open.len() <= 64, "no limit on streams");
    };
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text
    );
    assert!(refused.header("retry-after").is_some());
    eprintln!("[live] one address held {} stock streams", open.len());
    // Closing one frees its slot: the server notices when a write to it fails (a change, or a
    // keep-alive every 15 s; the first write after the close still succeeds at the socket).
    open.pop();
    for stock in [9, 8] {
        admin
            .patch(
                &format!("/api/v1/products/{scarf}"),
                json!({"stock": stock}),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed_at = Instant::now();
    while EventReader::open(&app.client(), &path, None).await.is_err() {
        assert!(
            closed_at.elapsed() < Duration::from_secs(35),
            "a closed stream's slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_holds_at_most_event_streams_max_streams() {
    let app = TestApp::spawn_with(settings(&[("EVENT_STREAMS_MAX", "3")])).await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1000, 10).await;
    let path = format!("/api/v1/products/{hat}/stock/events");
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            EventReader::open(&app.client(), &path, None)
                .await
                .ok()
                .unwrap(),
        );
    }
    // A fourth, even from another watcher (a signed-in customer's order stream): 503.
    let customer = app.customer().await;
    let (order, _) = placed_order(&app, &admin, &customer).await;
    EventReader::open(
        &customer.api,
        &format!("/api/v1/orders/{order}/events"),
        None,
    )
    .await
    .err()
    .unwrap()
    .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    // The rest of the API is unaffected.
    assert_eq!(
        app.client()
            .get(&format!("/api/v1/products/{hat}"))
            .await
            .status,
        StatusCode::OK
    );
}
