//! The application in-process: settings for a test, `TestApp` on a free port, and the accounts a test
//! signs in as.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use storefront::{Application, Settings};
use tokio::sync::oneshot;

use super::client::Api;

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
    /// Where `/metrics` is served (a port of its own).
    pub metrics_address: SocketAddr,
    pub namespace: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The uploads directory, removed when the app is dropped if nothing was uploaded to it.
    media_dir: Option<std::path::PathBuf>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(dir) = &self.media_dir {
            // Only an empty one: another app of the same test may be using it still.
            let _ = std::fs::remove_dir(dir);
        }
    }
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
        ("METRICS_PORT".into(), "0".into()),
        ("SURREAL_URL".into(), "mem://".into()),
        ("SURREAL_NS".into(), namespace),
        ("SURREAL_DB".into(), "test".into()),
        ("REDIS_URL".into(), redis_url()),
        ("JWT_SECRET".into(), JWT_SECRET.into()),
        ("SEED_CATALOG".into(), "false".into()),
        // Each test's uploads in a directory of its own.
        (
            "MEDIA_URL".into(),
            std::env::temp_dir()
                .join(unique("storefront-media"))
                .display()
                .to_string(),
        ),
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
        let media_dir = match &settings.media {
            storefront::config::MediaSettings::Directory(dir) => Some(dir.clone()),
            storefront::config::MediaSettings::S3 { .. } => None,
        };
        let app = Application::build(settings).await.expect("app builds");
        let address = app.address();
        let metrics_address = app.metrics_address();
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
            metrics_address,
            namespace,
            stop: Some(stop),
            server: Some(server),
            media_dir,
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

    /// Waits up to `within` for `/ready` to answer 200 (after a dependency came back); false if it
    /// never did.
    pub async fn becomes_ready(&self, within: Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if self.client().get("/ready").await.status == StatusCode::OK {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The Prometheus text of `/metrics`, from the metrics port.
    pub async fn metrics(&self) -> String {
        let res = reqwest::get(format!("http://{}/metrics", self.metrics_address))
            .await
            .expect("the metrics port answers");
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
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

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn surrealkv_url(dir: &Path) -> String {
    format!("surrealkv://{}", dir.join("db").display())
}
