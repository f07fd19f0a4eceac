//! The integration tests: one binary, a module per capability over the harness in `common` (one test
//! binary links SurrealDB once; a binary per file linked it once each).

mod common;

mod accounts;
mod cart;
mod catalog;
mod checkout;
mod deploy;
mod event_streams;
mod guest_cart;
mod http_contract;
mod images;
mod instances;
mod legacy;
mod mail;
mod orders;
mod payments;
mod reliability;
mod resilience;
mod sessions;
mod tls;
mod variants;
mod webhooks;
