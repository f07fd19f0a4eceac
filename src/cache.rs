//! The cache: Redis when `REDIS_URL` is set, otherwise a map in this process.
//!
//! A cache is only a cache. Every Redis call is bounded by a short timeout; when Redis is slow or down the
//! call reports a miss (or does nothing), a rate-limited warning is logged, and callers go to SurrealDB.
//! After a few consecutive failures a breaker (`breaker`) stops making calls for a short cool-down, so
//! requests do not each wait out the timeout while Redis is down; one call at a time then probes it.
//! The connection manager reconnects by itself, so the cache is used again once Redis is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::ConnectionManager;

use crate::metrics::Metrics;
use crate::sync::lock;
use crate::tls::{self, CaFile};

mod body;
mod breaker;

pub use self::body::Body;
use self::breaker::{Admit, Breaker};

/// Bound on every Redis call: past it the request goes on without the cache.
const REDIS_CALL_TIMEOUT: Duration = Duration::from_millis(150);
/// At most one "Redis is failing" warning per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// The in-process map is cleared of expired entries when it grows past this many entries, or past
/// this many bytes of values (cached pages are tens of KB each: a crawler asking for many distinct
/// searches must not grow the process past a small machine's memory).
const LOCAL_MAX_ENTRIES: usize = 100_000;
const LOCAL_MAX_BYTES: usize = 32 << 20;

/// An entry of a revisioned key (see `Cache::set_if_newer`): the value cached at `revision`, or a
/// tombstone (`value: None`) saying the state at `revision` has no cached value and must be read
/// from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revisioned {
    pub revision: i64,
    pub value: Option<Vec<u8>>,
}

/// Whether an entry of `revision` (a value when `is_value`) replaces `current`: a newer revision
/// always does; at the same revision a value replaces a tombstone (a read of exactly that state);
/// nothing else does. `SET_IF_NEWER` is the same rule in Lua.
fn replaces(current: Option<(i64, bool)>, revision: i64, is_value: bool) -> bool {
    match current {
        None => true,
        Some((held, held_value)) => {
            held < revision || (held == revision && is_value && !held_value)
        }
    }
}

/// `replaces` and the write as one atomic step in Redis. The entry is a hash (`revision`, and
/// `value` unless it is a tombstone). KEYS[1]: the key; ARGV: revision, TTL in ms, then the value
/// (absent for a tombstone). Revisions stay below 2^53, so Lua's numbers hold them exactly.
static SET_IF_NEWER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local revision = tonumber(ARGV[1])
        local is_value = #ARGV >= 3
        local held = tonumber(redis.call('HGET', KEYS[1], 'revision'))
        if held and (held > revision or (held == revision
                and (not is_value or redis.call('HEXISTS', KEYS[1], 'value') == 1))) then
            return 0
        end
        redis.call('DEL', KEYS[1])
        if is_value then
            redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'value', ARGV[3])
        else
            redis.call('HSET', KEYS[1], 'revision', ARGV[1])
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        ",
    )
});

/// A stamp table (`Cache::stamp`, `Cache::read_stamps`): a clock, and for each field the clock's
/// value when the field was last stamped. What was made at clock `c` is out of date once one of the
/// fields it depends on is stamped past `c`. The table is one value (a hash in Redis), so it is
/// lost whole or not at all; its epoch (the moment it was made) tells a table lost and made again
/// from the one a thing was made under, whose stamps are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamps {
    /// 0: the table does not exist.
    pub epoch: i64,
    pub clock: i64,
    pub stamps: Vec<Option<i64>>,
}

impl Stamps {
    /// From Redis' `[epoch, clock, field...]`; a table without epoch or clock reads as absent.
    fn from_values(values: Vec<Option<i64>>, fields: usize) -> Option<Self> {
        if values.len() != fields + 2 {
            return None;
        }
        let (epoch, clock) = match (values[0], values[1]) {
            (Some(epoch), Some(clock)) => (epoch, clock),
            _ => (0, 0),
        };
        Some(Self {
            epoch,
            clock,
            stamps: if epoch == 0 {
                vec![None; fields]
            } else {
                values[2..].to_vec()
            },
        })
    }
}

