//! Storefront: the backend of an online store, served as a REST API with its own Swagger UI.

pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod payments;
pub mod services;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod webhooks;

pub use app::Application;
pub use config::Settings;
pub use state::AppState;

/// This build's version (Cargo.toml), in `storefront --version`, `/health` and `storefront_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
