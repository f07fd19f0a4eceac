//! Live updates as Server-Sent Events: an order's status, the stock of a product's variants.
//!
//! Each stream starts with the current state (event id = its `updated_at` in milliseconds; a client
//! reconnecting with that id in `Last-Event-ID` is not sent it again), then one event per change, from
//! SurrealDB live queries, so changes made through any instance arrive. A comment line every 15 s
//! keeps proxies from closing an idle stream. A watcher holds at most
//! `services::live::STREAMS_PER_WATCHER` streams per instance (then 429).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use poem::IntoResponse;
use poem::web::sse::Event;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::EventStream;
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::ApiTags;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::{Auth, Client};
use crate::api::v1::orders::{OrderStatusView, order_id};
use crate::api::v1::products::product_id;
use crate::auth::SessionService;
use crate::domain::{OrderChange, ProductStock};
use crate::services::catalog::Catalog;
use crate::services::live::{LiveUpdates, states};
use crate::services::orders::Orders;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// An order's status, now or after a change.
#[derive(Debug, Clone, Object)]
pub struct OrderStatusEvent {
    pub order_id: String,
    pub status: OrderStatusView,
    pub updated_at: DateTime<Utc>,
}

/// The stock of a product's variants, now or after a change to any of them.
#[derive(Debug, Clone, Object)]
pub struct StockEvent {
    pub product_id: i64,
    /// Units of the live variants together.
    pub stock: i64,
    /// Some variant is in stock and still sold.
    pub available: bool,
    /// Every variant, in order, archived ones included (never available).
    pub variants: Vec<VariantStockView>,
    /// The latest change among the variants.
    pub updated_at: DateTime<Utc>,
}

/// One variant's stock in a `StockEvent`.
#[derive(Debug, Clone, Object)]
pub struct VariantStockView {
    pub variant_id: i64,
    pub stock: i64,
    /// In stock and still sold.
    pub available: bool,
}

impl From<ProductStock> for StockEvent {
    fn from(s: ProductStock) -> Self {
        Self {
            product_id: s.product_id.get(),
            stock: s.stock(),
            available: s.available(),
            updated_at: s.updated_at(),
            variants: s
                .variants
                .iter()
                .map(|v| VariantStockView {
                    variant_id: v.variant_id.get(),
                    stock: v.stock,
                    available: v.available(),
                })
                .collect(),
        }
    }
}

fn event_id(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

fn resumed(last_event_id: &Option<String>, at: DateTime<Utc>) -> bool {
    last_event_id.as_deref() == Some(event_id(at).as_str())
}

/// What an event stream's data is, for the document: an SSE stream is text, not a JSON array, so
/// its schema is a string and the description names the schema of each event's `data`.
pub trait StreamedEvent: Type + ToJSON + Send + 'static {
    /// The `event:` type of every event.
    const KIND: &'static str;
    const DESCRIPTION: &'static str;
    fn at(&self) -> DateTime<Utc>;
}

impl StreamedEvent for OrderStatusEvent {
    const KIND: &'static str = "status";
    const DESCRIPTION: &'static str = "Server-Sent Events of type `status`; each `data` is one \
        `OrderStatusEvent` as JSON, each `id` its `updated_at` in milliseconds.";
    fn at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

impl StreamedEvent for StockEvent {
    const KIND: &'static str = "stock";
    const DESCRIPTION: &'static str = "Server-Sent Events of type `stock`; each `data` is one \
        `StockEvent` as JSON, each `id` its `updated_at` in milliseconds.";
    fn at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// The SSE response: events of `E::KIND`, each with its state's time as its id, and keep-alives.
pub struct Sse<E: StreamedEvent>(EventStream<BoxStream<'static, E>>);

impl<E: StreamedEvent> Sse<E> {
    fn new(stream: BoxStream<'static, E>) -> Self {
        Self(
            EventStream::new(stream)
                .keep_alive(KEEP_ALIVE)
                .to_event(|e| {
                    Event::message(e.to_json_string())
                        .event_type(E::KIND)
                        .id(event_id(e.at()))
                }),
        )
    }
}

impl<E: StreamedEvent> IntoResponse for Sse<E> {
    fn into_response(self) -> poem::Response {
        self.0.into_response()
    }
}

impl<E: StreamedEvent> ApiResponse for Sse<E> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: E::DESCRIPTION,
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "text/event-stream",
                    // A string: the stream's text. `items` names the schema of each event's
                    // data; JSON Schema applies `items` to arrays only, so for this string it
                    // constrains nothing, but it keeps the schema in the document for clients.
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                        items: Some(Box::new(E::schema_ref())),
                        ..MetaSchema::new_with_format("string", "event-stream")
                    })),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        E::register(registry);
    }
}