const STAMP_EPOCH: &str = "~epoch";
const STAMP_CLOCK: &str = "~clock";

/// `Cache::stamp` in Redis. KEYS[1]: the table; ARGV[1]: the epoch of a new table (microseconds
/// since the Unix epoch), then the fields. Returns `[epoch, clock, stamp of each field]`.
static STAMP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        redis.call('HSETNX', KEYS[1], '~epoch', ARGV[1])
        redis.call('HSETNX', KEYS[1], '~clock', ARGV[1])
        local clock = redis.call('HINCRBY', KEYS[1], '~clock', 1)
        local out = { tonumber(redis.call('HGET', KEYS[1], '~epoch')), clock }
        for i = 2, #ARGV do
            redis.call('HSET', KEYS[1], ARGV[i], clock)
            out[#out + 1] = clock
        end
        return out
        ",
    )
});

#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    prefix: String,
    redis: Option<ConnectionManager>,
    /// The whole cache without Redis, and the fallback for counters when Redis fails.
    local: LocalMap,
    metrics: Arc<Metrics>,
    last_warning_ms: AtomicU64,
    started: Instant,
    breaker: Breaker,
}

impl Cache {
    /// A Redis-backed cache. Connects lazily: a Redis that is down at start is picked up when it comes.
    /// A `rediss://` URL is verified against the system's CA certificates plus `ca`'s.
    pub fn redis(
        url: &str,
        ca: Option<&CaFile>,
        prefix: String,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let client = if url.starts_with("rediss://") {
            tls::install_crypto_provider();
            match ca {
                // Without an extra CA the crate loads the system's roots itself.
                None => redis::Client::open(url),
                Some(ca) => redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(tls::anchors_pem(Some(ca))?),
                    },
                ),
            }
        } else {
            redis::Client::open(url)
        }
        .map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(REDIS_CALL_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self::build(Some(manager), prefix, metrics))
    }

    /// The in-process cache, for a single instance.
    pub fn local(prefix: String, metrics: Arc<Metrics>) -> Self {
        Self::build(None, prefix, metrics)
    }

    fn build(redis: Option<ConnectionManager>, prefix: String, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                prefix,
                redis,
                local: LocalMap::default(),
                metrics,
                last_warning_ms: AtomicU64::new(0),
                started: Instant::now(),
                breaker: Breaker::default(),
            }),
        }
    }

    /// Milliseconds since the cache was made: the clock of the breaker and the warnings.
    fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    /// The counters this cache reports to, for what its users count about what they cache.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn is_redis(&self) -> bool {
        self.inner.redis.is_some()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// The value at `key`: shared, not copied, when it is held in this process.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let key = self.key(key);
        let value = match &self.inner.redis {
            None => self.inner.local.get(&key),
            Some(redis) => {
                let mut conn = redis.clone();
                self.bounded(
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async::<Option<Vec<u8>>>(&mut conn),
                )
                .await
                .flatten()
                .map(Bytes::from)
            }
        };
        self.inner.metrics.cache_lookup(value.is_some());
        value
    }

    /// Stores `value` for `ttl`, replacing what was there.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        self.store(key, value, ttl, false).await;
    }

    /// Stores `value` for `ttl` only if the key is absent, so a slow reader cannot overwrite a newer
    /// write (e.g. a revocation) with what it read before it.
    pub async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) {
        self.store(key, value, ttl, true).await;
    }

    async fn store(&self, key: &str, value: &[u8], ttl: Duration, only_if_absent: bool) {
        let key = self.key(key);
        match &self.inner.redis {
            None => self
                .inner
                .local
                .set(key, Bytes::copy_from_slice(value), ttl, only_if_absent),
            Some(redis) => {
                let mut conn = redis.clone();
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(value).arg("PX").arg(ttl_millis(ttl));
                if only_if_absent {
                    cmd.arg("NX");
                }
                self.bounded(cmd.query_async::<Option<String>>(&mut conn))
                    .await;
            }
        }
    }

    pub async fn delete(&self, key: &str) {
        let key = self.key(key);
        match &self.inner.redis {
            None => self.inner.local.remove(&key),
            Some(redis) => {
                let mut conn = redis.clone();
                self.bounded(redis::cmd("DEL").arg(&key).query_async::<i64>(&mut conn))
                    .await;
            }
        }
    }

    /// The stamp table `table`: its epoch and clock, and the stamps of `fields` (`None`: never
    /// stamped). A table that does not exist reads with epoch 0. `None` when the cache did not
    /// answer.
    pub async fn read_stamps(&self, table: &str, fields: &[String]) -> Option<Stamps> {
        let key = self.key(table);
        match &self.inner.redis {
            None => Some(self.inner.local.read_stamps(&key, fields)),
            Some(redis) => {
                let mut conn = redis.clone();
                let values = self
                    .bounded(
                        redis::cmd("HMGET")
                            .arg(&key)
                            .arg(STAMP_EPOCH)
                            .arg(STAMP_CLOCK)
                            .arg(fields)
                            .query_async::<Vec<Option<i64>>>(&mut conn),
                    )
                    .await?;
                Stamps::from_values(values, fields.len())
            }
        }
    }

    /// Moves the clock of stamp table `table` on and stamps each of `fields` with its new value,
    /// atomically; a table that does not exist is made, with a fresh epoch. Returns the table as it
    /// is then (`stamps` are the fields' new stamps). `None` when the cache did not answer.
    pub async fn stamp(&self, table: &str, fields: &[String]) -> Option<Stamps> {
        let key = self.key(table);
        let fresh = chrono::Utc::now().timestamp_micros();
        match &self.inner.redis {
            None => Some(self.inner.local.stamp(key, fields, fresh)),
            Some(redis) => {
                let mut conn = redis.clone();
                let mut call = STAMP.key(&key);
                call.arg(fresh).arg(fields);
                let values = self
                    .bounded(call.invoke_async::<Vec<Option<i64>>>(&mut conn))
                    .await?;
                Stamps::from_values(values, fields.len())
            }
        }
    }

    /// The entry of a revisioned key (written only by `set_if_newer`).
    pub async fn get_revisioned(&self, key: &str) -> Option<Revisioned> {
        let key = self.key(key);
        let entry = match &self.inner.redis {
            None => self.inner.local.get_revisioned(&key),
            Some(redis) => {
                let mut conn = redis.clone();
                self.bounded(
                    redis::cmd("HMGET")
                        .arg(&key)
                        .arg("revision")
                        .arg("value")
                        .query_async::<(Option<i64>, Option<Vec<u8>>)>(&mut conn),
                )
                .await
                .and_then(|(revision, value)| {
                    Some(Revisioned {
                        revision: revision?,
                        value,
                    })
                })
            }
        };
        self.inner
            .metrics
            .cache_lookup(entry.as_ref().is_some_and(|e| e.value.is_some()));
        entry
    }

    /// Stores `value` (or, with `None`, a tombstone) at `revision` for `ttl`, atomically and only
    /// if the key holds nothing, an older revision, or a tombstone of the same revision: writers
    /// that finish out of order leave the newest state, and a tombstone keeps an older value out.
    /// False when the cache did not answer (Redis unreachable or too slow): the entry may then be
    /// older than `revision`.
    pub async fn set_if_newer(
        &self,
        key: &str,
        revision: i64,
        value: Option<&[u8]>,
        ttl: Duration,
    ) -> bool {
        let key = self.key(key);
        match &self.inner.redis {
            None => {
                self.inner.local.set_if_newer(key, revision, value, ttl);
                true
            }
            Some(redis) => {
                let mut conn = redis.clone();
                let mut call = SET_IF_NEWER.key(&key);
                call.arg(revision).arg(ttl_millis(ttl));
                if let Some(value) = value {
                    call.arg(value);
                }
                self.bounded(call.invoke_async::<i64>(&mut conn))
                    .await
                    .is_some()
            }
        }
    }

    /// Counts one hit in a fixed window of `window` starting at the key's first hit. Returns the count so
    /// far and the time left in the window. Falls back to this process's counters when Redis fails, so a
    /// limit still holds (per instance) while Redis is down.
    pub async fn hit(&self, key: &str, window: Duration) -> (u64, Duration) {
        let key = self.key(key);
        if let Some(redis) = &self.inner.redis {
            let mut conn = redis.clone();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("INCR")
                .arg(&key)
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(ttl_millis(window))
                .arg("NX")
                .ignore()
                .cmd("PTTL")
                .arg(&key);
            if let Some((count, pttl)) = self
                .bounded(pipe.query_async::<(u64, i64)>(&mut conn))
                .await
            {
                let left = u64::try_from(pttl)
                    .map(Duration::from_millis)
                    .unwrap_or(window);
                return (count, left);
            }
        }
        self.inner.local.hit(key, window)
    }

    /// Takes back one hit that `hit` counted (it turned out not to be what the limit is about). A
    /// window that has ended stays ended: an absent counter is not recreated (a bare `DECR` would
    /// make one without expiry).
    pub async fn unhit(&self, key: &str) {
        let key = self.key(key);
        if let Some(redis) = &self.inner.redis {
            let mut conn = redis.clone();
            let script = redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
                 return 0",
            );
            let invocation = script.key(&key);
            if self
                .bounded(invocation.invoke_async::<i64>(&mut conn))
                .await
                .is_some()
            {
                return;
            }
        }
        self.inner.local.unhit(&key);
    }

    /// Ends the window of a `hit` counter: its next hit counts from one.
    pub async fn reset(&self, key: &str) {
        let key = self.key(key);
        if let Some(redis) = &self.inner.redis {
            let mut conn = redis.clone();
            self.bounded(redis::cmd("DEL").arg(&key).query_async::<i64>(&mut conn))
                .await;
        }
        // Also the fallback counter, which holds the hits counted while Redis was failing.
        self.inner.local.reset(&key);
    }

    /// True when the cache answers (always, for the in-process one).
    pub async fn is_reachable(&self) -> bool {
        match &self.inner.redis {
            None => true,
            Some(redis) => {
                let mut conn = redis.clone();
                self.bounded(redis::cmd("PING").query_async::<String>(&mut conn))
                    .await
                    .is_some()
            }
        }
    }

    /// Whether the breaker has turned Redis calls away (consecutive failures; see `breaker`).
    pub fn is_bypassed(&self) -> bool {
        self.inner.redis.is_some() && self.inner.breaker.is_open()
    }

    /// Runs one Redis call under the timeout, unless the breaker is open; a failure is counted,
    /// warned about (rate-limited) and turned into `None`, as is a call the breaker turned away.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let admitted = self.inner.breaker.admit(self.now_ms());
        if admitted == Admit::Skip {
            self.inner.metrics.cache_bypassed();
            return None;
        }
        let failure = match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => {
                self.inner.breaker.succeeded(admitted);
                return Some(value);
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} ms", REDIS_CALL_TIMEOUT.as_millis()),
        };
        self.inner.metrics.redis_error();
        let now_ms = self.now_ms();
        self.inner.breaker.failed(admitted, now_ms);
        let last = self.inner.last_warning_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= WARN_INTERVAL.as_millis() as u64;
        if due
            && self
                .inner
                .last_warning_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %failure, "Redis call failed; serving from SurrealDB until it is back");
        }
        None
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A small expiring map guarded by a mutex; entries are short and the lock is never held across an await.
#[derive(Default)]
struct LocalMap {
    entries: Mutex<Entries>,
    /// Stamp tables (`Cache::stamp`): apart from the entries, so that making room never drops one.
    stamps: Mutex<HashMap<String, StampTable>>,
    revisioned: Mutex<HashMap<String, (Revisioned, Instant)>>,
    counters: Mutex<HashMap<String, (u64, Instant)>>,
}

