//! A webhook receiver of the test's own: a real HTTP server on a free port that checks every
//! delivery's signature with the Standard Webhooks library (given each endpoint's secret), records
//! what came, and can refuse the first attempts at each message (503) or hold requests open until
//! released.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::{HeaderMap, StatusCode};
use poem::listener::TcpListener;
use poem::web::{Data, Path};
use poem::{EndpointExt, Route, Server, handler, post};
use serde_json::Value;
use tokio::sync::Notify;

use super::processes::free_port;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path's last segment: which endpoint this is.
    pub endpoint: String,
    /// `webhook-id`.
    pub id: String,
    /// Whether the signature checked out against the endpoint's secret (and the timestamp is fresh).
    pub verified: bool,
    pub body: Value,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn event_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    secrets: Mutex<HashMap<String, String>>,
    got: Mutex<Vec<Received>>,
    /// Attempts seen per `webhook-id`.
    tries: Mutex<HashMap<String, usize>>,
    /// Attempts at each message answered 503 before one is accepted.
    refuse_first: Mutex<usize>,
    /// Requests to endpoint `hold` wait for `release`.
    release: Notify,
    held: Mutex<usize>,
}

pub struct Receiver {
    port: u16,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

#[handler]
async fn hook(
    Path(name): Path<String>,
    headers: &HeaderMap,
    body: Vec<u8>,
    state: Data<&Arc<State>>,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let secret = state.secrets.lock().unwrap().get(&name).cloned();
    let verified = secret.is_some_and(|secret| {
        standardwebhooks::Webhook::new(&secret)
            .and_then(|w| w.verify(&body, headers))
            .is_ok()
    });
    if name == "hold" {
        *state.held.lock().unwrap() += 1;
        state.release.notified().await;
    }
    let tries = {
        let mut tries = state.tries.lock().unwrap();
        let n = tries.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let answered = if tries <= *state.refuse_first.lock().unwrap() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    state.got.lock().unwrap().push(Received {
        endpoint: name,
        id,
        verified,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: answered.as_u16(),
    });
    answered
}

impl Receiver {
    /// Refusing the first `refuse_first` attempts at each message.
    pub async fn start(refuse_first: usize) -> Self {
        let port = free_port();
        let state = Arc::new(State::default());
        *state.refuse_first.lock().unwrap() = refuse_first;
        let app = Route::new()
            .at("/hooks/:name", post(hook))
            .data(state.clone());
        let server = tokio::spawn(async move {
            let _ = Server::new(TcpListener::bind(format!("127.0.0.1:{port}")))
                .run(app)
                .await;
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the webhook receiver did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            port,
            state,
            server,
        }
    }

    /// The URL of endpoint `name` (`hold`: requests wait for `release_held`).
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{name}", self.port)
    }

    /// Checks endpoint `name`'s signatures against `secret`.
    pub fn trust(&self, name: &str, secret: &str) {
        self.state
            .secrets
            .lock()
            .unwrap()
            .insert(name.to_string(), secret.to_string());
    }

    pub fn refuse_first(&self, attempts: usize) {
        *self.state.refuse_first.lock().unwrap() = attempts;
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Requests accepted (2xx) so far.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.answered == 200)
            .collect()
    }

    /// Requests to `hold` waiting now.
    pub fn held(&self) -> usize {
        *self.state.held.lock().unwrap()
    }

    pub fn release_held(&self) {
        self.state.release.notify_waiters();
    }

    /// Waits until `n` requests were accepted, or `timeout`; what was accepted.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n || Instant::now() > deadline {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
