//! JSON answers from a cached `Body` (`cache::Body`): documented as the schema `T`, sent as the stored
//! bytes. Each carries its `ETag`; a request whose `If-None-Match` holds it gets a 304 and no body, and
//! one that accepts gzip gets the stored gzip. Public reads may be kept by browsers and shared caches,
//! which must revalidate (`no-cache`): stock changes with every order.

use std::marker::PhantomData;

use poem::http::{HeaderMap, HeaderValue, StatusCode, header};
use poem::{IntoResponse, Request, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};

use crate::cache::Body;

const CACHE_CONTROL: &str = "public, no-cache";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A cached JSON answer of schema `T`.
pub struct CachedJson<T> {
    body: Body,
    not_modified: bool,
    gzip: bool,
    schema: PhantomData<fn() -> T>,
}

impl<T> CachedJson<T> {
    /// The answer to `req` from `body`: 304 when the client holds it, gzip when it takes it.
    pub fn answer(req: &Request, body: Body) -> Self {
        let headers = req.headers();
        let etag = std::str::from_utf8(body.etag()).unwrap_or_default();
        Self {
            not_modified: if_none_match(headers, etag),
            gzip: body.gzip().is_some() && accepts_gzip(headers),
            body,
            schema: PhantomData,
        }
    }
}

impl<T: Send> IntoResponse for CachedJson<T> {
    fn into_response(self) -> Response {
        let etag = HeaderValue::from_maybe_shared(self.body.etag().clone())
            .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        let mut builder = Response::builder()
            .header(header::ETAG, etag)
            .header(header::CACHE_CONTROL, CACHE_CONTROL);
        if self.body.gzip().is_some() {
            builder = builder.header(header::VARY, "accept-encoding");
        }
        if self.not_modified {
            return builder.status(StatusCode::NOT_MODIFIED).finish();
        }
        let builder = builder.content_type(CONTENT_TYPE);
        match self.body.gzip() {
            Some(gzip) if self.gzip => builder
                .header(header::CONTENT_ENCODING, "gzip")
                .body(gzip.clone()),
            _ => builder.body(self.body.plain().clone()),
        }
    }
}

impl<T: Type + Send> ApiResponse for CachedJson<T> {
    fn meta() -> MetaResponses {
        let header = |name: &str, description: &str| MetaHeader {
            name: name.to_string(),
            description: Some(description.to_string()),
            required: true,
            deprecated: false,
            schema: String::schema_ref(),
        };
        let etag = || {
            header(
                "ETag",
                "The body's strong validator: send it back in `If-None-Match`.",
            )
        };
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The body (gzip-encoded when the request accepts gzip and it is \
                                  over 1 KiB).",
                    status: Some(200),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: CONTENT_TYPE,
                        schema: T::schema_ref(),
                    }],
                    headers: vec![
                        etag(),
                        header(
                            "Cache-Control",
                            "`public, no-cache`: keep it, revalidate it.",
                        ),
                    ],
                },
                MetaResponse {
                    description: "Not modified: the `If-None-Match` given holds the current ETag.",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: vec![etag()],
                },
            ],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// The JSON of a documented type, as `CachedJson` stores it.
pub fn json_bytes<T: ToJSON>(value: &T) -> Vec<u8> {
    // Writing a `Value` into memory cannot fail.
    serde_json::to_vec(&value.to_json()).unwrap_or_default()
}

/// Whether `If-None-Match` holds `etag` (or `*`): the client's copy is current. Weak comparison, as
/// RFC 9110 asks of `If-None-Match`: `W/"x"` matches `"x"`.
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Whether `Accept-Encoding` takes gzip: `gzip` or `*` with a quality above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let accepts = |v: &str| accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, v)]));
        assert!(accepts("gzip"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip; q=0.000"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_compares_weakly_across_lists() {
        let tag = "\"abc\"";
        let matches = |v: &str| if_none_match(&headers(&[(header::IF_NONE_MATCH, v)]), tag);
        assert!(matches("\"abc\""));
        assert!(matches("\"x\", W/\"abc\""));
        assert!(matches("*"));
        assert!(!matches("\"abcd\""));
        assert!(!matches("abc"));
        assert!(!if_none_match(&HeaderMap::new(), tag));
    }
}
