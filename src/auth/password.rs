//! argon2id hashing, off the async worker threads and bounded in concurrency.

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane (also `Argon2::default()`), spelled out so a
/// dependency update cannot weaken it silently.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords on the blocking pool. Each hash holds 19 MiB for ~25 ms (release), so
/// at most one per core runs at once; the rest wait their turn instead of exhausting memory.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores.max(2))),
        }
    }
}

impl PasswordHasher {
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.expose().to_string();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await
    }

    /// Checks `password` against `stored`. With no stored hash (unknown email) it verifies against a
    /// dummy hash of the same parameters, so both paths cost the same time.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> anyhow::Result<bool> {
        let password = password.to_string();
        self.run(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| dummy_hash().to_string());
            let parsed =
                PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let matches = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(work)
            .await
            .context("hashing task failed")?
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"no user has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = PasswordHasher::default();
        let password = Password::parse("password", "correct horse".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify("correct horse", Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse", Some(hash)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
    }
}
