//! Carts: one per user or guest, read from the cache, never stale after the owner's own write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Principal;
use crate::cache::{Cache, Revisioned};
use crate::domain::{
    CartOwner, GuestCartId, MAX_QUANTITY, ProductId, Quantity, STORE_CURRENCY, UserId, VariantId,
};
use crate::error::{Error, Result};
use crate::services::catalog::{Pick, choose_variant};
use crate::store::Store;
use crate::store::carts::{AddOutcome, CartLineRow, CartSnapshot, GuestMerge};
use crate::sync::lock;

/// A cached cart may lag product price and stock changes by at most this; the owner's own writes
/// replace it at once.
const CART_TTL: Duration = Duration::from_secs(5);

/// A view read from the database is cached only if it reaches the cache within this of the read's
/// start (later, only a tombstone of its revision is). An entry keeps views of older revisions out
/// only while it lives (`CART_TTL`); a view written within this of its read cannot find a newer entry
/// already expired (see `Carts`).
const FILL_DEADLINE: Duration = Duration::from_secs(1);
/// Owners marked unsettled before the expired marks are swept out.
const MAX_UNSETTLED: usize = 10_000;

/// Why a line may not check out as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LineWarning {
    Archived,
    OutOfStock,
    InsufficientStock,
    /// The unit price is not the one the line was added at. Checkout charges the current price.
    PriceChanged,
}

impl LineWarning {
    pub fn as_str(self) -> &'static str {
        match self {
            LineWarning::Archived => "archived",
            LineWarning::OutOfStock => "out_of_stock",
            LineWarning::InsufficientStock => "insufficient_stock",
            LineWarning::PriceChanged => "price_changed",
        }
    }

    /// Whether checkout refuses a cart with this line as it stands.
    pub fn blocks_checkout(self) -> bool {
        !matches!(self, LineWarning::PriceChanged)
    }

    fn message(self, line: &CartLine) -> String {
        match self {
            LineWarning::Archived => format!("{} is no longer sold", line.name),
            LineWarning::OutOfStock => format!("{} is out of stock", line.name),
            LineWarning::InsufficientStock => format!(
                "only {} of {} left; the cart holds {}",
                line.stock, line.name, line.quantity
            ),
            LineWarning::PriceChanged => format!(
                "the price of {} changed from {} to {} since it was added",
                line.name,
                shown(line.price_when_added.unwrap_or(line.unit_price)),
                shown(line.unit_price)
            ),
        }
    }
}

/// Minor units as a person reads them: `GBP 12.50`.
fn shown(minor: i64) -> String {
    format!(
        "{STORE_CURRENCY} {}.{:02}",
        minor / 100,
        (minor % 100).abs()
    )
}

/// What an issue is about: the whole cart being empty, or one line's warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    EmptyCart,
    Line(LineWarning),
}

/// Something checkout would refuse or the buyer should know before paying.
#[derive(Debug, Clone)]
pub struct CartIssue {
    /// None for an issue of the whole cart (it is empty).
    pub product_id: Option<ProductId>,
    /// The line's variant (its id); none for an issue of the whole cart.
    pub variant_id: Option<VariantId>,
    pub kind: IssueKind,
    pub blocking: bool,
    pub message: String,
}

/// The cart as it stands now, read past every cache, and what checkout would make of it.
#[derive(Debug, Clone)]
pub struct CartCheck {
    pub cart: Cart,
    pub issues: Vec<CartIssue>,
}

impl CartCheck {
    fn of(cart: Cart) -> Self {
        let mut issues = Vec::new();
        if cart.lines.is_empty() {
            issues.push(CartIssue {
                product_id: None,
                variant_id: None,
                kind: IssueKind::EmptyCart,
                blocking: true,
                message: "the cart is empty".into(),
            });
        }
        for line in &cart.lines {
            for warning in &line.warnings {
                issues.push(CartIssue {
                    product_id: Some(line.product_id),
                    variant_id: Some(line.variant_id),
                    kind: IssueKind::Line(*warning),
                    blocking: warning.blocks_checkout(),
                    message: warning.message(line),
                });
            }
        }
        Self { cart, issues }
    }

