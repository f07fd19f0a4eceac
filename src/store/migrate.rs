//! Applies `schema/*.surql` in order, recording each file so it runs once.

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use surrealdb::types::SurrealValue;

use super::Store;

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
];

#[derive(SurrealValue)]
struct Applied {
    name: String,
    checksum: String,
}

/// Applies what has not been applied yet. Stops at the first failing file, naming it and the
/// database's error; refuses to go on if an applied file was edited afterwards.
pub async fn migrate(store: &Store) -> anyhow::Result<Vec<&'static str>> {
    apply(store, MIGRATIONS).await
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
        let checksum = hex(&Sha256::digest(migration.sql.as_bytes()));
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
        db.query("UPSERT type::record('migration', $name) SET name = $name, checksum = $checksum")
            .bind(("name", migration.name))
            .bind(("checksum", checksum))
            .await
            .and_then(|r| r.check())
            .with_context(|| format!("recording schema file {}", migration.name))?;
        ran.push(migration.name);
    }
    Ok(ran)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use surrealdb::types::SurrealValue;

    use super::{MIGRATIONS, apply};
    use crate::config::SurrealSettings;
    use crate::store::Store;
    use crate::store::products::{ProductQuery, ProductSort};

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

    /// A catalog made before schema 0007 gets its sort keys from the upgrade, so its pages keep their
    /// order; and the upgrade is not an edit of the products (`updated_at` stays).
    #[tokio::test]
    async fn upgrading_through_0007_computes_the_sort_keys_of_existing_products() {
        let settings = SurrealSettings {
            url: "mem://".into(),
            namespace: "migrate".into(),
            database: "upgrade".into(),
            username: None,
            password: None,
        };
        let store = Store::connect(&settings, Arc::default()).await.unwrap();
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
                page.iter().map(|p| p.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(page(ProductSort::Newest).await, [2, 3, 1]);
        assert_eq!(page(ProductSort::PriceDesc).await, [2, 3, 1]);
        assert_eq!(page(ProductSort::PriceAsc).await, [1, 3, 2]);
    }
}
