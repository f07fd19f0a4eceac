//! The catalog's cached response bodies: pages, products and the whole catalog, each stored as the
//! body that is sent (`cache::Body`).
//!
//! What makes a body out of date is tracked in one stamp table, `catalog:stock` (`cache::Stamps`): a
//! clock, and for each product the clock's value when its stock last changed. A body records the
//! clock from before the store was read for it, and what it shows; it is out of date once something
//! it depends on is stamped past that clock:
//! - **a product it shows**, stamped by an order placed, cancelled or expired: so an order makes again
//!   only the bodies that show what it bought;
//! - **`restock`**, for a listing of only what is in stock, stamped when stock comes back (which can
//!   add a product to it);
//! - **`all`**, for every body, stamped by an admin's write (a product, a variant, an image, a
//!   category), which can change anything;
//! - the whole catalog depends on every stamp.
//!
//! The table is one value (a hash in Redis), lost whole or not at all, and its epoch tells a table made
//! again from the one a body was made under: then every body is out of date. Checking a body costs one
//! call beside reading it, as a version key did. Readers that miss one body at the same clock share
//! one reading of the store (`Making`): right after an order, every reader of the first page misses it
//! at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use tokio::sync::OnceCell;

use super::Catalog;
use crate::cache::{Body, Stamps};
use crate::domain::ProductId;
use crate::error::{Error, Result};
use crate::sync::lock;

/// A cached body lives at most this long even without a write (a safety net, not the mechanism).
const PAGE_TTL: Duration = Duration::from_secs(300);
/// The shape of a cached body, in its key: a body an older build cached (a page of products without
/// their variants, or one not yet stored as the response itself) is never read as one of this
/// build's after an upgrade that keeps the shared cache.
const PAGE_FORMAT: &str = "p3";
const STOCK_STAMPS: &str = "catalog:stock";
const RESTOCK: &str = "restock";
const ALL: &str = "all";

/// Bodies being made, by cache key and stamp clock.
pub(super) type Making = Mutex<HashMap<(String, i64), Arc<OnceCell<Body>>>>;

/// The stock a body shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shows {
    /// These products' (a page, or one product).
    Products(Vec<ProductId>),
    /// These products', in a listing of only what is in stock, which a restock can add to.
    InStockListing(Vec<ProductId>),
    /// Every product's (the whole catalog).
    Everything,
}

/// A cached body with what it depends on. Stored as `[epoch: i64][clock: i64][kind: u8][count: u32]
/// [product ids: i64 each][the body, as `Body::encode`]`, integers little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    epoch: i64,
    clock: i64,
    shows: Shows,
    body: Body,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let (kind, ids): (u8, &[ProductId]) = match &self.shows {
            Shows::Products(ids) => (0, ids),
            Shows::InStockListing(ids) => (1, ids),
            Shows::Everything => (2, &[]),
        };
        let mut out = Vec::with_capacity(21 + ids.len() * 8);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.clock.to_le_bytes());
        out.push(kind);
        out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
        for id in ids {
            out.extend_from_slice(&id.get().to_le_bytes());
        }
        out.extend_from_slice(&self.body.encode());
        out
    }

    /// `None` for a value this code did not write, which the caller treats as a miss.
    fn decode(mut value: Bytes) -> Option<Self> {
        if value.len() < 21 {
            return None;
        }
        let epoch = value.get_i64_le();
        let clock = value.get_i64_le();
        let kind = value.get_u8();
        let count = value.get_u32_le() as usize;
        if value.len() < count.checked_mul(8)? {
            return None;
        }
        let ids: Vec<ProductId> = (0..count)
            .map(|_| ProductId::from_trusted(value.get_i64_le()))
            .collect();
        let shows = match kind {
            0 => Shows::Products(ids),
            1 => Shows::InStockListing(ids),
            2 => Shows::Everything,
            _ => return None,
        };
        Some(Self {
            epoch,
            clock,
            shows,
            body: Body::decode(value)?,
        })
    }

    /// The stamp-table fields this body depends on.
    fn fields(&self) -> Vec<String> {
        let (ids, restock): (&[ProductId], bool) = match &self.shows {
            Shows::Products(ids) => (ids, false),
            Shows::InStockListing(ids) => (ids, true),
            Shows::Everything => return Vec::new(),
        };
        let mut fields: Vec<String> = ids.iter().map(ProductId::to_string).collect();
        if restock {
            fields.push(RESTOCK.to_string());
        }
        fields.push(ALL.to_string());
        fields
    }

    /// Whether nothing it depends on was stamped since it was made; `read` is of `fields()`.
    fn is_current(&self, read: &Stamps) -> bool {
        read.epoch != 0
            && read.epoch == self.epoch
            && match self.shows {
                Shows::Everything => read.clock == self.clock,
                _ => read
                    .stamps
                    .iter()
                    .all(|s| s.is_none_or(|s| s <= self.clock)),
            }
    }
}

