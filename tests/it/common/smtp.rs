//! An SMTP server of the test's own (`aiosmtpd`, which `scripts/test` installs): each message it
//! accepts is written, parsed, as one JSON file (recipients, subject, plain and HTML bodies, decoded
//! from their transfer encoding) into a directory the test reads. It can refuse the first N
//! attempts at each message (by recipient and subject) with a temporary failure, to exercise
//! retries, and a test can leave out the mails it is not about (`ignoring`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::app::temp_dir;
use super::processes::{free_port, wait_for_port};

const SERVER: &str = r#"
import json, os, signal, sys, uuid
from email import message_from_bytes, policy
from aiosmtpd.controller import Controller

port, out, refuse = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

class Capture:
    def __init__(self):
        self.seen = {}
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        key = (tuple(envelope.rcpt_tos), str(msg['subject']))
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] <= refuse:
            return '451 4.3.0 try again later'

        mail = {'to': envelope.rcpt_tos, 'from': envelope.mail_from, 'subject': msg['subject'],
                'text': msg.get_body(('plain',)).get_content(),
                'html': msg.get_body(('html',)).get_content()}
        path = os.path.join(out, uuid.uuid4().hex)
        with open(path + '.tmp', 'w') as f:
            json.dump(mail, f)
        os.rename(path + '.tmp', path + '.json')
        return '250 OK'

Controller(Capture(), hostname='127.0.0.1', port=port).start()
signal.pause()
"#;

pub struct SmtpCapture {
    pub port: u16,
    dir: PathBuf,
    child: Child,
    /// Subjects `mails` leaves out.
    ignored: Vec<&'static str>,
}

/// The subject of the mail every registration sends.
pub const VERIFY_SUBJECT: &str = "Verify your email";

impl SmtpCapture {
    pub fn start() -> Self {
        Self::start_on(free_port(), 0)
    }

    /// On `port`, refusing the first `refuse` messages (451).
    pub fn start_on(port: u16, refuse: usize) -> Self {
        let dir = temp_dir("smtp");
        let child = Command::new("python3")
            .args([
                "-c",
                SERVER,
                &port.to_string(),
                dir.to_str().unwrap(),
                &refuse.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs aiosmtpd (scripts/test installs it)");
        wait_for_port(port, "aiosmtpd");
        Self {
            port,
            dir,
            child,
            ignored: Vec::new(),
        }
    }

    /// Leaves mails with this subject out of `mails` and `wait_for` (e.g. the verification mail
    /// of every registration, in a test about something else).
    pub fn ignoring(mut self, subject: &'static str) -> Self {
        self.ignored.push(subject);
        self
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, but those `ignoring` leaves out.
    pub fn mails(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let mail: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                if !self
                    .ignored
                    .iter()
                    .any(|s| mail["subject"].as_str() == Some(*s))
                {
                    out.push(mail);
                }
            }
        }
        out
    }

    /// Waits (up to `within`) until at least `n` messages have arrived; returns them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let mails = self.mails();
            if mails.len() >= n || start.elapsed() > within {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The token in a reset mail's link.
pub fn reset_token(mail: &Value) -> String {
    let text = mail["text"].as_str().unwrap();
    let start = text.find("token=").expect("a reset link") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
