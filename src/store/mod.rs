//! SurrealDB: connecting, migrating, and one module per table family.
//!
//! Nothing outside this module sees SurrealQL or the database's error messages.

mod migrate;
pub mod sessions;
pub mod users;

use std::time::Duration;

use anyhow::Context as _;
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::opt::auth::Root;

use crate::config::SurrealSettings;

pub use migrate::{MIGRATIONS, Migration, migrate};

/// Errors of the storage layer that callers act on; everything else is `Database`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("email already registered")]
    EmailTaken,
    /// Another transaction wrote the same records first; the operation can be retried.
    #[error("write conflict")]
    Conflict,
    #[error(transparent)]
    Database(surrealdb::Error),
}

impl From<surrealdb::Error> for StoreError {
    fn from(err: surrealdb::Error) -> Self {
        use surrealdb::types::QueryError;
        if matches!(err.query_details(), Some(QueryError::TransactionConflict)) {
            StoreError::Conflict
        } else {
            StoreError::Database(err)
        }
    }
}

/// A handle on the database, with namespace and database already selected. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Surreal<Any>,
}

impl Store {
    /// Connects through `engine::any` and selects the namespace and database.
    pub async fn connect(settings: &SurrealSettings) -> anyhow::Result<Self> {
        if let Some(path) = settings.url.strip_prefix("surrealkv://") {
            let dir = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(dir).parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating the data directory {}", parent.display()))?;
            }
        }
        let db = surrealdb::engine::any::connect(settings.url.as_str())
            .await
            .with_context(|| format!("connecting to SurrealDB at {}", settings.url))?;
        if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
            db.signin(Root {
                username: username.clone(),
                password: password.expose().to_string(),
            })
            .await
            .context("signing in to SurrealDB (SURREAL_USER / SURREAL_PASS)")?;
        }
        // The handle is fully configured before it is cloned anywhere: clones copy the session.
        db.use_ns(&settings.namespace)
            .use_db(&settings.database)
            .await
            .context("selecting the SurrealDB namespace and database")?;
        Ok(Self { db })
    }

    /// True when the database answers a trivial query within `timeout`.
    pub async fn is_reachable(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.db.query("RETURN true")).await,
            Ok(Ok(_))
        )
    }

    pub(crate) fn db(&self) -> &Surreal<Any> {
        &self.db
    }
}
