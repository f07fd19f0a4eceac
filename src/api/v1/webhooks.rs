//! `/api/v1/admin/webhooks`: outbound webhook endpoints, their delivery log and replays (admin).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::body::Body;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::api::{ApiTags, NoContent, Queued};
use crate::services::outbox::webhook_id;
use crate::services::webhooks::{EndpointDraft, EndpointPatch, Webhooks};
use crate::store::webhooks::{AttemptRow, DeliveryRow, EndpointRow};

/// An endpoint, without its secret (listing).
#[derive(Debug, Object)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    /// The events it is sent: any of `order.placed`, `order.paid`, `order.status_changed`,
    /// `order.cancelled`, `product.stock_low`.
    pub events: Vec<String>,
    /// A disabled endpoint is sent nothing; deliveries already due to it are given up on.
    pub enabled: bool,
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with the secret its deliveries are signed with.
#[derive(Debug, Object)]
pub struct EndpointWithSecret {
    #[oai(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_` and base64: the key of the `webhook-signature` HMAC, as the Standard Webhooks
    /// libraries take it.
    pub secret: String,
}

impl From<EndpointRow> for EndpointWithSecret {
    fn from(e: EndpointRow) -> Self {
        let secret = e.secret.clone();
        Self {
            endpoint: e.into(),
            secret,
        }
    }
}

impl From<EndpointRow> for EndpointView {
    fn from(e: EndpointRow) -> Self {
        Self {
            id: e.id,
            url: e.url,
            events: e.events,
            enabled: e.enabled,
            description: e.description,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct EndpointList {
    /// Oldest first.
    pub items: Vec<EndpointView>,
}

/// A new endpoint.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct EndpointInput {
    /// Where deliveries are POSTed: `https://` (plain `http://` outside production).
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: String,
    /// At least one of `order.placed`, `order.paid`, `order.status_changed`, `order.cancelled`,
    /// `product.stock_low`.
    #[oai(validator(min_items = 1, max_items = 5))]
    pub events: Vec<String>,
    /// Default true.
    #[oai(skip_serializing_if_is_none)]
    pub enabled: Option<bool>,
    #[oai(skip_serializing_if_is_none, validator(max_length = 200))]
    pub description: Option<String>,
}

impl Example for EndpointInput {
    fn example() -> Self {
        Self {
            url: "https://warehouse.example.com/hooks/storefront".into(),
            events: vec!["order.paid".into(), "order.cancelled".into()],
            enabled: None,
            description: Some("Warehouse picking".into()),
        }
    }
}

/// Changes to an endpoint; fields left out stay as they are, `description: null` removes it.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct EndpointUpdate {
    #[oai(
        skip_serializing_if_is_none,
        validator(min_length = 1, max_length = 2048)
    )]
    pub url: Option<String>,
    #[oai(skip_serializing_if_is_none, validator(min_items = 1, max_items = 5))]
    pub events: Option<Vec<String>>,
    #[oai(skip_serializing_if_is_none)]
    pub enabled: Option<bool>,
    #[oai(validator(max_length = 200))]
    pub description: MaybeUndefined<String>,
}

impl Example for EndpointUpdate {
    fn example() -> Self {
        Self {
            url: None,
            events: None,
            enabled: Some(false),
            description: MaybeUndefined::Undefined,
        }
    }
}

/// One attempt at a delivery.
#[derive(Debug, Object)]
pub struct AttemptView {
    /// 1 for the first attempt of a round (a replay starts a new round).
    pub attempt: i64,
    /// What the endpoint answered; absent when it could not be reached in time.
    #[oai(skip_serializing_if_is_none)]
    pub status_code: Option<i64>,
    /// Why the attempt failed; absent when it delivered.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: DateTime<Utc>,
}

impl From<AttemptRow> for AttemptView {
    fn from(a: AttemptRow) -> Self {
        Self {
            attempt: a.attempt,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
            at: a.at,
        }
    }
}

/// One event sent (or being sent) to the endpoint.
#[derive(Debug, Object)]
pub struct DeliveryView {
    /// The delivery's id (for a replay).
    pub id: String,
    /// The `webhook-id` header: the same on every attempt and replay.
    pub webhook_id: String,
    pub event_type: String,
    /// `pending` (due at `next_attempt_at`), `sending`, `sent` or `dead` (given up on).
    pub status: String,
    pub next_attempt_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub sent_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            webhook_id: webhook_id(&d.id),
            id: d.id,
            event_type: d.event_type,
            status: d.status,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            created_at: d.created_at,
            sent_at: d.sent_at,
            attempts: d.log.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Object)]
