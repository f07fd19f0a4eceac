//! Live queries: every change to an order's status or a product's stock, as SurrealDB reports it.
//! One query per table per instance; against a shared server, changes made by any instance arrive.

use chrono::{DateTime, Utc};
use futures_util::Stream;
use surrealdb::Notification;
use surrealdb::types::{Action, RecordId, SurrealValue};

use super::{Store, StoreError};

/// An order as it is after a change.
#[derive(Debug, Clone, PartialEq, SurrealValue)]
pub struct OrderChange {
    pub order_id: String,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

/// A product's stock as it is after a change.
#[derive(Debug, Clone, PartialEq, SurrealValue)]
pub struct StockChange {
    pub product_id: i64,
    pub stock: i64,
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

/// True for notifications carrying a record as it now is (not a deletion).
pub fn is_current<R>(notification: &Notification<R>) -> bool {
    matches!(notification.action, Action::Create | Action::Update)
}

impl Store {
    pub async fn order_changes(
        &self,
    ) -> Result<impl Stream<Item = surrealdb::Result<Notification<OrderChange>>> + use<>, StoreError>
    {
        let mut response = self
            .db()
            .query("LIVE SELECT record::id(id) AS order_id, status, updated_at FROM `order`")
            .await?;
        Ok(response.stream::<Notification<OrderChange>>(0)?)
    }

    pub async fn stock_changes(
        &self,
    ) -> Result<impl Stream<Item = surrealdb::Result<Notification<StockChange>>> + use<>, StoreError>
    {
        let mut response = self
            .db()
            .query(
                "LIVE SELECT record::id(id) AS product_id, stock, archived, updated_at FROM product",
            )
            .await?;
        Ok(response.stream::<Notification<StockChange>>(0)?)
    }

    /// The current state of these orders (missing ones left out), to catch streams up after the
    /// live queries were down.
    pub async fn order_states(&self, ids: &[String]) -> Result<Vec<OrderChange>, StoreError> {
        let records: Vec<RecordId> = ids
            .iter()
            .map(|id| RecordId::new("order", id.as_str()))
            .collect();
        let mut response = self
            .db()
            .query("SELECT record::id(id) AS order_id, status, updated_at FROM $records")
            .bind(("records", records))
            .await?;
        Ok(response.take(0)?)
    }

    /// The current stock of these products (missing ones left out).
    pub async fn stock_states(&self, ids: &[i64]) -> Result<Vec<StockChange>, StoreError> {
        let records: Vec<RecordId> = ids.iter().map(|id| RecordId::new("product", *id)).collect();
        let mut response = self
            .db()
            .query("SELECT record::id(id) AS product_id, stock, archived, updated_at FROM $records")
            .bind(("records", records))
            .await?;
        Ok(response.take(0)?)
    }
}
