//! Live queries: every change to an order's status or a variant's stock, as SurrealDB reports it.
//! One query per table per instance; against a shared server, changes made by any instance arrive.

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt as _};
use surrealdb::Notification;
use surrealdb::types::{Action, RecordId, SurrealValue};

use super::orders::{order_id_of, status_of};
use super::{Store, StoreError};
use crate::domain::{OrderChange, OrderId, ProductId, StockChange, VariantId};

/// An order's status as the live query and `order_states` read it.
#[derive(Debug, Clone, PartialEq, SurrealValue)]
struct OrderRow {
    order_id: String,
    status: String,
    updated_at: DateTime<Utc>,
}

impl TryFrom<OrderRow> for OrderChange {
    type Error = StoreError;

    fn try_from(r: OrderRow) -> Result<Self, StoreError> {
        Ok(Self {
            order_id: order_id_of(&r.order_id)?,
            status: status_of(&r.status)?,
            updated_at: r.updated_at,
        })
    }
}

/// A variant's stock as the live query and `stock_states` read it.
#[derive(Debug, Clone, PartialEq, SurrealValue)]
struct StockRow {
    product_id: i64,
    variant_id: i64,
    stock: i64,
    archived: bool,
    updated_at: DateTime<Utc>,
}

impl TryFrom<StockRow> for StockChange {
    type Error = StoreError;

    fn try_from(r: StockRow) -> Result<Self, StoreError> {
        Ok(Self {
            product_id: ProductId::from_trusted(r.product_id),
            variant_id: VariantId::from_trusted(r.variant_id),
            stock: r.stock,
            archived: r.archived,
            updated_at: r.updated_at,
        })
    }
}

/// A change as a live query reports it: the record as it now is, `None` for a deletion.
pub type Change<T> = Result<Option<T>, StoreError>;

fn current<R, T>(notification: surrealdb::Result<Notification<R>>) -> Change<T>
where
    T: TryFrom<R, Error = StoreError>,
{
    let notification = notification?;
    match notification.action {
        Action::Create | Action::Update => T::try_from(notification.data).map(Some),
        _ => Ok(None),
    }
}

impl Store {
    pub async fn order_changes(
        &self,
    ) -> Result<impl Stream<Item = Change<OrderChange>> + use<>, StoreError> {
        let mut response = self
            .db()
            .query("LIVE SELECT record::id(id) AS order_id, status, updated_at FROM `order`")
            .await?;
        Ok(response.stream::<Notification<OrderRow>>(0)?.map(current))
    }

    pub async fn stock_changes(
        &self,
    ) -> Result<impl Stream<Item = Change<StockChange>> + use<>, StoreError> {
        let mut response = self
            .db()
            .query(
                "LIVE SELECT record::id(product) AS product_id, record::id(id) AS variant_id, stock,
                     archived, updated_at FROM variant",
            )
            .await?;
        Ok(response.stream::<Notification<StockRow>>(0)?.map(current))
    }

    /// The current state of these orders (missing ones left out), to catch streams up after the
    /// live queries were down.
    pub async fn order_states(&self, ids: &[OrderId]) -> Result<Vec<OrderChange>, StoreError> {
        let records: Vec<RecordId> = ids
            .iter()
            .map(|id| RecordId::new("order", id.to_string()))
            .collect();
        let mut response = self
            .db()
            .query("SELECT record::id(id) AS order_id, status, updated_at FROM $records")
            .bind(("records", records))
            .await?;
        let rows: Vec<OrderRow> = response.take(0)?;
        rows.into_iter().map(OrderChange::try_from).collect()
    }

    /// The current stock of every variant of these products (missing ones left out).
    pub async fn stock_states(&self, ids: &[ProductId]) -> Result<Vec<StockChange>, StoreError> {
        let records: Vec<RecordId> = ids
            .iter()
            .map(|id| RecordId::new("product", id.get()))
            .collect();
        let mut response = self
            .db()
            .query(
                "SELECT record::id(product) AS product_id, record::id(id) AS variant_id, stock,
                     archived, updated_at FROM variant WHERE product IN $records",
            )
            .bind(("records", records))
            .await?;
        let rows: Vec<StockRow> = response.take(0)?;
        rows.into_iter().map(StockChange::try_from).collect()
    }
}
