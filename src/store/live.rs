//! Live queries: every change to an order's status or a product's stock, as SurrealDB reports it.
//! One query per table per instance; against a shared server, changes made by any instance arrive.

use chrono::{DateTime, Utc};
use futures_util::Stream;
use surrealdb::Notification;
use surrealdb::types::{Action, SurrealValue};

use super::{Store, StoreError};

/// An order as it is after a change.
#[derive(Debug, Clone, PartialEq, SurrealValue)]
pub struct OrderChange {
    pub order_id: String,
    pub user_id: String,
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
            .query(
                "LIVE SELECT record::id(id) AS order_id, record::id(user) AS user_id, status,
                     updated_at FROM `order`",
            )
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
}
