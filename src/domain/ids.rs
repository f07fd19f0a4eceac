//! The ids of the store's records, one type each, so that an order id cannot be passed where a user id
//! belongs. Parsed once at the edge; the store binds them as the text or number the database keys by.

use std::fmt;

/// A positive integer id (the original backend's numbering), one type per table.
macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// `None` for ids no record can have (zero and below).
            pub fn new(id: i64) -> Option<Self> {
                (id >= 1).then_some(Self(id))
            }

            /// An id the store gave out: it is not checked again.
            pub fn from_trusted(id: i64) -> Self {
                Self(id)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

int_id!(
    /// A product: a positive number (the original backend's integer ids).
    ProductId
);

int_id!(
    /// A variant of a product: a positive number of its own, given out in order. A product made
    /// before variants existed has one variant with the product's own number.
    VariantId
);

/// An order: a UUID (version 7, so ids sort by creation time), always written in its hyphenated
/// lower-case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderId(uuid::Uuid);

impl OrderId {
    /// A new id, later than every id made before it on this machine.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// `None` for text that is not a UUID.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text).ok().map(Self)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// An id the store gave out, or one a verified token names: it is not checked again.
            pub fn from_trusted(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

text_id!(
    /// A user: the key SurrealDB gave their record.
    UserId
);
text_id!(
    /// A session: a UUID made at login, named by the session's tokens.
    SessionId
);
impl SessionId {
    /// `None` for text that is not a UUID (so no session's id).
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text)
            .ok()
            .map(|id| Self(id.hyphenated().to_string()))
    }
}

text_id!(
    /// A guest's cart: `guest_` and a random UUID, never a user's id.
    GuestCartId
);

impl GuestCartId {
    pub fn generate() -> Self {
        Self(format!("guest_{}", uuid::Uuid::new_v4().simple()))
    }
}

/// Whose cart: a signed-in user's, or a guest's named by a cart token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartOwner {
    User(UserId),
    Guest(GuestCartId),
}

impl CartOwner {
    /// The cart's key: the user's id, or the guest cart's id.
    pub fn key(&self) -> &str {
        match self {
            CartOwner::User(id) => id.as_str(),
            CartOwner::Guest(id) => id.as_str(),
        }
    }

    pub fn is_guest(&self) -> bool {
        matches!(self, CartOwner::Guest(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_are_positive() {
        assert_eq!(ProductId::new(0), None);
        assert_eq!(ProductId::new(-3), None);
        assert_eq!(ProductId::new(7).map(ProductId::get), Some(7));
    }

    #[test]
    fn order_ids_are_uuids_in_one_spelling() {
        assert_eq!(OrderId::parse("not-a-uuid"), None);
        let id = OrderId::parse("0192F0C4-5E1B-7A3C-8D2E-1F0A9B8C7D6E").unwrap();
        assert_eq!(id.to_string(), "0192f0c4-5e1b-7a3c-8d2e-1f0a9b8c7d6e");
        assert!(OrderId::generate().to_string() < OrderId::generate().to_string());
    }

    #[test]
    fn a_guest_cart_key_is_never_a_user_key() {
        // User ids are SurrealDB's record keys: letters and digits, no underscore.
        assert!(GuestCartId::generate().as_str().starts_with("guest_"));
    }
}
