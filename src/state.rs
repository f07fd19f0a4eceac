//! Wiring: builds every service once from the settings, below the HTTP layer that uses them.

use std::sync::Arc;

use crate::auth::{
    LoginLimiter, LoginLimits, PasswordHasher, SessionService, TokenIssuer, derived_key,
};
use crate::cache::Cache;
use crate::config::Settings;
use crate::mail::Mailer;
use crate::media::Media;
use crate::metrics::{Gauges, Metrics};
use crate::services::accounts::Accounts;
use crate::services::cart::Carts;
use crate::services::catalog::Catalog;
use crate::services::cursor::CursorCodec;
use crate::services::live::LiveUpdates;
use crate::services::orders::{CheckoutRules, Orders};
use crate::services::outbox::Outbox;
use crate::services::password_reset::PasswordResets;
use crate::services::payments::Payments;
use crate::services::readiness::Dependencies;
use crate::services::verification::Verifications;
use crate::services::webhooks::Webhooks;
use crate::store::{self, Store};

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
    pub payments: Arc<Payments>,
    pub outbox: Arc<Outbox>,
    pub resets: Arc<PasswordResets>,
    pub verifications: Arc<Verifications>,
    pub webhooks: Arc<Webhooks>,
    pub live: Arc<LiveUpdates>,
    pub dependencies: Arc<Dependencies>,
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
        let cache = match &settings.redis {
            Some(redis) => Cache::redis(
                redis.url.expose(),
                redis.ca.as_ref(),
                settings.cache_prefix(),
                metrics.clone(),
            )?,
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
        let hasher = PasswordHasher::default();
        let limiter = LoginLimiter::new(
            cache.clone(),
            LoginLimits {
                per_ip: settings.login_limit_per_ip,
                per_email_and_ip: settings.login_limit_per_email,
                per_email: settings.login_limit_per_email_global,
            },
        );
        let outbox = Arc::new(Outbox::new(
            store.clone(),
            Mailer::new(&settings.mail)?,
            &settings.mail,
        )?);
        if !outbox.relays() {
            tracing::warn!("SMTP_URL is not set: emails are written to the log only");
        }
        let resets = Arc::new(PasswordResets::new(
            store.clone(),
            hasher.clone(),
            sessions.clone(),
            limiter.clone(),
            outbox.clone(),
            &settings.mail,
        ));
        let webhooks = Arc::new(Webhooks::new(
            store.clone(),
            outbox.clone(),
            !settings.is_production(),
        ));
        let verifications = Arc::new(Verifications::new(
            store.clone(),
            limiter.clone(),
            outbox.clone(),
            &settings.mail,
        ));
        let accounts = Arc::new(Accounts::new(
            store.clone(),
            hasher,
            sessions,
            limiter,
            verifications.clone(),
        ));
        let cursors = CursorCodec::new(derived_key(&settings.jwt_secret, b"storefront cursor key"));
        let media = Media::open(&settings.media)?;
        let catalog = Arc::new(Catalog::new(
            store.clone(),
            cache.clone(),
            cursors.clone(),
            media,
        ));
        // An instance that died between committing a change and stamping it left the shared cache
        // holding bodies from before that change: starting puts every cached catalog body out of
        // date (one stamp; the next reads make them again).
        catalog.invalidate().await;
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
        let payments = Arc::new(Payments::new(
            store.clone(),
            metrics.clone(),
            &settings.payments,
        )?);
        let orders = Arc::new(Orders::new(
            store.clone(),
            carts.clone(),
            catalog.clone(),
            payments.clone(),
            cursors,
            CheckoutRules {
                low_stock_threshold: settings.low_stock_threshold,
                require_verified_email: settings.require_verified_email,
            },
        ));
        let live = Arc::new(LiveUpdates::new(settings.event_streams_max));
        let dependencies = Arc::new(Dependencies::new(store.clone(), cache.clone()));
        Ok(Self {
            settings: Arc::new(settings),
            store,
            cache,
            metrics,
            accounts,
            catalog,
            carts,
            orders,
            payments,
            outbox,
            resets,
            verifications,
            webhooks,
            live,
            dependencies,
        })
    }

    /// What `/metrics` reads off the running services.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            open_streams: self.live.open_streams(),
            breaker_open: self.cache.is_redis().then(|| self.cache.is_bypassed()),
        }
    }
}
