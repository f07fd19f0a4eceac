//! argon2id hashing on a few dedicated threads, off the async worker threads.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{mpsc, oneshot};

use crate::domain::Password;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane (also `Argon2::default()`), spelled out so a
/// dependency update cannot weaken it silently.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on one dedicated thread per core. Each hash holds 19 MiB for
/// ~25 ms (release): running them only on these threads bounds both how many run at once and how
/// much memory the allocator keeps afterwards (one 19 MiB block per thread). On tokio's blocking pool
/// every new pool thread kept its own, and a burst of sign-ins left hundreds of MB resident.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
}

/// Sign-ins waiting for a hashing thread before callers wait to queue.
const QUEUE: usize = 1024;

impl Default for PasswordHasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..cores.max(2) {
            let queue = queue.clone();
            // The threads end when the last hasher handle (the sender) is dropped.
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits on the queue at a time; the lock is released before the job runs.
                        let job = match queue.lock() {
                            Ok(mut queue) => queue.blocking_recv(),
                            Err(_) => None,
                        };
                        let Some(job) = job else { break };
                        // A panicking job fails its own request (its reply channel drops), not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .expect("the OS starts a hashing thread");
        }
        Self { jobs }
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
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("hasher closed"))?;
        result.await.context("hashing job failed")?
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

    #[tokio::test]
    async fn a_burst_queues_on_the_hashing_threads_and_every_answer_is_right() {
        let hasher = PasswordHasher::default();
        let password = Password::parse("password", "correct horse".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        let checks: Vec<_> = (0..12)
            .map(|i| {
                let (hasher, hash) = (hasher.clone(), hash.clone());
                tokio::spawn(async move {
                    let guess = if i % 2 == 0 { "correct horse" } else { "wrong" };
                    (i % 2 == 0, hasher.verify(guess, Some(hash)).await.unwrap())
                })
            })
            .collect();
        for check in checks {
            let (expected, got) = check.await.unwrap();
            assert_eq!(expected, got);
        }
    }
}
