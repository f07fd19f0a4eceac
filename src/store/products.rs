//! The `product` table: integer keys (the NextBuy catalog's 1-20, then the next free number).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use surrealdb::IndexedResults;
use surrealdb::types::{RecordId, RecordIdKey, SurrealValue};

use crate::domain::{
    MAX_IMAGES, Product, ProductId, ProductImage, ProductOption, ProductSort, Variant, VariantId,
};

use super::{Store, StoreError};

/// A product as stored, without its variants (`ProductsRead` brings them).
#[derive(Debug, Clone, SurrealValue)]
struct ProductRow {
    pub id: RecordId,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: i64,
    pub currency: String,
    pub image_url: String,
    pub images: Option<Vec<ImageRow>>,
    pub options: Option<Vec<OptionRow>>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An option as stored on its product (and as a new product's options are written).
#[derive(Debug, Clone, SurrealValue)]
pub struct OptionRow {
    pub name: String,
    pub values: Vec<String>,
}

impl From<ProductOption> for OptionRow {
    fn from(o: ProductOption) -> Self {
        Self {
            name: o.name,
            values: o.values,
        }
    }
}

/// A variant as `return_products!` reads it, with the product it belongs to.
#[derive(Debug, Clone, SurrealValue)]
struct VariantRow {
    pub product: RecordId,
    pub id: RecordId,
    pub sku: String,
    pub option_values: Vec<String>,
    pub price: Option<i64>,
    pub stock: i64,
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

impl VariantRow {
    /// The variant, and the number of the product it belongs to.
    fn into_variant(self) -> Result<(i64, Variant), StoreError> {
        let variant = Variant {
            id: VariantId::from_trusted(number_key(&self.id)?),
            sku: self.sku,
            option_values: self.option_values,
            price: self.price,
            stock: self.stock,
            archived: self.archived,
            updated_at: self.updated_at,
        };
        Ok((number_key(&self.product)?, variant))
    }
}

/// The number a record id holds (`product:12` is 12): products and variants are keyed by numbers.
/// Reads return record ids as they are: `record::id(id)` costs SurrealDB 3.3.5 about 10 µs a row.
fn number_key(id: &RecordId) -> Result<i64, StoreError> {
    match id.key {
        RecordIdKey::Number(n) => Ok(n),
        _ => Err(StoreError::UnknownOutcome(format!(
            "a {} keyed by other than a number",
            id.table
        ))),
    }
}

#[derive(Debug, Clone, SurrealValue)]
struct ImageRow {
    id: String,
    file: String,
    alt: String,
}

impl ProductRow {
    /// The product, with `variants` as its own.
    fn into_product(self, id: i64, variants: Vec<Variant>) -> Product {
        Product {
            id: ProductId::from_trusted(id),
            name: self.name,
            description: self.description,
            category: self.category,
            price: self.price,
            currency: self.currency,
            image_url: self.image_url,
            options: self
                .options
                .unwrap_or_default()
                .into_iter()
                .map(|o| ProductOption {
                    name: o.name,
                    values: o.values,
                })
                .collect(),
            variants,
            images: self
                .images
                .unwrap_or_default()
                .into_iter()
                .map(|i| ProductImage {
                    id: i.id,
                    file: i.file,
                    alt: i.alt,
                })
                .collect(),
            archived: self.archived,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Products as `return_products!` reads them: the rows, and every variant of them.
#[derive(Debug, SurrealValue)]
struct ProductsRead {
    rows: Vec<ProductRow>,
    variants: Vec<VariantRow>,
}

impl ProductsRead {
    /// The products in the rows' order, each with its own variants in the order they were made
    /// (by number, sorted here: an `ORDER BY` costs SurrealDB more than the sort costs Rust).
    fn into_products(self) -> Result<Vec<Product>, StoreError> {
        let mut of_product: HashMap<i64, Vec<Variant>> = HashMap::new();
        for row in self.variants {
            let (product, variant) = row.into_variant()?;
            of_product.entry(product).or_default().push(variant);
        }
        self.rows
            .into_iter()
            .map(|row| {
                let id = number_key(&row.id)?;
                let mut variants = of_product.remove(&id).unwrap_or_default();
                variants.sort_by_key(|v| v.id.get());
                Ok(row.into_product(id, variants))
            })
            .collect()
    }

    /// The products of a query whose last statement is `return_products!`.
    fn take(mut response: IndexedResults) -> Result<Vec<Product>, StoreError> {
        let last = response.num_statements().saturating_sub(1);
        let read: Option<Self> = response.take(last)?;
        read.map_or(Ok(Vec::new()), Self::into_products)
    }
}

/// A product to create; values already validated.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: i64,
    pub currency: String,
    pub image_url: String,
    pub options: Vec<ProductOption>,
    /// At least one; option values already checked against `options`.
    pub variants: Vec<NewVariant>,
}

/// A variant to create; values already validated.
#[derive(Debug, Clone)]
pub struct NewVariant {
    /// `None`: the store names it `SF-<variant id>`.
    pub sku: Option<String>,
    pub option_values: Vec<String>,
    pub price: Option<i64>,
    pub stock: i64,
}

/// A product's own fields as `insert_products!` writes them.
#[derive(Debug, Clone, SurrealValue)]
struct ProductFields {
    id: Option<surrealdb::types::RecordId>,
    name: String,
    description: String,
    category: String,
    price: i64,
    currency: String,
    image_url: String,
    options: Vec<OptionRow>,
    /// Its variants as `fn::facets` reads them (schema 0018): all are live when made.
    live: Vec<LiveVariant>,
}

/// What a variant offers its product's facets.
#[derive(Debug, Clone, SurrealValue)]
struct LiveVariant {
    option_values: Vec<String>,
    stock: i64,
}

/// A variant as the product writes insert it: `p` says which product of the request it belongs to
/// (an index into the request's products, or a product's own number when seeding).
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct VariantFields {
    pub p: i64,
    pub sku: Option<String>,
    pub option_values: Vec<String>,
    pub price: Option<i64>,
    pub stock: i64,
}

impl NewProduct {
    /// The product's fields and its variants, each variant naming the product as `p`.
    fn split(self, p: i64, id: Option<ProductId>) -> (ProductFields, Vec<VariantFields>) {
        let live = self
            .variants
            .iter()
            .map(|v| LiveVariant {
                option_values: v.option_values.clone(),
                stock: v.stock,
            })
            .collect();
        let variants = self
            .variants
            .into_iter()
            .map(|v| VariantFields {
                p,
                sku: v.sku,
                option_values: v.option_values,
                price: v.price,
                stock: v.stock,
            })
            .collect();
        let fields = ProductFields {
            id: id.map(|id| surrealdb::types::RecordId::new("product", id.get())),
            name: self.name,
            description: self.description,
            category: self.category,
            price: self.price,
            currency: self.currency,
            image_url: self.image_url,
            options: self.options.into_iter().map(OptionRow::from).collect(),
            live,
        };
        (fields, variants)
    }
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price: Option<i64>,
    /// The stock of the product's one live variant (refused when it has several).
    pub stock: Option<i64>,
    pub image_url: Option<String>,
}

/// Where the previous page ended: the sort key of its last product, and that product's id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SortKey {
    Time(DateTime<Utc>),
    Price(i64),
    Name(String),
}

#[derive(Debug, Clone)]
pub struct ProductQuery {
    /// Lower-cased text to find in name or description.
    pub search: Option<String>,
    /// The category asked for and its children (`Store::category_family`).
    pub categories: Option<Vec<String>>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: bool,
    /// Only products with a live variant whose option `.0` has the value `.1`.
    pub option: Option<(String, String)>,
    pub sort: ProductSort,
    pub after: Option<(SortKey, ProductId)>,
    pub limit: u32,
}

impl ProductQuery {
    /// The first page of the whole catalog in `sort` order: no filter, no cursor.
    pub fn first_page(sort: ProductSort, limit: u32) -> Self {
        Self {
            search: None,
            categories: None,
            min_price: None,
            max_price: None,
            in_stock: false,
            option: None,
            sort,
            after: None,
            limit,
        }
    }

    /// The facet (schema 0018) a product needs to pass the variant filters: a live variant in
    /// stock (`['stocked']`), with the option value (`['offered', option, value]`), or both
    /// (`['stocked', option, value]`); none when the query has no variant filter.
    fn facet(&self) -> Option<Vec<String>> {
        let kind = if self.in_stock { "stocked" } else { "offered" };
        match &self.option {
            None if !self.in_stock => None,
            None => Some(vec![kind.to_string()]),
            Some((name, value)) => Some(vec![kind.to_string(), name.clone(), value.clone()]),
        }
    }
}

/// A variant as `VariantRow` reads it.
macro_rules! variant_columns {
    () => {
        "id, sku, option_values, price, stock, archived, updated_at"
    };
}

/// A product as `ProductRow` reads it: a macro, so that it can be `concat!`ed into query text.
macro_rules! product_columns {
    () => {
        "id, name, description, category, price, currency,
         image_url, images, options, archived, created_at, updated_at"
    };
}

/// Ends a read of products: `$rows` (products as `product_columns!` reads them, `LET` before this
/// text) and their variants, as `ProductsRead`. The variants are read by one query on
/// `variant_product` through `$ids`, a parameter: SurrealDB 3.3.5 plans a subquery correlated with
/// its row (`WHERE product = $parent.id`) as a scan of the whole variant table for every product
/// (200 ms for a page of 20 at 1,000 products of four variants), and an expression in place of
/// `$ids` is evaluated against every variant. The rows keep their record ids, so `$ids` is a path
/// rather than a closure (a closure costs 3.3.5 about 15 µs a call).
macro_rules! return_products {
    () => {
        concat!(
            "LET $ids = $rows.id;
             RETURN { rows: $rows, variants: (",
            variants_of_ids!(),
            ") };"
        )
    };
}

/// The variants of the products `$ids`, as `VariantRow` reads them.
macro_rules! variants_of_ids {
    () => {
        concat!(
            "SELECT product, ",
            variant_columns!(),
            " FROM variant WHERE product IN $ids"
        )
    };
}

/// The next free variant number (the table's last key plus one), and the SKUs of `$variants`
/// already taken, which end the block with `sku_taken` before anything is written.
macro_rules! number_variants {
    () => {
        "LET $vstart = ((SELECT VALUE record::id(id) FROM variant ORDER BY id DESC LIMIT 1)[0] ?? 0) + 1;
         LET $taken = $variants.filter(|$v| $v.sku != NONE
             AND array::len((SELECT VALUE id FROM variant WHERE sku = $v.sku LIMIT 1)) > 0);
         IF array::len($taken) > 0 { RETURN { sku_taken: $taken[0].sku } };"
    };
}
pub(super) use number_variants;

/// Inserts `$variants` (numbered from `$vstart`) for the products they name with `$product_of($v)`.
macro_rules! insert_variants {
    ($product:literal) => {
        concat!(
            "INSERT INTO variant $variants.map(|$v, $n| {
                id: type::record('variant', $vstart + $n),
                product: type::record('product', ",
            $product,
            "),
                sku: $v.sku ?? ('SF-' + <string> ($vstart + $n)),
                option_values: $v.option_values, price: $v.price, stock: $v.stock
            }) RETURN NONE;"
        )
    };
}
pub(super) use insert_variants;

/// Inserts `$items` (`ProductFields`) as products, each with its own id or else numbered from
/// `$start`, with the facets of the variants it is made with, and records those facets as known
/// (schema 0019); `IGNORE` leaves an id in use alone. `$made` holds the new products' numbers (`id`)
/// and facets.
macro_rules! insert_products {
    ($ignore:literal) => {
        concat!(
            "LET $made = (INSERT ",
            $ignore,
            " INTO product $items.map(|$p, $i| {
                id: $p.id ?? type::record('product', $start + $i),
                name: $p.name, description: $p.description, category: $p.category,
                price: $p.price, currency: $p.currency, image_url: $p.image_url,
                options: $p.options, facets: fn::facets($p.options.name, $p.live)
            }) RETURN record::id(id) AS id, facets);
            fn::know_facets(array::distinct(array::flatten($made.facets)));"
        )
    };
}

/// The categories a product write names (`$named`) must exist, and are written in the same
/// transaction: deleting one of them at the same moment then conflicts with the product write, and
/// the one that goes again sees the other's result (without the write, each could commit having seen
/// the other's absence). Ends the block with `no_category` when one is missing.
macro_rules! claim_categories {
    () => {
        "LET $missing = $named.filter(|$c| !record::exists(type::record('category', $c)));
         IF array::len($missing) > 0 { RETURN { no_category: $missing[0] } };
         FOR $c IN $named { UPDATE type::record('category', $c) SET claims += 1; };"
    };
}

/// What a product write's block ended with.
#[derive(Debug, SurrealValue)]
struct Claimed {
    start: Option<i64>,
    /// The ids of the products an update changed.
    rows: Option<Vec<i64>>,
    no_category: Option<String>,
    sku_taken: Option<String>,
    several_variants: Option<bool>,
}

impl Claimed {
    /// The first id created, or what refused the write as an error.
    fn outcome(&self) -> Result<i64, StoreError> {
        if let Some(category) = &self.no_category {
            return Err(StoreError::NoCategory(category.clone()));
        }
        if let Some(sku) = &self.sku_taken {
            return Err(StoreError::SkuTaken(sku.clone()));
        }
        if self.several_variants == Some(true) {
            return Err(StoreError::SeveralVariants);
        }
        Ok(self.start.unwrap_or(0))
    }
}

impl Store {
    /// Creates all of `products` (each with its variants) or none of them, with consecutive ids
    /// after the highest in use.
    pub async fn create_products(
        &self,
        products: Vec<NewProduct>,
    ) -> Result<Vec<Product>, StoreError> {
        let count = products.len() as i64;
        let mut named: Vec<String> = products
            .iter()
            .map(|p| p.category.clone())
            .filter(|c| !c.is_empty())
            .collect();
        named.sort_unstable();
        named.dedup();
        let (items, variants): (Vec<_>, Vec<_>) = products
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.split(i as i64, None))
            .unzip();
        let variants: Vec<VariantFields> = variants.into_iter().flatten().collect();
        // Two concurrent creates pick the same ids; the loser's transaction fails and is retried.
        let claimed: Claimed = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{",
                        number_variants!(),
                        claim_categories!(),
                        "-- The highest id in use: the table's last key, read backwards with a limit of one
                        -- (0.25 ms at 2,000 products, where array::max over every id took 12 ms).
                        LET $start = ((SELECT VALUE record::id(id) FROM product ORDER BY id DESC LIMIT 1)[0] ?? 0) + 1;",
                        insert_products!(""),
                        insert_variants!("$start + $v.p"),
                        "RETURN { start: $start };
                     }"
                    ))
                    .bind(("items", items.clone()))
                    .bind(("variants", variants.clone()))
                    .bind(("named", named.clone()))
                    .await?;
                response
                    .take::<Option<Claimed>>(0)?
                    .ok_or_else(|| StoreError::UnknownOutcome("nothing".into()))
            })
            .await?;
        let start = claimed.outcome()?;
        let response = self
            .db()
            .query(concat!(
                "LET $rows = (SELECT ",
                product_columns!(),
                " FROM product WHERE id >= type::record('product', $start)
                     AND id < type::record('product', $end) ORDER BY id);",
                return_products!()
            ))
            .bind(("start", start))
            .bind(("end", start + count))
            .await?;
        ProductsRead::take(response)
    }

    /// Inserts products with their own ids (and their variants), leaving any id already present
    /// untouched; returns how many were new.
    pub async fn insert_missing_products(
        &self,
        products: Vec<(ProductId, NewProduct)>,
    ) -> Result<usize, StoreError> {
        let (items, variants): (Vec<_>, Vec<_>) = products
            .into_iter()
            .map(|(id, p)| p.split(id.get(), Some(id)))
            .unzip();
        let variants: Vec<VariantFields> = variants.into_iter().flatten().collect();
        let claimed: Claimed = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{",
                        insert_products!("IGNORE"),
                        "LET $new = $made.id;
                        LET $variants = $given.filter(|$v| $v.p IN $new);",
                        number_variants!(),
                        insert_variants!("$v.p"),
                        "RETURN { start: array::len($new) };
                     }"
                    ))
                    .bind(("items", items.clone()))
                    .bind(("given", variants.clone()))
                    .await?;
                response
                    .take::<Option<Claimed>>(0)?
                    .ok_or_else(|| StoreError::UnknownOutcome("nothing".into()))
            })
            .await?;
        Ok(claimed.outcome()?.try_into().unwrap_or(0))
    }

    pub async fn has_products(&self) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query("SELECT VALUE record::id(id) FROM product LIMIT 1")
            .await?;
        let any: Vec<i64> = response.take(0)?;
        Ok(!any.is_empty())
    }

    /// A product by id, archived or not.
    pub async fn product(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        let response = self
            .db()
            .query(concat!(
                "LET $rows = (SELECT ",
                product_columns!(),
                " FROM type::record('product', $id));",
                return_products!()
            ))
            .bind(("id", id.get()))
            .await?;
        Ok(ProductsRead::take(response)?.into_iter().next())
    }

    /// Applies `changes` to a product that is not archived; `None` when there is no such product.
    pub async fn update_product(
        &self,
        id: ProductId,
        changes: ProductChanges,
    ) -> Result<Option<Product>, StoreError> {
        let named: Vec<String> = changes
            .category
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect();
        let claimed: Claimed = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{
                         LET $product = type::record('product', $id);
                         IF $stock != NONE AND $product.archived = false {
                             LET $live = (SELECT VALUE id FROM variant
                                 WHERE product = $product AND archived = false);
                             IF array::len($live) != 1 { RETURN { several_variants: true } };
                             UPDATE $live[0] SET stock = $stock RETURN NONE;
                         };",
                        claim_categories!(),
                        "LET $rows = (UPDATE $product SET
                             name = $name ?? name, description = $description ?? description,
                             category = $category ?? category, price = $price ?? price,
                             image_url = $image_url ?? image_url
                         WHERE archived = false RETURN VALUE record::id(id));
                         RETURN { rows: $rows };
                         }"
                    ))
                    .bind(("id", id.get()))
                    .bind(("named", named.clone()))
                    .bind(("name", changes.name.clone()))
                    .bind(("description", changes.description.clone()))
                    .bind(("category", changes.category.clone()))
                    .bind(("price", changes.price))
                    .bind(("stock", changes.stock))
                    .bind(("image_url", changes.image_url.clone()))
                    .await?;
                response
                    .take::<Option<Claimed>>(0)?
                    .ok_or_else(|| StoreError::UnknownOutcome("nothing".into()))
            })
            .await?;
        claimed.outcome()?;
        if claimed.rows.unwrap_or_default().is_empty() {
            return Ok(None);
        }
        // Read after the write, with the product's variants.
        self.product(id).await
    }

    /// Hides a product and its variants from the catalog (their stock streams report them
    /// unavailable); orders keep showing them. False when there was no such product.
    pub async fn archive_product(&self, id: ProductId) -> Result<bool, StoreError> {
        let archived: Option<bool> = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                         LET $product = type::record('product', $id);
                         LET $done = (UPDATE $product SET archived = true WHERE archived = false
                             RETURN VALUE record::id(id));
                         IF array::len($done) = 0 { RETURN false };
                         UPDATE variant SET archived = true WHERE product = $product AND archived = false
                             RETURN NONE;
                         RETURN true;
                         }",
                    )
                    .bind(("id", id.get()))
                    .await?;
                Ok(response.take::<Option<bool>>(0)?)
            })
            .await?;
        Ok(archived == Some(true))
    }

    /// One page of the catalog (archived products left out), plus one extra row when more follow.
    pub async fn list_products(&self, query: &ProductQuery) -> Result<Vec<Product>, StoreError> {
        let mut conditions = vec!["archived = false".to_string()];
        if query.search.is_some() {
            conditions.push(
                "(string::contains(string::lowercase(name), $search)
                  OR string::contains(string::lowercase(description), $search))"
                    .into(),
            );
        }
        if query.categories.is_some() {
            conditions.push("category IN $categories".into());
        }
        if query.min_price.is_some() {
            conditions.push("price >= $min_price".into());
        }
        if query.max_price.is_some() {
            conditions.push("price <= $max_price".into());
        }
        // Read from each product the page walks in its sort order, so the page stops at its size.
        let facet = query.facet();
        if facet.is_some() {
            conditions.push("$facet IN facets".into());
        }
        // Every order reads its index forwards (schema 0007: SurrealKV reads backwards far more
        // slowly), descending ones on negated keys; `after` is the cursor's value on the same key.
        let (key, after) = match query.sort {
            ProductSort::Newest => ("newest_key", "-time::nano($after)"),
            ProductSort::PriceAsc => ("price", "$after"),
            ProductSort::PriceDesc => ("price_desc_key", "-$after"),
            ProductSort::Name => ("name", "$after"),
        };
        if query.after.is_some() {
            conditions.push(format!(
                "({key} > {after} OR ({key} = {after} AND record::id(id) > $after_id))"
            ));
        }
        let select = format!(
            "(SELECT {columns} FROM product WHERE {conditions}
             ORDER BY {key} ASC, id ASC LIMIT $limit)",
            columns = product_columns!(),
            conditions = conditions.join(" AND "),
        );
        // A facet no product has ever had (schema 0019) matches nothing: one record read instead
        // of a walk through every product.
        let rows = if facet.is_some() {
            format!("IF record::exists(type::record('facet', $facet)) {{ {select} }} ELSE {{ [] }}")
        } else {
            select
        };
        let sql = format!("LET $rows = {rows}; {read}", read = return_products!());
        let mut request = self
            .db()
            .query(sql)
            .bind(("search", query.search.clone()))
            .bind(("categories", query.categories.clone()))
            .bind(("min_price", query.min_price))
            .bind(("max_price", query.max_price))
            .bind(("facet", facet))
            .bind(("limit", i64::from(query.limit) + 1));
        if let Some((key, id)) = &query.after {
            request = match key.clone() {
                SortKey::Time(t) => request.bind(("after", t)),
                SortKey::Price(p) => request.bind(("after", p)),
                SortKey::Name(n) => request.bind(("after", n)),
            }
            .bind(("after_id", id.get()));
        }
        ProductsRead::take(request.await?)
    }

    /// Appends an image to a product that is not archived, unless it holds `MAX_IMAGES` already.
    pub async fn add_product_image(
        &self,
        id: ProductId,
        image: &ProductImage,
    ) -> Result<ImageAdd, StoreError> {
        let outcome: String = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                         LET $p = (SELECT archived, images FROM ONLY type::record('product', $id));
                         IF $p = NONE OR $p.archived { RETURN 'missing' };
                         IF array::len($p.images ?? []) >= $max { RETURN 'full' };
                         UPDATE type::record('product', $id) SET images = (images ?? []).append($image);
                         RETURN 'added';
                         }",
                    )
                    .bind(("id", id.get()))
                    .bind(("max", MAX_IMAGES as i64))
                    .bind((
                        "image",
                        ImageRow {
                            id: image.id.clone(),
                            file: image.file.clone(),
                            alt: image.alt.clone(),
                        },
                    ))
                    .await?;
                Ok(response.take::<Option<String>>(0)?.unwrap_or_default())
            })
            .await?;
        Ok(match outcome.as_str() {
            "added" => ImageAdd::Added,
            "missing" => ImageAdd::NoProduct,
            "full" => ImageAdd::Full,
            other => return Err(StoreError::UnknownOutcome(other.to_string())),
        })
    }

    /// Takes an image off a product; returns its file (to delete), `None` when there was none.
    pub async fn remove_product_image(
        &self,
        id: ProductId,
        image_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.retry_on_conflict(|| async {
            let mut response = self
                .db()
                .query(
                    "{
                     LET $p = (SELECT images FROM ONLY type::record('product', $id));
                     LET $found = ($p.images ?? []).filter(|$i| $i.id = $image_id);
                     IF array::len($found) = 0 { RETURN NONE };
                     UPDATE type::record('product', $id)
                         SET images = images.filter(|$i| $i.id != $image_id);
                     RETURN $found[0].file;
                     }",
                )
                .bind(("id", id.get()))
                .bind(("image_id", image_id.to_string()))
                .await?;
            Ok(response.take::<Option<String>>(0)?)
        })
        .await
    }
}