pub struct EventsApi {
    pub orders: Arc<Orders>,
    pub catalog: Arc<Catalog>,
    pub live: Arc<LiveUpdates>,
    pub sessions: Arc<SessionService>,
}

#[OpenApi(prefix_path = "/api/v1")]
impl EventsApi {
    /// Follow your order's status
    ///
    /// `text/event-stream` of `status` events: the current status first, then each change (an admin
    /// moving it, a cancellation), from whichever instance made it. Admins may follow any order;
    /// anyone else's order is not found. The stream ends when the session that opened it signs out.
    #[oai(
        path = "/orders/:id/events",
        method = "get",
        tag = "ApiTags::Orders",
        operation_id = "orderEvents"
    )]
    async fn order_events(
        &self,
        auth: Auth,
        id: Path<String>,
        /// The `id` of the last event received, to resume without a repeat.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
    ) -> ApiResult<
        Sse<OrderStatusEvent>,
        Problems<{ PARAMS | SIGNED_IN | NOT_FOUND | TOO_MANY_REQUESTS }>,
    > {
        let principal = auth.principal().clone();
        let slot = self.live.slot(format!("user:{}", principal.user_id()))?;
        // Watch first, then read: a change in between is caught by the watch, not lost.
        let order_id = order_id(&id.0)?;
        let subscription = self.live.watch_order(order_id);
        let order = self.orders.order_of(&principal, &order_id).await?;
        let current = OrderChange::from(&order);
        let client_has_it = resumed(&last_event_id.0, current.updated_at);
        let sessions = self.sessions.clone();
        let stream = states(
            current,
            client_has_it,
            subscription,
            slot,
            |_, change| change,
            |a, b| a.status == b.status,
            move || {
                let (sessions, principal) = (sessions.clone(), principal.clone());
                async move { sessions.still_active(&principal).await }
            },
        )
        .map(|c| OrderStatusEvent {
            order_id: c.order_id.to_string(),
            status: c.status.into(),
            updated_at: c.updated_at,
        })
        .boxed();
        Ok(Sse::new(stream))
    }

    /// Follow a product's stock
    ///
    /// `text/event-stream` of `stock` events: the current levels of every variant first, then the
    /// levels after each change to any of them (sales, cancellations, restocking, withdrawal), from
    /// whichever instance made it. Public.
    #[oai(
        path = "/products/:id/stock/events",
        method = "get",
        tag = "ApiTags::Products",
        operation_id = "stockEvents"
    )]
    async fn stock_events(
        &self,
        id: Path<i64>,
        client: Client,
        /// The `id` of the last event received, to resume without a repeat.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
    ) -> ApiResult<Sse<StockEvent>, Problems<{ PARAMS | NOT_FOUND | TOO_MANY_REQUESTS }>> {
        let watcher = client.0.ip.unwrap_or_default();
        let slot = self.live.slot(format!("ip:{watcher}"))?;
        let product_id = product_id(id.0)?;
        let subscription = self.live.watch_stock(product_id);
        let product = self.catalog.product(product_id).await?;
        let current = ProductStock::of(&product);
        let client_has_it = resumed(&last_event_id.0, current.updated_at());
        let stream = states(
            current,
            client_has_it,
            subscription,
            slot,
            ProductStock::apply,
            ProductStock::same_levels,
            || async { true },
        )
        .map(StockEvent::from)
        .boxed();
        Ok(Sse::new(stream))
    }
}