/// A stamp table in this process.
struct StampTable {
    epoch: i64,
    clock: i64,
    fields: HashMap<String, i64>,
}

impl StampTable {
    fn read(&self, fields: &[String]) -> Stamps {
        Stamps {
            epoch: self.epoch,
            clock: self.clock,
            stamps: fields.iter().map(|f| self.fields.get(f).copied()).collect(),
        }
    }
}

/// The plain entries of `LocalMap`, with the bytes their values hold.
#[derive(Default)]
struct Entries {
    map: HashMap<String, (Bytes, Instant)>,
    bytes: usize,
}

impl Entries {
    fn insert(&mut self, key: String, value: Bytes, expires: Instant) {
        self.bytes += value.len();
        if let Some((old, _)) = self.map.insert(key, (value, expires)) {
            self.bytes -= old.len();
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some((old, _)) = self.map.remove(key) {
            self.bytes -= old.len();
        }
    }

    /// Makes room for `incoming` bytes: expired entries go first, then everything if that is not
    /// enough (a cache may forget; it may not grow without bound).
    fn make_room(&mut self, incoming: usize, now: Instant) {
        let full =
            |e: &Self| e.map.len() >= LOCAL_MAX_ENTRIES || e.bytes + incoming > LOCAL_MAX_BYTES;
        if !full(self) {
            return;
        }
        self.map.retain(|_, (_, expires)| *expires > now);
        self.bytes = self.map.values().map(|(v, _)| v.len()).sum();
        if full(self) {
            self.map.clear();
            self.bytes = 0;
        }
    }
}

impl LocalMap {
    fn get(&self, key: &str) -> Option<Bytes> {
        let entries = lock(&self.entries);
        entries
            .map
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone())
    }

