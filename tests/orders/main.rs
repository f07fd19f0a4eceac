//! Carts, guest carts, atomic checkout, orders and their event streams, over HTTP against real engines.

#[path = "../common/mod.rs"]
mod common;

mod cart;
mod checkout;
mod event_streams;
mod guest_cart;
mod orders;