#[cfg(test)]
impl Store {
    /// The names on the first page by name of the products with a variant of `size` (under the
    /// option `Size`; any variant when `None`), in stock or not: a variant filter as tests read it.
    pub(crate) async fn names_by_size(&self, size: Option<&str>, in_stock: bool) -> Vec<String> {
        let query = ProductQuery {
            option: size.map(|v| ("Size".to_string(), v.to_string())),
            in_stock,
            ..ProductQuery::first_page(ProductSort::Name, 10)
        };
        let page = self.list_products(&query).await.unwrap();
        page.into_iter().map(|p| p.name).collect()
    }

    /// Fails unless every product's facets are those of its variants as they are now (schema
    /// 0018), and every facet a product has is known (schema 0019): what the variant filters rely
    /// on, whichever path wrote the product or its variants.
    pub(crate) async fn assert_facets_hold(&self) {
        let mut response = self
            .db()
            .query(
                "SELECT VALUE record::id(id) FROM product
                     WHERE facets != fn::product_facets(id) ORDER BY id;
                 array::distinct(array::flatten(SELECT VALUE facets FROM product))
                     .filter(|$f| !record::exists(type::record('facet', $f)));",
            )
            .await
            .unwrap();
        let stale: Vec<i64> = response.take(0).unwrap();
        assert!(stale.is_empty(), "products with stale facets: {stale:?}");
        let unknown: Vec<Vec<String>> = response.take(1).unwrap();
        assert!(unknown.is_empty(), "facets not known: {unknown:?}");
    }
}

