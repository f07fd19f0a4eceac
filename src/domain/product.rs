use chrono::{DateTime, Utc};

use super::ProductId;

/// A product of the catalog as it is now. Prices are in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub image_url: String,
    /// Withdrawn from sale: out of the catalog, still shown in the orders that hold it.
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A product's stock as it is after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct StockChange {
    pub product_id: ProductId,
    pub stock: i64,
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

impl From<&Product> for StockChange {
    fn from(p: &Product) -> Self {
        Self {
            product_id: p.id,
            stock: p.stock,
            archived: p.archived,
            updated_at: p.updated_at,
        }
    }
}