pub struct DeliveryList {
    /// Newest first.
    pub items: Vec<DeliveryView>,
}

#[derive(ApiResponse)]
pub enum EndpointCreated {
    /// Created; the secret is also readable later by its id.
    #[oai(status = 201)]
    Created(Json<EndpointWithSecret>),
}

pub struct WebhooksApi {
    pub webhooks: Arc<Webhooks>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl WebhooksApi {
    /// List webhook endpoints (admin)
    #[oai(
        path = "/admin/webhooks",
        method = "get",
        operation_id = "listWebhookEndpoints"
    )]
    async fn list(&self, auth: Auth) -> ApiResult<Json<EndpointList>, Problems<ADMIN>> {
        let admin = auth.admin()?;
        let items = self.webhooks.list(&admin).await?;
        Ok(Json(EndpointList {
            items: items.into_iter().map(Into::into).collect(),
        }))
    }

    /// Add a webhook endpoint (admin)
    ///
    /// Every event it asks for is POSTed to it as JSON `{type, timestamp, data}`, signed as the
    /// Standard Webhooks spec describes (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
    /// with the secret in the answer. A 2xx answer delivers; anything else is tried again after 2,
    /// 4, 8 ... seconds, 8 attempts in all.
    #[oai(
        path = "/admin/webhooks",
        method = "post",
        operation_id = "createWebhookEndpoint"
    )]
    async fn create(
        &self,
        auth: Auth,
        body: Body<EndpointInput>,
    ) -> ApiResult<EndpointCreated, Problems<{ BODY | ADMIN }>> {
        let admin = auth.admin()?;
        let b = body.0;
        let draft = EndpointDraft {
            url: b.url,
            events: b.events,
            enabled: b.enabled,
            description: b.description,
        };
        let created = self.webhooks.create(&admin, draft).await?;
        Ok(EndpointCreated::Created(Json(created.into())))
    }

    /// Read a webhook endpoint and its secret (admin)
    #[oai(
        path = "/admin/webhooks/:id",
        method = "get",
        operation_id = "getWebhookEndpoint"
    )]
    async fn get(
        &self,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<EndpointWithSecret>, Problems<{ PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        Ok(Json(self.webhooks.get(&admin, &id.0).await?.into()))
    }

    /// Change a webhook endpoint (admin)
    #[oai(
        path = "/admin/webhooks/:id",
        method = "patch",
        operation_id = "updateWebhookEndpoint"
    )]
    async fn update(
        &self,
        auth: Auth,
        id: Path<String>,
        body: Body<EndpointUpdate>,
    ) -> ApiResult<Json<EndpointView>, Problems<{ BODY | PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        let b = body.0;
        let patch = EndpointPatch {
            url: b.url,
            events: b.events,
            enabled: b.enabled,
            description: match b.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d)),
            },
        };
        Ok(Json(
            self.webhooks.update(&admin, &id.0, patch).await?.into(),
        ))
    }

    /// Remove a webhook endpoint (admin)
    ///
    /// With its delivery log and the deliveries not yet made.
    #[oai(
        path = "/admin/webhooks/:id",
        method = "delete",
        operation_id = "deleteWebhookEndpoint"
    )]
    async fn delete(
        &self,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<NoContent, Problems<{ PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        self.webhooks.delete(&admin, &id.0).await?;
        Ok(NoContent::Done)
    }

    /// An endpoint's delivery log (admin)
    ///
    /// Its deliveries, newest first, each with every attempt and the status code it got.
    #[oai(
        path = "/admin/webhooks/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        auth: Auth,
        id: Path<String>,
        /// Items, 1-100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<DeliveryList>, Problems<{ PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        let items = self
            .webhooks
            .deliveries(&admin, &id.0, limit.0.unwrap_or(50))
            .await?;
        Ok(Json(DeliveryList {
            items: items.into_iter().map(Into::into).collect(),
        }))
    }

    /// Send a delivery again (admin)
    ///
    /// A delivery that was made or given up on is sent again with the same `webhook-id` and body,
    /// with a fresh round of attempts. 409 `message_not_finished` while it is still being tried.
    #[oai(
        path = "/admin/webhooks/:id/deliveries/:delivery_id/replay",
        method = "post",
        operation_id = "replayWebhookDelivery"
    )]
    async fn replay(
        &self,
        auth: Auth,
        id: Path<String>,
        delivery_id: Path<String>,
    ) -> ApiResult<Queued, Problems<{ PARAMS | ADMIN | NOT_FOUND | CONFLICT }>> {
        let admin = auth.admin()?;
        self.webhooks.replay(&admin, &id.0, &delivery_id.0).await?;
        Ok(Queued::Accepted)
    }
}
