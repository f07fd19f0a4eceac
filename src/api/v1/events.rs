//! Live updates as Server-Sent Events: an order's status, a product's stock.
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
use poem::web::sse::Event;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::EventStream;
use poem_openapi::types::ToJSON;
use poem_openapi::{Object, OpenApi};

use crate::api::ApiTags;
use crate::api::problem::ApiResult;
use crate::api::session_http::{Auth, Client};
use crate::api::v1::orders::OrderStatusView;
use crate::auth::SessionService;
use crate::services::catalog::Catalog;
use crate::services::live::{LiveUpdates, states};
use crate::services::orders::Orders;
use crate::store::live::{OrderChange, StockChange};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// An order's status, now or after a change.
#[derive(Debug, Clone, Object)]
pub struct OrderStatusEvent {
    pub order_id: String,
    pub status: OrderStatusView,
    pub updated_at: DateTime<Utc>,
}

/// A product's stock, now or after a change.
#[derive(Debug, Clone, Object)]
pub struct StockEvent {
    pub product_id: i64,
    pub stock: i64,
    /// In stock and still sold.
    pub available: bool,
    pub updated_at: DateTime<Utc>,
}

fn event_id(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

fn resumed(last_event_id: &Option<String>, at: DateTime<Utc>) -> bool {
    last_event_id.as_deref() == Some(event_id(at).as_str())
}

/// The SSE response: events of type `kind`, each with its state's time as its id, and keep-alives.
fn event_stream<E>(
    stream: BoxStream<'static, E>,
    kind: &'static str,
    at: fn(&E) -> DateTime<Utc>,
) -> EventStream<BoxStream<'static, E>>
where
    E: ToJSON + Send + 'static,
{
    EventStream::new(stream)
        .keep_alive(KEEP_ALIVE)
        .to_event(move |e| {
            Event::message(e.to_json_string())
                .event_type(kind)
                .id(event_id(at(&e)))
        })
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
    ) -> ApiResult<EventStream<BoxStream<'static, OrderStatusEvent>>> {
        let principal = auth.principal().clone();
        let slot = self.live.slot(format!("user:{}", principal.user_id))?;
        // Watch first, then read: a change in between is caught by the watch, not lost.
        let subscription = self.live.watch_order(&id.0);
        let order = self.orders.order_of(&principal, &id.0).await?;
        let current = OrderChange {
            order_id: order.id,
            status: order.status,
            updated_at: order.updated_at,
        };
        let client_has_it = resumed(&last_event_id.0, current.updated_at);
        let sessions = self.sessions.clone();
        let stream = states(
            current,
            client_has_it,
            subscription,
            slot,
            |a, b| a.status == b.status,
            move || {
                let (sessions, principal) = (sessions.clone(), principal.clone());
                async move { sessions.still_active(&principal).await }
            },
        )
        // An unknown stored status is an error, logged, and ends nothing else: it is not sent as
        // some other status.
        .filter_map(|c| async move {
            match OrderStatusView::of(&c.status) {
                Ok(status) => Some(OrderStatusEvent {
                    order_id: c.order_id,
                    status,
                    updated_at: c.updated_at,
                }),
                Err(e) => {
                    tracing::error!(error = %e, order.id = %c.order_id, "order change not sent");
                    None
                }
            }
        })
        .boxed();
        Ok(event_stream(stream, "status", |e| e.updated_at))
    }

    /// Follow a product's stock
    ///
    /// `text/event-stream` of `stock` events: the current level first, then each change (sales,
    /// cancellations, restocking, withdrawal), from whichever instance made it. Public.
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
    ) -> ApiResult<EventStream<BoxStream<'static, StockEvent>>> {
        let watcher = client.0.ip.unwrap_or_default();
        let slot = self.live.slot(format!("ip:{watcher}"))?;
        let subscription = self.live.watch_stock(id.0);
        let product = self.catalog.product(id.0).await?;
        let current = StockChange {
            product_id: product.id,
            stock: product.stock,
            archived: product.archived,
            updated_at: product.updated_at,
        };
        let client_has_it = resumed(&last_event_id.0, current.updated_at);
        let stream = states(
            current,
            client_has_it,
            subscription,
            slot,
            |a, b| a.stock == b.stock && a.archived == b.archived,
            || async { true },
        )
        .map(|c| StockEvent {
            product_id: c.product_id,
            stock: c.stock,
            available: c.stock > 0 && !c.archived,
            updated_at: c.updated_at,
        })
        .boxed();
        Ok(event_stream(stream, "stock", |e| e.updated_at))
    }
}
