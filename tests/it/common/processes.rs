//! Processes a test starts of its own: a private Redis, the real binary (server and command line) and
//! SurrealDB servers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::app::{JWT_SECRET, redis_url};
use super::client::Api;
use super::tls::TestCa;

/// A Redis server of the test's own, on a free port, that the test may stop and start again. It
/// keeps nothing on disk unless told to (`save`); a start loads what was saved.
pub struct PrivateRedis {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = free_port();
        let dir = super::app::temp_dir("redis");
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.restart();
        redis
    }

    /// Writes everything Redis holds to its directory now: the next start begins with it, as a
    /// restart of a persisted Redis or a failover to a replica does.
    pub fn save(&self) {
        let saved = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "SAVE"])
            .output()
            .expect("redis-cli is installed with redis-server");
        assert!(
            saved.status.success() && String::from_utf8_lossy(&saved.stdout).trim() == "OK",
            "{saved:?}"
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until something accepts TCP connections on `port` of 127.0.0.1.
pub fn wait_for_port(port: u16, what: &str) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not start on port {port}");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary as a child process: for restarts on the same data directory, where the database
/// must be released as it is when a process exits.
pub struct ServerProcess {
    pub base: String,
    child: Child,
    /// The default uploads directory, removed with the process if nothing was uploaded to it.
    media_dir: std::path::PathBuf,
}

impl ServerProcess {
    /// Starts `storefront serve` with the test defaults plus `vars`, and waits until `/ready` answers.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let port = free_port();
        let media_dir = std::env::temp_dir().join(super::app::unique("storefront-media"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_storefront"));
        cmd.env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("METRICS_PORT", "0")
            .env("MEDIA_URL", &media_dir)
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
            media_dir,
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
        // Only an empty one: another process of the same test may have been given it too.
        let _ = std::fs::remove_dir(&self.media_dir);
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
        Self::start_with(None).await
    }

    /// The same over TLS (`wss://`), with a certificate for 127.0.0.1 signed by `ca`.
    pub async fn start_tls(ca: &TestCa) -> Self {
        Self::start_with(Some(ca)).await
    }

    async fn start_with(tls: Option<&TestCa>) -> Self {
        let bin = std::env::var("STOREFRONT_SURREAL_BIN").expect(
            "STOREFRONT_SURREAL_BIN names the SurrealDB server binary: run scripts/test, which builds it",
        );
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["start", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--user", "root", "--pass", "root", "--log", "warn"]);
        if let Some(ca) = tls {
            cmd.arg("--web-crt")
                .arg(&ca.server_cert)
                .arg("--web-key")
                .arg(&ca.server_key);
        }
        let child = cmd
            .arg("memory")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SurrealDB server starts");
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let server = Self {
            url: format!("{scheme}://127.0.0.1:{port}"),
            child,
        };
        if tls.is_some() {
            // The test client speaks no TLS: the server is up once it accepts connections.
            wait_for_port(port, "SurrealDB (TLS)");
            return server;
        }
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
