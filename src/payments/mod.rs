//! The payment provider's side of payments: Stripe's API (a small client over `reqwest`) and the
//! verification of the webhooks it sends. What a payment does to an order is the services' business
//! (`services::payments`); nothing here knows the store.

mod stripe;
mod webhook;

pub use stripe::{Intent, StripeClient, StripeError};
pub use webhook::{Event, EventKind, SignatureError, verify_signature};
