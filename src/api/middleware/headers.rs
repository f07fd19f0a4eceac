//! The security headers every response carries.

use poem::http::HeaderMap;
use poem::http::header::HeaderValue;

/// `docs`: the Swagger UI, which must load its own scripts and frames; `hsts` in production.
pub(super) fn security_headers(headers: &mut HeaderMap, docs: bool, hsts: bool) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if !docs {
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if hsts {
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
}
