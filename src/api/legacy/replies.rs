//! What legacy handlers answer: the original's success and error shapes, from the services' `Error`.

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use serde_json::{Value, json};

use crate::api::problem::Problem;
use crate::error::Error;

/// A legacy route's success: a status and a JSON body in the original's shape.
#[derive(ApiResponse)]
pub enum Legacy {
    #[oai(status = 200)]
    Ok(Json<Value>),
    #[oai(status = 201)]
    Created(Json<Value>),
}

/// A legacy route's failure, in the original's shapes. A type of its own, not `Legacy`: poem-openapi
/// lists the responses of both halves of a `Result`, so one type on both sides listed every status
/// twice (duplicated keys in `/openapi.json`, which strict parsers refuse).
#[derive(ApiResponse)]
pub enum LegacyError {
    #[oai(status = 400)]
    BadRequest(Json<Value>),
    #[oai(status = 401)]
    Unauthorized(Json<Value>),
    #[oai(status = 403)]
    Forbidden(Json<Value>),
    #[oai(status = 404)]
    NotFound(Json<Value>),
    #[oai(status = 409)]
    Conflict(Json<Value>),
    /// Refused before the route runs, as a problem document like `/api/v1`'s: the body is too large.
    /// (Documented only: the middleware writes these, so the variants are never built and are boxed
    /// to keep `LegacyError` small.)
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Box<Problem>>),
    /// Refused before the route runs, as a problem document: the body is missing or not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Box<Problem>>),
    #[oai(status = 429)]
    TooManyRequests(Json<Value>, #[oai(header = "Retry-After")] u64),
    #[oai(status = 500)]
    Internal(Json<Value>),
}

impl LegacyError {
    /// The original's error shape: `{"message": ...}`, plus `"success": false` on the auth routes.
    pub(super) fn from_error(err: Error, with_success: bool) -> Self {
        let body = |message: String| {
            if with_success {
                Json(json!({"success": false, "message": message}))
            } else {
                Json(json!({"message": message}))
            }
        };
        match err {
            Error::Validation { field, message } => {
                LegacyError::BadRequest(body(format!("{field} {message}")))
            }
            Error::InvalidCredentials => {
                LegacyError::Unauthorized(body("invalid email or password".into()))
            }
            Error::Unauthenticated | Error::InvalidToken => {
                LegacyError::Unauthorized(body("Unauthorized, Please Login".into()))
            }
            Error::Forbidden => LegacyError::Forbidden(body("Forbidden: admin only".into())),
            Error::NotFound(what) => {
                LegacyError::NotFound(body(format!("{} not found", capitalised(what))))
            }
            Error::Conflict {
                code: "email_taken",
                ..
            } if with_success => LegacyError::BadRequest(body("Email already in use".into())),
            Error::Conflict { message, .. } => LegacyError::Conflict(body(message)),
            Error::InsufficientStock(lines) => {
                let names: Vec<String> = lines.iter().map(|l| l.name.clone()).collect();
                LegacyError::Conflict(body(format!("Not enough stock for: {}", names.join(", "))))
            }
            Error::RateLimited { retry_after } => LegacyError::TooManyRequests(
                body("Too many attempts, please try again later".into()),
                retry_after.as_secs().max(1),
            ),
            Error::Unavailable(_) | Error::Internal(_) => {
                if let Error::Internal(cause) = &err {
                    crate::api::problem::log_internal_error(cause);
                }
                LegacyError::Internal(body("Internal server error".into()))
            }
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A legacy handler's answer: success and failure are both in the original's shapes.
pub(super) type Reply = Result<Legacy, LegacyError>;

pub(super) fn plain<T>(result: Result<T, Error>) -> Result<T, LegacyError> {
    result.map_err(|e| LegacyError::from_error(e, false))
}

pub(super) fn with_success<T>(result: Result<T, Error>) -> Result<T, LegacyError> {
    result.map_err(|e| LegacyError::from_error(e, true))
}
