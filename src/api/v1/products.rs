//! `/api/v1/products`: the catalog; writes are for admins.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use crate::api::body::Body;
use crate::api::cached::{CachedJson, json_bytes};
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::api::{ApiTags, NoContent};
use crate::domain::{
    Product, ProductId, ProductImage, ProductOption, ProductSort, Variant, VariantId,
};
use crate::error::Error;
use crate::services::catalog::{
    Catalog, CatalogRequest, OptionDraft, ProductDraft, ProductPage, ProductPatch, VariantDraft,
};

/// An amount of money: an integer count of minor units (pence) and an ISO 4217 code.
#[derive(Debug, Clone, Object)]
pub struct Money {
    /// Minor units, e.g. 1599 for £15.99.
    pub amount: i64,
    /// ISO 4217 code; this store sells in `GBP`.
    pub currency: String,
}

impl Money {
    pub fn new(amount: i64, currency: &str) -> Self {
        Self {
            amount,
            currency: currency.to_string(),
        }
    }
}

/// A variant's value of each option, by option name: `{"Size": "M"}`.
pub type OptionValues = BTreeMap<String, String>;

pub fn option_values(pairs: Vec<(String, String)>) -> OptionValues {
    pairs.into_iter().collect()
}

#[derive(Debug, Object)]
pub struct ProductView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub category: String,
    /// The price of each variant that does not set its own.
    pub price: Money,
    /// The lowest and highest price of the variants on sale.
    pub price_range: PriceRange,
    /// Units available to buy now, all variants together.
    pub stock: i64,
    /// Some variant on sale has stock.
    pub in_stock: bool,
    /// Absolute URL or a path on the store's host.
    pub image_url: String,
    /// Uploaded images, in order.
    pub images: Vec<ImageView>,
    /// 0-3 options (e.g. Size), each with the values its variants choose from.
    pub options: Vec<OptionView>,
    /// The variants on sale, in order; a product without options has exactly one.
    pub variants: Vec<VariantView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct PriceRange {
    pub min: Money,
    pub max: Money,
}

#[derive(Debug, Object)]
pub struct OptionView {
    pub name: String,
    pub values: Vec<String>,
}

/// One variant: what a cart line holds and what checkout takes stock from.
#[derive(Debug, Object)]
pub struct VariantView {
    pub id: i64,
    pub sku: String,
    /// Its value of each option of the product.
    pub option_values: OptionValues,
    /// What it costs: its own price, or the product's.
    pub price: Money,
    /// Whether `price` is the variant's own (else the product's).
    pub price_overridden: bool,
    pub stock: i64,
    /// In stock and on sale.
    pub available: bool,
}

impl VariantView {
    pub fn of(product: &Product, v: &Variant) -> Self {
        Self {
            id: v.id.get(),
            sku: v.sku.clone(),
            option_values: product
                .labels(v)
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            price: Money::new(product.price_of(v), &product.currency),
            price_overridden: v.price.is_some(),
            stock: v.stock,
            available: v.stock > 0 && !v.archived && !product.archived,
        }
    }
}

#[derive(Debug, Object)]
pub struct ImageView {
    pub id: String,
    /// A path on this service: `/media/<file>`, cached for good by browsers and CDNs.
    pub url: String,
    pub alt: String,
}