/// What adding an image came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageAdd {
    Added,
    NoProduct,
    /// The product holds `MAX_IMAGES` already.
    Full,
}

#[cfg(test)]
mod tests {
    use super::{NewProduct, NewVariant, ProductQuery};
    use crate::domain::{
        CartOwner, OrderId, ProductId, ProductOption, ProductSort, UserId, VariantId,
    };
    use crate::store::StockPolicy;
    use crate::store::orders::CheckoutOutcome;
    use crate::store::variants::VariantWrite;
    use crate::store::{Store, migrate};

    async fn store(database: &str) -> Store {
        let store = Store::in_memory("products", database).await;
        migrate(&store).await.unwrap();
        store
    }

    /// A product with one option and a variant per `(value, stock)`, SKUs `{name}-{value}`.
    fn product(name: &str, option: &str, variants: &[(&str, i64)]) -> NewProduct {
        NewProduct {
            name: name.into(),
            description: String::new(),
            category: String::new(),
            price: 1000,
            currency: "GBP".into(),
            image_url: String::new(),
            options: vec![ProductOption {
                name: option.into(),
                values: variants.iter().map(|(v, _)| v.to_string()).collect(),
            }],
            variants: variants
                .iter()
                .map(|(value, stock)| NewVariant {
                    sku: Some(format!("{name}-{value}")),
                    option_values: vec![value.to_string()],
                    price: None,
                    stock: *stock,
                })
                .collect(),
        }
    }

