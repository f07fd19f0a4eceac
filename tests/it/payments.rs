//! Payments through Stripe, against `localstripe` (a stateful fake of Stripe's API on loopback,
//! which `scripts/test` installs): checkout creates a PaymentIntent, a signed webhook pays the order
//! exactly once however it is delivered, unpaid orders expire and restock, a cancelled paid order is
//! refunded once. localstripe delivers only `succeeded` and `payment_failed`, once; the races sign
//! events themselves exactly as Stripe does.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::{Api, TestApp, add, checkout, free_port, settings, stock, wait_for_port};
use crate::reliability::report::report;

const SECRET_KEY: &str = "sk_test_storefront";
const WEBHOOK_SECRET: &str = "whsec_storefront_test";
const ROUNDS: usize = 20;

/// A localstripe of the test's own, started from scratch on a free port. Its store is never written
/// to disk: localstripe pickles every change to one fixed file under /tmp, which parallel tests (and
/// earlier runs) would share.
struct LocalStripe {
    port: u16,
    child: Child,
    http: reqwest::Client,
}

impl LocalStripe {
    fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        let child = Command::new("python3")
            .args([
                "-c",
                "import sys, localstripe.resources as r\n\
                 r.Store.dump_to_disk = lambda self: None\n\
                 from localstripe.server import start\n\
                 sys.argv = ['localstripe'] + sys.argv[1:]\n\
                 start()",
                "--port",
                &port.to_string(),
                "--from-scratch",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs localstripe (scripts/test installs it)");
        wait_for_port(port, "localstripe");
        Self {
            port,
            child,
            http: reqwest::Client::new(),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Calls localstripe's API as Stripe's own clients do (form-encoded, the secret key).
    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .bearer_auth(SECRET_KEY)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        assert!(status.is_success(), "localstripe {path}: {status} {body}");
        body
    }

    /// Pays an intent with the test card, as Stripe.js would.
    async fn pay(&self, intent: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{intent}"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
        let confirmed = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/payment_intents/{intent}/confirm"),
                &[],
            )
            .await;
        assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    }

    async fn intent(&self, intent: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/payment_intents/{intent}"),
            &[],
        )
        .await
    }

    /// Every intent made for the order (by its metadata).
    async fn intents_of(&self, order_id: &str) -> Vec<Value> {
        let list = self
            .call(reqwest::Method::GET, "/v1/payment_intents?limit=100", &[])
            .await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["metadata"]["order_id"] == order_id)
            .cloned()
            .collect()
    }

    async fn refunds_of(&self, intent: &str) -> Vec<Value> {
        let list = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/refunds?payment_intent={intent}"),
                &[],
            )
            .await;
        list["data"].as_array().unwrap().clone()
    }

    /// Has localstripe deliver its events to the app's webhook endpoint.
    async fn deliver_to(&self, app: &TestApp) {
        let url = app.url("/api/v1/payments/stripe/webhook");
        let res = self
            .http
            .post(format!("{}/_config/webhooks/storefront", self.base()))
            .form(&[("url", url.as_str()), ("secret", WEBHOOK_SECRET)])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn stripe_app(stripe: &LocalStripe, extra: &[(&str, &str)]) -> TestApp {
    let base = stripe.base();
    let mut vars = vec![
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_API_BASE", base.as_str()),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(settings(&vars)).await
}

/// `Stripe-Signature` for `body` at time `t`, as Stripe computes it.
fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An event about an intent, shaped as Stripe sends it.
fn event(kind: &str, intent: &str, order_id: &str, amount: i64, currency: &str) -> Vec<u8> {
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "type": kind, "created": now(),
        "data": {"object": {
            "id": intent, "object": "payment_intent", "amount": amount, "currency": currency,
            "metadata": {"order_id": order_id},
            "last_payment_error": if kind == "payment_intent.payment_failed" {
                json!({"message": "Your card was declined."})
            } else { Value::Null }
        }}
    }))
    .unwrap()
}

