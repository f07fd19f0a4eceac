//! `cart` and `cart_line`: one cart per user or guest (`cart:⟨key⟩`), one line per variant
//! (`cart_line:[key, variant]`). The key is the user's id, or a guest cart's `guest_…` id. (Lines
//! made before variants existed are keyed by their product's number, which is its default variant's.)

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use crate::domain::{CartOwner, GuestCartId, ProductId, UserId, VariantId};

use super::products::OptionRow;

use super::{Store, StoreError};

/// A cart line joined with its variant and product as they are now.
#[derive(Debug, Clone)]
pub struct CartLineRow {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub name: String,
    pub sku: String,
    /// The variant's option values by option name, in the options' order.
    pub options: Vec<(String, String)>,
    pub image_url: String,
    /// The variant's price, or the product's when it has none.
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    /// The variant or its product is withdrawn.
    pub archived: bool,
    pub quantity: i64,
    /// The unit price when the line was last added to (none for lines older than that record).
    pub price_when_added: Option<i64>,
}

/// A cart's lines as of one revision of it, read in one transaction.
#[derive(Debug, Clone)]
pub struct CartSnapshot {
    /// The cart's revision (0 for a cart never written): raised by every change to its lines, in
    /// the transaction of the change, so snapshots of one cart are ordered by it.
    pub revision: i64,
    pub lines: Vec<CartLineRow>,
}

/// A line as `select_lines!` reads it: the product and the variant fetched once each, as objects.
#[derive(Debug, SurrealValue)]
pub(super) struct LineRow {
    product_id: i64,
    variant_id: i64,
    quantity: i64,
    price_when_added: Option<i64>,
    added_at: DateTime<Utc>,
    product: LineProduct,
    variant: LineVariant,
}

#[derive(Debug, SurrealValue)]
struct LineProduct {
    name: String,
    image_url: String,
    price: i64,
    currency: String,
    archived: bool,
    options: Option<Vec<OptionRow>>,
}

#[derive(Debug, SurrealValue)]
struct LineVariant {
    sku: String,
    option_values: Vec<String>,
    price: Option<i64>,
    stock: i64,
    archived: bool,
}

impl From<LineRow> for CartLineRow {
    fn from(row: LineRow) -> Self {
        let (p, v) = (row.product, row.variant);
        Self {
            product_id: ProductId::from_trusted(row.product_id),
            variant_id: VariantId::from_trusted(row.variant_id),
            name: p.name,
            sku: v.sku,
            options: p
                .options
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.name)
                .zip(v.option_values)
                .collect(),
            image_url: p.image_url,
            price: v.price.unwrap_or(p.price),
            currency: p.currency,
            stock: v.stock,
            archived: p.archived || v.archived,
            quantity: row.quantity,
            price_when_added: row.price_when_added,
        }
    }
}

/// Oldest line first (ties by variant id: lines added in one transaction share a time).
pub(super) fn rows(mut lines: Vec<LineRow>) -> Vec<CartLineRow> {
    lines.sort_by_key(|l| (l.added_at, l.variant_id));
    lines.into_iter().map(CartLineRow::from).collect()
}

/// The lines of the cart keyed `$user`, read as the range of line keys `[$user, …]`: a range scan
/// costs half what the `cart` index with an `ORDER BY` did (0.48 against 0.93 ms for 3 lines, release,
/// in-memory). Lines come in variant order; `rows` puts them oldest first. The product and the
/// variant are destructured from their links in one idiom each, so each is fetched once per line
/// (each `product.field` of its own would fetch the record again).
macro_rules! select_lines {
    () => {
        concat!(
            "(SELECT record::id(product) AS product_id, record::id(variant) AS variant_id, quantity,
                price_when_added, added_at,
                product.{name, image_url, price, currency, archived, options} AS product,
                variant.{sku, option_values, price, stock, archived} AS variant
            FROM ",
            cart_lines_of!("$user"),
            ")"
        )
    };
}

pub(crate) use select_lines;

/// The revision a change to the cart record in the variable `$cart` commits with: one past its last revision, or the
/// database's clock in microseconds when that is larger. A cart deleted (merged, swept, its account
/// deleted) and made again so starts above every revision it had, and no cached view of it from before
/// can pass for newer. Microseconds stay below 2^53 (the cache's Lua compares them as doubles) until
/// the year 2255.
macro_rules! next_revision {
    ($cart:literal) => {
        concat!(
            "math::max([(",
            $cart,
            ".revision ?? 0) + 1, time::micros(time::now())])"
        )
    };
}
pub(crate) use next_revision;

