//! The `/api/v1` operations, one file per resource.

pub mod auth;
pub mod cart;
pub mod categories;
pub mod events;
pub mod images;
pub mod messages;
pub mod orders;
pub mod payments;
pub mod products;
pub mod users;
pub mod variants;
pub mod webhooks;