/// Delivers a body to the webhook with the given `Stripe-Signature` (or none).
async fn deliver(app: &TestApp, body: &[u8], signature: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(app.url("/api/v1/payments/stripe/webhook"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    let res = request.send().await.unwrap();
    let status = res.status();
    let body = res.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn signed(app: &TestApp, body: &[u8]) -> (StatusCode, Value) {
    deliver(app, body, Some(&signature(WEBHOOK_SECRET, now(), body))).await
}

/// A customer with a placed order of `quantity` of the product: (customer client, order body).
async fn placed(app: &TestApp, product: i64, quantity: i64) -> (Api, Value) {
    let customer = app.customer().await;
    assert_eq!(
        add(&customer.api, product, quantity).await.status,
        StatusCode::CREATED
    );
    let res = checkout(&customer.api).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    (customer.api, res.json)
}

async fn order(api: &Api, id: &str) -> Value {
    let res = api.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.json
}

/// Reads the order until `done` holds, for up to `within`.
async fn wait_for(api: &Api, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let o = order(api, id).await;
        if done(&o) || start.elapsed() > within {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_card_payment_at_localstripe_pays_the_order_and_a_cancel_refunds_it_once() {
    let stripe = LocalStripe::start();
    let app = stripe_app(&stripe, &[]).await;
    stripe.deliver_to(&app).await;
    let admin = app.admin().await;
    let shirt = app.product(&admin, "Oxford shirt", 4500, 5).await;
    let (customer, placed) = placed(&app, shirt, 2).await;
    let id = placed["id"].as_str().unwrap();
    assert_eq!(placed["status"], "pending");
    let payment = &placed["payment"];
    assert_eq!(payment["provider"], "stripe");
    assert_eq!(payment["status"], "requires_payment", "{placed}");
    let intent = payment["intent_id"].as_str().unwrap();
    assert!(
        payment["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(intent)
    );
    let at_stripe = stripe.intent(intent).await;
    assert_eq!(at_stripe["amount"], 9000);
    assert_eq!(at_stripe["currency"], "gbp");
    assert_eq!(at_stripe["metadata"]["order_id"], id);

    // The client secret is the owner's alone: an admin's reads leave it out.
    let as_admin = admin.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(as_admin.json["payment"]["intent_id"], intent);
    assert!(
        as_admin.json["payment"].get("client_secret").is_none(),
        "{}",
        as_admin.text
    );
    let listed = admin.get("/api/v1/admin/orders").await;
    assert!(!listed.text.contains("_secret_"), "{}", listed.text);
    let stranger = app.customer().await;
    assert_eq!(
        stranger
            .api
            .get(&format!("/api/v1/orders/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    stripe.pay(intent).await;
    let confirmed = Instant::now();
    let paid = wait_for(&customer, id, Duration::from_secs(5), |o| {
        o["status"] == "paid"
    })
    .await;
    let took = confirmed.elapsed();
    assert_eq!(
        paid["status"], "paid",
        "not paid within 5 s of the confirm: {paid}"
    );
    assert_eq!(paid["payment"]["status"], "succeeded");
    assert_eq!(stock(&app, shirt).await, 3);

    let cancelled = customer
        .post(&format!("/api/v1/orders/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json["status"], "cancelled");
    let refunded = wait_for(&customer, id, Duration::from_secs(5), |o| {
        o["payment"]["status"] == "refunded"
    })
    .await;
    assert_eq!(refunded["payment"]["status"], "refunded", "{refunded}");
    assert!(
        refunded["payment"]["refund_id"]
            .as_str()
            .unwrap()
            .starts_with("re_")
    );
    assert_eq!(stock(&app, shirt).await, 5);
    // A second cancel, the sweeper and a replayed event all leave the one refund alone.
    let again = customer
        .post(&format!("/api/v1/orders/{id}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    app.state.orders.sweep_payments().await.unwrap();
    let refunds = stripe.refunds_of(intent).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], 9000);
    report(
        "stripe journey",
        format!(
            "checkout -> intent at localstripe -> card confirmed -> paid after {} ms (localstripe \
             delivers ~1 s late) -> cancelled -> {} refund of 9000",
            took.as_millis(),
            refunds.len()
        ),
    );
    app.stop().await;
}

#[tokio::test]
async fn forged_stale_and_unsigned_webhooks_are_refused_and_change_nothing() {
    let stripe = LocalStripe::start();
    let app = stripe_app(&stripe, &[]).await;
    let admin = app.admin().await;
    let hat = app.product(&admin, "Hat", 1500, 5).await;
    let (customer, placed) = placed(&app, hat, 1).await;
    let id = placed["id"].as_str().unwrap();
    let intent = placed["payment"]["intent_id"].as_str().unwrap();
    let body = event("payment_intent.succeeded", intent, id, 1500, "gbp");
    let t = now();
    let altered = String::from_utf8(body.clone())
        .unwrap()
        .replace("1500", "1");
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("unsigned", body.clone(), None),
        (
            "wrong secret",
            body.clone(),
            Some(signature("whsec_guess", t, &body)),
        ),
        (
            "stale",
            body.clone(),
            Some(signature(WEBHOOK_SECRET, t - 600, &body)),
        ),
        (
            "from the future",
            body.clone(),
            Some(signature(WEBHOOK_SECRET, t + 600, &body)),
        ),
        (
            "body altered",
            altered.into_bytes(),
            Some(signature(WEBHOOK_SECRET, t, &body)),
        ),
        ("no v1", body.clone(), Some(format!("t={t}"))),
        ("garbage", body.clone(), Some("v1=zz,t=x".into())),
    ];
    for (case, body, header) in cases {
        let (status, problem) = deliver(&app, &body, header.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {problem}");
        assert_eq!(problem["code"], "invalid_signature", "{case}");
        assert_eq!(problem["field"], "Stripe-Signature", "{case}");
    }
    let still = order(&customer, id).await;
    assert_eq!(still["status"], "pending");
    assert_eq!(still["payment"]["status"], "requires_payment");

    // A signed body that is no event: 400 too.
    let (status, problem) = signed(&app, b"[1,2]").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_event"))
    );

    // Amount or currency not the order's: recorded, refused, counted; the order waits on.
    for wrong in [
        event("payment_intent.succeeded", intent, id, 1499, "gbp"),
        event("payment_intent.succeeded", intent, id, 1500, "usd"),
    ] {
        let (status, answer) = signed(&app, &wrong).await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (StatusCode::OK, Some("mismatch"))
        );
    }
    assert_eq!(order(&customer, id).await["status"], "pending");
    assert!(
        app.metrics()
            .await
            .contains("storefront_payment_events_total{outcome=\"mismatch\"} 2"),
        "mismatches are counted"
    );
    // An intent that is not the order's: nothing changes.
    let (_, answer) = signed(
        &app,
        &event("payment_intent.succeeded", "pi_other", id, 1500, "gbp"),
    )
    .await;
    assert_eq!(answer["outcome"], "unknown");
    assert_eq!(order(&customer, id).await["status"], "pending");

    // The genuine event, the currency in capitals: paid.
    let (status, answer) = signed(
        &app,
        &event("payment_intent.succeeded", intent, id, 1500, "GBP"),
    )
    .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::OK, Some("paid"))
    );
    assert_eq!(order(&customer, id).await["status"], "paid");
    app.stop().await;

    // With manual payments there is no webhook to deliver to.
    let manual = TestApp::spawn().await;
    let (status, _) = deliver(
        &manual,
        &body,
        Some(&signature(WEBHOOK_SECRET, now(), &body)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    manual.stop().await;
}

#[tokio::test]
async fn ten_concurrent_deliveries_of_one_event_pay_the_order_once() {
    let stripe = LocalStripe::start();
    let app = stripe_app(&stripe, &[]).await;
    let admin = app.admin().await;
    let tee = app.product(&admin, "Tee", 1200, 1000).await;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..ROUNDS {
        let (customer, placed) = placed(&app, tee, 1).await;
        let id = placed["id"].as_str().unwrap().to_string();
        let intent = placed["payment"]["intent_id"].as_str().unwrap();
        let body = event("payment_intent.succeeded", intent, &id, 1200, "gbp");
        let header = signature(WEBHOOK_SECRET, now(), &body);
        let deliveries: Vec<_> = (0..10)
            .map(|_| {
                let (url, body, header) = (
                    app.url("/api/v1/payments/stripe/webhook"),
                    body.clone(),
                    header.clone(),
                );
                tokio::spawn(async move {
                    let res = reqwest::Client::new()
                        .post(url)
                        .header("Content-Type", "application/json")
                        .header("Stripe-Signature", header)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    let body = res.bytes().await.unwrap();
                    (status, serde_json::from_slice::<Value>(&body).unwrap())
                })
            })
            .collect();
        let mut paid = 0;
        for delivery in deliveries {
            let (status, answer) = delivery.await.unwrap();
            assert_eq!(status, StatusCode::OK, "round {round}: {answer}");
            let outcome = answer["outcome"].as_str().unwrap().to_string();
            paid += usize::from(outcome == "paid");
            *outcomes.entry(outcome).or_default() += 1;
        }
        assert_eq!(paid, 1, "round {round}: exactly one delivery pays");
        let o = order(&customer, &id).await;
        assert_eq!(
            (o["status"].as_str(), o["payment"]["status"].as_str()),
            (Some("paid"), Some("succeeded"))
        );
    }
    assert_eq!(
        stock(&app, tee).await,
        1000 - ROUNDS as i64,
        "paying restocks nothing"
    );
    report(
        "webhook duplicates",
        format!(
            "{ROUNDS} rounds × 10 concurrent deliveries of one signed event: all 200, outcomes {outcomes:?}, each order paid once"
        ),
    );
    app.stop().await;
}

#[tokio::test]
async fn succeeded_and_failed_in_either_order_or_at_once_end_paid() {
    let stripe = LocalStripe::start();
    let app = stripe_app(&stripe, &[]).await;
    let admin = app.admin().await;
    let sock = app.product(&admin, "Socks", 800, 1000).await;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..ROUNDS {
        let (customer, placed) = placed(&app, sock, 1).await;
        let id = placed["id"].as_str().unwrap().to_string();
        let intent = placed["payment"]["intent_id"].as_str().unwrap();
        let succeeded = event("payment_intent.succeeded", intent, &id, 800, "gbp");
        let failed = event("payment_intent.payment_failed", intent, &id, 800, "gbp");
        let answers = match round % 3 {
            0 => vec![signed(&app, &failed).await, signed(&app, &succeeded).await],
            1 => vec![signed(&app, &succeeded).await, signed(&app, &failed).await],
            _ => {
                let (a, b) = tokio::join!(signed(&app, &succeeded), signed(&app, &failed));
                vec![a, b]
            }
        };
        let mut outcomes = Vec::new();
        for (status, answer) in &answers {
            assert_eq!(*status, StatusCode::OK, "round {round}: {answer}");
            outcomes.push(answer["outcome"].as_str().unwrap().to_string());
        }
        // The failure changes the payment only while it is unpaid; a late one is ignored.
        let expected = match round % 3 {
            0 => vec!["failed", "paid"],
            1 => vec!["paid", "ignored"],
            _ if outcomes[1] == "failed" => vec!["paid", "failed"],
            _ => vec!["paid", "ignored"],
        };
        assert_eq!(outcomes, expected, "round {round}");
        *seen.entry(outcomes.join(" then ")).or_default() += 1;
        let o = order(&customer, &id).await;
        assert_eq!(o["status"], "paid", "round {round}: {o}");
        assert_eq!(o["payment"]["status"], "succeeded", "round {round}: {o}");
    }
    report(
        "webhook order",
        format!(
            "{ROUNDS} rounds of succeeded + payment_failed for one intent (failed first, succeeded first, both at once): every order paid; {seen:?}"
        ),
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unpaid_order_expires_restocks_and_its_intent_is_cancelled() {
    let stripe = LocalStripe::start();
    let app = stripe_app(&stripe, &[("PAYMENT_TIMEOUT", "1s")]).await;
    let admin = app.admin().await;
    let cap = app.product(&admin, "Cap", 1000, 4).await;
    let (customer, placed) = placed(&app, cap, 3).await;
    let id = placed["id"].as_str().unwrap();
    let intent = placed["payment"]["intent_id"].as_str().unwrap();
    assert_eq!(stock(&app, cap).await, 1);
    let expired = wait_for(&customer, id, Duration::from_secs(10), |o| {
        o["status"] == "cancelled"
    })
    .await;
    assert_eq!(
        expired["status"], "cancelled",
        "the sweeper expires it: {expired}"
    );
    assert_eq!(expired["payment"]["status"], "cancelled");
    assert_eq!(stock(&app, cap).await, 4);
    let at_stripe = stripe.intent(intent).await;
    assert_eq!(at_stripe["status"], "canceled", "{at_stripe}");
    // A late failure for it changes nothing.
    let (_, answer) = signed(
        &app,
        &event("payment_intent.payment_failed", intent, id, 3000, "gbp"),
    )
    .await;
    assert_eq!(answer["outcome"], "ignored");
    app.stop().await;
}

#[tokio::test]
async fn a_payment_at_the_moment_of_expiry_ends_paid_or_refunded_never_paid_and_restocked() {
    let stripe = LocalStripe::start();
    // Long enough that the background sweeper (every second) rarely gets there first; the test
    // runs the sweep itself at the same moment as the delivery.
    let app = stripe_app(&stripe, &[("PAYMENT_TIMEOUT", "2s")]).await;
    let admin = app.admin().await;
    let mut endings = std::collections::BTreeMap::<&str, usize>::new();
    for round in 0..ROUNDS {
        let scarf = app
            .product(&admin, &format!("Scarf {round}"), 2000, 2)
            .await;
        let (customer, placed) = placed(&app, scarf, 1).await;
        let id = placed["id"].as_str().unwrap().to_string();
        let intent = placed["payment"]["intent_id"].as_str().unwrap().to_string();
        // The customer pays at localstripe (no webhook registered: the test delivers it).
        stripe.pay(&intent).await;
        let body = event("payment_intent.succeeded", &intent, &id, 2000, "gbp");
        let created = Instant::now();
        tokio::time::sleep(Duration::from_millis(2000).saturating_sub(created.elapsed())).await;
        // Just past the timeout: the delivery and the sweep at once.
        let (delivered, swept) = tokio::join!(
            async {
                tokio::time::sleep(Duration::from_millis(round as u64 % 5 * 5)).await;
                signed(&app, &body).await
            },
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                app.state.orders.sweep_payments().await
            }
        );
        assert_eq!(
            delivered.0,
            StatusCode::OK,
            "round {round}: {}",
            delivered.1
        );
        swept.unwrap();
        // Let a refund the webhook started finish.
        let o = wait_for(&customer, &id, Duration::from_secs(5), |o| {
            o["payment"]["status"] != "refund_pending"
        })
        .await;
        let left = stock(&app, scarf).await;
        let refunds = stripe.refunds_of(&intent).await;
        match (o["status"].as_str(), o["payment"]["status"].as_str()) {
            (Some("paid"), Some("succeeded")) => {
                assert_eq!(left, 1, "round {round}: a paid order keeps its stock taken");
                assert!(refunds.is_empty(), "round {round}: {refunds:?}");
                *endings.entry("paid").or_default() += 1;
            }
            (Some("cancelled"), Some("refunded")) => {
                assert_eq!(left, 2, "round {round}: a cancelled order's stock is back");
                assert_eq!(refunds.len(), 1, "round {round}: one refund, {refunds:?}");
                *endings.entry("cancelled and refunded").or_default() += 1;
            }
            other => panic!("round {round}: ended {other:?}: {o}"),
        }
    }
    report(
        "webhook at expiry",
        format!(
            "{ROUNDS} rounds of a paid intent's succeeded event delivered as the order expires: endings {endings:?}; never paid with its stock restored, never refunded twice"
        ),
    );
    app.stop().await;
}

#[tokio::test]
async fn a_checkout_retried_while_its_intent_is_created_keeps_one_live_intent() {
    let stripe = LocalStripe::start();
    let app = stripe_app(&stripe, &[]).await;
    let admin = app.admin().await;
    let belt = app.product(&admin, "Belt", 3000, 1000).await;
    let (mut second_intents, mut replays) = (0, 0);
    for round in 0..ROUNDS {
        let customer = app.customer().await;
        assert_eq!(
            add(&customer.api, belt, 1).await.status,
            StatusCode::CREATED
        );
        let key = format!("checkout-{round}-{}", uuid::Uuid::new_v4().simple());
        let tries: Vec<_> = (0..4u64)
            .map(|i| {
                let api = customer.api.with_header("Idempotency-Key", &key);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i * 3)).await;
                    checkout(&api).await
                })
            })
            .collect();
        let mut orders = std::collections::BTreeSet::new();
        let mut intents = std::collections::BTreeSet::new();
        for attempt in tries {
            let res = attempt.await.unwrap();
            match res.status {
                StatusCode::CREATED => {
                    replays += usize::from(res.header("Idempotency-Replayed").is_some());
                    orders.insert(res.json["id"].as_str().unwrap().to_string());
                    intents.insert(
                        res.json["payment"]["intent_id"]
                            .as_str()
                            .unwrap_or("none")
                            .to_string(),
                    );
                }
                StatusCode::CONFLICT => {
                    assert_eq!(res.json["code"], "idempotency_in_progress", "{}", res.text);
                }
                other => panic!("round {round}: {other} {}", res.text),
            }
        }
        assert_eq!(orders.len(), 1, "round {round}: one order, {orders:?}");
        let id = orders.into_iter().next().unwrap();
        // Every answer that carried an intent named the one attached.
        let attached = order(&customer.api, &id).await["payment"]["intent_id"]
            .as_str()
            .unwrap()
            .to_string();
        intents.remove("none");
        assert!(
            intents.iter().all(|i| *i == attached),
            "round {round}: {intents:?} vs {attached}"
        );
        let made = stripe.intents_of(&id).await;
        let live: Vec<_> = made.iter().filter(|i| i["status"] != "canceled").collect();
        assert_eq!(
            live.len(),
            1,
            "round {round}: one intent may be paid, {made:?}"
        );
        assert_eq!(live[0]["id"], attached.as_str());
        second_intents += made.len() - 1;
    }
    report(
        "checkout retried",
        format!(
            "{ROUNDS} rounds × 4 checkouts with one Idempotency-Key, 3 ms apart: one order each, {replays} replays, {second_intents} second intents created by a retry (localstripe ignores the key) and cancelled again; exactly one live intent per order"
        ),
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_refunds_a_delivered_order_once_and_nothing_else() {
    let stripe = LocalStripe::start();
    let app = stripe_app(&stripe, &[]).await;
    let admin = app.admin().await;
    let boots = app.product(&admin, "Boots", 9900, 3).await;
    let (customer, placed) = placed(&app, boots, 1).await;
    let id = placed["id"].as_str().unwrap();
    let intent = placed["payment"]["intent_id"].as_str().unwrap();
    let refund = format!("/api/v1/admin/orders/{id}/refund");
    // Unpaid: nothing to refund.
    admin
        .post(&refund, json!({}))
        .await
        .assert_problem(StatusCode::CONFLICT, "not_refundable");
    // A customer may not.
    assert_eq!(
        customer.post(&refund, json!({})).await.status,
        StatusCode::FORBIDDEN
    );

    stripe.pay(intent).await;
    let (status, answer) = signed(
        &app,
        &event("payment_intent.succeeded", intent, id, 9900, "gbp"),
    )
    .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::OK, Some("paid"))
    );
    // Paid but not shipped: refunded by cancelling, not here.
    admin
        .post(&refund, json!({}))
        .await
        .assert_problem(StatusCode::CONFLICT, "not_refundable");
    for to in ["shipped", "delivered"] {
        let moved = admin
            .post(
                &format!("/api/v1/admin/orders/{id}/status"),
                json!({"status": to}),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    }
    // A double click: one refund.
    let (a, b) = tokio::join!(
        admin.post(&refund, json!({})),
        admin.post(&refund, json!({}))
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.text, b.text);
    let done = if a.status == StatusCode::OK { a } else { b };
    assert_eq!(done.json["status"], "delivered");
    assert_eq!(done.json["payment"]["status"], "refunded", "{}", done.text);
    assert!(done.json["payment"].get("client_secret").is_none());
    assert_eq!(stripe.refunds_of(intent).await.len(), 1);
    assert_eq!(
        stock(&app, boots).await,
        2,
        "a delivered order's stock does not come back"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_placed_while_stripe_is_unreachable_gets_its_intent_when_read_again() {
    // The app points at a port where no Stripe answers yet.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(settings(&[
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_API_BASE", &base),
    ]))
    .await;
    let admin = app.admin().await;
    let bag = app.product(&admin, "Bag", 5000, 2).await;
    let (customer, placed) = placed(&app, bag, 1).await;
    let id = placed["id"].as_str().unwrap();
    assert_eq!(placed["payment"]["status"], "creating", "{placed}");
    assert!(placed["payment"].get("intent_id").is_none());
    assert_eq!(
        stock(&app, bag).await,
        1,
        "the order holds its stock meanwhile"
    );
    // Still unreachable: the read answers, unchanged.
    assert_eq!(order(&customer, id).await["payment"]["status"], "creating");
    // An admin's read does not create it (only the owner, who will pay, or the sweeper).
    let as_admin = admin.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(as_admin.json["payment"]["status"], "creating");

    let stripe = LocalStripe::start_on(port);
    let read = order(&customer, id).await;
    assert_eq!(read["payment"]["status"], "requires_payment", "{read}");
    let intent = read["payment"]["intent_id"].as_str().unwrap();
    assert!(
        read["payment"]["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(intent)
    );
    let made = stripe.intents_of(id).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["amount"], 5000);
    app.stop().await;
}