    /// True when checkout would accept the cart as it stands.
    pub fn ok(&self) -> bool {
        !self.issues.iter().any(|i| i.blocking)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CartLine {
    pub product_id: ProductId,
    /// The line's id: a cart holds one line per variant.
    pub variant_id: VariantId,
    pub name: String,
    pub sku: String,
    /// The variant's option values by option name, in the options' order.
    #[serde(default)]
    pub options: Vec<(String, String)>,
    pub image_url: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
    /// Units in stock now.
    pub stock: i64,
    /// The unit price when the line was last added to, if known.
    #[serde(default)]
    pub price_when_added: Option<i64>,
    pub warnings: Vec<LineWarning>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    pub subtotal: i64,
    pub currency: String,
    pub item_count: i64,
}

impl Cart {
    fn from_rows(rows: Vec<CartLineRow>) -> Self {
        let lines: Vec<CartLine> = rows
            .into_iter()
            .map(|row| {
                let mut warnings = Vec::new();
                if row.archived {
                    warnings.push(LineWarning::Archived);
                } else if row.stock == 0 {
                    warnings.push(LineWarning::OutOfStock);
                } else if row.stock < row.quantity {
                    warnings.push(LineWarning::InsufficientStock);
                }
                if row.price_when_added.is_some_and(|then| then != row.price) {
                    warnings.push(LineWarning::PriceChanged);
                }
                CartLine {
                    product_id: row.product_id,
                    variant_id: row.variant_id,
                    name: row.name,
                    sku: row.sku,
                    options: row.options,
                    image_url: row.image_url,
                    unit_price: row.price,
                    quantity: row.quantity,
                    line_total: row.price * row.quantity,
                    stock: row.stock,
                    price_when_added: row.price_when_added,
                    warnings,
                }
            })
            .collect();
        Cart {
            subtotal: lines.iter().map(|l| l.line_total).sum(),
            item_count: lines.iter().map(|l| l.quantity).sum(),
            currency: STORE_CURRENCY.to_string(),
            lines,
        }
    }
}

impl From<&Principal> for CartOwner {
    fn from(principal: &Principal) -> Self {
        CartOwner::User(principal.user_id().clone())
    }
}

/// What an add names: a variant, a product (and which of its variants to take), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemRef {
    Variant(VariantId),
    Product(ProductId, Pick),
    /// A variant that must be the product's.
    VariantOf(ProductId, VariantId),
}

/// How a guest cart joins an account's cart at sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Quantities of the same product add up, capped by stock and the per-line limit.
    Merge,
    /// The guest cart replaces the account's cart.
    Replace,
}

/// A guest line that could not join the account's cart whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappedLine {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    /// Units the merged line would have held.
    pub requested: i64,
    /// Units it holds.
    pub kept: i64,
    pub reason: CapReason,
}

/// Why a guest line did not join the account's cart whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapReason {
    /// Not enough left in stock.
    Stock,
    /// The per-line limit (999 units).
    LineLimit,
    /// The product is no longer sold.
    Archived,
}

/// What a sign-in did with a guest cart.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    pub mode: MergeMode,
    /// Guest lines taken into the account's cart.
    pub lines: usize,
    pub capped: Vec<CappedLine>,
}

/// The carts, with each owner's view cached under `cart_view:{key}` at the revision it was read at.
///
/// Why a read never shows less than the owner's acknowledged writes (issue 15, item 6): every change
/// to a cart's lines raises the cart's revision in its own transaction, so revisions order the
/// changes as they committed, and the view a write returns is exactly the cart at its revision. After
/// committing at revision R, a write stores its view (or, for clear, checkout and merge, a tombstone)
/// with `Cache::set_if_newer`, which never lowers an entry's revision. So from the moment the write is
/// acknowledged the entry is at R or newer: a view of R or later, which includes the write, or a
/// tombstone, which sends the read to the database. An entry that expires stops guarding, so a view
/// is written only within `FILL_DEADLINE` (well under `CART_TTL`) of its read's start, else a
/// tombstone: any newer entry was written after that start, and lives past the deadline. If the
/// cache call itself fails (Redis unreachable, or slower than its timeout), the entry may stay older
/// than the write: this instance then reads that owner's cart from the database (`unsettled`) until
/// an entry at the write's revision or newer reaches the cache, or the older entry has expired.
/// Another instance sharing the cache can still be served that older entry until it expires.
pub struct Carts {
    store: Store,
    cache: Cache,
    guest_ttl: Duration,
    /// Cache keys whose last store failed, with the revision it was for and until when the entry
    /// it could not replace may live.
    unsettled: Mutex<HashMap<String, (i64, Instant)>>,
}

fn cache_key(owner: &CartOwner) -> String {
    format!("cart_view:{}", owner.key())
}

