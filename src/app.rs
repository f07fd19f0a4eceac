//! Wiring: builds every service once from the settings and serves them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::auth::{LoginLimiter, LoginLimits, PasswordHasher, SessionService, TokenIssuer};
use crate::cache::Cache;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::services::accounts::Accounts;
use crate::services::cart::Carts;
use crate::services::catalog::Catalog;
use crate::services::live::LiveUpdates;
use crate::services::orders::Orders;
use crate::store::{self, Store};

/// How long a shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Everything the HTTP layer needs, built once.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub cache: Cache,
    pub metrics: Arc<Metrics>,
    pub accounts: Arc<Accounts>,
    pub catalog: Arc<Catalog>,
    pub carts: Arc<Carts>,
    pub orders: Arc<Orders>,
    pub live: Arc<LiveUpdates>,
}

impl AppState {
    /// Connects to SurrealDB, applies the schema, and builds the services.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let store = Store::connect(&settings.surreal, metrics.clone()).await?;
        let migrated = store::migrate(&store).await?;
        if !migrated.applied.is_empty() {
            tracing::info!(files = ?migrated.applied, "schema applied");
        }
        let cache = match &settings.redis_url {
            Some(url) => Cache::redis(url.expose(), settings.cache_prefix(), metrics.clone())?,
            None => {
                tracing::warn!(
                    "REDIS_URL is not set: using an in-process cache. Fine for one instance; \
                     several instances need a shared Redis so that sign-outs reach all of them"
                );
                Cache::local(settings.cache_prefix(), metrics.clone())
            }
        };
        if settings.jwt_secret_generated {
            tracing::warn!(
                "JWT_SECRET is not set: generated a random one for this run; tokens will not survive a restart"
            );
        }
        let tokens = Arc::new(TokenIssuer::new(
            &settings.jwt_secret,
            settings.access_token_ttl,
        ));
        let sessions = Arc::new(SessionService::new(
            store.clone(),
            cache.clone(),
            tokens,
            settings.refresh_token_ttl,
            settings.refresh_reuse_grace,
        ));
        let accounts = Arc::new(Accounts::new(
            store.clone(),
            PasswordHasher::default(),
            sessions,
            LoginLimiter::new(
                cache.clone(),
                LoginLimits {
                    per_ip: settings.login_limit_per_ip,
                    per_email_and_ip: settings.login_limit_per_email,
                    per_email: settings.login_limit_per_email_global,
                },
            ),
        ));
        let catalog = Arc::new(Catalog::new(store.clone(), cache.clone()));
        if settings.seed_catalog {
            let added = catalog.seed_if_empty().await?;
            if added > 0 {
                tracing::info!(
                    products = added,
                    "loaded the starter catalog (SEED_CATALOG)"
                );
            }
        }
        let carts = Arc::new(Carts::new(
            store.clone(),
            cache.clone(),
            settings.guest_cart_ttl,
        ));
        let orders = Arc::new(Orders::new(store.clone(), carts.clone(), catalog.clone()));
        let live = Arc::new(LiveUpdates::new(settings.event_streams_max));
        Ok(Self {
            settings: Arc::new(settings),
            store,
            cache,
            metrics,
            accounts,
            catalog,
            carts,
            orders,
            live,
        })
    }
}

/// A built application bound to its port, ready to serve.
pub struct Application {
    acceptor: TcpAcceptor,
    address: SocketAddr,
    state: AppState,
}

impl Application {
    /// Builds the state and binds `HOST:PORT` (port 0 picks a free one, as tests do).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let bind = SocketAddr::new(settings.host, settings.port);
        let state = AppState::build(settings).await?;
        let acceptor = TcpListener::bind(bind)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {bind}"))?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("reading the bound address")?;
        Ok(Self {
            acceptor,
            address,
            state,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests (up to a grace period).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        tracing::info!(address = %self.address, "listening");
        let routes = crate::api::routes(&self.state);
        let live = tokio::spawn(self.state.live.clone().run(self.state.store.clone()));
        let sweeper = tokio::spawn(sweep_guest_carts(
            self.state.carts.clone(),
            self.state.metrics.clone(),
        ));
        let streams = self.state.live.clone();
        let shutdown = async move {
            shutdown.await;
            streams.close();
        };
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(routes, shutdown, Some(SHUTDOWN_GRACE))
            .await;
        sweeper.abort();
        live.abort();
        served
    }
}

/// Deletes expired guest carts, now and then, for as long as the server runs. Every instance sweeps;
/// the deletes are idempotent, so instances sharing a database only repeat each other's work.
async fn sweep_guest_carts(carts: Arc<Carts>, metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(carts.sweep_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match carts.sweep_expired_guests().await {
            Ok(0) => {}
            Ok(n) => {
                metrics.guest_carts_expired(n as u64);
                tracing::info!(carts = n, "expired guest carts deleted");
            }
            Err(e) => tracing::warn!(error = %e, "sweeping expired guest carts failed"),
        }
    }
}

/// Completes on SIGTERM or SIGINT. The handlers are installed here, before the server starts: a signal
/// that arrives once it serves must reach this future, not the default action (exit without draining).
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
