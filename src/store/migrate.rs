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
];

#[derive(SurrealValue)]
struct Applied {
    name: String,
    checksum: String,
}

/// Applies what has not been applied yet. Stops at the first failing file, naming it and the
/// database's error; refuses to go on if an applied file was edited afterwards.
pub async fn migrate(store: &Store) -> anyhow::Result<Vec<&'static str>> {
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
    for migration in MIGRATIONS {
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
    use super::MIGRATIONS;

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
}
