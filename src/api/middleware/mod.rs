//! What wraps every request: a request id and its tracing span, the body size limit (`limits`),
//! metrics, security headers (`headers`), and the rewriting of every error into a problem document
//! (`problems`).

mod headers;
mod limits;
mod problems;

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use poem::http::HeaderMap;
use poem::http::header::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing::Instrument as _;

use self::headers::security_headers;
use self::limits::limit_body;
use self::problems::{error_response, problems};
use super::problem::{REQUEST_LOG, RequestLog};
use crate::metrics::Metrics;

pub use self::limits::{BODY_LIMIT, BULK_BODY_LIMIT};

pub const REQUEST_ID: &str = "x-request-id";

pub struct Observe {
    pub metrics: Arc<Metrics>,
    pub hsts: bool,
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint {
            inner,
            metrics: self.metrics.clone(),
            hsts: self.hsts,
        }
    }
}

pub struct ObserveEndpoint<E> {
    inner: E,
    metrics: Arc<Metrics>,
    hsts: bool,
}

/// The request id of the request being served; handlers read it through `Request::data`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        let started = Instant::now();
        let request_id =
            incoming_request_id(req.headers()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        req.extensions_mut().insert(RequestId(request_id.clone()));
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let span = tracing::info_span!(
            "request",
            request.id = %request_id,
            http.method = %method,
            http.path = %path,
            http.route = tracing::field::Empty,
            http.status = tracing::field::Empty,
        );

        let request_log = RequestLog {
            id: request_id.clone(),
            error_logged: Cell::new(false),
        };
        let (response, cause_logged) = REQUEST_LOG
            .scope(request_log, async {
                let response = match limit_body(&mut req).await {
                    Ok(()) => match self.inner.call(req).await {
                        Ok(response) => response.into_response(),
                        Err(err) => error_response(err),
                    },
                    Err(too_large) => too_large,
                };
                (response, REQUEST_LOG.with(|r| r.error_logged.get()))
            })
            .instrument(span.clone())
            .await;

        // A path no route serves gets one label, whatever was asked (nesting leaves an empty pattern).
        let route = response
            .data::<poem::PathPattern>()
            .map(|p| p.0.to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "unmatched".to_string());
        let mut response = problems(response, &request_id).await;
        let status = response.status();
        let docs = path == "/docs" || path.starts_with("/docs/");
        security_headers(response.headers_mut(), docs, self.hsts);
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }

        let elapsed = started.elapsed();
        self.metrics
            .request(method.as_str(), &route, status.as_u16(), elapsed);
        span.record("http.route", route.as_str());
        span.record("http.status", status.as_u16());
        let _entered = span.enter();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        // A handler's internal error has logged its one line already (`problem::log_internal_error`).
        if status.is_server_error() && !cause_logged {
            tracing::error!(latency_ms, "request failed");
        } else {
            tracing::info!(latency_ms, "request finished");
        }
        Ok(response)
    }
}

/// Accepts a caller's `X-Request-Id` when it is a sane token (so it cannot inject into logs or headers).
fn incoming_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(REQUEST_ID)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    sane.then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use poem::http::{StatusCode, header};

    use super::*;
    use crate::api::problem::CONTENT_TYPE;
    use poem::middleware::CatchPanic;
    use poem::{EndpointExt as _, Route, handler};

    #[handler]
    fn boom() -> &'static str {
        panic!("a handler bug")
    }

    #[handler]
    fn fine() -> &'static str {
        "fine"
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_500_problem_and_the_server_goes_on() {
        let app = Route::new()
            .at("/boom", poem::get(boom))
            .at("/fine", poem::get(fine))
            .with(CatchPanic::new())
            .with(Observe {
                metrics: Arc::new(Metrics::default()),
                hsts: false,
            });
        let call = |path: &'static str| {
            app.call(
                Request::builder()
                    .uri(poem::http::Uri::from_static(path))
                    .finish(),
            )
        };
        let response = call("/boom").await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = response
            .headers()
            .get(REQUEST_ID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            CONTENT_TYPE
        );
        let body: serde_json::Value =
            serde_json::from_str(&response.into_body().into_string().await.unwrap()).unwrap();
        assert_eq!(body["code"], "internal_error");
        assert_eq!(body["request_id"], request_id.as_str());
        assert!(
            !body.to_string().contains("a handler bug"),
            "panic message leaked"
        );

        let after = call("/fine").await.unwrap();
        assert_eq!(after.status(), StatusCode::OK);
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[handler]
    fn failing() -> Result<&'static str> {
        let cause = anyhow::anyhow!("disk on fire").context("reading the cart");
        Err(crate::api::problem::ApiError::from(crate::error::Error::Internal(cause)).into())
    }

    #[tokio::test]
    async fn an_internal_error_logs_one_line_with_the_request_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Route::new().at("/fail", poem::get(failing)).with(Observe {
            metrics: Arc::new(Metrics::default()),
            hsts: false,
        });
        let response = app
            .call(
                Request::builder()
                    .uri(poem::http::Uri::from_static("/fail"))
                    .header(REQUEST_ID, "req-42")
                    .finish(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{text}");
        assert!(errors[0].contains("req-42"), "{text}");
        assert!(
            errors[0].contains("reading the cart: disk on fire"),
            "{text}"
        );
        assert!(
            !text.contains("Caused by") && !text.contains("backtrace"),
            "{text}"
        );
    }

    #[test]
    fn request_ids_are_accepted_only_when_sane() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(incoming_request_id(&headers).as_deref(), Some("abc-123"));
        headers.insert(REQUEST_ID, HeaderValue::from_static("a b"));
        assert_eq!(incoming_request_id(&headers), None);
    }
}
