//! Turns: one cart's writes at a time in this instance, and (`StockPolicy::PerVariant`) one
//! stock-moving transaction at a time per variant.
//!
//! Every write to a cart raises its revision, so two writes to one cart always conflict under
//! snapshot isolation: one commits, the other is run again, and under many writers at once (a
//! shopper's double clicks in several tabs, the load tool's `cart-write-hot`) the retries conflict
//! again until they run out and the shopper sees a 409. Queued in process, each write commits at its
//! first try (and a cart's line writes queued behind one turn commit together: `cart_writes`).
//! Instances sharing a server still conflict with each other and rely on the retries.
//!
//! The queue is striped: a key picks one of `STRIPES` mutexes, so memory stays fixed however many
//! carts or variants there are; two keys on one stripe only take turns (each turn is about a
//! millisecond). tokio's mutex is fair, so a write waits for the writes queued before it and no
//! longer.

use std::hash::{BuildHasher as _, Hash};

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub(crate) struct Turns {
    stripes: Box<[Mutex<()>]>,
    /// Keyed per process: nobody outside can choose keys that share a stripe.
    hasher: std::hash::RandomState,
}

impl Turns {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Waits for the turn of every key in `keys` (a merge writes two carts, a checkout takes stock
    /// of several variants). Stripes are taken in one order, so two writers needing the same ones
    /// never wait for each other.
    pub(crate) async fn take<K: Hash>(&self, keys: &[K]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.iter().map(|key| self.stripe_of(key)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut turns = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            turns.push(self.stripes[stripe].lock().await);
        }
        turns
    }

    fn stripe_of<K: Hash>(&self, key: &K) -> usize {
        // The remainder of a division by 256 fits in usize.
        (self.hasher.hash_one(key) % STRIPES as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_carts_writers_take_turns_and_two_cart_writers_never_deadlock() {
        let turns = Arc::new(Turns::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (turns, inside, most) = (turns.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                // Half write the one cart alone, half merge a guest cart into it (both orders).
                let keys: Vec<String> = match i % 4 {
                    0 | 1 => vec!["user-1".into()],
                    2 => vec!["user-1".into(), format!("guest-{i}")],
                    _ => vec![format!("guest-{i}"), "user-1".into()],
                };
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let _turn = turns.take(&keys).await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            for task in tasks {
                task.await.unwrap();
            }
        })
        .await
        .expect("every writer got its turn");
        assert_eq!(
            most.load(Ordering::SeqCst),
            1,
            "user-1 was written by two at once"
        );
    }
}
