//! Test harness: every test spawns the real application on a free port, over its own SurrealDB
//! namespace (and so its own cache key prefix), and talks to it over real HTTP.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use storefront::{Application, Settings};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The shared Redis of the test run (`scripts/test` starts a private one), else the local default.
pub fn redis_url() -> String {
    std::env::var("STOREFRONT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub struct TestApp {
    pub state: storefront::AppState,
    pub address: SocketAddr,
    pub base: String,
    pub namespace: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The SurrealDB server the run shares (`scripts/test` starts one for its second pass), as the
/// variables that reach it; none when tests run on the embedded engines.
pub fn remote_surreal() -> Option<[(&'static str, String); 3]> {
    let url = std::env::var("STOREFRONT_TEST_SURREAL_URL").ok()?;
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "root".into());
    Some([
        ("SURREAL_URL", url),
        ("SURREAL_USER", var("STOREFRONT_TEST_SURREAL_USER")),
        ("SURREAL_PASS", var("STOREFRONT_TEST_SURREAL_PASS")),
    ])
}

/// Builds settings for a test: `mem://` (or the shared server of a remote pass) unless told
/// otherwise, a fresh namespace, the test Redis.
pub fn settings(vars: &[(&str, &str)]) -> Settings {
    let namespace = unique("t");
    let mut map: HashMap<String, String> = HashMap::from([
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("SURREAL_URL".into(), "mem://".into()),
        ("SURREAL_NS".into(), namespace),
        ("SURREAL_DB".into(), "test".into()),
        ("REDIS_URL".into(), redis_url()),
        ("JWT_SECRET".into(), JWT_SECRET.into()),
        ("SEED_CATALOG".into(), "false".into()),
        (
            "RUST_LOG".into(),
            std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ]);
    // A test naming its own engine (SurrealKV, say) does not sign in to the shared server.
    let own_engine = vars.iter().any(|(k, _)| *k == "SURREAL_URL");
    for (k, v) in remote_surreal().into_iter().flatten() {
        if !own_engine {
            map.insert(k.to_string(), v);
        }
    }
    for (k, v) in vars {
        if v.is_empty() {
            map.remove(*k);
        } else {
            map.insert(k.to_string(), v.to_string());
        }
    }
    Settings::from_lookup(|k| map.get(k).cloned()).expect("test settings are valid")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(settings(&[])).await
    }

    pub async fn spawn_with(settings: Settings) -> Self {
        storefront::telemetry::init(settings.log_format, &settings.log_filter);
        let namespace = settings.surreal.namespace.clone();
        let app = Application::build(settings).await.expect("app builds");
        let address = app.address();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            state,
            address,
            base: format!("http://{address}"),
            namespace,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits for it, releasing the database files.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client with no cookie jar: credentials travel only as bearer tokens.
    pub fn client(&self) -> Api {
        Api::new(&self.base)
    }

    /// A client that keeps cookies, like a browser.
    pub fn browser(&self) -> Api {
        self.browser_at(None)
    }

    /// A browser on a page served from `origin` (cross-site): every request carries `Origin`.
    pub fn browser_at(&self, origin: Option<&str>) -> Api {
        Api {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            token: None,
            jar: Some(Arc::default()),
            origin: origin.map(str::to_string),
            headers: Vec::new(),
        }
    }

    /// Registers a fresh customer and returns a bearer client signed in as them.
    pub async fn customer(&self) -> Customer {
        let email = format!("{}@example.com", unique("user"));
        let api = self.client();
        let res = api
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": PASSWORD, "name": "Test Customer"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "register: {}", res.text);
        let tokens = res.json["tokens"].clone();
        Customer {
            id: res.json["user"]["id"].as_str().unwrap().to_string(),
            email,
            api: api.with_token(tokens["access_token"].as_str().unwrap()),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_string(),
        }
    }
}

impl TestApp {
    /// An admin, made the only way there is (as `storefront create-admin` does), signed in over HTTP.
    pub async fn admin(&self) -> Api {
        let email = format!("{}@example.com", unique("admin"));
        let parsed = storefront::domain::Email::parse(&email).unwrap();
        self.state
            .accounts
            .create_admin(&parsed, || {
                Ok(storefront::domain::Password::parse(
                    "password",
                    PASSWORD.into(),
                )?)
            })
            .await
            .expect("admin created");
        let res = self
            .client()
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.json["user"]["role"], "admin", "{}", res.text);
        self.client()
            .with_token(res.json["tokens"]["access_token"].as_str().unwrap())
    }

    /// Creates a product through the admin API and returns its id.
    pub async fn product(&self, admin: &Api, name: &str, price: i64, stock: i64) -> i64 {
        let res = admin
            .post(
                "/api/v1/products",
                json!({"name": name, "price": {"amount": price, "currency": "GBP"}, "stock": stock}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        res.json["id"].as_i64().unwrap()
    }
}

pub struct Customer {
    pub id: String,
    pub email: String,
    pub api: Api,
    pub refresh_token: String,
}

impl Customer {
    /// Signs in again: a second session (another device).
    pub async fn another_session(&self, app: &TestApp) -> (Api, String) {
        let res = app
            .client()
            .post(
                "/api/v1/auth/login",
                json!({"email": self.email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "login: {}", res.text);
        let tokens = &res.json["tokens"];
        (
            app.client()
                .with_token(tokens["access_token"].as_str().unwrap()),
            tokens["refresh_token"].as_str().unwrap().to_string(),
        )
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    /// Cookies as a browser keeps them (name → value), when this client is a browser.
    jar: Option<Arc<Mutex<HashMap<String, String>>>>,
    origin: Option<String>,
    /// Headers sent on every request.
    headers: Vec<(&'static str, String)>,
}

/// A response read whole: status, headers, raw text and (when JSON) the parsed body.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and code; returns the body.
    pub fn assert_problem(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.json["code"], code, "body: {}", self.text);
        assert_eq!(self.json["status"], status.as_u16());
        assert!(self.json["type"].is_string() && self.json["title"].is_string());
        assert!(
            self.json["request_id"].is_string(),
            "problem without request id: {}",
            self.text
        );
        &self.json
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            http: reqwest::Client::new(),
            token: None,
            jar: None,
            origin: None,
            headers: Vec::new(),
        }
    }

    /// The same client, sending `name: value` on every request (e.g. `X-Cart-Token`).
    pub fn with_header(&self, name: &'static str, value: &str) -> Api {
        let mut api = self.clone();
        api.headers.push((name, value.to_string()));
        api
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Res {
        self.try_send(method, path, body)
            .await
            .expect("request sent")
    }

    /// Like `send`, but a transport failure (server killed, connection refused) is an `Err`.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Res, reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(origin) = &self.origin {
            req = req.header("origin", origin);
        }
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        if let Some(jar) = &self.jar {
            let cookies = jar.lock().unwrap();
            if !cookies.is_empty() {
                let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                req = req.header("cookie", header.join("; "));
            }
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = read(req.send().await?).await;
        if let Some(jar) = &self.jar {
            let mut cookies = jar.lock().unwrap();
            for set in res.headers.get_all("set-cookie") {
                let Some((name, rest)) = set.to_str().unwrap_or_default().split_once('=') else {
                    continue;
                };
                let value = rest.split(';').next().unwrap_or_default();
                let expired = rest.to_ascii_lowercase().contains("max-age=0");
                if value.is_empty() || expired {
                    cookies.remove(name);
                } else {
                    cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Ok(res)
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Res {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Res {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Res {
        self.send(Method::DELETE, path, None).await
    }
}

pub async fn read(response: reqwest::Response) -> Res {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Res {
        status,
        headers,
        text,
        json,
    }
}

/// A Redis server of the test's own, on a free port, that the test may stop and start again.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = free_port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Units per product id in an order body (`items[].product_id`, `items[].quantity`).
pub fn order_units(order: &Value) -> HashMap<i64, i64> {
    let mut out = HashMap::new();
    for line in order["items"].as_array().expect("order items") {
        *out.entry(line["product_id"].as_i64().unwrap()).or_default() +=
            line["quantity"].as_i64().unwrap();
    }
    out
}

/// Asserts that no response text carries a password hash.
pub fn assert_no_hash(res: &Res) {
    assert!(!res.text.contains("$argon2"), "hash leaked: {}", res.text);
    assert!(
        !res.text.contains("password_hash"),
        "hash field leaked: {}",
        res.text
    );
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn surrealkv_url(dir: &Path) -> String {
    format!("surrealkv://{}", dir.join("db").display())
}

/// The real binary as a child process: for restarts on the same data directory, where the database
/// must be released as it is when a process exits.
pub struct ServerProcess {
    pub base: String,
    child: Child,
}

impl ServerProcess {
    /// Starts `storefront serve` with the test defaults plus `vars`, and waits until `/ready` answers.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_storefront"));
        cmd.env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("SURREAL_DB", "test")
            .env("REDIS_URL", redis_url())
            .env("JWT_SECRET", JWT_SECRET)
            .env("SEED_CATALOG", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("storefront binary starts");
        let server = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(res) = http.get(format!("{}/ready", server.base)).send().await
                && res.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("storefront did not become ready on port {port}");
    }

    pub fn client(&self) -> Api {
        Api::new(&self.base)
    }

    /// Stops the process (SIGKILL: nothing gets a chance to flush) and waits for it to exit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the real binary's command line (`migrate`, `seed`, `create-admin`) against `url`, namespace
/// `cli`, with the admin password from the environment or `stdin` when given.
pub fn cli(
    url: &str,
    args: &[&str],
    password: Option<&str>,
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storefront"));
    cmd.args(args)
        .env_clear()
        .env("SURREAL_URL", url)
        .env("SURREAL_NS", "cli")
        .env("SURREAL_DB", "test")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        cmd.env("STOREFRONT_ADMIN_PASSWORD", password);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A SurrealDB server of the test's own (the `surreal` binary that `scripts/surreal-server` builds
/// from crates.io, named by `STOREFRONT_SURREAL_BIN`), in memory, on a free port, root/root.
pub struct SurrealServer {
    pub url: String,
    child: Child,
}

impl SurrealServer {
    pub async fn start() -> Self {
        let bin = std::env::var("STOREFRONT_SURREAL_BIN").expect(
            "STOREFRONT_SURREAL_BIN names the SurrealDB server binary: run scripts/test, which builds it",
        );
        let port = free_port();
        let child = Command::new(bin)
            .args(["start", "--bind", &format!("127.0.0.1:{port}")])
            .args([
                "--user", "root", "--pass", "root", "--log", "warn", "memory",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SurrealDB server starts");
        let server = Self {
            url: format!("ws://127.0.0.1:{port}"),
            child,
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(res) = http
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
                && res.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("SurrealDB did not become ready on port {port}");
    }

    /// The variables that point an instance at this server.
    pub fn vars(&self) -> [(&'static str, &str); 3] {
        [
            ("SURREAL_URL", self.url.as_str()),
            ("SURREAL_USER", "root"),
            ("SURREAL_PASS", "root"),
        ]
    }
}

impl Drop for SurrealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: Value,
}

/// A `text/event-stream` response read event by event.
pub struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    /// Opens `path` with the client's credentials; the status and, when 200, the stream.
    pub async fn open(
        api: &Api,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventReader, Res> {
        let mut req = api
            .http
            .get(format!("{}{path}", api.base))
            .header("accept", "text/event-stream");
        if let Some(token) = &api.token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        for (name, value) in &api.headers {
            req = req.header(*name, value);
        }
        let response = req.send().await.expect("request sent");
        if response.status() != StatusCode::OK {
            return Err(read(response).await);
        }
        Ok(EventReader {
            response,
            buffer: String::new(),
        })
    }

    /// The next event within `timeout`: `Ok(None)` when the stream ended, `Err(())` on timeout.
    /// Comment lines (keep-alives) are skipped.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<SseEvent>, ()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    id: String::new(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                event.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Ok(Some(event));
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(_) => return Ok(None),
            }
        }
    }
}
