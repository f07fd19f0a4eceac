//! Applies `schema/*.surql` in order, then the data steps written in Rust, recording each so it runs
//! once. Several instances starting at once against one server take turns: whoever holds the
//! migration lease applies, the others wait for it and then find nothing left to do.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use surrealdb::types::SurrealValue;

use super::normalize_emails::{self, EmailReview};
use super::{Store, StoreError};

/// One schema file, compiled into the binary so a deployment cannot run with a mismatched `schema/`.
pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every file of `schema/`, in the order they apply. A test checks this list matches the directory.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_accounts.surql",
        sql: include_str!("../../schema/0001_accounts.surql"),
    },
    Migration {
        name: "0002_catalog.surql",
        sql: include_str!("../../schema/0002_catalog.surql"),
    },
    Migration {
        name: "0003_carts_orders.surql",
        sql: include_str!("../../schema/0003_carts_orders.surql"),
    },
    Migration {
        name: "0004_session_rotation.surql",
        sql: include_str!("../../schema/0004_session_rotation.surql"),
    },
    Migration {
        name: "0005_cart_line_price.surql",
        sql: include_str!("../../schema/0005_cart_line_price.surql"),
    },
    Migration {
        name: "0006_guest_carts.surql",
        sql: include_str!("../../schema/0006_guest_carts.surql"),
    },
    Migration {
        name: "0007_catalog_forward_keys.surql",
        sql: include_str!("../../schema/0007_catalog_forward_keys.surql"),
    },
    Migration {
        name: "0008_line_key_ranges.surql",
        sql: include_str!("../../schema/0008_line_key_ranges.surql"),
    },
    Migration {
        name: "0009_cart_revision.surql",
        sql: include_str!("../../schema/0009_cart_revision.surql"),
    },
    Migration {
        name: "0010_categories.surql",
        sql: include_str!("../../schema/0010_categories.surql"),
    },
    Migration {
        name: "0011_product_images.surql",
        sql: include_str!("../../schema/0011_product_images.surql"),
    },
    Migration {
        name: "0012_updated_at_on_every_write.surql",
        sql: include_str!("../../schema/0012_updated_at_on_every_write.surql"),
    },
    Migration {
        name: "0013_variants.surql",
        sql: include_str!("../../schema/0013_variants.surql"),
    },
    Migration {
        name: "0014_payments.surql",
        sql: include_str!("../../schema/0014_payments.surql"),
    },
    Migration {
        name: "0015_outbox.surql",
        sql: include_str!("../../schema/0015_outbox.surql"),
    },
    Migration {
        name: "0016_webhooks.surql",
        sql: include_str!("../../schema/0016_webhooks.surql"),
    },
    Migration {
        name: "0017_email_verification.surql",
        sql: include_str!("../../schema/0017_email_verification.surql"),
    },
    Migration {
        name: "0018_catalog_facets.surql",
        sql: include_str!("../../schema/0018_catalog_facets.surql"),
    },
    Migration {
        name: "0019_catalog_known_facets.surql",
        sql: include_str!("../../schema/0019_catalog_known_facets.surql"),
    },
];

#[derive(SurrealValue)]
struct Applied {
    name: String,
    checksum: String,
}

/// What a `migrate` run did.
#[derive(Debug, Default)]
pub struct Migrated {
    /// Schema files and data steps applied by this run, in order.
    pub applied: Vec<&'static str>,
    /// Accounts the email step (`0009_email_normalized`) found colliding or invalid and left as they
    /// were; they are also in the `email_review` table.
    pub email_reviews: Vec<EmailReview>,
}

/// Applies what has not been applied yet: every schema file, then each data step. Stops at the first
/// failure, naming the file or step and the database's error; refuses to go on if an applied file
/// was edited afterwards. Holds the migration lease while it does (see `Lease`).
pub async fn migrate(store: &Store) -> anyhow::Result<Migrated> {
    let lease = Lease::acquire(store).await?;
    let migrated = migrate_holding_the_lease(store).await;
    lease.release().await;
    migrated
}

