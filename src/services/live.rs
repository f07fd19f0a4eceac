//! Live updates: order status and product stock changes fanned out to event streams.
//!
//! Each instance runs one live query per table (`store::live`) and hands every change to the streams
//! watching that order or product, through a broadcast channel per watched key. Against a shared
//! SurrealDB server a change made by any instance reaches every instance's streams.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use tokio::sync::broadcast;

use crate::domain::{OrderChange, OrderId, ProductId, StockChange};
use crate::error::{Error, Result};
use crate::store::{Store, StoreError};
use crate::sync::lock;

/// Streams one user (or, for public streams, one client address) may hold open on one instance.
pub const STREAMS_PER_WATCHER: usize = 16;
/// Changes a slow stream may fall behind by before it skips to the newest.
const CHANNEL_DEPTH: usize = 16;

/// Broadcast channels by key, made when the first stream watches a key and dropped with the last.
struct Topics<K, V> {
    senders: Mutex<HashMap<K, broadcast::Sender<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Topics<K, V> {
    fn new() -> Self {
        Self {
            senders: Mutex::new(HashMap::new()),
        }
    }

    fn subscribe(self: &Arc<Self>, key: K) -> Subscription<K, V> {
        let rx = lock(&self.senders)
            .entry(key.clone())
            .or_insert_with(|| broadcast::channel(CHANNEL_DEPTH).0)
            .subscribe();
        Subscription {
            rx,
            key,
            topics: self.clone(),
        }
    }

    fn publish(&self, key: K, value: V) {
        if let Some(tx) = lock(&self.senders).get(&key) {
            let _ = tx.send(value);
        }
    }

    fn keys(&self) -> Vec<K> {
        lock(&self.senders).keys().cloned().collect()
    }
}

/// A stream's end of a topic; the topic goes when its last subscription does.
pub struct Subscription<K: Eq + Hash + Clone, V: Clone> {
    rx: broadcast::Receiver<V>,
    key: K,
    topics: Arc<Topics<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Subscription<K, V> {
    /// The next change; after falling behind, the oldest one still held. `None` once closed.
    pub async fn next(&mut self) -> Option<V> {
        loop {
            match self.rx.recv().await {
                Ok(v) => return Some(v),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for Subscription<K, V> {
    fn drop(&mut self) {
        let mut senders = lock(&self.topics.senders);
        // This subscription still counts as a receiver while it is being dropped.
        if senders
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            senders.remove(&self.key);
        }
    }
}

/// Open streams: per watcher, and in all.
#[derive(Default)]
struct Slots {
    per_watcher: HashMap<String, usize>,
    total: usize,
}

/// A held stream slot of one watcher; released on drop. It also tells the stream when the server
/// shuts down, so open streams end instead of holding the shutdown for its whole grace period.
pub struct Slot {
    watcher: String,
    slots: Arc<Mutex<Slots>>,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = lock(&self.slots);
        slots.total -= 1;
        if let Some(n) = slots.per_watcher.get_mut(&self.watcher) {
            *n -= 1;
            if *n == 0 {
                slots.per_watcher.remove(&self.watcher);
            }
        }
    }
}

pub type OrderSubscription = Subscription<OrderId, OrderChange>;
pub type StockSubscription = Subscription<ProductId, StockChange>;

pub struct LiveUpdates {
    orders: Arc<Topics<OrderId, OrderChange>>,
    stock: Arc<Topics<ProductId, StockChange>>,
    slots: Arc<Mutex<Slots>>,
    /// Streams this instance holds at most (`EVENT_STREAMS_MAX`): each costs memory.
    max_streams: usize,
    closing: tokio::sync::watch::Sender<bool>,
}

impl LiveUpdates {
    pub fn new(max_streams: usize) -> Self {
        Self {
            orders: Arc::new(Topics::new()),
            stock: Arc::new(Topics::new()),
            slots: Arc::default(),
            max_streams,
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// Streams held open now.
    pub fn open_streams(&self) -> usize {
        lock(&self.slots).total
    }

    /// Ends every open stream (the server is shutting down) and refuses new ones.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Takes one of `watcher`'s stream slots: 429 when all of the watcher's are in use, 503 when the
    /// instance holds as many streams as it may.
    pub fn slot(&self, watcher: String) -> Result<Slot> {
        if *self.closing.borrow() {
            return Err(Error::Unavailable("shutting down".into()));
        }
        let mut slots = lock(&self.slots);
        if slots.total >= self.max_streams {
            return Err(Error::Unavailable(
                "this instance holds as many event streams as it may".into(),
            ));
        }
        let n = slots.per_watcher.entry(watcher.clone()).or_default();
        if *n >= STREAMS_PER_WATCHER {
            return Err(Error::RateLimited {
                retry_after: Duration::from_secs(5),
            });
        }
        *n += 1;
        slots.total += 1;
        Ok(Slot {
            watcher,
            slots: self.slots.clone(),
            closing: self.closing.subscribe(),
        })
    }

    pub fn watch_order(&self, order_id: OrderId) -> OrderSubscription {
        self.orders.subscribe(order_id)
    }

    pub fn watch_stock(&self, product_id: ProductId) -> StockSubscription {
        self.stock.subscribe(product_id)
    }

    /// Follows the database's changes for as long as the server runs, reopening the live queries
    /// after an error (a restarted server, a dropped connection). Changes made while they were down
    /// are not replayed; a stream always starts with the current state, so a reconnect catches up.
    pub async fn run(self: Arc<Self>, store: Store) {
        loop {
            if let Err(e) = self.follow(&store).await {
                tracing::warn!(error = %e, "live queries failed; reopening in a second");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Opens the live queries, then catches every watched key up with its current state (what
    /// changed while they were down reaches the streams now; streams skip what they already sent),
    /// then forwards changes until the queries fail.
    async fn follow(&self, store: &Store) -> Result<()> {
        let live = store.live_connection().await?;
        let mut orders = live.order_changes().await?.boxed();
        let mut stock = live.stock_changes().await?.boxed();
        for order in store.order_states(&self.orders.keys()).await? {
            self.orders.publish(order.order_id, order);
        }
        for product in store.stock_states(&self.stock.keys()).await? {
            self.stock.publish(product.product_id, product);
        }
        loop {
            tokio::select! {
                change = orders.next() => match change {
                    Some(Ok(Some(order))) => self.orders.publish(order.order_id, order),
                    Some(Ok(None)) => {}
                    Some(Err(e)) => skip_or_fail(e)?,
                    None => return Err(Error::Unavailable("order live query ended".into())),
                },
                change = stock.next() => match change {
                    Some(Ok(Some(product))) => {
                        self.stock.publish(product.product_id, product)
                    }
                    Some(Ok(None)) => {}
                    Some(Err(e)) => skip_or_fail(e)?,
                    None => return Err(Error::Unavailable("stock live query ended".into())),
                },
            }
        }
    }
}

/// A change the store could not decode (a status this version does not know) is logged and not sent
/// as anything else; any other error ends the live queries, which are then reopened.
fn skip_or_fail(error: StoreError) -> Result<()> {
    match error {
        StoreError::UnknownOutcome(what) => {
            tracing::error!(%what, "live change not sent");
            Ok(())
        }
        other => Err(other.into()),
    }
}

/// A stream of states: `current` (the state when the stream opened) unless `client_has_it` (a resumed
/// stream whose `Last-Event-ID` names it), then the state after each change (`apply` of the last
/// state and the change) that differs from the last one. `still_wanted` is asked every few seconds;
/// the stream ends when it says no (the session was signed out) or the subscription closes.
#[allow(clippy::too_many_arguments)]
pub fn states<K, U, V, F, Fut>(
    current: V,
    client_has_it: bool,
    subscription: Subscription<K, U>,
    slot: Slot,
    apply: fn(&V, U) -> V,
    same: fn(&V, &V) -> bool,
    still_wanted: F,
) -> impl Stream<Item = V> + Send + 'static
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    struct State<K: Eq + Hash + Clone, U: Clone, V: Clone, F> {
        first: Option<V>,
        last: V,
        subscription: Subscription<K, U>,
        check: tokio::time::Interval,
        still_wanted: F,
        slot: Slot,
    }
    let mut check = tokio::time::interval(Duration::from_secs(5));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        first: (!client_has_it).then(|| current.clone()),
        last: current,
        subscription,
        check,
        still_wanted,
        slot,
    };
    futures_util::stream::unfold(state, move |mut s| async move {
        if let Some(v) = s.first.take() {
            return Some((v, s));
        }
        loop {
            let closing = *s.slot.closing.borrow();
            if closing {
                return None;
            }
            tokio::select! {
                next = s.subscription.next() => {
                    let v = apply(&s.last, next?);
                    if same(&s.last, &v) {
                        continue;
                    }
                    s.last = v.clone();
                    return Some((v, s));
                }
                _ = s.check.tick() => {
                    if !(s.still_wanted)().await {
                        return None;
                    }
                }
                changed = s.slot.closing.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    })
}
