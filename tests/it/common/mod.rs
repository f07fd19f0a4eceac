//! Test harness: every test spawns the real application on a free port, over its own SurrealDB
//! namespace (and so its own cache key prefix), and talks to it over real HTTP.

mod app;
mod client;
mod events;
mod processes;
mod receiver;
mod shopping;
mod smtp;
mod tls;

pub use app::{
    Customer, JWT_SECRET, PASSWORD, TestApp, redis_url, remote_surreal, settings, surrealkv_url,
    temp_dir, unique,
};
pub use client::{Api, Res, assert_no_hash, multipart, read};
pub use events::EventReader;
pub use processes::{PrivateRedis, ServerProcess, SurrealServer, cli, free_port, wait_for_port};
pub use receiver::{Received, Receiver};
pub use shopping::{
    add, checkout, checkout_all, customers, order_units, sell_while_redis_is_away, stock,
    variant_units,
};
pub use smtp::{SmtpCapture, VERIFY_SUBJECT, reset_token};
pub use tls::{TestCa, TlsRedis};