impl From<ProductImage> for ImageView {
    fn from(i: ProductImage) -> Self {
        Self {
            id: i.id,
            url: format!("/media/{}", i.file),
            alt: i.alt,
        }
    }
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        let (min, max) = p.price_range();
        Self {
            id: p.id.get(),
            price: Money::new(p.price, &p.currency),
            price_range: PriceRange {
                min: Money::new(min, &p.currency),
                max: Money::new(max, &p.currency),
            },
            stock: p.stock(),
            in_stock: p.in_stock(),
            variants: p.live_variants().map(|v| VariantView::of(&p, v)).collect(),
            options: p
                .options
                .iter()
                .map(|o: &ProductOption| OptionView {
                    name: o.name.clone(),
                    values: o.values.clone(),
                })
                .collect(),
            name: p.name,
            description: p.description,
            category: p.category,
            image_url: p.image_url,
            images: p.images.into_iter().map(Into::into).collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct ProductPageView {
    pub items: Vec<ProductView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

impl From<ProductPage> for ProductPageView {
    fn from(page: ProductPage) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct ProductInput {
    /// 1-200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    #[oai(default, validator(max_length = 5000))]
    pub description: String,
    /// The slug of a category that exists (`GET /api/v1/categories`), in any case; empty for none.
    #[oai(default, validator(max_length = 100))]
    pub category: String,
    /// 0 up to 100,000,000 minor units: the price of each variant that does not set its own.
    pub price: Money,
    /// The stock of the product's one variant, when `variants` is not given (default 0).
    #[oai(
        skip_serializing_if_is_none,
        validator(minimum(value = "0"), maximum(value = "1000000000"))
    )]
    pub stock: Option<i64>,
    #[oai(default, validator(max_length = 2048))]
    pub image_url: String,
    /// 0-3 options, e.g. `{"name": "Size", "values": ["S", "M", "L"]}`.
    #[oai(default)]
    pub options: Vec<OptionInput>,
    /// 1-100 variants, one per combination of option values sold; required with options.
    /// Without it the product gets one variant holding `stock`.
    #[oai(skip_serializing_if_is_none)]
    pub variants: Option<Vec<VariantInput>>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct OptionInput {
    /// 1-50 characters, unique within the product (ignoring case).
    pub name: String,
    /// 1-100 distinct values of 1-50 characters.
    pub values: Vec<String>,
}

/// A variant to create.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct VariantInput {
    /// Unique across the store: 1-64 letters, digits, `-`, `_`, `.`; `SF-<id>` when not given.
    #[oai(skip_serializing_if_is_none)]
    pub sku: Option<String>,
    /// One value for each option of the product, e.g. `{"Size": "M"}`; `{}` without options.
    #[oai(default)]
    pub option_values: OptionValues,
    /// Its own price, in the product's currency; the product's when not given.
    #[oai(skip_serializing_if_is_none)]
    pub price: Option<Money>,
    /// 0 up to 1,000,000,000.
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
    pub stock: i64,
}

impl Example for VariantInput {
    fn example() -> Self {
        Self {
            sku: Some("BEANIE-XXL".into()),
            option_values: [("Size".to_string(), "XXL".to_string())].into(),
            price: None,
            stock: 12,
        }
    }
}

impl From<VariantInput> for VariantDraft {
    fn from(v: VariantInput) -> Self {
        Self {
            sku: v.sku,
            option_values: v.option_values.into_iter().collect(),
            price: v.price.map(|m| (m.amount, m.currency)),
            stock: v.stock,
        }
    }
}

impl Example for ProductInput {
    fn example() -> Self {
        Self {
            name: "Merino beanie".into(),
            description: "A soft ribbed beanie in undyed merino wool.".into(),
            category: "hats".into(),
            price: Money::new(2499, "GBP"),
            stock: None,
            image_url: "/images/merino-beanie.jpg".into(),
            // A third size to add later (the `VariantInput` example); SKUs of the store's making.
            options: vec![OptionInput {
                name: "Size".into(),
                values: vec!["S/M".into(), "L/XL".into(), "XXL".into()],
            }],
            variants: Some(vec![
                VariantInput {
                    sku: None,
                    option_values: [("Size".to_string(), "S/M".to_string())].into(),
                    price: None,
                    stock: 25,
                },
                VariantInput {
                    sku: None,
                    option_values: [("Size".to_string(), "L/XL".to_string())].into(),
                    price: Some(Money::new(2699, "GBP")),
                    stock: 15,
                },
            ]),
        }
    }
}

impl From<ProductInput> for ProductDraft {
    fn from(input: ProductInput) -> Self {
        Self {
            name: input.name,
            description: input.description,
            category: input.category,
            price: input.price.amount,
            currency: Some(input.price.currency),
            stock: input.stock,
            image_url: input.image_url,
            options: input
                .options
                .into_iter()
                .map(|o| OptionDraft {
                    name: o.name,
                    values: o.values,
                })
                .collect(),
            variants: input
                .variants
                .map(|vs| vs.into_iter().map(Into::into).collect()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct BulkProducts {
    /// 1 to 1,000 products, created all together or not at all.
    pub products: Vec<ProductInput>,
}

impl Example for BulkProducts {
    fn example() -> Self {
        Self {
            products: vec![ProductInput::example()],
        }
    }
}

#[derive(Debug, Object)]
pub struct ProductList {
    pub items: Vec<ProductView>,
}

/// Fields to change; those left out stay as they are.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct ProductUpdate {
    #[oai(
        skip_serializing_if_is_none,
        validator(min_length = 1, max_length = 200)
    )]
    pub name: Option<String>,
    #[oai(skip_serializing_if_is_none, validator(max_length = 5000))]
    pub description: Option<String>,
    /// The slug of a category that exists; empty for none.
    #[oai(skip_serializing_if_is_none, validator(max_length = 100))]
    pub category: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub price: Option<Money>,
    /// The stock of the product's one variant; a product with several is refused (set each
    /// with `PATCH /api/v1/products/{id}/variants/{variant_id}`).
    #[oai(
        skip_serializing_if_is_none,
        validator(minimum(value = "0"), maximum(value = "1000000000"))
    )]
    pub stock: Option<i64>,
    #[oai(skip_serializing_if_is_none, validator(max_length = 2048))]
    pub image_url: Option<String>,
}

impl Example for ProductUpdate {
    fn example() -> Self {
        Self {
            name: None,
            description: None,
            category: None,
            price: Some(Money::new(1999, "GBP")),
            stock: Some(25),
            image_url: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum ProductCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<ProductView>),
}

#[derive(ApiResponse)]
pub enum ProductsCreated {
    /// All created.
    #[oai(status = 201)]
    Created(Json<ProductList>),
}

pub struct ProductsApi {
    pub catalog: Arc<Catalog>,
}

/// How a catalog page is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

impl From<Sort> for ProductSort {
    fn from(sort: Sort) -> Self {
        match sort {
            Sort::Newest => ProductSort::Newest,
            Sort::PriceAsc => ProductSort::PriceAsc,
            Sort::PriceDesc => ProductSort::PriceDesc,
            Sort::Name => ProductSort::Name,
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Products")]
impl ProductsApi {
    /// Browse the catalog
    ///
    /// Newest first unless `sort` says otherwise. Pages hold `limit` products (1-100, default 20);
    /// follow `next_cursor` for the next one. `q` searches name and description, ignoring case.
    /// Prices are in minor units. The answer carries an `ETag`: sent back in `If-None-Match`, it is
    /// answered with 304 while the page is unchanged.
    #[oai(path = "/products", method = "get", operation_id = "listProducts")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        req: &Request,
        q: Query<Option<String>>,
        /// A category's slug: its products and its children's.
        #[oai(validator(max_length = 100))]
        category: Query<Option<String>>,
        /// In minor units.
        #[oai(validator(minimum(value = "0"), maximum(value = "100000000")))]
        min_price: Query<Option<i64>>,
        /// In minor units.
        #[oai(validator(minimum(value = "0"), maximum(value = "100000000")))]
        max_price: Query<Option<i64>>,
        /// Only products with a variant in stock (default false: all).
        in_stock: Query<Option<bool>>,
        /// `Name:value`, e.g. `Size:M`: only products with a variant on sale that has it (in
        /// stock too, with `in_stock`).
        #[oai(validator(max_length = 101))]
        option: Query<Option<String>>,
        /// Newest first unless given.
        sort: Query<Option<Sort>>,
        cursor: Query<Option<String>>,
        /// Items per page, 1-100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<CachedJson<ProductPageView>, Problems<PARAMS>> {
        let request = CatalogRequest {
            search: q.0,
            category: category.0,
            min_price: min_price.0,
            max_price: max_price.0,
            in_stock: in_stock.0.unwrap_or(false),
            option: option.0,
            sort: sort.0.map(Into::into),
            cursor: cursor.0,
            limit: limit.0,
        };
        let body = self
            .catalog
            .list_body(request, "v1", |page| {
                json_bytes(&ProductPageView::from(page))
            })
            .await?;
        Ok(CachedJson::answer(req, body))
    }

    /// One product
    ///
    /// With an `ETag`, like the catalog's pages.
    #[oai(path = "/products/:id", method = "get", operation_id = "getProduct")]
    async fn get(
        &self,
        req: &Request,
        id: Path<i64>,
    ) -> ApiResult<CachedJson<ProductView>, Problems<{ PARAMS | NOT_FOUND }>> {
        let body = self
            .catalog
            .product_body(product_id(id.0)?, "v1", |product| {
                json_bytes(&ProductView::from(product))
            })
            .await?;
        Ok(CachedJson::answer(req, body))
    }

    /// Add a product (admin)
    #[oai(path = "/products", method = "post", operation_id = "createProduct")]
    async fn create(
        &self,
        auth: Auth,
        body: Body<ProductInput>,
    ) -> ApiResult<ProductCreated, Problems<{ BODY | ADMIN }>> {
        let admin = auth.admin()?;
        let created = self.catalog.create(&admin, vec![body.0.into()]).await?;
        let product = created
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("create returned no product")))?;
        Ok(ProductCreated::Created(Json(product.into())))
    }

