//! The rules of the store. No HTTP types here: the API layer parses requests into domain types,
//! calls one function, and shapes the answer.

pub mod accounts;
pub mod cart;
pub mod catalog;
pub mod cursor;
pub mod live;
pub mod mailed_token;
pub mod orders;
pub mod outbox;
pub mod password_reset;
pub mod payments;
pub mod readiness;
pub mod verification;
pub mod webhooks;