/// Every line of the cart keyed by the variable `$key`, as a range of line keys `[$key, …]` (NONE
/// sorts before every variant id and `..` after).
macro_rules! cart_lines_of {
    ($key:literal) => {
        concat!("cart_line:[", $key, ", NONE]..[", $key, ", ..]")
    };
}
pub(crate) use cart_lines_of;

/// What merging a guest cart did to one of its lines, decided in the merge's transaction.
#[derive(Debug, Clone, SurrealValue)]
pub struct MergedLine {
    pub product_id: i64,
    pub variant_id: i64,
    /// Units of the variant in the account's cart before (0 when replacing it).
    pub current: i64,
    /// Units the merged line would have held: `current` plus the guest's.
    pub requested: i64,
    /// Units it holds: `requested` capped by stock and the line limit, never below `current`.
    pub kept: i64,
    /// Why `kept` is not `requested`: `stock`, `line_limit` or `archived`.
    pub reason: Option<String>,
    added_at: DateTime<Utc>,
}

/// What merging a guest cart into an account's cart did.
#[derive(Debug)]
pub enum GuestMerge {
    /// The guest cart was gone (another sign-in merged it, or it was swept): nothing changed.
    Consumed,
    Merged {
        /// The account cart's new revision.
        revision: i64,
        /// The revision the guest cart ended at (it is deleted).
        guest_revision: i64,
        /// The guest's lines, oldest first.
        lines: Vec<MergedLine>,
    },
}

#[derive(Debug, SurrealValue)]
struct MergeResult {
    outcome: String,
    revision: Option<i64>,
    guest_revision: Option<i64>,
    lines: Option<Vec<MergedLine>>,
}

/// What adding to a cart did; a write that changed the cart carries its lines as they now are, read
/// in the same transaction.
#[derive(Debug)]
pub enum AddOutcome {
    Added(CartSnapshot),
    /// The variant does not exist or is archived, or its product is.
    NoProduct,
    /// The line would hold more than the most a line may hold.
    TooMany,
}

#[derive(Debug, SurrealValue)]
struct Snapshot {
    revision: i64,
    lines: Vec<LineRow>,
}

impl From<Snapshot> for CartSnapshot {
    fn from(s: Snapshot) -> Self {
        Self {
            revision: s.revision,
            lines: rows(s.lines),
        }
    }
}

