//! `variant`: a product's sellable versions, each with its SKU, option values, price and stock.
//!
//! Every variant write also writes its product: two writes to one product's variants at once then
//! conflict, and the one that goes again sees the other's variant (without it, each could add the
//! same option values having seen the other's absence). Checkout writes only the variant.

use surrealdb::types::SurrealValue;

use crate::domain::{MAX_VARIANTS, Product, ProductId, VariantId};

use super::products::{NewVariant, VariantFields, insert_variants, number_variants};
use super::{Store, StoreError};

/// Fields of a variant to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct VariantChanges {
    pub sku: Option<String>,
    pub option_values: Option<Vec<String>>,
    /// `Some(None)` clears the override: the variant costs the product's price again.
    pub price: Option<Option<i64>>,
    pub stock: Option<i64>,
}

/// What a variant write came to.
#[derive(Debug)]
pub enum VariantWrite {
    /// Done: the product as it now is, and the variant written.
    Done(Box<Product>, VariantId),
    /// No such product (or it is archived), or no such live variant of it.
    Missing,
    /// Another live variant of the product has these option values.
    Duplicate,
    /// The product holds `MAX_VARIANTS` already.
    Full,
    /// The variant is the product's last live one.
    Last,
}

#[derive(Debug, SurrealValue)]
struct WriteResult {
    /// None when `number_variants!` ended the block (`sku_taken`).
    outcome: Option<String>,
    sku_taken: Option<String>,
    /// The variant added.
    id: Option<i64>,
}

/// The block's start for a write to the product `$product_id`: it must exist and be sold; the
/// product record is written (see the module comment).
macro_rules! lock_product {
    () => {
        "LET $product = type::record('product', $product_id);
         IF $product.archived != false { RETURN { outcome: 'missing' } };
         UPDATE $product RETURN NONE;"
    };
}

/// Ends the block with `duplicate` when a live variant of `$product` other than `$target` has the
/// option values `$values`.
macro_rules! refuse_duplicate_values {
    () => {
        "IF $values != NONE AND array::len((SELECT VALUE id FROM variant
                WHERE product = $product AND archived = false AND option_values = $values
                AND id != $target LIMIT 1)) > 0 {
            RETURN { outcome: 'duplicate' }
         };"
    };
}