impl Carts {
    pub fn new(store: Store, cache: Cache, guest_ttl: Duration) -> Self {
        Self {
            store,
            cache,
            guest_ttl,
            unsettled: Mutex::default(),
        }
    }

    /// Starts a guest cart; its token is made by the caller (`SessionService::cart_token`).
    pub async fn new_guest(&self) -> Result<CartOwner> {
        let id = GuestCartId::generate();
        self.store
            .touch_guest_cart(&id, self.guest_expiry())
            .await?;
        Ok(CartOwner::Guest(id))
    }

    pub async fn cart(&self, owner: &CartOwner) -> Result<Cart> {
        // A tombstone (no value) is a miss: the state at its revision is read from the database.
        if self.settled(owner)
            && let Some(Revisioned {
                value: Some(bytes), ..
            }) = self.cache.get_revisioned(&cache_key(owner)).await
            && let Ok(cart) = serde_json::from_slice::<Cart>(&bytes)
        {
            return Ok(cart);
        }
        let started = Instant::now();
        let snapshot = self.store.cart_lines(owner).await?;
        Ok(self.remember(owner, started, snapshot).await)
    }

    /// Makes the cart view of `snapshot` and caches it at the snapshot's revision, unless the cache
    /// holds a newer one. A view too late for the cache (its read started `FILL_DEADLINE` ago or
    /// more) is cached as a tombstone of its revision, which still keeps older views out.
    async fn remember(&self, owner: &CartOwner, started: Instant, snapshot: CartSnapshot) -> Cart {
        let cart = Cart::from_rows(snapshot.lines);
        let view = (started.elapsed() < FILL_DEADLINE)
            .then(|| serde_json::to_vec(&cart).ok())
            .flatten();
        self.store_entry(owner, snapshot.revision, view.as_deref())
            .await;
        cart
    }

    /// `Cache::set_if_newer` for the owner's entry, keeping `unsettled` up to date: a failed store
    /// marks the owner until the older entry it left may have expired (`CART_TTL`, after a fill
    /// that started before the write and ended up to `FILL_DEADLINE` later); a store at the marked
    /// revision or newer clears the mark.
    async fn store_entry(&self, owner: &CartOwner, revision: i64, view: Option<&[u8]>) {
        let key = cache_key(owner);
        let stored = self
            .cache
            .set_if_newer(&key, revision, view, CART_TTL)
            .await;
        let mut unsettled = lock(&self.unsettled);
        if stored {
            if unsettled
                .get(&key)
                .is_some_and(|(marked, _)| revision >= *marked)
            {
                unsettled.remove(&key);
            }
            return;
        }
        let now = Instant::now();
        if unsettled.len() >= MAX_UNSETTLED {
            unsettled.retain(|_, (_, until)| *until > now);
        }
        let mark = unsettled.entry(key).or_insert((revision, now));
        *mark = (mark.0.max(revision), now + CART_TTL + FILL_DEADLINE);
    }

    /// False while the owner's last cache store failed: the cached entry may be older than a write.
    fn settled(&self, owner: &CartOwner) -> bool {
        let key = cache_key(owner);
        let mut unsettled = lock(&self.unsettled);
        match unsettled.get(&key) {
            Some((_, until)) if *until > Instant::now() => false,
            Some(_) => {
                unsettled.remove(&key);
                true
            }
            None => true,
        }
    }

    /// What checkout would refuse now (stock, archived products) and prices changed since the lines
    /// were added, from the database rather than the cache. Changes nothing.
    pub async fn check(&self, owner: &CartOwner) -> Result<CartCheck> {
        let cart = Cart::from_rows(self.store.cart_lines(owner).await?.lines);
        Ok(CartCheck::of(cart))
    }

    /// Adds a variant (`choose_variant` finds the one a request naming a product means); a variant
    /// already in the cart gets its quantity raised.
    #[tracing::instrument(skip_all, fields(cart = owner.key()))]
    pub async fn add(&self, owner: &CartOwner, item: ItemRef, quantity: Quantity) -> Result<Cart> {
        let variant_id = match item {
            ItemRef::Variant(id) => id,
            ItemRef::Product(product, pick) => choose_variant(&self.store, product, pick).await?,
            ItemRef::VariantOf(product, id) => {
                let live = self.store.live_variants(product).await?;
                if !live.iter().any(|(v, _)| *v == id) {
                    return Err(Error::NotFound("variant"));
                }
                id
            }
        };
        let started = Instant::now();
        let outcome = self
            .store
            .add_to_cart(
                owner,
                self.expiry_of(owner),
                variant_id,
                quantity.get(),
                MAX_QUANTITY,
            )
            .await?;
        match outcome {
            AddOutcome::Added(snapshot) => Ok(self.remember(owner, started, snapshot).await),
            AddOutcome::NoProduct => Err(Error::NotFound(match item {
                ItemRef::Product(..) => "product",
                _ => "variant",
            })),
            AddOutcome::TooMany => Err(Quantity::line_limit_exceeded().into()),
        }
    }

