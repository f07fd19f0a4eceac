//! Values that are valid by construction (parse once at the edge, trust everywhere after), and the
//! records the services hand around (products, orders, their changes). Nothing here knows HTTP or the
//! database.

mod category;
mod email;
mod ids;
mod invalid;
mod money;
mod order;
mod order_status;
mod password;
mod payment;
mod product;
mod product_sort;
mod profile;
mod quantity;
mod role;

pub use category::{Category, CategorySlug, MAX_SLUG};
pub use email::Email;
pub use ids::{CartOwner, GuestCartId, OrderId, ProductId, SessionId, UserId, VariantId};
pub use invalid::Invalid;
pub use money::{MAX_PRICE_MINOR, Price, STORE_CURRENCY, parse_currency};
pub use order::{Order, OrderChange, OrderLine, Shortage};
pub use order_status::OrderStatus;
pub use password::Password;
pub use payment::{Payment, PaymentStatus};
pub use product::{
    MAX_IMAGES, MAX_OPTIONS, MAX_VARIANTS, Product, ProductImage, ProductOption, ProductStock,
    StockChange, Variant,
};
pub use product_sort::ProductSort;
pub use profile::{Address, DisplayName, bounded_text};
pub use quantity::{MAX_QUANTITY, MAX_STOCK, Quantity, parse_stock};
pub use role::Role;