impl Store {
    /// Adds a variant to a product that is sold.
    pub async fn add_variant(
        &self,
        product_id: ProductId,
        variant: NewVariant,
    ) -> Result<VariantWrite, StoreError> {
        let fields = VariantFields {
            p: product_id.get(),
            sku: variant.sku,
            option_values: variant.option_values,
            price: variant.price,
            stock: variant.stock,
        };
        self.write_variant(
            product_id,
            None,
            concat!(
                "{",
                lock_product!(),
                "LET $target = NONE;
                 LET $values = $variants[0].option_values;",
                refuse_duplicate_values!(),
                "IF array::len((SELECT VALUE id FROM variant WHERE product = $product)) >= $max {
                    RETURN { outcome: 'full' }
                 };",
                number_variants!(),
                insert_variants!("$v.p"),
                // The facets' event (schema 0018) fires on a variant's later writes, not on its
                // making: products made with their variants carry them already, this one adds.
                "fn::refresh_facets($product);
                 RETURN { outcome: 'done', id: $vstart };
                 }"
            ),
            |q| {
                q.bind(("variants", vec![fields.clone()]))
                    .bind(("max", MAX_VARIANTS as i64))
            },
        )
        .await
    }

    /// Changes a live variant of a product that is sold.
    pub async fn update_variant(
        &self,
        product_id: ProductId,
        variant_id: VariantId,
        changes: VariantChanges,
    ) -> Result<VariantWrite, StoreError> {
        let clear_price = matches!(changes.price, Some(None));
        self.write_variant(
            product_id,
            Some(variant_id),
            concat!(
                "{",
                lock_product!(),
                "LET $target = type::record('variant', $variant_id);
                 IF $target.product != $product OR $target.archived != false { RETURN { outcome: 'missing' } };",
                refuse_duplicate_values!(),
                "IF $sku != NONE AND array::len((SELECT VALUE id FROM variant
                        WHERE sku = $sku AND id != $target LIMIT 1)) > 0 {
                    RETURN { outcome: 'sku_taken', sku_taken: $sku }
                 };
                 UPDATE $target SET sku = $sku ?? sku, option_values = $values ?? option_values,
                     price = IF $clear_price { NONE } ELSE { $price ?? price },
                     stock = $stock ?? stock
                     RETURN NONE;
                 RETURN { outcome: 'done' };
                 }"
            ),
            |q| {
                q.bind(("variant_id", variant_id.get()))
                    .bind(("sku", changes.sku.clone()))
                    .bind(("values", changes.option_values.clone()))
                    .bind(("price", changes.price.flatten()))
                    .bind(("clear_price", clear_price))
                    .bind(("stock", changes.stock))
            },
        )
        .await
    }

    /// Withdraws a live variant from sale (orders keep showing it); a product keeps one at least.
    pub async fn archive_variant(
        &self,
        product_id: ProductId,
        variant_id: VariantId,
    ) -> Result<VariantWrite, StoreError> {
        self.write_variant(
            product_id,
            Some(variant_id),
            concat!(
                "{",
                lock_product!(),
                "LET $target = type::record('variant', $variant_id);
                 IF $target.product != $product OR $target.archived != false { RETURN { outcome: 'missing' } };
                 IF array::len((SELECT VALUE id FROM variant
                        WHERE product = $product AND archived = false)) <= 1 {
                    RETURN { outcome: 'last' }
                 };
                 UPDATE $target SET archived = true RETURN NONE;
                 RETURN { outcome: 'done' };
                 }"
            ),
            |q| q.bind(("variant_id", variant_id.get())),
        )
        .await
    }

    /// The live variants of a product that is sold (an archived product's are archived too), in
    /// order, with their stock.
    pub async fn live_variants(
        &self,
        product_id: ProductId,
    ) -> Result<Vec<(VariantId, i64)>, StoreError> {
        #[derive(SurrealValue)]
        struct Live {
            id: i64,
            stock: i64,
        }
        let mut response = self
            .db()
            .query(
                "SELECT record::id(id) AS id, stock FROM variant
                 WHERE product = type::record('product', $id) AND archived = false ORDER BY id",
            )
            .bind(("id", product_id.get()))
            .await?;
        let live: Vec<Live> = response.take(0)?;
        Ok(live
            .into_iter()
            .map(|v| (VariantId::from_trusted(v.id), v.stock))
            .collect())
    }

    /// Runs one variant write's block (retried on conflict) and reads the product after it.
    /// `variant_id`: the variant written, or `None` for an add, whose block returns the new id.
    async fn write_variant<'a, B>(
        &'a self,
        product_id: ProductId,
        variant_id: Option<VariantId>,
        sql: &'static str,
        bind: B,
    ) -> Result<VariantWrite, StoreError>
    where
        B: Fn(super::Timed<'a>) -> super::Timed<'a>,
    {
        let result: WriteResult = self
            .retry_on_conflict(|| async {
                let query = self.db().query(sql).bind(("product_id", product_id.get()));
                let mut response = bind(query).await?;
                response
                    .take::<Option<WriteResult>>(0)?
                    .ok_or_else(|| StoreError::UnknownOutcome("nothing".into()))
            })
            .await?;
        if let Some(sku) = result.sku_taken {
            return Err(StoreError::SkuTaken(sku));
        }
        Ok(match result.outcome.as_deref().unwrap_or_default() {
            "done" => {
                let id = variant_id
                    .or(result.id.map(VariantId::from_trusted))
                    .ok_or_else(|| StoreError::UnknownOutcome("added without its id".into()))?;
                match self.product(product_id).await? {
                    Some(product) => VariantWrite::Done(Box::new(product), id),
                    None => VariantWrite::Missing,
                }
            }
            "missing" => VariantWrite::Missing,
            "duplicate" => VariantWrite::Duplicate,
            "full" => VariantWrite::Full,
            "last" => VariantWrite::Last,
            other => return Err(StoreError::UnknownOutcome(other.to_string())),
        })
    }
}
