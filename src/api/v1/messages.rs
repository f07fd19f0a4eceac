//! `/api/v1/admin/messages`: what the outbox gave up on, and retrying it (admin).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::api::{ApiTags, Queued};
use crate::services::outbox::Outbox;

#[derive(Debug, Object)]
pub struct DeadMessageView {
    pub id: String,
    /// `email`, `order_mail` or `webhook`.
    pub kind: String,
    /// What the message was for, e.g. `password_reset`.
    pub purpose: String,
    /// Absent for an order mail that was never rendered (its order or customer was gone).
    #[oai(skip_serializing_if_is_none)]
    pub recipient: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    pub attempts: i64,
    /// The last attempt's failure, as the relay gave it.
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub struct MessagesApi {
    pub outbox: Arc<Outbox>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl MessagesApi {
    /// Messages that could not be delivered (admin)
    ///
    /// Messages (emails and webhook deliveries) the outbox stopped trying after their last
    /// attempt, newest first.
    #[oai(
        path = "/admin/messages/dead",
        method = "get",
        operation_id = "listDeadMessages"
    )]
    async fn dead(
        &self,
        auth: Auth,
        /// Items, 1-100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<Vec<DeadMessageView>>, Problems<{ PARAMS | ADMIN }>> {
        auth.admin()?;
        let dead = self.outbox.dead(limit.0.unwrap_or(50)).await?;
        Ok(Json(
            dead.into_iter()
                .map(|m| DeadMessageView {
                    id: m.id,
                    kind: m.kind,
                    purpose: m.purpose,
                    recipient: m.recipient,
                    subject: m.subject,
                    attempts: m.attempts,
                    last_error: m.last_error,
                    created_at: m.created_at,
                })
                .collect(),
        ))
    }

    /// Retry a message that could not be delivered (admin)
    ///
    /// A dead message gets a fresh round of attempts. 409 `message_not_finished` when it is not
    /// dead.
    #[oai(
        path = "/admin/messages/:id/retry",
        method = "post",
        operation_id = "retryDeadMessage"
    )]
    async fn retry(
        &self,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Queued, Problems<{ PARAMS | ADMIN | NOT_FOUND | CONFLICT }>> {
        let admin = auth.admin()?;
        self.outbox.retry_dead(&admin, &id.0).await?;
        Ok(Queued::Accepted)
    }
}