    fn skus(product: &crate::domain::Product) -> Vec<&str> {
        product.variants.iter().map(|v| v.sku.as_str()).collect()
    }

    fn names(page: &[crate::domain::Product]) -> Vec<&str> {
        page.iter().map(|p| p.name.as_str()).collect()
    }

    /// Each product read (a page, one product, the products a bulk write made) carries its own
    /// variants, in the order they were made, and no other product's.
    #[tokio::test]
    async fn every_read_gives_each_product_its_own_variants_in_order() {
        let store = store("own_variants").await;
        let made = store
            .create_products(vec![
                product("tee", "Size", &[("S", 1), ("M", 2), ("L", 3)]),
                product("mug", "Colour", &[("red", 4)]),
                product("cap", "Size", &[("M", 5), ("S", 6)]),
            ])
            .await
            .unwrap();
        let expected = [
            vec!["tee-S", "tee-M", "tee-L"],
            vec!["mug-red"],
            vec!["cap-M", "cap-S"],
        ];
        assert_eq!(made.iter().map(skus).collect::<Vec<_>>(), expected);
        let page = store
            .list_products(&ProductQuery::first_page(ProductSort::Name, 10))
            .await
            .unwrap();
        assert_eq!(names(&page), ["cap", "mug", "tee"]);
        assert_eq!(
            page.iter().map(skus).collect::<Vec<_>>(),
            [
                expected[2].clone(),
                expected[1].clone(),
                expected[0].clone()
            ]
        );
        let one = store.product(made[0].id).await.unwrap().unwrap();
        assert_eq!(skus(&one), expected[0]);
        assert_eq!(
            store
                .product(crate::domain::ProductId::from_trusted(99))
                .await
                .unwrap(),
            None
        );
    }