    pub async fn set_quantity(
        &self,
        owner: &CartOwner,
        line: VariantId,
        quantity: Quantity,
    ) -> Result<Cart> {
        let started = Instant::now();
        let snapshot = self
            .store
            .set_cart_quantity(owner, self.expiry_of(owner), line, quantity.get())
            .await?
            .ok_or(Error::NotFound("cart line"))?;
        Ok(self.remember(owner, started, snapshot).await)
    }

    pub async fn remove(&self, owner: &CartOwner, line: VariantId) -> Result<Cart> {
        let started = Instant::now();
        let snapshot = self
            .store
            .remove_cart_line(owner, self.expiry_of(owner), line)
            .await?
            .ok_or(Error::NotFound("cart line"))?;
        Ok(self.remember(owner, started, snapshot).await)
    }

    pub async fn clear(&self, owner: &CartOwner) -> Result<()> {
        let revision = self.store.clear_cart(owner).await?;
        self.emptied(owner, revision).await;
        if let CartOwner::Guest(id) = owner {
            // A guest cart's idle clock starts again.
            self.store.touch_guest_cart(id, self.guest_expiry()).await?;
        }
        Ok(())
    }

    /// Moves a guest cart into `user_id`'s cart and deletes it, in one transaction (see
    /// `Store::merge_cart`): a guest cart already taken by a concurrent sign-in merges nothing again.
    /// Lines of archived products are dropped; quantities are capped by stock and the per-line limit
    /// (each cap reported).
    pub async fn merge_guest(
        &self,
        guest: &GuestCartId,
        user: &UserId,
        mode: MergeMode,
    ) -> Result<MergeOutcome> {
        let merged = self
            .store
            .merge_cart(guest, user, mode == MergeMode::Replace, MAX_QUANTITY)
            .await?;
        let GuestMerge::Merged {
            revision,
            guest_revision,
            lines,
        } = merged
        else {
            return Ok(MergeOutcome {
                mode,
                lines: 0,
                capped: Vec::new(),
            });
        };
        self.emptied(&CartOwner::Guest(guest.clone()), guest_revision)
            .await;
        self.emptied(&CartOwner::User(user.clone()), revision).await;
        let mut capped = Vec::new();
        for line in &lines {
            if let Some(reason) = &line.reason {
                capped.push(CappedLine {
                    product_id: ProductId::from_trusted(line.product_id),
                    variant_id: VariantId::from_trusted(line.variant_id),
                    requested: line.requested,
                    kept: line.kept,
                    reason: cap_reason(reason)?,
                });
            }
        }
        Ok(MergeOutcome {
            mode,
            lines: lines.iter().filter(|l| l.kept > l.current).count(),
            capped,
        })
    }

    /// Deletes guest carts idle past their time; returns how many.
    pub async fn sweep_expired_guests(&self) -> Result<usize> {
        Ok(self.store.delete_expired_guest_carts().await?)
    }

    /// How often expired guest carts are swept: a quarter of their idle time, between 1 s and 10 min.
    pub fn sweep_interval(&self) -> Duration {
        (self.guest_ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }

    /// After a write that leaves no view to cache (clear, checkout, merge) at `revision`: a
    /// tombstone of that revision, so no older view is served or filled after it.
    pub async fn emptied(&self, owner: &CartOwner, revision: i64) {
        self.store_entry(owner, revision, None).await;
    }

    fn guest_expiry(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.guest_ttl
    }

    fn expiry_of(&self, owner: &CartOwner) -> Option<chrono::DateTime<chrono::Utc>> {
        owner.is_guest().then(|| self.guest_expiry())
    }
}

/// A cap's reason as `Store::merge_cart` names it.
fn cap_reason(reason: &str) -> Result<CapReason> {
    match reason {
        "stock" => Ok(CapReason::Stock),
        "line_limit" => Ok(CapReason::LineLimit),
        "archived" => Ok(CapReason::Archived),
        other => Err(Error::Internal(anyhow::anyhow!(
            "unknown merge cap reason `{other}`"
        ))),
    }
}