impl Catalog {
    /// The body cached at `key` while it is current, or the one `make` makes (then cached). What
    /// `make` reads is read after the stamp clock is, so a body made across a change is never taken
    /// for one made after it.
    pub(super) async fn cached(
        &self,
        key: &str,
        make: impl Future<Output = Result<(Vec<u8>, Shows)>>,
    ) -> Result<Body> {
        if self.unstamped.load(Ordering::Acquire) {
            self.stamp(Vec::new()).await;
        }
        let key = format!("catalog:{PAGE_FORMAT}:{key}");
        let make = async {
            self.cache.metrics().catalog_body_made();
            make.await
        };
        let entry = self.cache.get(&key).await.and_then(Entry::decode);
        let fields = entry.as_ref().map(Entry::fields).unwrap_or_default();
        let read = self.cache.read_stamps(STOCK_STAMPS, &fields).await;
        let read = match (entry, read) {
            (Some(entry), Some(read)) if entry.is_current(&read) => return Ok(entry.body),
            (_, Some(read)) if read.epoch != 0 => read,
            // No table yet (a fresh cache): make it, so the body has a clock to be stamped past.
            (_, Some(_)) => match self.cache.stamp(STOCK_STAMPS, &[]).await {
                Some(read) => read,
                None => return Ok(Body::new(make.await?.0)),
            },
            // The cache does not answer: nothing to share the body through.
            (_, None) => return Ok(Body::new(make.await?.0)),
        };

        let slot = (key, read.clock);
        let cell = lock(&self.making).entry(slot.clone()).or_default().clone();
        let made = cell
            .get_or_try_init(|| async {
                let (bytes, shows) = make.await?;
                let entry = Entry {
                    epoch: read.epoch,
                    clock: read.clock,
                    shows,
                    body: Body::new(bytes),
                };
                self.cache.set(&slot.0, &entry.encode(), PAGE_TTL).await;
                Ok::<_, Error>(entry.body)
            })
            .await
            .cloned();
        let mut making = lock(&self.making);
        if making.get(&slot).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            making.remove(&slot);
        }
        made
    }

    /// Every cached body is out of date, on every instance sharing the cache. Called after an
    /// admin's writes to products, variants, images and categories.
    pub async fn invalidate(&self) {
        self.stamp(vec![ALL.to_string()]).await;
    }

    /// The stock of `products` changed (an order placed, cancelled or expired): only the bodies
    /// showing one of them are made again, and with `restocked` (stock came back) the in-stock
    /// listings too.
    pub async fn stock_changed(&self, products: &[ProductId], restocked: bool) {
        let mut fields: Vec<String> = products.iter().map(ProductId::to_string).collect();
        if restocked {
            fields.push(RESTOCK.to_string());
        }
        self.stamp(fields).await;
    }

    /// Stamps `all` when a change went unstamped (the cache did not answer it), so that instances
    /// sharing the cache stop serving bodies from before it even if this one is asked for nothing;
    /// the server calls it every second.
    pub async fn settle_stamps(&self) {
        if self.unstamped.load(Ordering::Acquire) {
            self.stamp(Vec::new()).await;
        }
    }

    /// Stamps `fields`. A change the cache did not hear of (it did not answer) leaves every body out
    /// of date once it answers again: the next stamp, or the next reading, stamps `all`.
    async fn stamp(&self, mut fields: Vec<String>) {
        if self.unstamped.load(Ordering::Acquire) {
            fields.push(ALL.to_string());
        }
        let stamped = self.cache.stamp(STOCK_STAMPS, &fields).await.is_some();
        self.unstamped.store(!stamped, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(shows: Shows) -> Entry {
        Entry {
            epoch: 7,
            clock: 100,
            shows,
            body: Body::new(b"{\"items\":[]}".to_vec()),
        }
    }

    #[test]
    fn entries_survive_the_cache_and_junk_is_a_miss() {
        let ids = vec![ProductId::from_trusted(3), ProductId::from_trusted(40)];
        for shows in [
            Shows::Products(ids.clone()),
            Shows::InStockListing(ids),
            Shows::Everything,
        ] {
            let e = entry(shows);
            assert_eq!(Entry::decode(Bytes::from(e.encode())), Some(e));
        }
        let mut bad = entry(Shows::Everything).encode();
        bad[16] = 9;
        assert_eq!(Entry::decode(Bytes::from(bad)), None);
        assert_eq!(Entry::decode(Bytes::from_static(b"short")), None);
        let mut overlong = entry(Shows::Products(vec![])).encode();
        overlong[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Entry::decode(Bytes::from(overlong)), None);
    }

    #[test]
    fn a_body_is_current_until_what_it_shows_is_stamped_past_it() {
        let read = |epoch, clock, stamps: Vec<Option<i64>>| Stamps {
            epoch,
            clock,
            stamps,
        };
        let page = entry(Shows::Products(vec![ProductId::from_trusted(1)]));
        assert_eq!(page.fields(), ["1", ALL]);
        assert!(page.is_current(&read(7, 150, vec![None, None])));
        assert!(page.is_current(&read(7, 150, vec![Some(100), Some(90)])));
        assert!(!page.is_current(&read(7, 150, vec![Some(101), None])));
        assert!(!page.is_current(&read(7, 150, vec![None, Some(130)])));
        // A table lost and made again has another epoch: its stamps say nothing of this body.
        assert!(!page.is_current(&read(8, 150, vec![None, None])));
        assert!(!page.is_current(&read(0, 0, vec![None, None])));

        let listing = entry(Shows::InStockListing(vec![ProductId::from_trusted(1)]));
        assert_eq!(listing.fields(), ["1", RESTOCK, ALL]);
        assert!(!listing.is_current(&read(7, 150, vec![None, Some(120), None])));

        let all = entry(Shows::Everything);
        assert!(all.fields().is_empty());
        assert!(all.is_current(&read(7, 100, vec![])));
        assert!(!all.is_current(&read(7, 101, vec![])));
    }
}