    /// The catalog's variant filters: an option value counts under its own option only, an
    /// archived variant counts for nothing, and in stock means a live variant with stock.
    #[tokio::test]
    async fn filters_by_a_live_variant_with_the_option_value_or_in_stock() {
        let store = store("variant_filters").await;
        store
            .create_products(vec![
                product("a", "Size", &[("S", 0), ("M", 3)]),
                product("b", "Colour", &[("M", 1)]),
                product("c", "Size", &[("M", 0)]),
                product("d", "Size", &[("M", 7)]),
                product("e", "Size", &[("L", 0)]),
            ])
            .await
            .unwrap();
        store
            .db()
            .query("UPDATE variant SET archived = true WHERE sku = 'd-M'")
            .await
            .unwrap()
            .check()
            .unwrap();
        let page = |option: Option<(&str, &str)>, in_stock: bool| {
            let store = store.clone();
            let query = ProductQuery {
                option: option.map(|(n, v)| (n.to_string(), v.to_string())),
                in_stock,
                ..ProductQuery::first_page(ProductSort::Name, 10)
            };
            async move { store.list_products(&query).await.unwrap() }
        };
        assert_eq!(names(&page(Some(("Size", "M")), false).await), ["a", "c"]);
        assert_eq!(names(&page(Some(("Size", "M")), true).await), ["a"]);
        assert_eq!(names(&page(Some(("Colour", "M")), false).await), ["b"]);
        assert_eq!(names(&page(None, true).await), ["a", "b"]);
        assert_eq!(names(&page(None, false).await).len(), 5);
    }

