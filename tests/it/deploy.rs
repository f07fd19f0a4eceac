//! The deployment files agree with the code: fly.toml and Cargo.toml's profiles (parsed with
//! Python's tomllib, the TOML parser already on every machine that runs `scripts/test`) and the
//! Dockerfile.

use std::collections::HashMap;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;
use storefront::Settings;

use crate::common::TestApp;

/// A TOML file of the project as JSON.
fn toml(file: &str) -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(format!("{}/{file}", env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{file} does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fly_toml() -> Value {
    toml("fly.toml")
}

fn dockerfile() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap()
}

#[tokio::test]
async fn fly_toml_agrees_with_the_code() {
    let fly = fly_toml();
    let env: HashMap<String, String> = fly["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().expect("[env] values are strings").into(),
            )
        })
        .collect();
    for secret in ["JWT_SECRET", "SURREAL_PASS", "REDIS_URL"] {
        assert!(
            !env.contains_key(secret),
            "{secret} belongs in `fly secrets`, not [env]"
        );
    }

    // [env] plus the one required secret makes valid production settings.
    let settings = Settings::from_lookup(|k| match k {
        "JWT_SECRET" => Some("a-production-secret-of-32-bytes-or-more".into()),
        _ => env.get(k).cloned(),
    })
    .expect("fly.toml's [env] is a valid configuration");
    let service = &fly["http_service"];
    let internal_port = service["internal_port"].as_u64().unwrap();
    assert_eq!(
        u64::from(settings.port),
        internal_port,
        "PORT vs internal_port"
    );
    let default = Settings::from_lookup(|k| (k == "JWT_SECRET").then(|| "x".repeat(32))).unwrap();
    assert_eq!(
        u64::from(default.port),
        internal_port,
        "default PORT vs internal_port"
    );
    assert_eq!(service["force_https"], true);

    // Open event streams are in-flight requests to Fly's proxy: they may fill at most half of the
    // hard limit, or a machine full of listeners would take no other request.
    let concurrency = &service["concurrency"];
    assert_eq!(concurrency["type"], "requests");
    let hard = concurrency["hard_limit"].as_u64().unwrap();
    let soft = concurrency["soft_limit"].as_u64().unwrap();
    assert!(soft <= hard, "soft_limit above hard_limit");
    let streams = settings.event_streams_max as u64;
    assert!(
        streams * 2 <= hard,
        "EVENT_STREAMS_MAX={streams} leaves too little of hard_limit={hard} for other requests"
    );

    // Fly scrapes /metrics on the metrics port, which the public service does not route.
    assert_eq!(fly["metrics"]["path"], "/metrics");
    assert_eq!(
        fly["metrics"]["port"].as_u64(),
        Some(u64::from(settings.metrics_port))
    );
    assert_ne!(settings.metrics_port, settings.port);

    // The data directory is on the mounted volume.
    let mount = fly["mounts"]["destination"].as_str().unwrap();
    let path = settings
        .surreal
        .url
        .strip_prefix("surrealkv://")
        .expect("embedded SurrealKV");
    assert!(
        path.starts_with(&format!("{mount}/")),
        "{path} is not under {mount}"
    );

    // Fly waits longer than the server drains before it kills.
    assert_eq!(fly["kill_signal"], "SIGTERM");
    let kill_timeout = fly["kill_timeout"].as_u64().unwrap();
    assert!(kill_timeout > storefront::app::SHUTDOWN_GRACE.as_secs());

    // The health check's path answers 200.
    let app = TestApp::spawn().await;
    for check in service["checks"].as_array().unwrap() {
        assert_eq!(check["method"], "GET");
        let path = check["path"].as_str().unwrap();
        assert_eq!(
            app.client().get(path).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[test]
fn the_image_ships_a_stripped_binary_and_the_system_ca_certificates() {
    let docker = dockerfile();
    let (build, runtime) = docker.rsplit_once("FROM ").expect("two stages");
    let dist = &toml("Cargo.toml")["profile"]["dist"];
    assert_eq!(dist["inherits"], "release");
    assert_eq!(dist["strip"], true);
    assert_eq!(dist["debug"], false);
    let builds: Vec<&str> = build
        .lines()
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty());
    for line in builds {
        assert!(
            line.contains("--profile dist"),
            "not the dist profile: {line}"
        );
    }
    assert!(runtime.contains("COPY --from=build /build/target/dist/storefront "));
    assert!(
        runtime.contains("install -y --no-install-recommends ca-certificates"),
        "wss:// and rediss:// need the system's CA certificates"
    );
}

#[test]
fn the_image_runs_as_a_non_root_user_on_the_flyio_port_and_volume() {
    let docker = dockerfile();
    let fly = fly_toml();
    let runtime = docker.split("FROM ").last().expect("a runtime stage");
    let port = fly["http_service"]["internal_port"].as_u64().unwrap();
    let metrics = fly["metrics"]["port"].as_u64().unwrap();
    assert!(
        runtime.contains(&format!("EXPOSE {port} {metrics}")),
        "EXPOSE {port} {metrics}"
    );
    assert!(runtime.contains(&format!(" PORT={port}")));
    assert!(runtime.contains(&format!("METRICS_PORT={metrics}")));
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(!["root", "0"].contains(&user.trim()), "runs as root");
    let mount = fly["mounts"]["destination"].as_str().unwrap();
    assert!(runtime.contains(&format!("SURREAL_URL=surrealkv://{mount}/")));
    assert!(runtime.contains("STOPSIGNAL SIGTERM"));
}
