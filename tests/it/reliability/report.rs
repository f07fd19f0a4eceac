//! One line per finding: on stderr, and appended to `$STOREFRONT_REPORT` when set (`scripts/test`
//! prints that file at the end of the run, so the figures are visible without `--nocapture`).

use std::io::Write as _;

pub fn report(test: &str, line: impl std::fmt::Display) {
    // The second pass of scripts/test runs the suite again over a SurrealDB server.
    let over = match std::env::var("STOREFRONT_TEST_SURREAL_URL") {
        Ok(_) => " over ws://",
        Err(_) => "",
    };
    let line = format!("[{test}{over}] {line}\n");
    eprint!("{line}");
    if let Ok(path) = std::env::var("STOREFRONT_REPORT") {
        // O_APPEND writes of one short line do not interleave between concurrent tests.
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// Counts responses by status, for "no 5xx" promises and for the report.
#[derive(Default, Debug, Clone)]
pub struct Statuses(pub std::collections::BTreeMap<u16, u64>);

impl Statuses {
    pub fn add(&mut self, status: reqwest::StatusCode) {
        *self.0.entry(status.as_u16()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Statuses) {
        for (status, n) in &other.0 {
            *self.0.entry(*status).or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn server_errors(&self) -> u64 {
        self.0
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
}

impl std::fmt::Display for Statuses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        write!(f, "{}", parts.join(" "))
    }
}