    /// The filters read facets the store keeps with each product (schema 0018): they follow a
    /// variant selling out and coming back, a variant added or archived, and a seeded product.
    #[tokio::test]
    async fn variant_filters_follow_stock_and_variant_writes() {
        let store = store("facet_writes").await;
        let made = store
            .create_products(vec![
                product("a", "Size", &[("S", 0), ("M", 3)]),
                product("b", "Size", &[("M", 1)]),
            ])
            .await
            .unwrap();
        let write = |sql: &'static str| {
            let store = store.clone();
            async move { store.db().query(sql).await.unwrap().check().unwrap() }
        };
        assert_eq!(store.names_by_size(Some("M"), true).await, ["a", "b"]);

        // Sold out as checkout sells: the product stays offered in M, not in stock in M.
        write("UPDATE variant SET stock -= 3 WHERE sku = 'a-M' AND stock >= 3").await;
        assert_eq!(store.names_by_size(Some("M"), true).await, ["b"]);
        assert_eq!(store.names_by_size(None, true).await, ["b"]);
        assert_eq!(store.names_by_size(Some("M"), false).await, ["a", "b"]);

        // Restocked as a cancelled order restocks.
        write("UPDATE variant SET stock += 2 WHERE sku = 'a-S'").await;
        assert_eq!(store.names_by_size(None, true).await, ["a", "b"]);
        assert_eq!(store.names_by_size(Some("S"), true).await, ["a"]);

