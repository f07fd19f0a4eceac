use chrono::{DateTime, Utc};

use super::{ProductId, VariantId};

/// A product of the catalog as it is now. Prices are in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub description: String,
    pub category: String,
    /// The price of every variant that does not set its own.
    pub price: i64,
    pub currency: String,
    pub image_url: String,
    /// 0-3 options (Size, Colour), each with the values its variants choose from.
    #[serde(default)]
    pub options: Vec<ProductOption>,
    /// 1-100 variants in the order they were made, archived ones included.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Uploaded images, in order (`image_url` is the single URL the NextBuy catalog had).
    #[serde(default)]
    pub images: Vec<ProductImage>,
    /// Withdrawn from sale: out of the catalog, still shown in the orders that hold it.
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// The variants still sold, in order.
    pub fn live_variants(&self) -> impl Iterator<Item = &Variant> {
        self.variants.iter().filter(|v| !v.archived)
    }

    /// Units available to buy now: the live variants' stock together.
    pub fn stock(&self) -> i64 {
        self.live_variants().map(|v| v.stock).sum()
    }

    /// Whether any live variant has stock.
    pub fn in_stock(&self) -> bool {
        !self.archived && self.live_variants().any(|v| v.stock > 0)
    }

    /// What a variant costs: its own price, else the product's.
    pub fn price_of(&self, variant: &Variant) -> i64 {
        variant.price.unwrap_or(self.price)
    }

    /// The lowest and highest price among the live variants (the product's price when none is live).
    pub fn price_range(&self) -> (i64, i64) {
        let prices = self.live_variants().map(|v| self.price_of(v));
        let (min, max) = prices.fold((i64::MAX, i64::MIN), |(lo, hi), p| (lo.min(p), hi.max(p)));
        if min > max {
            (self.price, self.price)
        } else {
            (min, max)
        }
    }

    /// A variant's option values by option name, in the options' order.
    pub fn labels<'a>(&'a self, variant: &'a Variant) -> Vec<(&'a str, &'a str)> {
        self.options
            .iter()
            .zip(&variant.option_values)
            .map(|(o, v)| (o.name.as_str(), v.as_str()))
            .collect()
    }
}

/// An option of a product and the values its variants choose from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProductOption {
    pub name: String,
    pub values: Vec<String>,
}

/// One sellable version of a product: what a cart line holds and checkout takes stock from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Variant {
    pub id: VariantId,
    /// Unique across the store, archived variants included.
    pub sku: String,
    /// One value per option of the product, in the options' order.
    pub option_values: Vec<String>,
    /// Overrides the product's price when set.
    pub price: Option<i64>,
    pub stock: i64,
    /// Withdrawn: no longer sold, still shown in the orders that hold it.
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

/// Variants a product holds at most.
pub const MAX_VARIANTS: usize = 100;
/// Options a product has at most.
pub const MAX_OPTIONS: usize = 3;

/// An uploaded image: `file` is its name in the media store (served at `/media/{file}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProductImage {
    pub id: String,
    pub file: String,
    pub alt: String,
}

/// Images a product holds at most.
pub const MAX_IMAGES: usize = 10;

/// A variant's stock as it is after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct StockChange {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub stock: i64,
    /// The variant, or its product, is withdrawn from sale.
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

impl StockChange {
    pub fn available(&self) -> bool {
        self.stock > 0 && !self.archived
    }
}

/// The stock of every variant of a product, in variant order: what a product's stock stream shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductStock {
    pub product_id: ProductId,
    pub variants: Vec<StockChange>,
}

impl ProductStock {
    pub fn of(product: &Product) -> Self {
        Self {
            product_id: product.id,
            variants: product
                .variants
                .iter()
                .map(|v| StockChange {
                    product_id: product.id,
                    variant_id: v.id,
                    stock: v.stock,
                    archived: v.archived || product.archived,
                    updated_at: v.updated_at,
                })
                .collect(),
        }
    }

    /// The state after `change` (a variant's new stock, or a new variant). A change older than the
    /// variant's state already held (a notification that arrives late, after a stream started from
    /// a newer read) changes nothing.
    pub fn apply(&self, change: StockChange) -> Self {
        let mut next = self.clone();
        match next
            .variants
            .binary_search_by_key(&change.variant_id, |v| v.variant_id)
        {
            Ok(i) if change.updated_at < next.variants[i].updated_at => {}
            Ok(i) => next.variants[i] = change,
            Err(i) => next.variants.insert(i, change),
        }
        next
    }

    /// Units of the live variants together.
    pub fn stock(&self) -> i64 {
        self.variants
            .iter()
            .filter(|v| !v.archived)
            .map(|v| v.stock)
            .sum()
    }

    pub fn available(&self) -> bool {
        self.variants.iter().any(StockChange::available)
    }

    /// The time of the latest change among the variants.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.variants
            .iter()
            .map(|v| v.updated_at)
            .max()
            .unwrap_or_default()
    }

    /// The same levels and availability, whenever they changed.
    pub fn same_levels(&self, other: &Self) -> bool {
        self.variants.len() == other.variants.len()
            && self.variants.iter().zip(&other.variants).all(|(a, b)| {
                a.variant_id == b.variant_id && a.stock == b.stock && a.archived == b.archived
            })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn change(variant: i64, stock: i64, at: DateTime<Utc>) -> StockChange {
        StockChange {
            product_id: ProductId::from_trusted(1),
            variant_id: VariantId::from_trusted(variant),
            stock,
            archived: false,
            updated_at: at,
        }
    }

    #[test]
    fn a_late_older_change_does_not_undo_a_newer_level() {
        let now = Utc::now();
        let state = ProductStock {
            product_id: ProductId::from_trusted(1),
            variants: vec![change(1, 9, now)],
        };
        let late = state.apply(change(1, 10, now - Duration::milliseconds(5)));
        assert!(late.same_levels(&state));
        let newer = state.apply(change(1, 7, now + Duration::milliseconds(5)));
        assert_eq!(newer.stock(), 7);
        let sibling = newer.apply(change(2, 3, now - Duration::seconds(1)));
        assert_eq!((sibling.variants.len(), sibling.stock()), (2, 10));
    }
}