async fn migrate_holding_the_lease(store: &Store) -> anyhow::Result<Migrated> {
    let mut applied = apply(store, MIGRATIONS).await?;
    let mut email_reviews = Vec::new();
    if !is_recorded(store, normalize_emails::NAME).await? {
        email_reviews = normalize_emails::normalize_emails(store)
            .await
            .with_context(|| format!("data step {} failed", normalize_emails::NAME))?;
        // A data step has no file to checksum: what it is, is its name.
        record(store, normalize_emails::NAME, "rust").await?;
        applied.push(normalize_emails::NAME);
    }
    Ok(Migrated {
        applied,
        email_reviews,
    })
}

/// How long the lease lasts unless renewed: an instance that dies holding it holds up the others
/// this long at most. Renewed every third of it while migrations run.
const LEASE: Duration = Duration::from_secs(15);
/// How long an instance waits for another's migrations before it gives up starting.
const LEASE_WAIT: Duration = Duration::from_secs(300);

/// The one record `migration_lock:main`, which an instance creates to migrate and deletes after.
/// `CREATE` of a record that exists fails, so of several instances starting together exactly one
/// holds it; an expired lease (its holder died) is deleted by the next one to try.
struct Lease {
    store: Store,
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Lease {
    async fn acquire(store: &Store) -> anyhow::Result<Self> {
        let holder = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut waited = false;
        loop {
            let attempt = store
                .db()
                .query(concat!(
                    "DEFINE TABLE IF NOT EXISTS migration_lock SCHEMALESS;",
                    "DELETE migration_lock:main WHERE expires_at < time::now();",
                    "CREATE migration_lock:main SET holder = $holder, ",
                    "expires_at = time::now() + <duration> $lease;",
                ))
                .bind(("holder", holder.clone()))
                .bind(("lease", lease_duration()))
                .await
                .and_then(|r| r.check());
            match attempt.map_err(StoreError::from) {
                Ok(_) => break,
                // Held by another instance (or two of us raced for an expired one): wait a turn.
                Err(StoreError::Conflict) if started.elapsed() < LEASE_WAIT => {
                    if !waited {
                        tracing::info!("another instance is applying the schema; waiting for it");
                        waited = true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(StoreError::Conflict) => bail!(
                    "another instance has held the migration lease (migration_lock:main) for over \
                     {}s",
                    LEASE_WAIT.as_secs()
                ),
                Err(err) => return Err(err).context("taking the migration lease"),
            }
        }
        let renewal = tokio::spawn(renew(store.clone(), holder.clone()));
        Ok(Self {
            store: store.clone(),
            holder,
            renewal,
        })
    }

    /// Gives the lease up. A failure only costs the next instance the rest of the lease.
    async fn release(self) {
        self.renewal.abort();
        let released = self
            .store
            .db()
            .query("DELETE migration_lock:main WHERE holder = $holder")
            .bind(("holder", self.holder))
            .await
            .and_then(|r| r.check());
        if let Err(error) = released {
            tracing::warn!(%error, "releasing the migration lease");
        }
    }
}

/// `LEASE` as SurrealQL reads a duration (`<duration> $lease`).
fn lease_duration() -> String {
    format!("{}s", LEASE.as_secs())
}

async fn renew(store: Store, holder: String) {
    let mut every = tokio::time::interval(LEASE / 3);
    every.tick().await;
    loop {
        every.tick().await;
        let renewed = store
            .db()
            .query(concat!(
                "UPDATE migration_lock:main SET expires_at = time::now() + <duration> $lease ",
                "WHERE holder = $holder",
            ))
            .bind(("holder", holder.clone()))
            .bind(("lease", lease_duration()))
            .await
            .and_then(|r| r.check());
        if let Err(error) = renewed {
            tracing::warn!(%error, "renewing the migration lease");
        }
    }
}

async fn is_recorded(store: &Store, name: &str) -> anyhow::Result<bool> {
    let found: Vec<Applied> = store
        .db()
        .query("SELECT name, checksum FROM migration WHERE name = $name")
        .bind(("name", name.to_string()))
        .await
        .and_then(|mut r| r.take(0))
        .context("reading applied migrations")?;
    Ok(!found.is_empty())
}

async fn record(store: &Store, name: &'static str, checksum: &str) -> anyhow::Result<()> {
    store
        .db()
        .query("UPSERT type::record('migration', $name) SET name = $name, checksum = $checksum")
        .bind(("name", name))
        .bind(("checksum", checksum.to_string()))
        .await
        .and_then(|r| r.check())
        .with_context(|| format!("recording {name}"))?;
    Ok(())
}

/// `migrate` over the given files (a prefix of `MIGRATIONS`; tests stop part-way to stage an upgrade).
async fn apply(store: &Store, migrations: &[Migration]) -> anyhow::Result<Vec<&'static str>> {
    let db = store.db();
    db.query(
        "DEFINE TABLE IF NOT EXISTS migration SCHEMAFULL;
         DEFINE FIELD IF NOT EXISTS name ON migration TYPE string;
         DEFINE FIELD IF NOT EXISTS checksum ON migration TYPE string;
         DEFINE FIELD IF NOT EXISTS applied_at ON migration TYPE datetime DEFAULT time::now();",
    )
    .await
    .and_then(|r| r.check())
    .context("creating the migration table")?;

    let applied: Vec<Applied> = db
        .query("SELECT name, checksum FROM migration")
        .await
        .and_then(|mut r| r.take(0))
        .context("reading applied migrations")?;

    let mut ran = Vec::new();
    for migration in migrations {
        let checksum = hex::encode(Sha256::digest(migration.sql.as_bytes()));
        if let Some(done) = applied.iter().find(|a| a.name == migration.name) {
            if done.checksum != checksum {
                bail!(
                    "schema file {} was changed after it was applied; add a new file instead",
                    migration.name
                );
            }
            continue;
        }
        let mut response = db
            .query(migration.sql)
            .await
            .with_context(|| format!("schema file {} failed", migration.name))?;
        if let Some((index, err)) = response.take_errors().into_iter().min_by_key(|(i, _)| *i) {
            bail!(
                "schema file {} failed at statement {}: {err}",
                migration.name,
                index + 1
            );
        }
        record(store, migration.name, &checksum).await?;
        ran.push(migration.name);
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use surrealdb::types::{RecordId, SurrealValue};

    use super::{MIGRATIONS, apply, migrate};
    use crate::domain::ProductSort;
    use crate::store::products::ProductQuery;
    use crate::store::{EmailReview, ReviewKind, Store};

    async fn fresh_store(database: &str) -> Store {
        Store::in_memory("migrate", database).await
    }

    #[test]
    fn every_schema_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schema");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".surql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
    }

    #[derive(Debug, SurrealValue)]
    struct Keys {
        id: i64,
        newest_key: i64,
        price_desc_key: i64,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A catalog made before categories were records (schema 0010) keeps naming its categories: each
    /// name in use becomes a category record, and the catalog filter finds the products again.
    #[tokio::test]
    async fn upgrading_through_0010_makes_the_categories_products_name() {
        let store = fresh_store("categories_0010").await;
        let before = MIGRATIONS.iter().take_while(|m| m.name < "0010").count();
        apply(&store, &MIGRATIONS[..before]).await.unwrap();
        store
            .db()
            .query(
                "CREATE product:1 SET name = 'cap', price = 100, category = 'hats';
                 CREATE product:2 SET name = 'beret', price = 200, category = 'hats';
                 CREATE product:3 SET name = 'old thing', price = 300, category = 'odds and ends';
                 CREATE product:4 SET name = 'loose', price = 400;",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(ran.first(), Some(&"0010_categories.surql"));
        let categories = store.list_categories().await.unwrap();
        let slugs: Vec<&str> = categories.iter().map(|c| c.slug.as_str()).collect();
        assert_eq!(slugs, ["hats", "odds and ends"]);
        assert!(
            categories
                .iter()
                .all(|c| c.parent.is_none() && c.name == c.slug)
        );
        let mut query = ProductQuery::first_page(ProductSort::Name, 10);
        query.categories = Some(store.category_family("hats").await.unwrap());
        let hats: Vec<String> = store
            .list_products(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(hats, ["beret", "cap"]);
    }

    /// Products made before schemas 0011 (images) and 0012 (`updated_at` on every write) read with no
    /// images, keep their `updated_at` until their next write, and then it moves.
    #[tokio::test]
    async fn upgrading_through_0012_gives_old_products_images_and_a_moving_updated_at() {
        let store = fresh_store("images_0011").await;
        let before = MIGRATIONS.iter().take_while(|m| m.name < "0011").count();
        apply(&store, &MIGRATIONS[..before]).await.unwrap();
        store
            .db()
            .query("CREATE product:1 SET name = 'cap', price = 100, stock = 5, updated_at = d'2024-01-01T00:00:00Z'")
            .await
            .unwrap()
            .check()
            .unwrap();
        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(
            ran[..2],
            [
                "0011_product_images.surql",
                "0012_updated_at_on_every_write.surql",
            ]
        );
        let id = crate::domain::ProductId::from_trusted(1);
        let old = store.product(id).await.unwrap().unwrap();
        assert!(old.images.is_empty());
        assert_eq!(old.updated_at.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        let changes = crate::store::products::ProductChanges {
            stock: Some(4),
            ..Default::default()
        };
        let new = store.update_product(id, changes).await.unwrap().unwrap();
        assert_eq!(new.stock(), 4);
        assert!(
            new.updated_at > old.updated_at,
            "updated_at moved with the write"
        );
    }

    /// A catalog made before schema 0007 gets its sort keys from the upgrade, so its pages keep their
    /// order; and the upgrade is not an edit of the products (`updated_at` stays).
    #[tokio::test]
    async fn upgrading_through_0007_computes_the_sort_keys_of_existing_products() {
        let store = fresh_store("upgrade").await;
        let before_0007 = MIGRATIONS.iter().take_while(|m| m.name < "0007").count();
        apply(&store, &MIGRATIONS[..before_0007]).await.unwrap();
        store
            .db()
            .query(
                "CREATE product:1 SET name = 'old cheap', price = 100, created_at = d'2024-01-01T00:00:00Z';
                 CREATE product:2 SET name = 'new dear', price = 900, created_at = d'2025-01-01T00:00:00Z';
                 CREATE product:3 SET name = 'mid', price = 500, created_at = d'2024-06-01T00:00:00Z';",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
        let old: Vec<Keys> = store
            .db()
            .query("SELECT record::id(id) AS id, 0 AS newest_key, 0 AS price_desc_key, created_at, updated_at FROM product ORDER BY id")
            .await
            .unwrap()
            .take(0)
            .unwrap();

        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(ran.first(), Some(&"0007_catalog_forward_keys.surql"));

        let keys: Vec<Keys> = store
            .db()
            .query("SELECT record::id(id) AS id, newest_key, price_desc_key, created_at, updated_at FROM product ORDER BY id")
            .await
            .unwrap()
            .take(0)
            .unwrap();
        assert_eq!(keys.iter().map(|k| k.id).collect::<Vec<_>>(), [1, 2, 3]);
        for (was, now) in old.iter().zip(&keys) {
            assert_eq!(
                now.newest_key,
                -was.created_at.timestamp_nanos_opt().unwrap()
            );
            assert_eq!(now.updated_at, was.updated_at, "the upgrade is not an edit");
        }
        assert_eq!(
            keys.iter().map(|k| k.price_desc_key).collect::<Vec<_>>(),
            [-100, -900, -500]
        );
        let page = |sort| {
            let store = store.clone();
            async move {
                let query = ProductQuery::first_page(sort, 10);
                let page = store.list_products(&query).await.unwrap();
                page.iter().map(|p| p.id.get()).collect::<Vec<_>>()
            }
        };
        assert_eq!(page(ProductSort::Newest).await, [2, 3, 1]);
        assert_eq!(page(ProductSort::PriceDesc).await, [2, 3, 1]);
        assert_eq!(page(ProductSort::PriceAsc).await, [1, 3, 2]);
    }

    #[derive(Debug, SurrealValue)]
    struct StoredUser {
        id: String,
        email: String,
    }

    #[derive(Debug, SurrealValue)]
    struct Review {
        kind: String,
        normalized: Option<String>,
        users: Vec<RecordId>,
        emails: Vec<String>,
    }

    /// Emails stored before normalization: two accounts that are one address once normalized are both
    /// kept as they were and reported, never merged; an account whose normal form is free gets it.
    #[tokio::test]
    async fn the_email_step_rewrites_free_spellings_and_reports_collisions() {
        let store = fresh_store("emails").await;
        apply(&store, MIGRATIONS).await.unwrap();
        store
            .db()
            .query(
                "CREATE user:nfd SET email = $nfd, name = 'decomposed', password_hash = '$argon2id$x';
                 CREATE user:nfc SET email = $nfc, name = 'composed', password_hash = '$argon2id$x';
                 CREATE user:wide SET email = $wide, name = 'full-width', password_hash = '$argon2id$x';
                 CREATE user:idn SET email = $idn, name = 'unicode domain', password_hash = '$argon2id$x';
                 CREATE user:plain SET email = 'carl@example.com', name = 'plain', password_hash = '$argon2id$x';",
            )
            .bind(("nfd", "e\u{301}lodie@example.com"))
            .bind(("nfc", "\u{e9}lodie@example.com"))
            .bind(("wide", "\u{ff41}\u{ff4e}\u{ff4e}@example.com"))
            .bind(("idn", "bob@\u{e9}xample.com"))
            .await
            .unwrap()
            .check()
            .unwrap();

        let migrated = migrate(&store).await.unwrap();
        assert_eq!(migrated.applied, ["0009_email_normalized"]);
        assert_eq!(
            migrated.email_reviews,
            [EmailReview {
                kind: ReviewKind::Collision,
                normalized: Some("\u{e9}lodie@example.com".into()),
                users: vec![
                    ("nfc".into(), "\u{e9}lodie@example.com".into()),
                    ("nfd".into(), "e\u{301}lodie@example.com".into()),
                ],
            }]
        );

        let users: Vec<StoredUser> = store
            .db()
            .query("SELECT record::id(id) AS id, email FROM user ORDER BY id")
            .await
            .unwrap()
            .take(0)
            .unwrap();
        let emails: Vec<(&str, &str)> = users
            .iter()
            .map(|u| (u.id.as_str(), u.email.as_str()))
            .collect();
        assert_eq!(
            emails,
            [
                ("idn", "bob@xn--xample-9ua.com"),
                ("nfc", "\u{e9}lodie@example.com"),
                ("nfd", "e\u{301}lodie@example.com"),
                ("plain", "carl@example.com"),
                ("wide", "ann@example.com"),
            ]
        );

        // An admin finds the collision in the database too.
        let reviews: Vec<Review> = store
            .db()
            .query("SELECT kind, normalized, users, emails FROM email_review")
            .await
            .unwrap()
            .take(0)
            .unwrap();
        assert_eq!(reviews.len(), 1, "{reviews:?}");
        assert_eq!(reviews[0].kind, "collision");
        assert_eq!(
            reviews[0].normalized.as_deref(),
            Some("\u{e9}lodie@example.com")
        );
        assert_eq!(
            reviews[0].users,
            [RecordId::new("user", "nfc"), RecordId::new("user", "nfd")]
        );
        assert_eq!(reviews[0].emails.len(), 2);

        // The step runs once.
        let again = migrate(&store).await.unwrap();
        assert!(again.applied.is_empty() && again.email_reviews.is_empty());
    }

    /// Carts made before schema 0009 (no `revision`) keep their lines through the upgrade, and every
    /// writer works on them afterwards: the first change gives the cart a revision above 0, later
    /// ones raise it, and touching a guest cart's deadline (which sets no revision) is accepted.
    #[tokio::test]
    async fn upgrading_through_0009_keeps_old_carts_and_starts_their_revisions() {
        let store = fresh_store("carts_0009").await;
        let before_0009 = MIGRATIONS.iter().take_while(|m| m.name < "0009").count();
        apply(&store, &MIGRATIONS[..before_0009]).await.unwrap();
        store
            .db()
            .query(
                "CREATE product:1 SET name = 'hat', price = 1599, stock = 50;
                 CREATE product:2 SET name = 'scarf', price = 2500, stock = 50;
                 CREATE cart:u1 SET user = user:u1;
                 CREATE cart_line:['u1', 1] SET cart = cart:u1, product = product:1, quantity = 2;
                 CREATE cart_line:['u1', 2] SET cart = cart:u1, product = product:2, quantity = 1;
                 CREATE cart:guest_a SET expires_at = time::now() + 1d;
                 CREATE cart_line:['guest_a', 2] SET cart = cart:guest_a, product = product:2, quantity = 3;",
            )
            .await
            .unwrap()
            .check()
            .unwrap();

        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(ran.first(), Some(&"0009_cart_revision.surql"));

        use crate::domain::{CartOwner, GuestCartId, UserId};
        let user = CartOwner::User(UserId::from_trusted("u1"));
        let guest_id = GuestCartId::from_trusted("guest_a");
        let guest = CartOwner::Guest(guest_id.clone());
        let p = crate::domain::VariantId::from_trusted;
        let quantities = |snapshot: &crate::store::carts::CartSnapshot| {
            snapshot
                .lines
                .iter()
                .map(|l| (l.product_id.get(), l.quantity))
                .collect::<Vec<_>>()
        };
        let before = store.cart_lines(&user).await.unwrap();
        assert_eq!(quantities(&before), [(1, 2), (2, 1)]);
        assert_eq!(before.revision, 0, "an old cart reads as revision 0");

        let added = match store.add_to_cart(&user, None, p(1), 1, 999).await.unwrap() {
            crate::store::carts::AddOutcome::Added(snapshot) => snapshot,
            _ => panic!("adding to an old cart failed"),
        };
        assert_eq!(quantities(&added), [(1, 3), (2, 1)]);
        assert!(added.revision > 0);
        let set = store
            .set_cart_quantity(&user, None, p(2), 4)
            .await
            .unwrap()
            .unwrap();
        assert!(set.revision > added.revision);
        let removed = store
            .remove_cart_line(&user, None, p(1))
            .await
            .unwrap()
            .unwrap();
        assert!(removed.revision > set.revision);
        assert_eq!(quantities(&removed), [(2, 4)]);

        store
            .touch_guest_cart(&guest_id, Utc::now() + chrono::Duration::days(2))
            .await
            .unwrap();
        let lines = store.cart_lines(&guest).await.unwrap();
        assert_eq!(quantities(&lines), [(2, 3)]);
        let cleared = store.clear_cart(&guest).await.unwrap();
        assert!(cleared > lines.revision);
        assert!(store.cart_lines(&guest).await.unwrap().lines.is_empty());
    }

    /// A store made by schemas up to 0012 (a product's stock on the product, lines keyed by
    /// product) upgrades to variants: each product gets one variant carrying its stock and its
    /// number, an old cart checks out from it, and an old order cancelled puts its stock back there.
    #[tokio::test]
    async fn upgrading_through_0013_gives_every_product_a_default_variant_with_its_stock() {
        let store = fresh_store("variants_0013").await;
        let before = MIGRATIONS.iter().take_while(|m| m.name < "0013").count();
        apply(&store, &MIGRATIONS[..before]).await.unwrap();
        store
            .db()
            .query(
                "CREATE product:1 SET name = 'hat', price = 1599, stock = 50;
                 CREATE product:2 SET name = 'scarf', price = 2500, stock = 7;
                 CREATE product:3 SET name = 'gone', price = 100, stock = 3, archived = true;
                 CREATE user:u1 SET email = 'u1@example.com', name = 'U', password_hash = '$argon2id$x';
                 CREATE cart:u1 SET user = user:u1, revision = 1;
                 CREATE cart_line:['u1', 1] SET cart = cart:u1, product = product:1, quantity = 2;
                 CREATE cart_line:['u1', 2] SET cart = cart:u1, product = product:2, quantity = 1;
                 CREATE `order`:⟨0190a0a0-0000-7000-8000-000000000001⟩ SET user = user:u1,
                     status = 'pending', shipping_address = '1 Road', currency = 'GBP',
                     subtotal = 5000, item_count = 2;
                 CREATE order_line:['0190a0a0-0000-7000-8000-000000000001', 2] SET
                     `order` = `order`:⟨0190a0a0-0000-7000-8000-000000000001⟩, product = product:2,
                     name = 'scarf', image_url = '', unit_price = 2500, quantity = 2, line_total = 5000;",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(ran.first(), Some(&"0013_variants.surql"));

        use crate::domain::{OrderId, OrderStatus, ProductId, UserId, VariantId};
        for (id, stock, archived) in [(1, 50, false), (2, 7, false), (3, 3, true)] {
            let product = store
                .product(ProductId::from_trusted(id))
                .await
                .unwrap()
                .unwrap();
            let variants: Vec<_> = product
                .variants
                .iter()
                .map(|v| (v.id.get(), v.sku.as_str(), v.stock, v.archived))
                .collect();
            assert_eq!(
                variants,
                [(id, format!("SF-{id}").as_str(), stock, archived)]
            );
            assert!(product.options.is_empty());
        }

        let user = UserId::from_trusted("u1");
        let cart = store
            .cart_lines(&crate::domain::CartOwner::User(user.clone()))
            .await
            .unwrap();
        let lines: Vec<_> = cart
            .lines
            .iter()
            .map(|l| {
                (
                    l.product_id.get(),
                    l.variant_id.get(),
                    l.sku.as_str(),
                    l.stock,
                )
            })
            .collect();
        assert_eq!(lines, [(1, 1, "SF-1", 50), (2, 2, "SF-2", 7)]);

        let order_id = OrderId::parse("0190a0a0-0000-7000-8000-000000000001").unwrap();
        let old = store.order(&order_id).await.unwrap().unwrap();
        assert_eq!(
            (old.lines[0].variant_id.get(), old.lines[0].sku.as_str()),
            (2, "SF-2")
        );
        // An order made before payments (0014) was paid by hand: it has no payment.
        assert_eq!(old.payment, None);
        let placed = store
            .checkout(&user, &OrderId::generate(), "2 Street", None, false, 5)
            .await
            .unwrap();
        assert!(matches!(
            placed,
            crate::store::orders::CheckoutOutcome::Placed { .. }
        ));
        store
            .move_order(
                &order_id,
                None,
                &[OrderStatus::Pending],
                OrderStatus::Cancelled,
            )
            .await
            .unwrap();
        let store = &store;
        let stock = |id| async move {
            store
                .product(ProductId::from_trusted(id))
                .await
                .unwrap()
                .unwrap()
                .variants[0]
                .stock
        };
        assert_eq!(stock(1).await, 48, "checkout took from the default variant");
        assert_eq!(stock(2).await, 8, "7 - 1 sold + 2 cancelled");
        assert_eq!(
            store
                .live_variants(ProductId::from_trusted(2))
                .await
                .unwrap(),
            [(VariantId::from_trusted(2), 8)]
        );
    }

    /// Accounts made before schema 0017 read as unverified (the field is set, not only defaulted on
    /// read), and mail queued before 0016 widened the outbox's kinds is still claimed and sent.
    #[tokio::test]
    async fn upgrading_through_0017_leaves_old_accounts_unverified_and_keeps_queued_mail() {
        let store = fresh_store("verification_0017").await;
        let before = MIGRATIONS.iter().take_while(|m| m.name < "0016").count();
        apply(&store, &MIGRATIONS[..before]).await.unwrap();
        store
            .db()
            .query(
                "CREATE user:u1 SET email = 'u1@example.com', name = 'U', password_hash = '$argon2id$x';
                 CREATE outbox:m1 SET kind = 'email', purpose = 'password_reset',
                     recipient = 'u1@example.com', subject = 'Reset', text = 'link';",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(
            ran[..2],
            ["0016_webhooks.surql", "0017_email_verification.surql"]
        );
        let user = crate::domain::UserId::from_trusted("u1");
        let record = store.user_by_id(&user).await.unwrap().unwrap();
        assert!(!record.email_verified);
        let stored: Option<bool> = store
            .db()
            .query("RETURN user:u1.email_verified")
            .await
            .unwrap()
            .take(0)
            .unwrap();
        assert_eq!(
            stored,
            Some(false),
            "the field is written, not only read as false"
        );
        let claimed = store.claim_outbox(10, 300).await.unwrap();
        let kinds: Vec<(&str, &str)> = claimed
            .iter()
            .map(|m| (m.id.as_str(), m.kind.as_str()))
            .collect();
        assert_eq!(kinds, [("m1", "email")]);
        store.outbox_delivered("m1", true).await.unwrap();
    }

    /// A catalog made before schema 0018 gets its products' facets from the upgrade, and 0019
    /// records them as known, so the variant filters find what they found before; the upgrade is
    /// not an edit (`updated_at` stays), and a write after it moves `updated_at` again.
    #[tokio::test]
    async fn upgrading_through_0018_gives_existing_products_their_facets() {
        let store = fresh_store("facets_0018").await;
        let before = MIGRATIONS.iter().take_while(|m| m.name < "0018").count();
        apply(&store, &MIGRATIONS[..before]).await.unwrap();
        store
            .db()
            .query(
                "CREATE product:1 SET name = 'tee', price = 100,
                     options = [{ name: 'Size', values: ['S', 'M'] }];
                 CREATE variant:1 SET product = product:1, sku = 't-s', option_values = ['S'], stock = 0;
                 CREATE variant:2 SET product = product:1, sku = 't-m', option_values = ['M'], stock = 2;
                 CREATE product:2 SET name = 'cap', price = 100;
                 CREATE variant:3 SET product = product:2, sku = 'c', stock = 0;",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
        let updated = || async {
            let times: Vec<DateTime<Utc>> = store
                .db()
                .query("SELECT VALUE updated_at FROM product ORDER BY id")
                .await
                .unwrap()
                .take(0)
                .unwrap();
            times
        };
        let old = updated().await;
        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(
            ran,
            [
                "0018_catalog_facets.surql",
                "0019_catalog_known_facets.surql"
            ]
        );
        assert_eq!(updated().await, old, "the upgrade is not an edit");

        assert_eq!(store.names_by_size(None, true).await, ["tee"]);
        assert_eq!(store.names_by_size(Some("S"), false).await, ["tee"]);
        assert!(store.names_by_size(Some("S"), true).await.is_empty());
        assert_eq!(store.names_by_size(None, false).await, ["cap", "tee"]);
        store.assert_facets_hold().await;

        store
            .db()
            .query("UPDATE product:2 SET name = 'hat'")
            .await
            .unwrap()
            .check()
            .unwrap();
        assert_ne!(updated().await[1], old[1], "a write moves updated_at again");
    }

    /// A catalog made under schema 0018 (products carrying facets, no record of known facets) has
    /// its facets recorded by 0019: its filters still find its products, and a value none has is
    /// answered empty.
    #[tokio::test]
    async fn upgrading_through_0019_records_the_facets_products_already_have() {
        let store = fresh_store("facets_0019").await;
        let through_0018 = MIGRATIONS.iter().take_while(|m| m.name < "0019").count();
        apply(&store, &MIGRATIONS[..through_0018]).await.unwrap();
        store
            .db()
            .query(
                "CREATE product:1 SET name = 'tee', price = 100,
                     options = [{ name: 'Size', values: ['S', 'M'] }];
                 CREATE variant:1 SET product = product:1, sku = 't-s', option_values = ['S'], stock = 0;
                 CREATE variant:2 SET product = product:1, sku = 't-m', option_values = ['M'], stock = 2;
                 UPDATE product:1 SET facets = fn::product_facets(id);",
            )
            .await
            .unwrap()
            .check()
            .unwrap();
        let ran = apply(&store, MIGRATIONS).await.unwrap();
        assert_eq!(ran, ["0019_catalog_known_facets.surql"]);

        assert_eq!(store.names_by_size(Some("M"), true).await, ["tee"]);
        assert_eq!(store.names_by_size(Some("S"), false).await, ["tee"]);
        assert!(store.names_by_size(Some("S"), true).await.is_empty());
        assert!(store.names_by_size(Some("XL"), false).await.is_empty());
        store.assert_facets_hold().await;
    }
}
