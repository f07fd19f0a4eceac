//! What the in-process benches (`catalog_scale`, `floor`) share: a fresh embedded store in a
//! directory of its own, their `--name value` flags, and percentiles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use storefront::config::SurrealSettings;
use storefront::metrics::Metrics;
use storefront::store::{self, Store};

/// A store on a fresh SurrealKV directory (as the default shape runs), its schema applied. The
/// directory goes with the `FreshStore`, after the store is closed.
pub struct FreshStore {
    store: Option<Store>,
    dir: PathBuf,
}

impl FreshStore {
    pub async fn open(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("storefront-{name}-{}", uuid::Uuid::new_v4()));
        let settings = SurrealSettings {
            url: format!("surrealkv://{}", dir.display()),
            namespace: name.into(),
            database: name.into(),
            username: None,
            password: None,
            ca: None,
        };
        let store = Store::connect(&settings, Arc::new(Metrics::default()))
            .await
            .expect("open the store");
        store::migrate(&store).await.expect("apply the schema");
        Self {
            store: Some(store),
            dir,
        }
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("open until dropped")
    }
}

impl Drop for FreshStore {
    fn drop(&mut self) {
        drop(self.store.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `--name value` pairs after the binary's name. `cargo bench` adds `--bench` (no value) to
/// every bench binary: a flag followed by another flag has no value and is left out.
pub fn flags() -> HashMap<String, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut flags = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        match args.get(i + 1) {
            Some(value) if args[i].starts_with("--") && !value.starts_with("--") => {
                flags.insert(args[i].trim_start_matches("--").to_string(), value.clone());
                i += 2;
            }
            _ => i += 1,
        }
    }
    flags
}

/// The flag `name` parsed, or `default` when it is not given.
pub fn flag<T: std::str::FromStr>(flags: &HashMap<String, String>, name: &str, default: T) -> T {
    flags.get(name).map_or(default, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("--{name} {value}: not a value it takes"))
    })
}

/// The `p` quantile (0-1) of `sorted`, in milliseconds; 0 for none.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}
