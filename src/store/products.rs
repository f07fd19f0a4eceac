//! The `product` table: integer keys (the NextBuy catalog's 1-20, then the next free number).

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use crate::domain::{MAX_IMAGES, Product, ProductId, ProductImage, ProductSort};

use super::{Store, StoreError};

/// A product as stored.
#[derive(Debug, Clone, SurrealValue)]
struct ProductRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub image_url: String,
    pub images: Option<Vec<ImageRow>>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, SurrealValue)]
struct ImageRow {
    id: String,
    file: String,
    alt: String,
}

impl From<ProductRow> for Product {
    fn from(r: ProductRow) -> Self {
        Self {
            id: ProductId::from_trusted(r.id),
            name: r.name,
            description: r.description,
            category: r.category,
            price: r.price,
            currency: r.currency,
            stock: r.stock,
            image_url: r.image_url,
            images: r
                .images
                .unwrap_or_default()
                .into_iter()
                .map(|i| ProductImage {
                    id: i.id,
                    file: i.file,
                    alt: i.alt,
                })
                .collect(),
            archived: r.archived,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn into_products(rows: Vec<ProductRow>) -> Vec<Product> {
    rows.into_iter().map(Product::from).collect()
}

/// A product to create; values already validated.
#[derive(Debug, Clone, SurrealValue)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub image_url: String,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price: Option<i64>,
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
            sort,
            after: None,
            limit,
        }
    }
}

/// A product as `ProductRow` reads it: a macro, so that it can be `concat!`ed into query text.
macro_rules! product_columns {
    () => {
        "record::id(id) AS id, name, description, category, price, currency, stock,
     image_url, images, archived, created_at, updated_at"
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
    rows: Option<Vec<ProductRow>>,
    no_category: Option<String>,
}

impl Claimed {
    /// The first id created, or the missing category as an error.
    fn outcome(&self) -> Result<i64, StoreError> {
        match &self.no_category {
            Some(category) => Err(StoreError::NoCategory(category.clone())),
            None => Ok(self.start.unwrap_or(0)),
        }
    }
}

impl Store {
    /// Creates all of `products` or none of them, with consecutive ids after the highest in use.
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
        // Two concurrent creates pick the same ids; the loser's transaction fails and is retried.
        let claimed: Claimed = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(concat!(
                        "{",
                        claim_categories!(),
                        "-- The highest id in use: the table's last key, read backwards with a limit of one
                        -- (0.25 ms at 2,000 products, where array::max over every id took 12 ms).
                        LET $start = ((SELECT VALUE record::id(id) FROM product ORDER BY id DESC LIMIT 1)[0] ?? 0) + 1;
                        INSERT INTO product $items.map(|$p, $i| {
                            id: type::record('product', $start + $i),
                            name: $p.name, description: $p.description, category: $p.category,
                            price: $p.price, currency: $p.currency, stock: $p.stock,
                            image_url: $p.image_url
                        });
                        RETURN { start: $start };
                     }"
                    ))
                    .bind(("items", products.clone()))
                    .bind(("named", named.clone()))
                    .await?;
                response
                    .take::<Option<Claimed>>(0)?
                    .ok_or_else(|| StoreError::UnknownOutcome("nothing".into()))
            })
            .await?;
        let start = claimed.outcome()?;
        let mut response = self
            .db()
            .query(concat!(
                "SELECT ",
                product_columns!(),
                " FROM product WHERE id >= type::record('product', $start)
                     AND id < type::record('product', $end) ORDER BY id"
            ))
            .bind(("start", start))
            .bind(("end", start + count))
            .await?;
        Ok(into_products(response.take(0)?))
    }

    /// Inserts products with their own ids, leaving any id already present untouched; returns how many
    /// were new.
    pub async fn insert_missing_products(
        &self,
        products: Vec<(ProductId, NewProduct)>,
    ) -> Result<usize, StoreError> {
        let rows: Vec<surrealdb::types::Value> = products
            .into_iter()
            .map(|(id, p)| {
                let mut row = p.into_value();
                if let surrealdb::types::Value::Object(fields) = &mut row {
                    fields.insert("id", surrealdb::types::RecordId::new("product", id.get()));
                }
                row
            })
            .collect();
        let mut response = self
            .db()
            .query("INSERT IGNORE INTO product $rows RETURN VALUE record::id(id)")
            .bind(("rows", rows))
            .await?;
        let inserted: Vec<i64> = response.take(0)?;
        Ok(inserted.len())
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
        let mut response = self
            .db()
            .query(concat!(
                "SELECT ",
                product_columns!(),
                " FROM ONLY type::record('product', $id)"
            ))
            .bind(("id", id.get()))
            .await?;
        Ok(response.take::<Option<ProductRow>>(0)?.map(Product::from))
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
                        "{",
                        claim_categories!(),
                        "LET $rows = (UPDATE type::record('product', $id) SET
                             name = $name ?? name, description = $description ?? description,
                             category = $category ?? category, price = $price ?? price,
                             stock = $stock ?? stock, image_url = $image_url ?? image_url
                         WHERE archived = false RETURN ",
                        product_columns!(),
                        ");
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
        Ok(claimed.rows.unwrap_or_default().pop().map(Product::from))
    }

    /// Hides a product from the catalog; orders keep showing it. False when there was no such product.
    pub async fn archive_product(&self, id: ProductId) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query(
                "UPDATE type::record('product', $id) SET archived = true WHERE archived = false
                 RETURN VALUE record::id(id)",
            )
            .bind(("id", id.get()))
            .await?;
        let archived: Vec<i64> = response.take(0)?;
        Ok(!archived.is_empty())
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
        if query.in_stock {
            conditions.push("stock > 0".into());
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
        let sql = format!(
            concat!(
                "SELECT ",
                product_columns!(),
                " FROM product WHERE {conditions} ORDER BY {key} ASC, id ASC LIMIT $limit"
            ),
            conditions = conditions.join(" AND "),
            key = key,
        );
        let mut request = self
            .db()
            .query(sql)
            .bind(("search", query.search.clone()))
            .bind(("categories", query.categories.clone()))
            .bind(("min_price", query.min_price))
            .bind(("max_price", query.max_price))
            .bind(("limit", i64::from(query.limit) + 1));
        if let Some((key, id)) = &query.after {
            request = match key.clone() {
                SortKey::Time(t) => request.bind(("after", t)),
                SortKey::Price(p) => request.bind(("after", p)),
                SortKey::Name(n) => request.bind(("after", n)),
            }
            .bind(("after_id", id.get()));
        }
        Ok(into_products(request.await?.take(0)?))
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

/// What adding an image came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageAdd {
    Added,
    NoProduct,
    /// The product holds `MAX_IMAGES` already.
    Full,
}
