//! The one error type services return. `api::problem` maps it, once, to an RFC 9457 problem document.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is not acceptable.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// Login failed. Deliberately says nothing about which half was wrong.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// No usable credentials came with the request.
    #[error("authentication required")]
    Unauthenticated,
    /// Credentials came but are expired, forged, or belong to a revoked session.
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("you do not have permission to do this")]
    Forbidden,
    /// What was asked for does not exist, or is not the caller's to see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with the current state (e.g. the email is taken).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Checkout could not fill these lines; nothing was changed.
    #[error("not enough stock for {} line(s) of the cart", .0.len())]
    InsufficientStock(Vec<crate::domain::Shortage>),
    #[error("too many attempts, try again later")]
    RateLimited { retry_after: Duration },
    /// Something this service depends on is unavailable; nothing was changed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Puts a validation error's field under `prefix` (e.g. `price` → `products[3].price`).
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Validation { field, message } => Self::Validation {
                field: format!("{prefix}.{field}"),
                message,
            },
            other => other,
        }
    }
}

impl From<crate::domain::Invalid> for Error {
    fn from(invalid: crate::domain::Invalid) -> Self {
        Self::Validation {
            field: invalid.field,
            message: invalid.message,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
