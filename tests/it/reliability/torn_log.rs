//! A torn log tail followed by a second crash (the defect behind a lost order in the crash test).
//!
//! SurrealKV writes its log in 32 KiB blocks and splits a record that crosses a block boundary into
//! a first fragment and the rest. A SIGKILL between the two leaves the first fragment alone at the
//! end of the file. This test makes that state on purpose, after a real kill of the real binary,
//! then restarts, writes, kills again and restarts: everything answered 2xx in between must still be
//! there. Without `store::surrealkv::settle`, the second run appends after the torn fragment and the
//! second recovery truncates the file there, losing the account registered in between.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::json;

use super::report::report;
use crate::common::{PASSWORD, ServerProcess, surrealkv_url, temp_dir, unique};

/// SurrealKV 0.21.4's log layout: 32 KiB blocks; each physical record is a 7-byte header (CRC-32 of
/// the type byte and the data, big-endian; data length, big-endian u16; type) and its data.
const BLOCK: usize = 32 * 1024;
const HEADER: usize = 7;
const FIRST_FRAGMENT: u8 = 2;

/// CRC-32 (IEEE, reflected), as the log's records carry.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The newest log segment of the SurrealKV store in `db`.
fn newest_segment(db: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(db.join("wal"))
        .expect("the store has a log directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    segments.sort();
    segments.pop().expect("the store has a log segment")
}

/// Appends what a kill between two fragments leaves: a valid first fragment that fills its block,
/// and nothing after it.
fn tear(segment: &Path) {
    let len = std::fs::metadata(segment).unwrap().len() as usize;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(segment)
        .unwrap();
    let mut room = BLOCK - len % BLOCK;
    if room <= HEADER {
        // Too little room for a record: the writer pads the block with zeros.
        file.write_all(&vec![0; room]).unwrap();
        room = BLOCK;
    }
    let data = vec![0x5a; room - HEADER];
    let crc = crc32(&[&[FIRST_FRAGMENT], &data]);
    file.write_all(&crc.to_be_bytes()).unwrap();
    file.write_all(&(data.len() as u16).to_be_bytes()).unwrap();
    file.write_all(&[FIRST_FRAGMENT]).unwrap();
    file.write_all(&data).unwrap();
    file.sync_all().unwrap();
}

async fn register(server: &ServerProcess, email: &str) {
    let res = server
        .client()
        .post(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "name": "Torn"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
}

async fn login_status(server: &ServerProcess, email: &str) -> StatusCode {
    server
        .client()
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_a_torn_log_tail_survive_the_next_crash() {
    let dir = temp_dir("torn-log");
    let url = surrealkv_url(&dir);
    let db = PathBuf::from(url.strip_prefix("surrealkv://").unwrap());
    let vars = [("SURREAL_URL", url.as_str())];
    let (before, between) = (
        format!("{}@example.com", unique("before")),
        format!("{}@example.com", unique("between")),
    );

    let server = ServerProcess::start(&vars).await;
    register(&server, &before).await;
    server.kill();
    let segment = newest_segment(&db);
    tear(&segment);

    let server = ServerProcess::start(&vars).await;
    register(&server, &between).await;
    server.kill();

    let server = ServerProcess::start(&vars).await;
    assert_eq!(login_status(&server, &before).await, StatusCode::OK);
    assert_eq!(
        login_status(&server, &between).await,
        StatusCode::OK,
        "the account registered between the torn tail and the second crash is gone"
    );
    server.kill();
    report(
        "torn log",
        format!(
            "first fragment left alone at the end of {}, restart, register, SIGKILL, restart: \
             both accounts there",
            segment.file_name().unwrap().to_string_lossy()
        ),
    );
    let _ = std::fs::remove_dir_all(dir);
}
