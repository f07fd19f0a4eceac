//! RFC 9457 problem documents: the one shape of every error this service answers with.
//!
//! Handlers return `ApiError`, built from the domain `Error` in one place (`From<Error>`). Everything
//! else that can fail before a handler runs (unknown route, bad JSON, body too large, missing auth) is
//! rewritten into the same shape by `middleware::problems`, which also stamps the request id.

use std::time::Duration;

use poem::IntoResponse;
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object};

use crate::error::Error;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Problem {
    /// URI naming the kind of problem: `urn:storefront:problem:<code>`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`, `email_taken`, `invalid_token`.
    pub code: String,
    /// The request field at fault, for validation problems.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For validation problems, each field at fault with what is wrong with it (RFC 9457 §3).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_params: Option<Vec<InvalidParam>>,
    /// For `insufficient_stock`: each cart line that could not be filled.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortages: Option<Vec<Shortage>>,
    /// The request id (also in the `X-Request-Id` header), to quote when reporting a problem.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:storefront:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            field: None,
            invalid_params: None,
            shortages: None,
            request_id: None,
        }
    }

    /// A 422 `validation_failed` naming the field at fault (a body field's path, a parameter's name).
    pub fn invalid(field: &str, reason: &str) -> Self {
        Self {
            field: Some(field.to_string()),
            invalid_params: Some(vec![InvalidParam {
                name: field.to_string(),
                reason: reason.to_string(),
            }]),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("{field}: {reason}"),
            )
        }
    }
}

/// A field at fault and what is wrong with it.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct InvalidParam {
    /// The field's path in the body (`products[3].price`) or the parameter's name.
    pub name: String,
    pub reason: String,
}

/// A cart line checkout could not fill.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Shortage {
    pub product_id: i64,
    /// The line: a cart holds one per variant.
    pub variant_id: i64,
    pub name: String,
    pub sku: String,
    /// Units the cart asks for.
    pub requested: i64,
    /// Units in stock (0 for an archived product).
    pub available: i64,
}

/// Every error status an operation can answer with, each a problem document.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, wrong types).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid or expired credentials.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// Authenticated, but not allowed to do this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource, or not yours.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request clashes with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than the service accepts.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is missing or not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// A field is invalid; `field` names it.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many attempts; wait `Retry-After` seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// An unexpected failure; nothing was changed. Quote the request id.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency is unavailable; try again shortly.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(invalid: crate::domain::Invalid) -> Self {
        Error::from(invalid).into()
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let problem = |status, code: &str| Json(Problem::new(status, code, err.to_string()));
        match &err {
            Error::Validation { field, message } => {
                ApiError::Unprocessable(Json(Problem::invalid(field, message)))
            }
            Error::InvalidCredentials => {
                ApiError::Unauthorized(problem(StatusCode::UNAUTHORIZED, "invalid_credentials"))
            }
            Error::Unauthenticated => {
                ApiError::Unauthorized(problem(StatusCode::UNAUTHORIZED, "unauthenticated"))
            }
            Error::InvalidToken => {
                ApiError::Unauthorized(problem(StatusCode::UNAUTHORIZED, "invalid_token"))
            }
            Error::Forbidden => ApiError::Forbidden(problem(StatusCode::FORBIDDEN, "forbidden")),
            Error::NotFound(_) => ApiError::NotFound(problem(StatusCode::NOT_FOUND, "not_found")),
            Error::Conflict { code, .. } => ApiError::Conflict(problem(StatusCode::CONFLICT, code)),
            Error::InsufficientStock(lines) => {
                let mut p = problem(StatusCode::CONFLICT, "insufficient_stock");
                p.0.shortages = Some(
                    lines
                        .iter()
                        .map(|l| Shortage {
                            product_id: l.product_id.get(),
                            variant_id: l.variant_id.get(),
                            name: l.name.clone(),
                            sku: l.sku.clone(),
                            requested: l.requested,
                            available: l.available,
                        })
                        .collect(),
                );
                ApiError::Conflict(p)
            }
            Error::RateLimited { retry_after } => ApiError::TooManyRequests(
                problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
                retry_after_seconds(*retry_after),
            ),
            Error::Unavailable(_) => {
                ApiError::Unavailable(problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable"))
            }
            Error::Internal(cause) => {
                log_internal_error(cause);
                ApiError::Internal(Json(Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an unexpected error occurred; nothing was changed",
                )))
            }
        }
    }
}

