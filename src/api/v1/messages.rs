//! `/api/v1/admin/messages`: what the outbox gave up on (admin).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::ApiTags;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::services::outbox::Outbox;

#[derive(Debug, Object)]
pub struct DeadMessageView {
    pub id: String,
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
    /// Emails the outbox stopped trying after their last attempt, newest first.
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
}
