//! HTTP: the OpenAPI operations, Swagger UI, and the middleware around them.

pub mod body;
pub mod cached;
pub mod email_text;
pub mod legacy;
pub mod middleware;
pub mod ops;
pub mod problem;
pub mod session_http;
pub mod v1;

use poem::endpoint::make_sync;
use poem::http::{Method, StatusCode, header};
use poem::middleware::{CatchPanic, Compression, CookieJarManager, Cors};
use poem::web::CompressionAlgo;
use poem::{Endpoint, EndpointExt, Request, Response, Route};
use poem_openapi::{ApiResponse, OpenApiService, Tags};
use sha2::{Digest, Sha256};

use crate::state::AppState;

#[derive(Tags)]
pub enum ApiTags {
    /// Register, sign in and out, refresh tokens.
    Auth,
    /// Your own account.
    Users,
    /// The catalog; writes need the admin role.
    Products,
    /// Your cart.
    Cart,
    /// Checkout and your orders.
    Orders,
    /// Store administration: needs the admin role.
    Admin,
    /// Events from the payment provider (Stripe), signed by it.
    Payments,
    /// Compatibility surface: the original NextBuy backend's routes, shapes and messages, kept so its
    /// React front-end works unchanged. New clients should use `/api/v1`.
    Legacy,
    /// Health and readiness.
    Operations,
}

/// An operation that succeeds with nothing to say.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// An operation whose work the outbox does shortly.
#[derive(ApiResponse)]
pub enum Queued {
    /// Queued: the outbox sends it shortly.
    #[oai(status = 202)]
    Accepted,
}

/// Every OpenAPI struct, in the order they appear in the docs.
pub type Apis = (
    v1::auth::AuthApi,
    v1::users::UsersApi,
    v1::products::ProductsApi,
    v1::variants::VariantsApi,
    v1::categories::CategoriesApi,
    v1::images::ImagesApi,
    v1::cart::CartApi,
    v1::orders::OrdersApi,
    v1::events::EventsApi,
    v1::payments::PaymentsApi,
    v1::messages::MessagesApi,
    v1::webhooks::WebhooksApi,
    ops::OpsApi,
    legacy::LegacyApi,
);

pub fn openapi(state: &AppState) -> OpenApiService<Apis, ()> {
    let cookies = session_http::SessionCookies::new(state.settings.cookies.clone());
    let apis = (
        v1::auth::AuthApi {
            accounts: state.accounts.clone(),
            carts: state.carts.clone(),
            resets: state.resets.clone(),
            verifications: state.verifications.clone(),
            cookies: cookies.clone(),
        },
        v1::users::UsersApi {
            accounts: state.accounts.clone(),
            verifications: state.verifications.clone(),
            cookies: cookies.clone(),
        },
        v1::products::ProductsApi {
            catalog: state.catalog.clone(),
        },
        v1::variants::VariantsApi {
            catalog: state.catalog.clone(),
        },
        v1::categories::CategoriesApi {
            catalog: state.catalog.clone(),
        },
        v1::images::ImagesApi {
            catalog: state.catalog.clone(),
        },
        v1::cart::CartApi {
            carts: state.carts.clone(),
            sessions: state.accounts.sessions().clone(),
            cookies: cookies.clone(),
            guest_ttl: state.settings.guest_cart_ttl,
        },
        v1::orders::OrdersApi {
            orders: state.orders.clone(),
        },
        v1::events::EventsApi {
            orders: state.orders.clone(),
            catalog: state.catalog.clone(),
            live: state.live.clone(),
            sessions: state.accounts.sessions().clone(),
        },
        v1::payments::PaymentsApi {
            payments: state.payments.clone(),
        },
        v1::messages::MessagesApi {
            outbox: state.outbox.clone(),
        },
        v1::webhooks::WebhooksApi {
            webhooks: state.webhooks.clone(),
        },
        ops::OpsApi {
            dependencies: state.dependencies.clone(),
        },
        legacy::LegacyApi {
            accounts: state.accounts.clone(),
            catalog: state.catalog.clone(),
            carts: state.carts.clone(),
            orders: state.orders.clone(),
            cookies: cookies.clone(),
        },
    );
    OpenApiService::new(apis, "Storefront", env!("CARGO_PKG_VERSION")).description(
        "Accounts, catalog, carts and orders for an online store. Authenticate with \
             `Authorization: Bearer <access token>` or the HttpOnly cookies set at login. \
             Every error is an RFC 9457 problem document (`application/problem+json`).",
    )
}

/// Cross-site access for the listed origins only, with credentials (cookies). Never `*`: with an empty
/// list this layer is not installed at all, and unlisted origins get no grant.
fn cors(origins: &[String]) -> Cors {
    Cors::new()
        .allow_origins(origins.iter().map(String::as_str))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            "content-type",
            "authorization",
            "idempotency-key",
            "x-request-id",
            "x-cart-token",
        ])
        .expose_headers(["x-request-id", "retry-after", "idempotency-replayed"])
        .max_age(600)
}

/// `/openapi.json` with an `ETag` (the document's hash): a client holding the current document gets
/// a 304 and nothing else.
fn spec_endpoint(spec: String) -> impl Endpoint + 'static {
    let digest = Sha256::digest(spec.as_bytes());
    let etag = format!("\"{}\"", hex::encode(&digest[..16]));
    make_sync(move |req: Request| {
        let matches = cached::if_none_match(req.headers(), &etag);
        let builder = Response::builder()
            .header(header::ETAG, etag.as_str())
            .header(header::CACHE_CONTROL, "no-cache");
        if matches {
            builder.status(StatusCode::NOT_MODIFIED).finish()
        } else {
            builder
                .content_type("application/json; charset=utf-8")
                .body(spec.clone())
        }
    })
}

/// The whole HTTP application: API, docs, and middleware.
pub fn routes(state: &AppState) -> impl Endpoint + 'static {
    let api = openapi(state);
    let docs = api.swagger_ui();
    let spec = spec_endpoint(api.spec());
    // Only these two: they are big and static. API answers are small, and compressing an event
    // stream would hold its events back. gzip only: at poem's default level brotli came out 2.5
    // times larger here (the document: 211 KB raw, 13.5 KB gzip, 33.9 KB br).
    let compressed = || Compression::new().algorithms([CompressionAlgo::GZIP]);
    Route::new()
        .nest("/", api)
        .nest("/docs", docs.with(compressed()))
        .at("/openapi.json", spec.with(compressed()))
        .at(
            "/media/:file",
            poem::get(v1::images::serve_media).data(state.catalog.clone()),
        )
        .with(CatchPanic::new())
        .with(CookieJarManager::new())
        .with_if(
            !state.settings.cors_origins.is_empty(),
            cors(&state.settings.cors_origins),
        )
        .data(state.accounts.sessions().clone())
        .data(session_http::ClientIpHeader(
            state.settings.client_ip_header.clone(),
        ))
        .with(middleware::Observe {
            metrics: state.metrics.clone(),
            hsts: state.settings.is_production(),
        })
}
