//! Counters and a latency histogram, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::sync::lock;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    db_latency: Mutex<Histogram>,
    db_errors: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    redis_errors: AtomicU64,
    cache_bypassed: AtomicU64,
    conflict_retries: AtomicU64,
    catalog_bodies_made: AtomicU64,
    cart_line_writes: AtomicU64,
    cart_write_transactions: AtomicU64,
    guest_carts_expired: AtomicU64,
    /// Stripe webhook events by what they did (`paid`, `duplicate`, `mismatch`, ...).
    payment_events: Mutex<BTreeMap<&'static str, u64>>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    method: String,
    route: String,
    status: u16,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (count, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// The `_bucket`, `_sum` and `_count` lines of `name`, with `labels` (`key="value",` each).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (count, bound) in self.counts.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", self.count);
        let labels = match labels.trim_end_matches(',') {
            "" => String::new(),
            labels => format!("{{{labels}}}"),
        };
        let _ = writeln!(out, "{name}_sum{labels} {}", self.sum);
        let _ = writeln!(out, "{name}_count{labels} {}", self.count);
    }
}

/// Values read off the running services when `/metrics` is scraped.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Event streams this instance holds open.
    pub open_streams: usize,
    /// The Redis breaker, when the cache is Redis: true while it turns calls away.
    pub breaker_open: Option<bool>,
}

impl Metrics {
    /// Records one finished request under its route template (never the raw path: ids would explode
    /// the label set).
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = RequestKey {
            method: method.to_string(),
            route: route.to_string(),
            status,
        };
        *lock(&self.requests).entry(key).or_default() += 1;
        lock(&self.latency)
            .entry(route.to_string())
            .or_default()
            .observe(elapsed);
    }

    /// One database call: how long it took, and whether it failed outright.
    pub fn db_query(&self, elapsed: Duration, failed: bool) {
        lock(&self.db_latency).observe(elapsed);
        if failed {
            self.db_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn cache_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn redis_error(&self) {
        self.redis_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cache_bypassed(&self) {
        self.cache_bypassed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn conflict_retry(&self) {
        self.conflict_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A catalog response body was made from the database (a miss, or one put out of date).
    pub fn catalog_body_made(&self) {
        self.catalog_bodies_made.fetch_add(1, Ordering::Relaxed);
    }

    /// One transaction committed `writes` line writes (add, set quantity, remove) of one cart.
    pub fn cart_writes_committed(&self, writes: u64) {
        self.cart_line_writes.fetch_add(writes, Ordering::Relaxed);
        self.cart_write_transactions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn guest_carts_expired(&self, n: u64) {
        self.guest_carts_expired.fetch_add(n, Ordering::Relaxed);
    }

    pub fn payment_event(&self, outcome: &'static str) {
        *lock(&self.payment_events).entry(outcome).or_default() += 1;
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP storefront_build_info The running build.\n# TYPE storefront_build_info gauge\nstorefront_build_info{{version=\"{}\"}} 1",
            crate::VERSION
        );
        out.push_str("# HELP storefront_http_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE storefront_http_requests_total counter\n");
        for (key, count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "storefront_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {count}",
                key.method,
                escape(&key.route),
                key.status
            );
        }
        out.push_str("# HELP storefront_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE storefront_http_request_duration_seconds histogram\n");
        for (route, h) in lock(&self.latency).iter() {
            let labels = format!("route=\"{}\",", escape(route));
            h.render(
                &mut out,
                "storefront_http_request_duration_seconds",
                &labels,
            );
        }
        out.push_str(
            "# HELP storefront_db_query_duration_seconds Time SurrealDB took to answer a query.\n",
        );
        out.push_str("# TYPE storefront_db_query_duration_seconds histogram\n");
        lock(&self.db_latency).render(&mut out, "storefront_db_query_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP storefront_open_event_streams Event streams this instance holds open.\n# TYPE storefront_open_event_streams gauge\nstorefront_open_event_streams {}",
            gauges.open_streams
        );
        if let Some(open) = gauges.breaker_open {
            let _ = writeln!(
                out,
                "# HELP storefront_cache_breaker_open 1 while the Redis breaker turns calls away.\n# TYPE storefront_cache_breaker_open gauge\nstorefront_cache_breaker_open {}",
                u8::from(open)
            );
        }
        for (name, help, counter) in [
            (
                "storefront_cache_hits_total",
                "Cache lookups that found a value.",
                &self.cache_hits,
            ),
            (
                "storefront_cache_misses_total",
                "Cache lookups that found nothing.",
                &self.cache_misses,
            ),
            (
                "storefront_redis_errors_total",
                "Redis calls that failed or timed out.",
                &self.redis_errors,
            ),
            (
                "storefront_cache_bypassed_total",
                "Redis calls not made because the breaker was open (Redis failing).",
                &self.cache_bypassed,
            ),
            (
                "storefront_db_errors_total",
                "SurrealDB calls that failed outright (connection, protocol, timeout).",
                &self.db_errors,
            ),
            (
                "storefront_db_conflict_retries_total",
                "Transactions run again after a write conflict.",
                &self.conflict_retries,
            ),
            (
                "storefront_catalog_bodies_made_total",
                "Catalog response bodies made from the database (not current in the cache).",
                &self.catalog_bodies_made,
            ),
            (
                "storefront_cart_line_writes_total",
                "Cart line writes (add, set quantity, remove) committed.",
                &self.cart_line_writes,
            ),
            (
                "storefront_cart_write_transactions_total",
                "Transactions that committed them: one cart's writes queued together share one.",
                &self.cart_write_transactions,
            ),
            (
                "storefront_guest_carts_expired_total",
                "Guest carts deleted after idling past GUEST_CART_TTL.",
                &self.guest_carts_expired,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP storefront_payment_events_total Stripe webhook events by what they did (mismatch: amount or currency not the order's).\n");
        out.push_str("# TYPE storefront_payment_events_total counter\n");
        for (outcome, count) in lock(&self.payment_events).iter() {
            let _ = writeln!(
                out,
                "storefront_payment_events_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("GET", "/api/v1/users/me", 200, Duration::from_millis(2));
        m.request("GET", "/api/v1/users/me", 200, Duration::from_millis(30));
        m.cache_lookup(true);
        m.db_query(Duration::from_micros(300), false);
        m.db_query(Duration::from_millis(3), true);
        let text = m.render(&Gauges {
            open_streams: 2,
            breaker_open: Some(false),
        });
        assert!(text.contains(
            "storefront_http_requests_total{method=\"GET\",route=\"/api/v1/users/me\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.0025\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("storefront_cache_hits_total 1"));
        assert!(text.contains("storefront_db_query_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("storefront_db_query_duration_seconds_count 2"));
        assert!(text.contains("storefront_db_errors_total 1"));
        assert!(text.contains("storefront_open_event_streams 2"));
        assert!(text.contains("storefront_cache_breaker_open 0"));
    }
}
