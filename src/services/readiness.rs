//! Whether this instance can serve: its database and its cache answer.

use std::time::Duration;

use crate::cache::Cache;
use crate::store::Store;

/// How long a probe waits for SurrealDB.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

pub struct Dependencies {
    store: Store,
    cache: Cache,
}

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub database: bool,
    pub cache: bool,
    /// A shared Redis, rather than the in-process cache.
    pub shared_cache: bool,
    /// The Redis breaker is open: requests skip Redis and are served from the database.
    pub cache_bypassed: bool,
}

impl Dependencies {
    pub fn new(store: Store, cache: Cache) -> Self {
        Self { store, cache }
    }

    /// Asks the database and the cache at once.
    pub async fn probe(&self) -> Probe {
        let (database, cache) = tokio::join!(
            self.store.is_reachable(PROBE_TIMEOUT),
            self.cache.is_reachable()
        );
        Probe {
            database,
            cache,
            shared_cache: self.cache.is_redis(),
            cache_bypassed: self.cache.is_bypassed(),
        }
    }
}
