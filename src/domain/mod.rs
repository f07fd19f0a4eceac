//! Values that are valid by construction: parse once at the edge, trust everywhere after.

mod email;
mod password;
mod profile;
mod role;

pub use email::Email;
pub use password::Password;
pub use profile::{Address, DisplayName};
pub use role::Role;
