//! `/api/v1/payments/stripe/webhook`: where Stripe delivers payment events.

use std::sync::Arc;

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::ApiTags;
use crate::api::body::RawJson;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiError, ApiResult, Problem, Problems};
use crate::error::Error;
use crate::services::payments::{Payments, WebhookError};

#[derive(Debug, Object)]
pub struct WebhookReceived {
    /// Always true: the event is recorded (now, or by an earlier delivery).
    pub received: bool,
    /// What the event did: `paid`, `refund` (a payment on a cancelled order, refunded), `failed`,
    /// `mismatch` (amount or currency not the order's: refused), `unknown` (no order of ours),
    /// `ignored`, or `duplicate` (delivered before: nothing changed).
    pub outcome: String,
}

pub struct PaymentsApi {
    pub payments: Arc<Payments>,
}

fn bad_request(code: &str, field: &str, detail: String) -> ApiError {
    ApiError::BadRequest(Json(Problem {
        field: Some(field.to_string()),
        ..Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }))
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Payments")]
impl PaymentsApi {
    /// Receive a Stripe event
    ///
    /// The endpoint to register in Stripe's dashboard, for `payment_intent.succeeded`,
    /// `payment_intent.payment_failed` and `payment_intent.canceled`. Only deliveries signed with
    /// `STRIPE_WEBHOOK_SECRET` (the `Stripe-Signature` header, within five minutes of its timestamp)
    /// are accepted; anything else is 400 and changes nothing. Each event id is applied once,
    /// however often, concurrently or late it comes: 200 once it is recorded, 5xx if it could not
    /// be (Stripe then delivers it again). 404 when payments are manual.
    #[oai(
        path = "/payments/stripe/webhook",
        method = "post",
        operation_id = "receiveStripeEvent"
    )]
    async fn stripe_webhook(
        &self,
        body: RawJson,
        /// `t=<unix time>,v1=<HMAC-SHA256 of "t.body">` (one or more `v1`).
        #[oai(name = "Stripe-Signature")]
        _documented_signature: Header<Option<String>>,
        req: &Request,
    ) -> ApiResult<
        Json<WebhookReceived>,
        Problems<{ BAD_REQUEST | NOT_FOUND | UNSUPPORTED_MEDIA_TYPE | PAYLOAD_TOO_LARGE }>,
    > {
        let signature = req
            .headers()
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok());
        match self.payments.webhook(signature, &body.0).await {
            Ok(outcome) => Ok(Json(WebhookReceived {
                received: true,
                outcome: outcome.as_str().to_string(),
            })),
            Err(WebhookError::NotConfigured) => {
                Err(Error::NotFound("Stripe webhook endpoint").into())
            }
            Err(e @ WebhookError::Signature(_)) => {
                Err(bad_request("invalid_signature", "Stripe-Signature", e.to_string()).into())
            }
            Err(e @ WebhookError::Event(_)) => {
                Err(bad_request("invalid_event", "body", e.to_string()).into())
            }
            Err(e @ WebhookError::NotReady) => Err(Error::Unavailable(e.to_string()).into()),
            Err(WebhookError::Failed(e)) => Err(e.into()),
        }
    }
}
