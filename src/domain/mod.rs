//! Values that are valid by construction: parse once at the edge, trust everywhere after.

mod email;
mod invalid;
mod money;
mod order_status;
mod password;
mod profile;
mod quantity;
mod role;

pub use email::Email;
pub use invalid::Invalid;
pub use money::{MAX_PRICE_MINOR, Price, STORE_CURRENCY, parse_currency};
pub use order_status::OrderStatus;
pub use password::Password;
pub use profile::{Address, DisplayName, bounded_text};
pub use quantity::{MAX_QUANTITY, MAX_STOCK, Quantity, parse_stock};
pub use role::Role;
