//! Event-stream load: how many stock streams one instance holds, and how long a change takes to
//! reach all of them.
//!
//! `cargo bench --bench streams -- --url http://127.0.0.1:8080 --admin-email E --admin-password P
//!  [--streams 1000,10000] [--rounds 5] [--server-pid PID]`
//!
//! For each count: opens that many `GET /api/v1/products/{id}/stock/events` streams on one product
//! (each client from its own loopback address: a watcher holds at most 16 streams), waits for each
//! stream's first event, then changes the stock `--rounds` times and measures, per round, the time
//! from the change's answer to its event on every stream. With `--server-pid`, prints the server's
//! RSS with the streams open. No assertion here: it measures, it does not judge.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};

/// Streams per client address, the server's per-watcher limit.
const PER_ADDRESS: usize = 16;

struct Options {
    url: String,
    admin_email: String,
    admin_password: String,
    streams: Vec<usize>,
    rounds: usize,
    server_pid: Option<u32>,
}

fn options() -> Options {
    let mut o = Options {
        url: "http://127.0.0.1:8080".into(),
        admin_email: String::new(),
        admin_password: String::new(),
        streams: vec![1000],
        rounds: 5,
        server_pid: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--url" => o.url = value,
            "--admin-email" => o.admin_email = value,
            "--admin-password" => o.admin_password = value,
            "--streams" => {
                o.streams = value
                    .split(',')
                    .map(|n| n.parse().expect("--streams N[,N...]"))
                    .collect()
            }
            "--rounds" => o.rounds = value.parse().expect("--rounds N"),
            "--server-pid" => o.server_pid = Some(value.parse().expect("--server-pid PID")),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// One open stream: reads events and reports the stock level each one carries.
async fn follow(
    response: reqwest::Response,
    levels: tokio::sync::mpsc::UnboundedSender<(usize, i64, Instant)>,
    index: usize,
) {
    let mut response = response;
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let data = block.lines().find_map(|l| l.strip_prefix("data:"));
            if let Some(stock) = data
                .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .and_then(|v| v["stock"].as_i64())
                && levels.send((index, stock, Instant::now())).is_err()
            {
                return;
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let o = options();
    let base = o.url.trim_end_matches('/').to_string();
    let http = Client::new();
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(json!({"email": o.admin_email, "password": o.admin_password}).to_string())
        .send()
        .await
        .expect("admin login");
    let login: Value = serde_json::from_str(&login.text().await.unwrap()).unwrap();
    let admin = login["tokens"]["access_token"]
        .as_str()
        .expect("admin signs in (--admin-email, --admin-password)")
        .to_string();
    println!(
        "{:>8} {:>9} {:>11} {:>9} {:>9} {:>9} {:>10}",
        "streams", "open s", "rss MB", "p50 ms", "p99 ms", "max ms", "delivered"
    );
    // Each count uses fresh addresses: the server frees a closed stream's slot only at its next
    // write to it.
    let mut next_address = 0u32;
    for &count in &o.streams {
        let created = http
            .post(format!("{base}/api/v1/products"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(
                json!({"name": "Streamed", "price": {"amount": 100, "currency": "GBP"}, "stock": 1000})
                    .to_string(),
            )
            .send()
            .await
            .expect("create product");
        let product: Value = serde_json::from_str(&created.text().await.unwrap()).unwrap();
        let product = product["id"].as_i64().expect("product created");
        let path = format!("{base}/api/v1/products/{product}/stock/events");

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opened_at = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        let mut client = None;
        for i in 0..count {
            if i % PER_ADDRESS == 0 {
                // 127.x.y.z from 127.1.0.1 on: each address is its own watcher.
                next_address += 1;
                let n = next_address;
                let address = Ipv4Addr::new(127, 1 + (n >> 16) as u8, (n >> 8) as u8, n as u8);
                client = Some(
                    Client::builder()
                        .local_address(IpAddr::V4(address))
                        .pool_max_idle_per_host(PER_ADDRESS)
                        .build()
                        .expect("client"),
                );
            }
            let response = client
                .as_ref()
                .unwrap()
                .get(&path)
                .send()
                .await
                .expect("stream opens");
            assert!(
                response.status().is_success(),
                "stream {i}: {}",
                response.status()
            );
            tasks.push(tokio::spawn(follow(response, tx.clone(), i)));
        }
        // Every stream's first event (the current level).
        let mut first = 0;
        while first < count {
            rx.recv().await.expect("streams report");
            first += 1;
        }
        let open_seconds = opened_at.elapsed().as_secs_f64();
        let rss = o
            .server_pid
            .and_then(rss_mb)
            .map_or("-".into(), |m| format!("{m:.1}"));

        let mut latencies = Vec::new();
        let mut delivered = 0;
        for round in 0..o.rounds {
            let level = 999 - round as i64;
            let changed = http
                .patch(format!("{base}/api/v1/products/{product}"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(json!({"stock": level}).to_string())
                .send()
                .await
                .expect("change stock");
            let changed_at = Instant::now();
            assert!(changed.status().is_success());
            let mut reached = 0;
            while reached < count {
                match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                    Ok(Some((_, stock, at))) if stock == level => {
                        latencies.push(at.saturating_duration_since(changed_at));
                        reached += 1;
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            delivered += reached;
        }
        latencies.sort();
        println!(
            "{:>8} {:>9.2} {:>11} {:>9.2} {:>9.2} {:>9.2} {:>10}",
            count,
            open_seconds,
            rss,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            format!("{delivered}/{}", count * o.rounds)
        );
        for task in tasks {
            task.abort();
        }
        // Let the server notice the closed streams before the next count.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
