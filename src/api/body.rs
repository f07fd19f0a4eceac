//! JSON request bodies whose problems name the field at fault.
//!
//! poem-openapi's `Json<T>` refuses a body whose field is missing or of the wrong type with a message
//! that names the type, never the field (`Type "string" expects an input value`), and reads `null`
//! for an optional field as absent although the document does not allow it. `Body<T>` documents
//! exactly as `Json<T>` does, and first checks the value against `T`'s own schema: the first field
//! that does not fit (missing, `null`, wrong type, out of its bounds, not one of an enum's values,
//! unknown) is a validation problem naming it (`items[2].quantity`), as the services' own checks are
//! (422). A body that is missing or not JSON at all stays a 400.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use poem::http::StatusCode;
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::Value;

use crate::sync::lock;

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

/// A body field that does not fit the operation's schema: answered as a validation problem.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl poem::error::ResponseError for FieldError {
    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

impl<T: Type> Payload for Body<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        Json::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + 'static> ParsePayload for Body<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        if data.is_empty() {
            return Err(ParseRequestPayloadError {
                reason: "a JSON body is required".into(),
            }
            .into());
        }
        let value: Value =
            serde_json::from_slice(&data).map_err(|err| ParseRequestPayloadError {
                reason: err.to_string(),
            })?;
        // Checked against the schema first: poem-openapi reads `null` for an optional field as
        // absent, where the document (no field is nullable) refuses it.
        if let Some((field, reason)) = misfit(registry_of::<T>(), &T::schema_ref(), &value, "") {
            return Err(FieldError { field, reason }.into());
        }
        match T::parse_from_json(Some(value)) {
            Ok(parsed) => Ok(Self(parsed)),
            Err(err) => {
                let message = err.into_message();
                Err(match unknown_field(&message) {
                    Some((field, reason)) => FieldError { field, reason }.into(),
                    None => ParseRequestPayloadError { reason: message }.into(),
                })
            }
        }
    }
}

/// A JSON body kept as the bytes that were sent: a signed webhook's signature covers them exactly,
/// so they are verified before anything parses them. Documented as a JSON object.
#[derive(Debug, Clone)]
pub struct RawJson(pub Vec<u8>);

impl Payload for RawJson {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        Json::<Value>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("object")))
    }
}

impl ParsePayload for RawJson {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(Vec::<u8>::from_request(request, body).await?))
    }
}

poem_openapi::impl_apirequest_for_payload!(RawJson,);

/// `T`'s schemas, built once per body type: they are fixed at compile time, and building them on
/// every request would cost each body a registry of allocations. One is kept (leaked) per type,
/// a dozen in all.
fn registry_of<T: Type + 'static>() -> &'static Registry {
    static REGISTRIES: LazyLock<Mutex<HashMap<TypeId, &'static Registry>>> =
        LazyLock::new(Mutex::default);
    lock(&REGISTRIES)
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let mut registry = Registry::new();
            T::register(&mut registry);
            Box::leak(Box::new(registry))
        })
}

/// The first place where `value` does not fit `schema`, as (path, reason).
fn misfit(
    registry: &Registry,
    schema: &MetaSchemaRef,
    value: &Value,
    path: &str,
) -> Option<(String, String)> {
    let schema = resolve(registry, schema)?;
    // A `$ref` with a description of its own is written `allOf: [$ref]`.
    if let Some(found) = schema
        .all_of
        .iter()
        .find_map(|part| misfit(registry, part, value, path))
    {
        return Some(found);
    }
    let at = |reason: &str| Some((display_path(path), reason.to_string()));
    if !schema.enum_items.is_empty() && !schema.enum_items.contains(value) {
        let names: Vec<String> = schema
            .enum_items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        return at(&format!("must be one of {}", names.join(", ")));
    }
    match (schema.ty, value) {
        ("object", Value::Object(fields)) => {
            for (name, property) in &schema.properties {
                let here = join(path, name);
                match fields.get(*name) {
                    None | Some(Value::Null) if schema.required.contains(name) => {
                        return Some((here, "is required".into()));
                    }
                    None => {}
                    Some(Value::Null) if nullable(registry, property) => {}
                    Some(Value::Null) => return Some((here, "must not be null".into())),
                    Some(v) => {
                        if let Some(found) = misfit(registry, property, v, &here) {
                            return Some(found);
                        }
                    }
                }
            }
            None
        }
        ("object", _) => at("must be an object"),
        ("array", Value::Array(items)) => schema.items.as_deref().and_then(|item| {
            items
                .iter()
                .enumerate()
                .find_map(|(i, v)| misfit(registry, item, v, &format!("{path}[{i}]")))
        }),
        ("array", _) => at("must be an array"),
        ("string", Value::String(text)) => {
            let chars = text.chars().count();
            match (schema.min_length, schema.max_length) {
                (Some(min), _) if chars < min => at(&format!("must be at least {min} characters")),
                (_, Some(max)) if chars > max => at(&format!("must be at most {max} characters")),
                _ => None,
            }
        }
        ("string", _) => at("must be a string"),
        ("integer", Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let n = n.as_f64().unwrap_or_default();
            match (schema.minimum, schema.maximum) {
                (Some(min), _) if n < min => at(&format!("must be at least {min}")),
                (_, Some(max)) if n > max => at(&format!("must be at most {max}")),
                _ => None,
            }
        }
        ("integer", _) => at("must be a whole number"),
        ("number", Value::Number(_)) => None,
        ("number", _) => at("must be a number"),
        ("boolean", Value::Bool(_)) => None,
        ("boolean", _) => at("must be true or false"),
        _ => None,
    }
}

fn nullable(registry: &Registry, schema: &MetaSchemaRef) -> bool {
    resolve(registry, schema).is_some_and(|s| s.nullable)
}

fn resolve<'a>(registry: &'a Registry, schema: &'a MetaSchemaRef) -> Option<&'a MetaSchema> {
    match schema {
        MetaSchemaRef::Inline(schema) => Some(schema),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name.as_str()),
    }
}

/// `deny_unknown_fields` reports an unknown field only in its message: ``unknown field `x`.``
fn unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.split("unknown field `").nth(1)?;
    let name = rest.split('`').next()?;
    Some((name.to_string(), "is not a field of this request".into()))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "body".into()
    } else {
        path.to_string()
    }
}

poem_openapi::impl_apirequest_for_payload!(Body<T>, T: ParseFromJSON + 'static);
