//! Serving: binds the API's port and the metrics port, and runs the routes over the state
//! (`state::AppState`) until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use poem::endpoint::make_sync;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Endpoint, Response, Route, Server};

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::services::cart::Carts;
use crate::services::catalog::Catalog;
use crate::services::orders::Orders;
use crate::state::AppState;

/// How long a shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// A built application bound to its port, ready to serve.
pub struct Application {
    acceptor: TcpAcceptor,
    address: SocketAddr,
    metrics_acceptor: TcpAcceptor,
    metrics_address: SocketAddr,
    state: AppState,
}

/// Binds `address` (port 0 picks a free one, as tests do) and reads back where it listens.
async fn bind(address: SocketAddr) -> anyhow::Result<(TcpAcceptor, SocketAddr)> {
    let acceptor = TcpListener::bind(address)
        .into_acceptor()
        .await
        .with_context(|| format!("binding {address}"))?;
    let bound = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("reading the bound address")?;
    Ok((acceptor, bound))
}

impl Application {
    /// Builds the state and binds `HOST:PORT` and `HOST:METRICS_PORT`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let api = SocketAddr::new(settings.host, settings.port);
        let metrics = SocketAddr::new(settings.host, settings.metrics_port);
        let state = AppState::build(settings).await?;
        let (acceptor, address) = bind(api).await?;
        let (metrics_acceptor, metrics_address) = bind(metrics).await?;
        Ok(Self {
            acceptor,
            address,
            metrics_acceptor,
            metrics_address,
            state,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where `/metrics` is served.
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests (up to a grace period).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let settings = &self.state.settings;
        tracing::info!(
            version = crate::VERSION,
            store = %settings.surreal.url_for_logs(),
            cache = if settings.redis.is_some() { "redis" } else { "in-process" },
            payments = self.state.payments.provider(),
            docs = %format!("http://{}/docs", self.address),
            metrics = %format!("http://{}/metrics", self.metrics_address),
            "storefront is serving"
        );
        let routes = crate::api::routes(&self.state);
        // Scraped over the private network only; it stops with the process, not gracefully.
        let metrics = tokio::spawn(
            Server::new_with_acceptor(self.metrics_acceptor).run(metrics_routes(&self.state)),
        );
        let live = tokio::spawn(self.state.live.clone().run(self.state.store.clone()));
        let sweeper = tokio::spawn(sweep_guest_carts(
            self.state.carts.clone(),
            self.state.metrics.clone(),
        ));
        let payments = self
            .state
            .payments
            .sweep_interval()
            .map(|every| tokio::spawn(sweep_payments(self.state.orders.clone(), every)));
        let outbox = tokio::spawn(self.state.outbox.clone().run());
        let stamps = tokio::spawn(settle_catalog_stamps(self.state.catalog.clone()));
        let streams = self.state.live.clone();
        let shutdown = async move {
            shutdown.await;
            streams.close();
        };
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(routes, shutdown, Some(SHUTDOWN_GRACE))
            .await;
        sweeper.abort();
        outbox.abort();
        stamps.abort();
        if let Some(payments) = payments {
            payments.abort();
        }
        live.abort();
        metrics.abort();
        served
    }
}

/// The metrics port: `GET /metrics` in Prometheus' text format, and nothing else.
fn metrics_routes(state: &AppState) -> impl Endpoint + 'static {
    let state = state.clone();
    Route::new().at(
        "/metrics",
        poem::get(make_sync(move |_| {
            Response::builder()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(state.metrics.render(&state.gauges()))
        })),
    )
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

/// Tells the shared cache, once it answers again, of catalog changes it missed while it did not
/// (`Catalog::settle_stamps`), for as long as the server runs.
async fn settle_catalog_stamps(catalog: Arc<Catalog>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        catalog.settle_stamps().await;
    }
}

/// Expires unpaid orders and finishes owed payment work (Stripe only), for as long as the server
/// runs. Every instance sweeps; each order's move is a transaction only one of them wins.
async fn sweep_payments(orders: Arc<Orders>, every: Duration) {
    let mut every = tokio::time::interval(every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = orders.sweep_payments().await {
            tracing::warn!(error = %e, "sweeping payments failed");
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