/// Whole seconds, rounded up, never 0 (a client told to wait 0 s would retry at once).
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.as_secs() == 0))
}

/// The request being served, as its internal-error line needs it: its id, and whether that line was
/// logged already.
pub(super) struct RequestLog {
    pub id: String,
    pub error_logged: std::cell::Cell<bool>,
}

tokio::task_local! {
    pub(super) static REQUEST_LOG: RequestLog;
}

/// Logs an internal error as one line naming the request id and the cause's chain (no backtrace,
/// whatever `RUST_BACKTRACE` says); the request's own closing line then stays at info, so a 500 costs
/// one error line. The id is a field of the line itself, not only of the request's span.
pub fn log_internal_error(cause: &anyhow::Error) {
    let id = REQUEST_LOG.try_with(|r| r.id.clone()).ok();
    tracing::error!(request.id = id, error = %format_args!("{cause:#}"), "internal error");
    let _ = REQUEST_LOG.try_with(|r| r.error_logged.set(true));
}

/// A handler's result: `Problems<S>` documents only the error statuses in `S` (see `statuses`);
/// an operation that names no set documents every status `ApiError` has.
pub type ApiResult<T, E = ApiError> = Result<T, E>;

/// The error statuses an operation can answer with, as bits for `Problems`. Every operation can
/// answer 500 and 503 (the database or the cache down), so those are always documented.
pub mod statuses {
    pub const BAD_REQUEST: u16 = 1;
    pub const UNAUTHORIZED: u16 = 1 << 1;
    pub const FORBIDDEN: u16 = 1 << 2;
    pub const NOT_FOUND: u16 = 1 << 3;
    pub const CONFLICT: u16 = 1 << 4;
    pub const PAYLOAD_TOO_LARGE: u16 = 1 << 5;
    pub const UNSUPPORTED_MEDIA_TYPE: u16 = 1 << 6;
    pub const UNPROCESSABLE: u16 = 1 << 7;
    pub const TOO_MANY_REQUESTS: u16 = 1 << 8;

    /// An operation with parameters: one that does not parse or fit is a 422 naming it.
    pub const PARAMS: u16 = UNPROCESSABLE;
    /// An operation with a JSON body: unreadable (400), too large (413), not JSON (415), a field
    /// that does not fit (422).
    pub const BODY: u16 = BAD_REQUEST | PAYLOAD_TOO_LARGE | UNSUPPORTED_MEDIA_TYPE | UNPROCESSABLE;
    /// An operation for signed-in callers.
    pub const SIGNED_IN: u16 = UNAUTHORIZED;
    /// An operation for admins.
    pub const ADMIN: u16 = UNAUTHORIZED | FORBIDDEN;

    /// The bit of an HTTP status; 500 and 503, always documented, have all bits.
    pub(super) fn bit(status: u16) -> u16 {
        match status {
            400 => BAD_REQUEST,
            401 => UNAUTHORIZED,
            403 => FORBIDDEN,
            404 => NOT_FOUND,
            409 => CONFLICT,
            413 => PAYLOAD_TOO_LARGE,
            415 => UNSUPPORTED_MEDIA_TYPE,
            422 => UNPROCESSABLE,
            429 => TOO_MANY_REQUESTS,
            _ => u16::MAX,
        }
    }
}

/// `ApiError`, documented with only the statuses in `S` (plus 500 and 503).
#[derive(Debug)]
pub struct Problems<const S: u16>(ApiError);

impl<const S: u16> ApiResponse for Problems<S> {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        // 500 and 503 (all bits) stay whatever `S` is, `0` included.
        meta.responses.retain(|r| {
            r.status.is_some_and(|status| {
                let bit = statuses::bit(status);
                bit == u16::MAX || bit & S != 0
            })
        });
        meta
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
    }
}

impl<const S: u16> IntoResponse for Problems<S> {
    fn into_response(self) -> poem::Response {
        self.0.into_response()
    }
}

impl<const S: u16> From<Problems<S>> for poem::Error {
    fn from(problems: Problems<S>) -> Self {
        problems.0.into()
    }
}

impl<const S: u16> From<Error> for Problems<S> {
    fn from(err: Error) -> Self {
        Self(err.into())
    }
}

impl<const S: u16> From<ApiError> for Problems<S> {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl<const S: u16> From<crate::domain::Invalid> for Problems<S> {
    fn from(invalid: crate::domain::Invalid) -> Self {
        Self(invalid.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
    }
}