        let b = made[1].id;
        let added = store
            .add_variant(
                b,
                NewVariant {
                    sku: Some("b-L".into()),
                    option_values: vec!["L".into()],
                    price: None,
                    stock: 4,
                },
            )
            .await
            .unwrap();
        let VariantWrite::Done(_, large) = added else {
            panic!("{added:?}")
        };
        assert_eq!(store.names_by_size(Some("L"), true).await, ["b"]);
        store.archive_variant(b, large).await.unwrap();
        assert!(store.names_by_size(Some("L"), false).await.is_empty());

        store
            .insert_missing_products(vec![(
                ProductId::from_trusted(100),
                product("c", "Size", &[("XL", 2)]),
            )])
            .await
            .unwrap();
        assert_eq!(store.names_by_size(Some("XL"), true).await, ["c"]);

        // A size no product has had is answered from the known facets (schema 0019); a variant
        // changed to it makes it known.
        assert!(store.names_by_size(Some("XXL"), false).await.is_empty());
        write("UPDATE variant SET option_values = ['XXL'] WHERE sku = 'a-S'").await;
        assert_eq!(store.names_by_size(Some("XXL"), true).await, ["a"]);
        store.assert_facets_hold().await;
    }

    /// Two checkouts selling out two variants of one product at once both write the product's
    /// facets: under every stock policy both orders are placed (a conflict is retried, never an
    /// error) and the product leaves the in-stock listing. Many rounds, as a race needs.
    #[tokio::test]
    async fn concurrent_sell_outs_of_one_product_are_both_placed_and_both_counted() {
        for policy in [
            StockPolicy::Gate,
            StockPolicy::PerVariant,
            StockPolicy::Retries,
        ] {
            let store = store(&format!("facet_race_{policy:?}"))
                .await
                .with_stock_policy(policy);
            for round in 0..10 {
                let made = store
                    .create_products(vec![product(
                        &format!("p{round}"),
                        "Size",
                        &[("S", 1), ("M", 1)],
                    )])
                    .await
                    .unwrap();
                let buy = |who: &str, variant: VariantId| {
                    let store = store.clone();
                    let user = UserId::from_trusted(format!("{who}_{round}"));
                    async move {
                        let cart = CartOwner::User(user.clone());
                        store
                            .add_to_cart(&cart, None, variant, 1, 999)
                            .await
                            .unwrap();
                        store
                            .checkout(&user, &OrderId::generate(), "1 Street", None, false, 0)
                            .await
                    }
                };
                let variants = &made[0].variants;
                let (a, b) = tokio::join!(buy("a", variants[0].id), buy("b", variants[1].id));
                for outcome in [a, b] {
                    assert!(
                        matches!(outcome, Ok(CheckoutOutcome::Placed { .. })),
                        "{policy:?}, round {round}: {outcome:?}"
                    );
                }
                let query = ProductQuery {
                    in_stock: true,
                    ..ProductQuery::first_page(ProductSort::Name, 100)
                };
                let listed = store.list_products(&query).await.unwrap();
                assert!(
                    listed.iter().all(|p| p.id != made[0].id),
                    "{policy:?}, round {round}: sold out but listed in stock"
                );
            }
            store.assert_facets_hold().await;
        }
    }

    /// The variants of the products read come from the `variant_product` index: a subquery
    /// correlated with each product scans every variant of the store for every product.
    #[tokio::test]
    async fn the_variants_of_products_read_are_found_through_their_index() {
        let store = store("variant_plan").await;
        let mut response = store
            .db()
            .query(format!(
                "LET $rows = [{{ id: 1 }}, {{ id: 2 }}];
                 LET $ids = $rows.map(|$p| type::record('product', $p.id));
                 {} EXPLAIN;",
                variants_of_ids!()
            ))
            .await
            .unwrap();
        let plan: surrealdb::types::Value = response.take(2).unwrap();
        let plan = format!("{plan:?}");
        assert!(plan.contains("variant_product"), "{plan}");
    }
}
