//! Scale-out: two instances over one SurrealDB server (a real `surreal` process, over `ws://`) and
//! one Redis. What one instance does, the other sees on its next request.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{EventReader, PrivateRedis, SurrealServer, TestApp, settings};

/// Two instances of the application sharing a server, a namespace and a Redis.
async fn two_instances(server: &SurrealServer) -> (TestApp, TestApp) {
    let first = TestApp::spawn_with(settings(&server.vars())).await;
    let mut vars = server.vars().to_vec();
    vars.push(("SURREAL_NS", first.namespace.as_str()));
    let second = TestApp::spawn_with(settings(&vars)).await;
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_is_refused_on_the_other() {
    let server = SurrealServer::start().await;
    let (a, b) = two_instances(&server).await;
    let customer = a.customer().await;
    let on_b = b
        .client()
        .with_token(customer.api.token.as_deref().unwrap());
    // B checks the session once (and caches it as active) before it is revoked on A.
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
    // A refresh rotated on B is honoured on A; rotated again on A, the first token (two
    // generations old, past any second tab's grace) is then refused on B.
    let other = b.customer().await;
    let rotated = b
        .client()
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": other.refresh_token}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let me = a
        .client()
        .with_token(rotated.json["access_token"].as_str().unwrap())
        .get("/api/v1/users/me")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let again = a
        .client()
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": rotated.json["refresh_token"]}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    b.client()
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": other.refresh_token}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carts_and_the_catalog_written_on_one_are_fresh_on_the_other() {
    let server = SurrealServer::start().await;
    let (a, b) = two_instances(&server).await;
    let admin = a.admin().await;
    let hat = a.product(&admin, "Hat", 1500, 10).await;
    let customer = a.customer().await;
    let token = customer.api.token.clone().unwrap();
    let on_b = b.client().with_token(&token);

    // B caches the empty cart and the catalog page; writes through A must not leave them stale.
    assert_eq!(on_b.get("/api/v1/cart").await.json["item_count"], 0);
    assert_eq!(
        b.client().get("/api/v1/products").await.json["items"][0]["price"]["amount"],
        1500
    );
    let added = customer
        .api
        .post(
            "/api/v1/cart/items",
            json!({"product_id": hat, "quantity": 2}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    assert_eq!(on_b.get("/api/v1/cart").await.json["item_count"], 2);
    let patched = admin
        .patch(
            &format!("/api/v1/products/{hat}"),
            json!({"price": {"amount": 1800, "currency": "GBP"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(
        b.client().get("/api/v1/products").await.json["items"][0]["price"]["amount"],
        1800
    );

    // Killing A leaves B serving the same data and sessions.
    a.stop().await;
    assert_eq!(on_b.get("/api/v1/cart").await.json["item_count"], 2);
    let order = on_b
        .post(
            "/api/v1/orders",
            json!({"shipping_address": "1 High Street"}),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert_eq!(b.client().get("/ready").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_split_across_two_instances_never_oversell() {
    let server = SurrealServer::start().await;
    let (a, b) = two_instances(&server).await;
    let admin = a.admin().await;
    let stock = 10;
    let scarce = a.product(&admin, "Scarce", 900, stock).await;
    let mut buyers = Vec::new();
    for i in 0..40u32 {
        let customer = a.customer().await;
        let res = customer
            .api
            .post(
                "/api/v1/cart/items",
                json!({"product_id": scarce, "quantity": 1}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
        // Every other buyer checks out through the second instance.
        let instance = if i.is_multiple_of(2) { &a } else { &b };
        buyers.push(
            instance
                .client()
                .with_token(customer.api.token.as_deref().unwrap()),
        );
    }
    let tasks: Vec<_> = buyers
        .into_iter()
        .map(|api| {
            tokio::spawn(async move {
                api.post(
                    "/api/v1/orders",
                    json!({"shipping_address": "1 High Street"}),
                )
                .await
            })
        })
        .collect();
    let mut placed = 0;
    for task in tasks {
        let res = task.await.unwrap();
        assert!(!res.status.is_server_error(), "{}", res.text);
        match res.status {
            StatusCode::CREATED => placed += 1,
            StatusCode::CONFLICT => {}
            other => panic!("checkout answered {other}: {}", res.text),
        }
    }
    let left = b
        .client()
        .get(&format!("/api/v1/products/{scarce}"))
        .await
        .json["stock"]
        .as_i64()
        .unwrap();
    assert!(placed <= stock, "{placed} orders for {stock} units");
    assert_eq!(stock - left, placed, "stock {left} after {placed} orders");
    let orders = admin.get("/api/v1/admin/orders?limit=100").await.json;
    assert_eq!(orders["items"].as_array().unwrap().len() as i64, placed);
    eprintln!("two instances: 40 buyers, stock {stock}: {placed} orders, stock left {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_move_on_one_instance_reaches_a_stream_on_the_other_within_a_second() {
    let server = SurrealServer::start().await;
    let (a, b) = two_instances(&server).await;
    let admin = a.admin().await;
    let hat = a.product(&admin, "Hat", 1500, 10).await;
    let customer = a.customer().await;
    customer
        .api
        .post(
            "/api/v1/cart/items",
            json!({"product_id": hat, "quantity": 1}),
        )
        .await;
    let order = customer
        .api
        .post(
            "/api/v1/orders",
            json!({"shipping_address": "1 High Street"}),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    let order = order.json["id"].as_str().unwrap().to_string();

    // The owner follows the order on B; the stock of the hat is followed on B too.
    let on_b = b
        .client()
        .with_token(customer.api.token.as_deref().unwrap());
    let mut status = EventReader::open(&on_b, &format!("/api/v1/orders/{order}/events"), None)
        .await
        .ok()
        .unwrap();
    let first = status.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(first.data["status"], "pending");
    let mut stock = EventReader::open(
        &b.client(),
        &format!("/api/v1/products/{hat}/stock/events"),
        None,
    )
    .await
    .ok()
    .unwrap();
    assert_eq!(
        stock
            .next(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap()
            .data["stock"],
        9
    );

    // The admin moves it through A.
    let moved_at = Instant::now();
    let res = admin
        .post(
            &format!("/api/v1/admin/orders/{order}/status"),
            json!({"status": "paid"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let event = status
        .next(Duration::from_secs(1))
        .await
        .expect("the move made on A reaches B's stream within a second")
        .unwrap();
    assert_eq!(event.data["status"], "paid");
    eprintln!(
        "[live] a move on A reached a stream on B after {:?}",
        moved_at.elapsed()
    );

    // A 1,000-product import queues more notifications than the server keeps for a connection
    // (100): it closes the live-query connections. Requests go on over their own connections, the
    // live queries reopen, and the streams catch up with what changed meanwhile.
    let many: Vec<serde_json::Value> = (0..1000)
        .map(|i| json!({"name": format!("P{i}"), "price": {"amount": 100, "currency": "GBP"}, "stock": 1}))
        .collect();
    let res = admin
        .post("/api/v1/products/bulk", json!({"products": many}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let res = admin
        .post(
            &format!("/api/v1/admin/orders/{order}/status"),
            json!({"status": "shipped"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let event = status
        .next(Duration::from_secs(5))
        .await
        .expect("the stream catches up once the live queries reopen")
        .unwrap();
    assert_eq!(event.data["status"], "shipped");

    // A second order, cancelled by its owner through A: B's stock stream sees the stock go and
    // come back.
    customer
        .api
        .post(
            "/api/v1/cart/items",
            json!({"product_id": hat, "quantity": 2}),
        )
        .await;
    let second = customer
        .api
        .post(
            "/api/v1/orders",
            json!({"shipping_address": "1 High Street"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    let level = stock.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(level.data["stock"], 7);
    let res = customer
        .api
        .post(
            &format!(
                "/api/v1/orders/{}/cancel",
                second.json["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let level = stock.next(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(level.data["stock"], 9);
}

/// Instances starting together against one server each run the migrations; whoever holds the lease
/// applies every file, the others wait and find nothing left. Without the lease both would apply
/// the schema and one would stop at a `DEFINE` that the other had made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_started_together_are_applied_exactly_once() {
    use storefront::config::SurrealSettings;
    use storefront::store::{self, MIGRATIONS, Store};

    let server = SurrealServer::start().await;
    let surreal_at = |database: &str| SurrealSettings {
        url: server.url.clone(),
        namespace: crate::common::unique("migrate"),
        database: database.into(),
        username: Some("root".into()),
        password: Some(storefront::config::Secret::new("root")),
        ca: None,
    };
    // What one instance alone applies to a fresh database: every file and data step.
    let alone = Store::connect(&surreal_at("alone"), Default::default())
        .await
        .unwrap();
    let mut expected = store::migrate(&alone).await.unwrap().applied;
    expected.sort_unstable();
    assert!(MIGRATIONS.iter().all(|m| expected.contains(&m.name)));
    for round in 0..5 {
        let one = surreal_at(&format!("round{round}"));
        let two = SurrealSettings {
            namespace: one.namespace.clone(),
            ..one.clone()
        };
        let (a, b) = tokio::join!(
            Store::connect(&one, Default::default()),
            Store::connect(&two, Default::default())
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let (ran_a, ran_b) = tokio::join!(store::migrate(&a), store::migrate(&b));
        let (ran_a, ran_b) = (ran_a.unwrap().applied, ran_b.unwrap().applied);
        let mut all: Vec<&str> = ran_a.iter().chain(&ran_b).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all, expected,
            "round {round}: A applied {ran_a:?}, B applied {ran_b:?}"
        );
    }

    // Two whole instances started at the same moment on one fresh namespace both come up.
    let namespace = crate::common::unique("together");
    let mut vars = server.vars().to_vec();
    vars.push(("SURREAL_NS", namespace.as_str()));
    let (a, b) = tokio::join!(
        TestApp::spawn_with(settings(&vars)),
        TestApp::spawn_with(settings(&vars))
    );
    let customer = a.customer().await;
    let on_b = b
        .client()
        .with_token(customer.api.token.as_deref().unwrap());
    assert_eq!(on_b.get("/api/v1/users/me").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_send_each_mail_exactly_once() {
    let server = SurrealServer::start().await;
    let smtp = crate::common::SmtpCapture::start().ignoring(crate::common::VERIFY_SUBJECT);
    let url = smtp.url();
    let mail = [
        ("SMTP_URL", url.as_str()),
        ("MAIL_FROM", "shop@example.com"),
        ("LOGIN_LIMIT_PER_IP", "100000"),
    ];
    let mut vars = server.vars().to_vec();
    vars.extend(mail);
    let a = TestApp::spawn_with(settings(&vars)).await;
    vars.push(("SURREAL_NS", a.namespace.as_str()));
    let b = TestApp::spawn_with(settings(&vars)).await;
    const MAILS: usize = 24;
    let mut emails = Vec::new();
    for i in 0..MAILS {
        let customer = a.customer().await;
        // Half the requests through each instance; both senders poll the one outbox.
        let app = if i % 2 == 0 { &a } else { &b };
        let res = app
            .client()
            .post(
                "/api/v1/auth/password-reset",
                json!({"email": customer.email}),
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        emails.push(customer.email);
    }
    smtp.wait_for(MAILS, Duration::from_secs(30)).await;
    // Time for a duplicate to show up, were one sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = smtp.mails();
    let mut received: Vec<String> = mails
        .iter()
        .map(|m| m["to"][0].as_str().unwrap().to_string())
        .collect();
    received.sort();
    emails.sort();
    assert_eq!(received, emails, "each mail exactly once");
    crate::reliability::report::report(
        "outbox instances",
        format!(
            "{MAILS} reset mails requested through two instances sharing one outbox: {} received, each address exactly once",
            mails.len()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_webhook_exactly_once() {
    let server = SurrealServer::start().await;
    // Each message's first attempt is refused: both senders see it due again.
    let receiver = crate::common::Receiver::start(1).await;
    let (a, b) = two_instances(&server).await;
    let admin = a.admin().await;
    let made = admin
        .post(
            "/api/v1/admin/webhooks",
            json!({"url": receiver.url("both"), "events": ["order.placed"]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    receiver.trust("both", made.json["secret"].as_str().unwrap());
    let hat = a.product(&admin, "Hat", 1000, 100).await;
    const ORDERS: usize = 16;
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        let customer = a.customer().await;
        crate::common::add(&customer.api, hat, 1).await;
        // Half the checkouts through each instance.
        let app = if i % 2 == 0 { &a } else { &b };
        let api = app
            .client()
            .with_token(customer.api.token.as_deref().unwrap());
        let placed = crate::common::checkout(&api).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
        orders.push(placed.json["id"].as_str().unwrap().to_string());
    }
    receiver
        .wait_for_accepted(ORDERS, Duration::from_secs(40))
        .await;
    // Time for a duplicate to show up, were one sent.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = receiver.received();
    assert!(received.iter().all(|r| r.verified), "{received:?}");
    let mut delivered: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| r.body["data"]["id"].as_str().unwrap().to_string())
        .collect();
    delivered.sort();
    orders.sort();
    assert_eq!(delivered, orders, "each order.placed accepted exactly once");
    let ids: std::collections::HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), ORDERS, "one webhook-id per event");
    crate::reliability::report::report(
        "webhook instances",
        format!(
            "{ORDERS} orders placed through two instances, each delivery refused once: {} attempts, {} accepted, each event exactly once",
            received.len(),
            delivered.len()
        ),
    );
}

/// A sale made on one instance while Redis is away, Redis back with what it held before (a persisted
/// restart, a lagging replica): the other instance, which only reads, stops serving the product's
/// body from before the sale within seconds, though nothing more is asked of the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_the_cache_missed_reaches_the_other_instance_once_redis_is_back() {
    use crate::common::sell_while_redis_is_away;

    let server = SurrealServer::start().await;
    let mut redis = PrivateRedis::start();
    let redis_url = redis.url();
    let mut vars = server.vars().to_vec();
    vars.push(("REDIS_URL", redis_url.as_str()));
    let seller = TestApp::spawn_with(settings(&vars)).await;
    vars.push(("SURREAL_NS", seller.namespace.as_str()));
    let reader = TestApp::spawn_with(settings(&vars)).await;
    let admin = seller.admin().await;
    let hat = seller.product(&admin, "Missed Hat", 1500, 10).await;
    let path = format!("/api/v1/products/{hat}");
    assert_eq!(reader.client().get(&path).await.json["stock"], 10);
    let customer = seller.customer().await;
    sell_while_redis_is_away(&customer.api, &mut redis, hat, 3).await;
    redis.restart();
    // The reader answers from Redis again (a read it made past the cache would show the sale and
    // prove nothing).
    assert!(
        reader.becomes_ready(Duration::from_secs(10)).await,
        "the reader never became ready after Redis came back"
    );

    let started = Instant::now();
    let mut shown = serde_json::Value::Null;
    while started.elapsed() < Duration::from_secs(10) {
        shown = reader.client().get(&path).await.json["stock"].clone();
        if shown == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        shown, 7,
        "the reading instance still served the body from before the sale 10 s after Redis came back"
    );
}