    fn set(&self, key: String, value: Bytes, ttl: Duration, only_if_absent: bool) {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        if only_if_absent
            && entries
                .map
                .get(&key)
                .is_some_and(|(_, expires)| *expires > now)
        {
            return;
        }
        entries.make_room(value.len(), now);
        entries.insert(key, value, now + ttl);
    }

    fn read_stamps(&self, key: &str, fields: &[String]) -> Stamps {
        let tables = lock(&self.stamps);
        match tables.get(key) {
            None => Stamps {
                epoch: 0,
                clock: 0,
                stamps: vec![None; fields.len()],
            },
            Some(table) => table.read(fields),
        }
    }

    fn stamp(&self, key: String, fields: &[String], fresh: i64) -> Stamps {
        let mut tables = lock(&self.stamps);
        let table = tables.entry(key).or_insert_with(|| StampTable {
            epoch: fresh,
            clock: fresh,
            fields: HashMap::new(),
        });
        table.clock += 1;
        for field in fields {
            table.fields.insert(field.clone(), table.clock);
        }
        table.read(fields)
    }

    fn get_revisioned(&self, key: &str) -> Option<Revisioned> {
        let entries = lock(&self.revisioned);
        entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(entry, _)| entry.clone())
    }

    /// `Cache::set_if_newer`: the check and the write under one lock.
    fn set_if_newer(&self, key: String, revision: i64, value: Option<&[u8]>, ttl: Duration) {
        let now = Instant::now();
        let mut entries = lock(&self.revisioned);
        if entries.len() >= LOCAL_MAX_ENTRIES {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        let held = entries
            .get(&key)
            .filter(|(_, expires)| *expires > now)
            .map(|(entry, _)| (entry.revision, entry.value.is_some()));
        if replaces(held, revision, value.is_some()) {
            let entry = Revisioned {
                revision,
                value: value.map(<[u8]>::to_vec),
            };
            entries.insert(key, (entry, now + ttl));
        }
    }

    fn remove(&self, key: &str) {
        lock(&self.entries).remove(key);
    }

    fn hit(&self, key: String, window: Duration) -> (u64, Duration) {
        let now = Instant::now();
        let mut counters = lock(&self.counters);
        if counters.len() >= LOCAL_MAX_ENTRIES {
            counters.retain(|_, (_, ends)| *ends > now);
        }
        let entry = counters.entry(key).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        (entry.0, entry.1 - now)
    }

    fn unhit(&self, key: &str) {
        let now = Instant::now();
        let mut counters = lock(&self.counters);
        if let Some(entry) = counters.get_mut(key).filter(|(_, ends)| *ends > now) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    fn reset(&self, key: &str) {
        lock(&self.counters).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_cache_expires_and_respects_absent_only_writes() {
        let cache = Cache::local("t:".into(), Arc::new(Metrics::default()));
        cache.set("a", b"1", Duration::from_millis(30)).await;
        cache.set_if_absent("a", b"2", Duration::from_secs(5)).await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&b"1"[..]));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("a").await, None);
        cache.set_if_absent("a", b"3", Duration::from_secs(5)).await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&b"3"[..]));
        cache.delete("a").await;
        assert_eq!(cache.get("a").await, None);
    }

    /// Writes arriving in any order leave the newest revision; a tombstone keeps older values out
    /// and gives way to a value of its own revision.
    async fn keeps_the_newest_revision(cache: Cache) {
        let ttl = Duration::from_secs(5);
        let entry = |revision, value: Option<&[u8]>| Revisioned {
            revision,
            value: value.map(<[u8]>::to_vec),
        };
        assert_eq!(cache.get_revisioned("c").await, None);
        cache.set_if_newer("c", 2, Some(b"two"), ttl).await;
        cache.set_if_newer("c", 1, Some(b"one"), ttl).await;
        assert_eq!(
            cache.get_revisioned("c").await,
            Some(entry(2, Some(b"two")))
        );
        cache.set_if_newer("c", 2, Some(b"again"), ttl).await;
        assert_eq!(
            cache.get_revisioned("c").await,
            Some(entry(2, Some(b"two")))
        );
        cache.set_if_newer("c", 3, None, ttl).await;
        cache.set_if_newer("c", 2, Some(b"two"), ttl).await;
        assert_eq!(cache.get_revisioned("c").await, Some(entry(3, None)));
        cache.set_if_newer("c", 3, Some(b"three"), ttl).await;
        cache.set_if_newer("c", 3, None, ttl).await;
        assert_eq!(
            cache.get_revisioned("c").await,
            Some(entry(3, Some(b"three")))
        );
        // Revisions are microsecond clock readings: beyond 2^32, exact below 2^53.
        let now = 1_796_160_187_660_561;
        cache.set_if_newer("c", now + 1, Some(b"later"), ttl).await;
        cache.set_if_newer("c", now, Some(b"earlier"), ttl).await;
        assert_eq!(
            cache.get_revisioned("c").await,
            Some(entry(now + 1, Some(b"later")))
        );
        cache
            .set_if_newer("d", 1, Some(b"short"), Duration::from_millis(20))
            .await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get_revisioned("d").await, None);
    }

    #[tokio::test]
    async fn local_revisioned_entries_keep_the_newest_revision() {
        keeps_the_newest_revision(Cache::local("t:".into(), Arc::new(Metrics::default()))).await;
    }

    #[tokio::test]
    async fn redis_revisioned_entries_keep_the_newest_revision() {
        // The test run's Redis, as the integration tests reach it (tests/it/common).
        let url = std::env::var("STOREFRONT_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
        let cache = Cache::redis(&url, None, prefix, Arc::new(Metrics::default())).unwrap();
        assert!(
            cache.is_reachable().await,
            "the test Redis at {url} answers"
        );
        keeps_the_newest_revision(cache).await;
    }

    #[tokio::test]
    async fn local_counters_count_within_a_window() {
        let cache = Cache::local("t:".into(), Arc::new(Metrics::default()));
        assert_eq!(cache.hit("k", Duration::from_secs(60)).await.0, 1);
        let (count, left) = cache.hit("k", Duration::from_secs(60)).await;
        assert_eq!(count, 2);
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(58));
    }

    #[tokio::test]
    async fn local_counters_take_back_hits_and_reset() {
        let cache = Cache::local("t:".into(), Arc::new(Metrics::default()));
        let window = Duration::from_secs(60);
        cache.hit("k", window).await;
        cache.hit("k", window).await;
        cache.unhit("k").await;
        assert_eq!(cache.hit("k", window).await.0, 2);
        cache.reset("k").await;
        assert_eq!(cache.hit("k", window).await.0, 1);
        // Taking back a hit of a counter that does not exist leaves it absent.
        cache.unhit("none").await;
        assert_eq!(cache.hit("none", window).await.0, 1);
    }

    /// A stamp table's clock moves on with every stamp and the fields stamped carry it; a table
    /// deleted and made again has another epoch.
    async fn stamps_move_on_and_a_new_table_has_a_new_epoch(cache: Cache) {
        let fields = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let none = cache.read_stamps("s", &fields(&["a"])).await.unwrap();
        assert_eq!((none.epoch, none.stamps.as_slice()), (0, &[None][..]));
        let made = cache.stamp("s", &[]).await.unwrap();
        assert!(made.epoch > 0 && made.clock == made.epoch + 1);
        let a = cache.stamp("s", &fields(&["a", "b"])).await.unwrap();
        assert_eq!(a.clock, made.clock + 1);
        assert_eq!(a.stamps, [Some(a.clock), Some(a.clock)]);
        cache.stamp("s", &fields(&["b"])).await.unwrap();
        let read = cache
            .read_stamps("s", &fields(&["a", "b", "c"]))
            .await
            .unwrap();
        assert_eq!(read.epoch, made.epoch);
        assert_eq!(read.clock, a.clock + 1);
        assert_eq!(read.stamps, [Some(a.clock), Some(a.clock + 1), None]);
        // A table lost (here: deleted) is made again with another epoch.
        tokio::time::sleep(Duration::from_millis(2)).await;
        cache.delete("s").await;
        lock(&cache.inner.local.stamps).clear();
        let again = cache.stamp("s", &[]).await.unwrap();
        assert!(again.epoch > made.epoch);
    }

    #[tokio::test]
    async fn local_stamps_move_on() {
        stamps_move_on_and_a_new_table_has_a_new_epoch(Cache::local(
            "t:".into(),
            Arc::new(Metrics::default()),
        ))
        .await;
    }

    #[tokio::test]
    async fn redis_stamps_move_on() {
        let url = std::env::var("STOREFRONT_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
        let cache = Cache::redis(&url, None, prefix, Arc::new(Metrics::default())).unwrap();
        stamps_move_on_and_a_new_table_has_a_new_epoch(cache).await;
    }

    /// The in-process map never holds more than its byte budget: past it, expired entries go, then
    /// everything.
    #[tokio::test]
    async fn the_local_map_stays_within_its_byte_budget() {
        let cache = Cache::local("t:".into(), Arc::new(Metrics::default()));
        let page = vec![7u8; 1 << 20];
        for i in 0..(LOCAL_MAX_BYTES >> 20) * 3 {
            cache
                .set(&format!("page{i}"), &page, Duration::from_secs(60))
                .await;
            assert!(lock(&cache.inner.local.entries).bytes <= LOCAL_MAX_BYTES);
        }
        let last = format!("page{}", (LOCAL_MAX_BYTES >> 20) * 3 - 1);
        assert_eq!(cache.get(&last).await.map(|v| v.len()), Some(page.len()));
    }
}
