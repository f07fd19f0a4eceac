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
    /// Uploaded images, in order (`image_url` is the single URL the NextBuy catalog had).
    #[serde(default)]
    pub images: Vec<ProductImage>,
    /// Withdrawn from sale: out of the catalog, still shown in the orders that hold it.
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An uploaded image: `file` is its name in the media store (served at `/media/{file}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProductImage {
    pub id: String,
    pub file: String,
    pub alt: String,
}

/// Images a product holds at most.
pub const MAX_IMAGES: usize = 10;

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