    /// Add many products at once (admin)
    ///
    /// All are created or none is: one invalid product refuses the whole request, naming it
    /// (`products[3].price`).
    #[oai(
        path = "/products/bulk",
        method = "post",
        operation_id = "createProducts"
    )]
    async fn create_bulk(
        &self,
        auth: Auth,
        body: Body<BulkProducts>,
    ) -> ApiResult<ProductsCreated, Problems<{ BODY | ADMIN }>> {
        let admin = auth.admin()?;
        let drafts = body.0.products.into_iter().map(Into::into).collect();
        let created = self.catalog.create(&admin, drafts).await?;
        Ok(ProductsCreated::Created(Json(ProductList {
            items: created.into_iter().map(Into::into).collect(),
        })))
    }

    /// Change a product (admin)
    #[oai(
        path = "/products/:id",
        method = "patch",
        operation_id = "updateProduct"
    )]
    async fn update(
        &self,
        auth: Auth,
        id: Path<i64>,
        body: Body<ProductUpdate>,
    ) -> ApiResult<Json<ProductView>, Problems<{ BODY | PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        let b = body.0;
        let patch = ProductPatch {
            name: b.name,
            description: b.description,
            category: b.category,
            price: b.price.as_ref().map(|m| m.amount),
            currency: b.price.map(|m| m.currency),
            stock: b.stock,
            image_url: b.image_url,
        };
        let updated = self
            .catalog
            .update(&admin, product_id(id.0)?, patch)
            .await?;
        Ok(Json(updated.into()))
    }

    /// Archive a product (admin)
    ///
    /// It leaves the catalog at once; orders that hold it still show it.
    #[oai(
        path = "/products/:id",
        method = "delete",
        operation_id = "archiveProduct"
    )]
    async fn archive(
        &self,
        auth: Auth,
        id: Path<i64>,
    ) -> ApiResult<NoContent, Problems<{ PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        self.catalog.archive(&admin, product_id(id.0)?).await?;
        Ok(NoContent::Done)
    }
}

/// A product id from a path: one no product can have (zero or below) is simply not found.
pub fn product_id(id: i64) -> Result<ProductId, Error> {
    ProductId::new(id).ok_or(Error::NotFound("product"))
}

/// A variant id from a path or body, as `product_id`.
pub fn variant_id(id: i64) -> Result<VariantId, Error> {
    VariantId::new(id).ok_or(Error::NotFound("variant"))
}
