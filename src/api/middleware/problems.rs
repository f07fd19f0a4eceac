//! Every error answer as a problem document: errors raised before a handler ran, and poem's own.

use poem::http::StatusCode;
use poem::http::header::{self, HeaderValue};
use poem::{Body, Response};

use crate::api::body::FieldError;
use crate::api::problem::{CONTENT_TYPE, Problem};

/// An error raised before a handler ran. A parameter that does not parse or breaks its documented
/// constraints (an unknown `sort`, a `limit` out of range), or a body field that does not fit its
/// schema (`api::body`), is a validation problem naming it, like the services' own. A path id that
/// does not parse (past i64, not a number) names nothing that exists: 404, as an id that parses
/// but names nothing. Anything else keeps poem's response (rewritten by `problems`).
pub(super) fn error_response(err: poem::Error) -> Response {
    let problem = if let Some(param) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        Problem::invalid(param.name, &param.reason)
    } else if let Some(field) = err.downcast_ref::<FieldError>() {
        Problem::invalid(&field.field, &field.reason)
    } else if err.is::<poem_openapi::error::ParsePathError>() {
        Problem::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    } else if let Some(field) = err
        .downcast_ref::<poem_openapi::error::ParseMultipartError>()
        .and_then(|e| multipart_field(&e.reason))
    {
        // A form that parses but lacks or repeats a field names it, as a JSON body's field does;
        // a form that does not parse at all stays a 400.
        Problem::invalid(&field, "is missing, repeated or not of its type")
    } else {
        return err.into_response();
    };
    Response::builder()
        .status(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type(CONTENT_TYPE)
        .body(serde_json::to_string(&problem).unwrap_or_default())
}

/// The field a multipart error is about (poem-openapi: "field `file` is required", "failed to parse
/// field `file`: ...").
fn multipart_field(reason: &str) -> Option<String> {
    let rest = reason
        .strip_prefix("field `")
        .or_else(|| reason.strip_prefix("failed to parse field `"))?;
    rest.split_once('`').map(|(field, _)| field.to_string())
}

/// Turns any error response into a problem document carrying the request id. Problems built by
/// handlers keep their code and field; anything else (poem's own errors) gets one by its status.
pub(super) async fn problems(response: Response, request_id: &str) -> Response {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    // The legacy routes answer errors in the NextBuy front-end's own JSON shapes: leave those be.
    if content_type.starts_with(b"application/json") {
        return response;
    }
    let is_problem = content_type.starts_with(CONTENT_TYPE.as_bytes());
    let (mut parts, body) = response.into_parts();
    let text = body.into_string().await.unwrap_or_default();

    let mut problem = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(fields)) if is_problem => fields,
        _ => match serde_json::to_value(problem_for_status(status, &text)) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        },
    };
    problem.insert("request_id".into(), request_id.into());
    let body = serde_json::Value::Object(problem).to_string();

    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_string(body))
}

/// A problem for errors raised outside handlers: routing, parsing, auth extraction, size limits, panics.
fn problem_for_status(status: StatusCode, text: &str) -> Problem {
    let detail = |fallback: &str| {
        if text.trim().is_empty() {
            fallback.to_string()
        } else {
            text.trim().chars().take(500).collect()
        }
    };
    match status {
        StatusCode::BAD_REQUEST => Problem::new(
            status,
            "bad_request",
            detail("the request could not be read"),
        ),
        StatusCode::UNAUTHORIZED => {
            Problem::new(status, "unauthenticated", "authentication required")
        }
        StatusCode::FORBIDDEN => {
            Problem::new(status, "forbidden", "you do not have permission to do this")
        }
        StatusCode::NOT_FOUND => Problem::new(status, "not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            status,
            "method_not_allowed",
            "this method is not allowed on this resource",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            status,
            "payload_too_large",
            detail("the request body is too large"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
            status,
            "unsupported_media_type",
            detail("send application/json"),
        ),
        s if s.is_server_error() => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred; nothing was changed",
        ),
        s => Problem::new(
            s,
            &format!("http_{}", s.as_u16()),
            detail("request refused"),
        ),
    }
}
