//! Request body limits: 64 KiB, 1 MiB for bulk product creation, an image and its form for an image
//! upload, refused with 413 before a handler reads anything.

use poem::http::{StatusCode, header};
use poem::{Body, Request, Response};

use crate::api::problem::{CONTENT_TYPE, Problem};

/// Request bodies above this are refused with 413 before anything reads them.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Bulk product creation (up to 1,000 products) may send more.
pub const BULK_BODY_LIMIT: usize = 1024 * 1024;

/// An image upload: the largest image plus room for the form around it.
pub const IMAGE_BODY_LIMIT: usize = crate::services::catalog::MAX_IMAGE_BYTES + 64 * 1024;

pub(super) fn body_limit(path: &str) -> usize {
    if path.ends_with("/products/bulk") {
        BULK_BODY_LIMIT
    } else if path.starts_with("/api/v1/products/") && path.ends_with("/images") {
        IMAGE_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// Refuses bodies over the route's limit (`body_limit`): by `Content-Length` when given, else by
/// reading at most that much. The problem names the limit of the route the body came to.
pub(super) async fn limit_body(req: &mut Request) -> Result<(), Response> {
    let limit = body_limit(req.uri().path());
    let too_large = || {
        let problem = Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "request bodies on this route are limited to {} KiB",
                limit / 1024
            ),
        );
        Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .content_type(CONTENT_TYPE)
            .body(serde_json::to_string(&problem).unwrap_or_default())
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => Err(too_large()),
        Some(_) => Ok(()),
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => {
            let bytes = req
                .take_body()
                .into_bytes_limit(limit)
                .await
                .map_err(|_| too_large())?;
            req.set_body(Body::from_bytes(bytes));
            Ok(())
        }
        None => Ok(()),
    }
}