impl Store {
    /// The cart's lines and the revision they are at; an expired guest cart has none.
    pub async fn cart_lines(&self, cart: &CartOwner) -> Result<CartSnapshot, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "{
                    LET $cart = type::record('cart', $user);
                    LET $revision = $cart.revision ?? 0;
                    LET $expires = $cart.expires_at;
                    IF $expires != NONE AND $expires <= time::now() {
                        RETURN { revision: $revision, lines: [] }
                    };
                    RETURN { revision: $revision, lines: ",
                select_lines!(),
                " };
                 }"
            ))
            .bind(("user", cart.key().to_string()))
            .await?;
        let snapshot: Option<Snapshot> = response.take(0)?;
        snapshot.map(CartSnapshot::from).ok_or_else(|| {
            StoreError::Database(surrealdb::Error::internal(
                "cart read returned nothing".into(),
            ))
        })
    }

    /// The variants in the user's cart.
    pub(crate) async fn cart_variants(&self, user: &UserId) -> Result<Vec<i64>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "SELECT VALUE record::id(variant) FROM ",
                cart_lines_of!("$user")
            ))
            .bind(("user", user.to_string()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Empties the cart; returns the revision it is empty at.
    pub async fn clear_cart(&self, cart: &CartOwner) -> Result<i64, StoreError> {
        self.with_cart_turn(&[cart.key()], || async {
            let mut response = self
                .db()
                .query(concat!(
                    "{
                        LET $cart = type::record('cart', $user);
                        LET $revision = ",
                    next_revision!("$cart"),
                    ";
                        DELETE ",
                    cart_lines_of!("$user"),
                    ";
                        -- No cart record, no lines: nothing to order against, so none is made.
                        UPDATE $cart SET revision = $revision;
                        RETURN $revision;
                     }"
                ))
                .bind(("user", cart.key().to_string()))
                .await?;
            let revision: Option<i64> = response.take(0)?;
            Ok(revision.unwrap_or_default())
        })
        .await
    }

    /// Creates or moves on a guest cart's idle deadline.
    pub async fn touch_guest_cart(
        &self,
        guest: &GuestCartId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db()
            .query("UPSERT type::record('cart', $id) SET expires_at = $expires")
            .bind(("id", guest.to_string()))
            .bind(("expires", expires_at))
            .await?
            .check()?;
        Ok(())
    }

    /// Moves the guest cart's lines into `user_id`'s cart and deletes the guest cart, in one
    /// transaction that reads both carts as they are at its commit: quantities of one product add up
    /// (the account's own line first emptied when `replace`), capped by stock and `max_line`, never
    /// below what the account's line held; lines of archived products are not taken. Two sign-ins
    /// merging one guest cart at once both delete it, so one fails at commit, is run again and finds
    /// it gone (`Consumed`): its lines are merged once. A concurrent write to the account's cart
    /// conflicts on its revision the same way, and is not overwritten.
    pub async fn merge_cart(
        &self,
        guest: &GuestCartId,
        user: &UserId,
        replace: bool,
        max_line: i64,
    ) -> Result<GuestMerge, StoreError> {
        let result: Option<MergeResult> = self
            .with_cart_turn(&[guest.as_str(), user.as_str()], || async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                            LET $guest_cart = type::record('cart', $guest);
                            IF !record::exists($guest_cart) { RETURN { outcome: 'consumed' } };
                            LET $expires = $guest_cart.expires_at;
                            LET $expired = $expires != NONE AND $expires <= time::now();
                            LET $taken = IF $expired { [] } ELSE { (
                                SELECT record::id(product) AS product_id, record::id(variant) AS variant_id,
                                    quantity, added_at,
                                    price_when_added ?? variant.price ?? product.price AS price_when_added,
                                    {
                                        stock: variant.stock,
                                        archived: variant.archived OR product.archived
                                    } AS p,
                                    (IF $replace { 0 } ELSE {
                                        type::record('cart_line', [$user, record::id(variant)]).quantity ?? 0
                                    }) AS current
                                FROM ", cart_lines_of!("$guest"), "
                            ) };
                            LET $limited = (SELECT product_id, variant_id, added_at, price_when_added, current,
                                    current + quantity AS requested, p.archived AS archived,
                                    p.stock AS stock, math::min([p.stock, $max_line]) AS limit
                                FROM $taken);
                            -- The account's own line never shrinks.
                            LET $lines = (SELECT product_id, variant_id, added_at, price_when_added, current, requested,
                                    (IF archived { current } ELSE IF requested > limit { math::max([limit, current]) }
                                        ELSE { requested }) AS kept,
                                    (IF archived { 'archived' } ELSE IF requested <= limit { NONE }
                                        ELSE IF stock < $max_line { 'stock' } ELSE { 'line_limit' }) AS reason
                                FROM $limited);
                            LET $cart = type::record('cart', $user);
                            IF $replace { DELETE ", cart_lines_of!("$user"), " };
                            LET $revision = ", next_revision!("$cart"), ";
                            UPSERT $cart SET user = type::record('user', $user), revision = $revision;
                            FOR $l IN $lines {
                                IF $l.kept > $l.current {
                                    UPSERT type::record('cart_line', [$user, $l.variant_id])
                                        SET cart = $cart, product = type::record('product', $l.product_id),
                                            variant = type::record('variant', $l.variant_id),
                                            quantity = $l.kept, price_when_added = $l.price_when_added;
                                };
                            };
                            LET $guest_revision = ", next_revision!("$guest_cart"), ";
                            DELETE ", cart_lines_of!("$guest"), ";
                            DELETE $guest_cart;
                            RETURN { outcome: 'merged', revision: $revision, guest_revision: $guest_revision,
                                lines: (SELECT product_id, variant_id, added_at, current, requested, kept, reason
                                    FROM $lines) };
                         }"
                    ))
                    .bind(("user", user.to_string()))
                    .bind(("guest", guest.to_string()))
                    .bind(("replace", replace))
                    .bind(("max_line", max_line))
                    .await?;
                Ok(response.take::<Option<MergeResult>>(0)?)
            })
            .await?;
        match result {
            Some(MergeResult {
                outcome,
                revision: Some(revision),
                guest_revision: Some(guest_revision),
                lines: Some(mut lines),
            }) if outcome == "merged" => {
                lines.sort_by_key(|l| (l.added_at, l.variant_id));
                Ok(GuestMerge::Merged {
                    revision,
                    guest_revision,
                    lines,
                })
            }
            Some(MergeResult { outcome, .. }) if outcome == "consumed" => Ok(GuestMerge::Consumed),
            other => Err(StoreError::UnknownOutcome(format!("merge: {other:?}"))),
        }
    }

    /// Deletes guest carts (and their lines) idle past their deadline; returns how many.
    pub async fn delete_expired_guest_carts(&self) -> Result<usize, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "{
                    LET $gone = (SELECT VALUE id FROM cart
                                 WHERE expires_at != NONE AND expires_at < time::now());
                    FOR $cart IN $gone {
                        LET $key = record::id($cart);
                        DELETE ",
                cart_lines_of!("$key"),
                ";
                    };
                    DELETE $gone;
                    RETURN array::len($gone);
                 }"
            ))
            .await?;
        let gone: Option<i64> = response.take(0)?;
        Ok(gone.unwrap_or(0).try_into().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::{AddOutcome, GuestMerge};
    use crate::domain::{CartOwner, GuestCartId, UserId, VariantId};
    use crate::store::{Store, migrate};

    /// The cart key of every record `sql` selects, straight from storage.
    async fn keys(store: &Store, sql: &str) -> Vec<String> {
        store.db().query(sql).await.unwrap().take(0).unwrap()
    }

    async fn line_keys(store: &Store) -> Vec<String> {
        keys(
            store,
            "SELECT VALUE record::id(id)[0] FROM cart_line ORDER BY id",
        )
        .await
    }

    async fn cart_keys(store: &Store) -> Vec<String> {
        keys(store, "SELECT VALUE record::id(id) FROM cart ORDER BY id").await
    }

    fn user(id: &str) -> CartOwner {
        CartOwner::User(UserId::from_trusted(id))
    }

    fn guest(id: &str) -> CartOwner {
        CartOwner::Guest(GuestCartId::from_trusted(id))
    }

    fn p(id: i64) -> VariantId {
        VariantId::from_trusted(id)
    }

    async fn memory_store(database: &str) -> Store {
        let store = Store::in_memory("carts", database).await;
        migrate(&store).await.unwrap();
        store
    }

    /// Every change to a cart's lines raises its revision, and a cart deleted and made again starts
    /// above the revision it was deleted at: the cache orders views by it.
    #[tokio::test]
    async fn every_change_to_a_carts_lines_raises_its_revision() {
        let store = memory_store("revisions").await;
        store
            .db()
            .query("CREATE product:1 SET name = 'a', price = 1; CREATE variant:1 SET product = product:1, sku = 'v1', stock = 5; CREATE product:2 SET name = 'b', price = 1; CREATE variant:2 SET product = product:2, sku = 'v2', stock = 5;")
            .await
            .unwrap()
            .check()
            .unwrap();
        let mut seen = vec![store.cart_lines(&user("user1")).await.unwrap().revision];
        let added = |outcome| match outcome {
            AddOutcome::Added(snapshot) => snapshot,
            other => panic!("not added: {other:?}"),
        };
        let snapshot = added(
            store
                .add_to_cart(&user("user1"), None, p(1), 1, 999)
                .await
                .unwrap(),
        );
        seen.push(snapshot.revision);
        let snapshot = added(
            store
                .add_to_cart(&user("user1"), None, p(2), 1, 999)
                .await
                .unwrap(),
        );
        assert_eq!(
            store.cart_lines(&user("user1")).await.unwrap().revision,
            snapshot.revision
        );
        seen.push(snapshot.revision);
        let set = store
            .set_cart_quantity(&user("user1"), None, p(1), 3)
            .await
            .unwrap()
            .unwrap();
        seen.push(set.revision);
        let removed = store
            .remove_cart_line(&user("user1"), None, p(2))
            .await
            .unwrap()
            .unwrap();
        seen.push(removed.revision);
        seen.push(store.clear_cart(&user("user1")).await.unwrap());
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

        let expiry = Some(Utc::now() + Duration::hours(1));
        store
            .add_to_cart(&guest("guest_a"), expiry, p(1), 2, 999)
            .await
            .unwrap();
        let GuestMerge::Merged {
            guest_revision,
            revision,
            ..
        } = store
            .merge_cart(
                &GuestCartId::from_trusted("guest_a"),
                &UserId::from_trusted("user1"),
                false,
                999,
            )
            .await
            .unwrap()
        else {
            panic!("the guest cart was there to merge");
        };
        assert!(revision > *seen.last().unwrap());
        let again = added(
            store
                .add_to_cart(&guest("guest_a"), expiry, p(1), 1, 999)
                .await
                .unwrap(),
        );
        assert!(
            again.revision > guest_revision,
            "{} <= {guest_revision}",
            again.revision
        );
    }

    /// Writes queued on one cart while its turn is held commit in one transaction, each answered
    /// with its own outcome: an add sees its line in the cart it gets back, a refused write changes
    /// nothing and fails nobody else, a writer whose request is dropped still has its write made, and
    /// another cart's writes at the same time stay in that cart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_carts_queued_writes_commit_together_each_with_its_own_outcome() {
        let store = memory_store("batched").await;
        let mut setup = String::new();
        for i in 1..=40 {
            setup.push_str(&format!(
                "CREATE product:{i} SET name = 'p{i}', price = 100; \
                 CREATE variant:{i} SET product = product:{i}, sku = 'v{i}', stock = 5;"
            ));
        }
        store.db().query(setup).await.unwrap().check().unwrap();
        let turn = store.cart_turns.take(&["hot"]).await;
        let mut writers = Vec::new();
        for i in 1..=40 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                store.add_to_cart(&user("hot"), None, p(i), 1, 999).await
            }));
        }
        for (variant, quantity) in [(999, 1), (1, 1000)] {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                store
                    .add_to_cart(&user("hot"), None, p(variant), quantity, 999)
                    .await
            }));
        }
        // Another customer's writes meanwhile: some may share the hot cart's stripe of turns, none
        // may land in its batch.
        let mut others = Vec::new();
        for i in 1..=5 {
            let store = store.clone();
            others.push(tokio::spawn(async move {
                store.add_to_cart(&user("other"), None, p(i), 2, 999).await
            }));
        }
        while store.cart_queue.len("hot") < 42 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // Its client hangs up: the write is made all the same.
        writers.remove(39).abort();
        drop(turn);
        let mut outcomes = Vec::new();
        for writer in writers {
            outcomes.push(writer.await.unwrap().unwrap());
        }
        for (i, outcome) in outcomes[..39].iter().enumerate() {
            let AddOutcome::Added(snapshot) = outcome else {
                panic!("add {} was not made: {outcome:?}", i + 1);
            };
            assert!(
                snapshot
                    .lines
                    .iter()
                    .any(|l| l.variant_id.get() == i as i64 + 1 && l.quantity == 1)
            );
        }
        assert!(
            matches!(outcomes[39], AddOutcome::NoProduct),
            "{:?}",
            outcomes[39]
        );
        assert!(
            matches!(outcomes[40], AddOutcome::TooMany),
            "{:?}",
            outcomes[40]
        );
        let cart = store.cart_lines(&user("hot")).await.unwrap();
        assert_eq!(cart.lines.len(), 40);
        for other in others {
            other.await.unwrap().unwrap();
        }
        let other = store.cart_lines(&user("other")).await.unwrap();
        assert_eq!(other.lines.len(), 5);
        assert!(other.lines.iter().all(|l| l.quantity == 2));
        assert!(cart.lines.iter().all(|l| l.quantity == 1));
        let metrics = store.metrics.render(&Default::default());
        let counter = |name: &str| -> u64 {
            let line = metrics.lines().find(|l| l.starts_with(name)).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        // The 42 writes to the hot cart committed in one transaction: every add was answered at one
        // revision; the other cart's 5 took 1 to 5 more.
        let revisions: std::collections::BTreeSet<i64> = outcomes[..39]
            .iter()
            .map(|o| match o {
                AddOutcome::Added(snapshot) => snapshot.revision,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(revisions.len(), 1, "{revisions:?}");
        assert_eq!(counter("storefront_cart_line_writes_total "), 47);
        let transactions = counter("storefront_cart_write_transactions_total ");
        assert!((2..=6).contains(&transactions), "{transactions}");
    }

    /// The merge decides quantities from both carts as they are in its own transaction, and a
    /// guest cart is taken once: a second merge finds it consumed and changes nothing.
    #[tokio::test]
    async fn a_guest_cart_is_merged_once_with_capped_quantities() {
        let store = memory_store("merge").await;
        store
            .db()
            .query(
                "CREATE product:1 SET name = 'hat', price = 1000; CREATE variant:1 SET product = product:1, sku = 'v1', stock = 4;
                 CREATE product:2 SET name = 'scarf', price = 2000; CREATE variant:2 SET product = product:2, sku = 'v2', stock = 10;
                 CREATE product:3 SET name = 'gloves', price = 1500; CREATE variant:3 SET product = product:3, sku = 'v3', stock = 10;",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
        let expiry = Some(Utc::now() + Duration::hours(1));
        store
            .add_to_cart(&user("user1"), None, p(1), 2, 999)
            .await
            .unwrap();
        store
            .add_to_cart(&user("user1"), None, p(3), 1, 999)
            .await
            .unwrap();
        for (product, quantity) in [(1, 3), (2, 1), (3, 2)] {
            store
                .add_to_cart(&guest("guest_a"), expiry, p(product), quantity, 999)
                .await
                .unwrap();
        }
        store
            .db()
            .query("UPDATE product:3 SET archived = true; UPDATE variant:3 SET archived = true")
            .await
            .unwrap()
            .check()
            .unwrap();

        let GuestMerge::Merged { lines, .. } = store
            .merge_cart(
                &GuestCartId::from_trusted("guest_a"),
                &UserId::from_trusted("user1"),
                false,
                999,
            )
            .await
            .unwrap()
        else {
            panic!("the guest cart was there to merge");
        };
        let decided: Vec<_> = lines
            .iter()
            .map(|l| {
                (
                    l.product_id,
                    l.current,
                    l.requested,
                    l.kept,
                    l.reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            decided,
            [
                (1, 2, 5, 4, Some("stock")),
                (2, 0, 1, 1, None),
                (3, 1, 3, 1, Some("archived")),
            ]
        );
        assert!(matches!(
            store
                .merge_cart(
                    &GuestCartId::from_trusted("guest_a"),
                    &UserId::from_trusted("user1"),
                    false,
                    999
                )
                .await
                .unwrap(),
            GuestMerge::Consumed
        ));
        let held: Vec<_> = store
            .cart_lines(&user("user1"))
            .await
            .unwrap()
            .lines
            .iter()
            .map(|l| (l.variant_id.get(), l.quantity))
            .collect();
        assert_eq!(held, [(1, 4), (3, 1), (2, 1)]);
        assert_eq!(cart_keys(&store).await, ["user1"]);
    }

    /// Lines are deleted by the range of their cart's keys, which no API read can see once the cart is
    /// gone: check the storage itself. Neighbouring keys (`guest_a` / `guest_ab`, `user1` / `user12`)
    /// must keep theirs.
    #[tokio::test]
    async fn sweeping_clearing_and_deleting_the_user_remove_exactly_their_carts_lines() {
        let store = memory_store("sweep").await;
        store
            .db()
            .query("CREATE product:1 SET name = 'a', price = 1; CREATE variant:1 SET product = product:1, sku = 'v1', stock = 5; CREATE product:2 SET name = 'b', price = 1; CREATE variant:2 SET product = product:2, sku = 'v2', stock = 5;")
            .await
            .unwrap()
            .check()
            .unwrap();
        let past = Some(Utc::now() - Duration::seconds(5));
        let future = Some(Utc::now() + Duration::hours(1));
        let carts = [
            (guest("guest_a"), past),
            (guest("guest_ab"), future),
            (user("user1"), None),
            (user("user12"), None),
        ];
        for (key, expiry) in &carts {
            for product in [1, 2] {
                store
                    .add_to_cart(key, *expiry, p(product), 1, 999)
                    .await
                    .unwrap();
            }
        }

        assert_eq!(store.delete_expired_guest_carts().await.unwrap(), 1);
        assert_eq!(
            line_keys(&store).await,
            ["guest_ab", "guest_ab", "user1", "user1", "user12", "user12"]
        );
        store.clear_cart(&user("user1")).await.unwrap();
        assert_eq!(
            line_keys(&store).await,
            ["guest_ab", "guest_ab", "user12", "user12"]
        );

        store
            .add_to_cart(&user("user1"), None, p(1), 1, 999)
            .await
            .unwrap();
        assert_eq!(cart_keys(&store).await, ["guest_ab", "user1", "user12"]);
        store
            .delete_user(&UserId::from_trusted("user1"))
            .await
            .unwrap();
        assert_eq!(cart_keys(&store).await, ["guest_ab", "user12"]);
        assert_eq!(
            line_keys(&store).await,
            ["guest_ab", "guest_ab", "user12", "user12"]
        );
    }
}
