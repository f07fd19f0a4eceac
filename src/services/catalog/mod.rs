//! The catalog: browsing (cached) and the admin's product writes (which invalidate that cache).

use std::time::Duration;

mod categories;
mod cursor;
mod images;
mod variants;

pub use categories::{CategoryDraft, CategoryPatch};
pub use images::{MAX_IMAGE_BYTES, media_content_type};
pub use variants::{OptionDraft, Pick, VariantDraft, VariantPatch, choose_variant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::auth::Admin;
use crate::cache::Cache;
use crate::domain::{Price, Product, ProductId, ProductSort, bounded_text, parse_currency};
use crate::error::{Error, Result};
use crate::media::Media;
use crate::services::cursor::CursorCodec;
use crate::store::products::{NewProduct, ProductChanges, ProductQuery};
use crate::store::{Store, StoreError};

pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_BULK: usize = 1000;
/// A cached page lives at most this long even without a write (a safety net, not the mechanism).
const PAGE_TTL: Duration = Duration::from_secs(300);
const VERSION_KEY: &str = "catalog:version";
/// The shape of a cached page, in its key: a page an older build cached (products without their
/// variants) is never read as one of this build's after an upgrade that keeps the shared cache.
const PAGE_FORMAT: &str = "p2";

/// What a caller may ask of the catalog, as received (validated by `Catalog::list`).
#[derive(Debug, Clone, Default)]
pub struct CatalogRequest {
    pub search: Option<String>,
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Only products with a variant in stock.
    pub in_stock: bool,
    /// `Name:value`: only products with a variant that has this option value.
    pub option: Option<String>,
    /// Newest first when not given.
    pub sort: Option<ProductSort>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub next_cursor: Option<String>,
}

/// A product as given by an admin, unvalidated.
#[derive(Debug, Clone, Default)]
pub struct ProductDraft {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: i64,
    pub currency: Option<String>,
    /// The stock of the one default variant, when `variants` is not given.
    pub stock: Option<i64>,
    pub image_url: String,
    pub options: Vec<OptionDraft>,
    pub variants: Option<Vec<VariantDraft>>,
}

#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price: Option<i64>,
    pub currency: Option<String>,
    pub stock: Option<i64>,
    pub image_url: Option<String>,
}

/// The NextBuy starter catalog, with its original integer ids.
const SEED_CATALOG: &str = include_str!("../../../seed/products.json");

#[derive(serde::Deserialize)]
struct SeedProduct {
    id: i64,
    name: String,
    description: String,
    category: String,
    price_minor: i64,
    currency: String,
    stock: i64,
    image_url: String,
}

impl From<SeedProduct> for ProductDraft {
    fn from(s: SeedProduct) -> Self {
        Self {
            name: s.name,
            description: s.description,
            category: s.category,
            price: s.price_minor,
            currency: Some(s.currency),
            stock: Some(s.stock),
            image_url: s.image_url,
            options: Vec::new(),
            variants: None,
        }
    }
}

pub struct Catalog {
    store: Store,
    cache: Cache,
    cursors: CursorCodec,
    media: Media,
}

impl Catalog {
    pub fn new(store: Store, cache: Cache, cursors: CursorCodec, media: Media) -> Self {
        Self {
            store,
            cache,
            cursors,
            media,
        }
    }

    /// One page of the catalog. Pages are cached under the catalog's current version; any product
    /// write moves the version on, so no reader sees a page older than the last write.
    pub async fn list(&self, request: CatalogRequest) -> Result<ProductPage> {
        let (mut query, category, fingerprint) = parse_query(&request)?;
        if let Some(text) = &request.cursor {
            query.after = Some(cursor::decode(
                &self.cursors,
                text,
                &fingerprint,
                query.sort,
            )?);
        }
        let version = self.version().await;
        let cache_key = version.as_ref().map(|v| {
            let digest = Sha256::digest(format!(
                "{fingerprint}|{:?}|{}",
                request.cursor, query.limit
            ));
            format!(
                "catalog:{PAGE_FORMAT}:{v}:{}",
                URL_SAFE_NO_PAD.encode(&digest[..16])
            )
        });
        if let Some(key) = &cache_key
            && let Some(bytes) = self.cache.get(key).await
            && let Ok(page) = serde_json::from_slice::<ProductPage>(&bytes)
        {
            return Ok(page);
        }

        // Only on a miss: the tree changes move the version on (`categories`), so a cached page
        // holds the family it was made with.
        if let Some(category) = &category {
            query.categories = Some(self.store.category_family(category).await?);
        }
        let mut items = self.store.list_products(&query).await?;
        let next_cursor = if items.len() > query.limit as usize {
            items.truncate(query.limit as usize);
            items
                .last()
                .map(|last| cursor::encode(&self.cursors, &fingerprint, query.sort, last))
        } else {
            None
        };
        let page = ProductPage { items, next_cursor };
        if let Some(key) = &cache_key
            && let Ok(bytes) = serde_json::to_vec(&page)
        {
            self.cache.set(key, &bytes, PAGE_TTL).await;
        }
        Ok(page)
    }

    /// A product of the catalog; archived ones are not found.
    pub async fn product(&self, id: ProductId) -> Result<Product> {
        self.store
            .product(id)
            .await?
            .filter(|p| !p.archived)
            .ok_or(Error::NotFound("product"))
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id()))]
    pub async fn create(&self, admin: &Admin, drafts: Vec<ProductDraft>) -> Result<Vec<Product>> {
        if drafts.is_empty() || drafts.len() > MAX_BULK {
            return Err(Error::validation(
                "products",
                format!("must hold 1 to {MAX_BULK} products"),
            ));
        }
        let single = drafts.len() == 1;
        let products = drafts
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                parse_draft(d).map_err(|e| {
                    if single {
                        e
                    } else {
                        e.within(&format!("products[{i}]"))
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let named: Vec<String> = products.iter().map(|p| p.category.clone()).collect();
        // The store checks the categories in the write's transaction; a missing one is reported
        // at the first product naming it.
        let skus: Vec<Vec<String>> = products
            .iter()
            .map(|p| p.variants.iter().filter_map(|v| v.sku.clone()).collect())
            .collect();
        let at = |i: usize, field: &str| {
            if single {
                field.to_string()
            } else {
                format!("products[{i}].{field}")
            }
        };
        let created = match self.store.create_products(products).await {
            Err(StoreError::NoCategory(missing)) => {
                let i = named.iter().position(|c| *c == missing).unwrap_or(0);
                return Err(categories::no_category(at(i, "category")));
            }
            // Reported at the first variant naming it (one in another request, when not found).
            Err(StoreError::SkuTaken(sku)) => {
                let field = skus
                    .iter()
                    .enumerate()
                    .find_map(|(i, s)| {
                        s.iter()
                            .position(|x| *x == sku)
                            .map(|j| at(i, &format!("variants[{j}].sku")))
                    })
                    .unwrap_or_else(|| at(0, "variants"));
                return Err(Error::validation(
                    field,
                    format!("`{sku}` is already another variant's SKU"),
                ));
            }
            other => other?,
        };
        self.invalidate().await;
        Ok(created)
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), product.id = %id))]
    pub async fn update(
        &self,
        admin: &Admin,
        id: ProductId,
        patch: ProductPatch,
    ) -> Result<Product> {
        if let Some(currency) = &patch.currency {
            parse_currency("currency", currency)?;
        }
        let changes = ProductChanges {
            name: patch.name.as_deref().map(parse_name).transpose()?,
            description: patch
                .description
                .as_deref()
                .map(parse_description)
                .transpose()?,
            category: patch.category.as_deref().map(parse_category).transpose()?,
            price: patch
                .price
                .map(|p| Price::parse("price", p).map(Price::minor))
                .transpose()?,
            stock: patch
                .stock
                .map(|s| crate::domain::parse_stock("stock", s))
                .transpose()?,
            image_url: patch
                .image_url
                .as_deref()
                .map(parse_image_url)
                .transpose()?,
        };
        let updated = match self.store.update_product(id, changes).await {
            Err(StoreError::NoCategory(_)) => return Err(categories::no_category("category")),
            other => other?.ok_or(Error::NotFound("product"))?,
        };
        self.invalidate().await;
        Ok(updated)
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), product.id = %id))]
    pub async fn archive(&self, admin: &Admin, id: ProductId) -> Result<()> {
        if !self.store.archive_product(id).await? {
            return Err(Error::NotFound("product"));
        }
        self.invalidate().await;
        Ok(())
    }

    /// Loads the starter catalog (`seed/products.json`, compiled in), adding only the products whose
    /// ids are not taken: running it twice changes nothing. Returns how many were added.
    pub async fn seed(&self) -> Result<usize> {
        self.seed_categories().await?;
        let seeds: Vec<SeedProduct> = serde_json::from_str(SEED_CATALOG)
            .map_err(|e| Error::Internal(anyhow::anyhow!("seed/products.json: {e}")))?;
        let products = seeds
            .into_iter()
            .map(|s| {
                let id = s.id;
                let bad = |e: String| Error::Internal(anyhow::anyhow!("seed product {id}: {e}"));
                let id = ProductId::new(id).ok_or_else(|| bad("not a product id".into()))?;
                parse_draft(s.into())
                    .map(|p| (id, p))
                    .map_err(|e| bad(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let added = self.store.insert_missing_products(products).await?;
        if added > 0 {
            self.invalidate().await;
        }
        Ok(added)
    }

    /// Seeds the catalog only when it has no product at all (start-up with `SEED_CATALOG`).
    pub async fn seed_if_empty(&self) -> Result<usize> {
        if self.store.has_products().await? {
            return Ok(0);
        }
        self.seed().await
    }

    /// The catalog's cache version, made if missing; `None` when the cache is unavailable.
    async fn version(&self) -> Option<String> {
        if let Some(v) = self.cache.get(VERSION_KEY).await {
            return String::from_utf8(v).ok();
        }
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        self.cache
            .set_if_absent(
                VERSION_KEY,
                fresh.as_bytes(),
                Duration::from_secs(7 * 86_400),
            )
            .await;
        // Read back: another instance may have set it first; a failed read means no caching now.
        self.cache
            .get(VERSION_KEY)
            .await
            .and_then(|v| String::from_utf8(v).ok())
    }

    /// Moves the catalog version on: every cached page is dropped, on every instance sharing the cache.
    /// Called after product writes and after anything that changes stock (checkout, cancellation).
    pub async fn invalidate(&self) {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        self.cache
            .set(
                VERSION_KEY,
                fresh.as_bytes(),
                Duration::from_secs(7 * 86_400),
            )
            .await;
    }
}

/// The query, the category asked for (expanded to its family on a cache miss) and the fingerprint
/// that cursors and cache keys carry.
fn parse_query(request: &CatalogRequest) -> Result<(ProductQuery, Option<String>, String)> {
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let sort = request.sort.unwrap_or(ProductSort::Newest);
    for (field, value) in [
        ("min_price", request.min_price),
        ("max_price", request.max_price),
    ] {
        if let Some(v) = value {
            Price::parse(field, v)?;
        }
    }
    if let (Some(min), Some(max)) = (request.min_price, request.max_price)
        && min > max
    {
        return Err(Error::validation("min_price", "must not exceed max_price"));
    }
    let search = request
        .search
        .as_deref()
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    if search.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(Error::validation("q", "must be at most 200 characters"));
    }
    // Keys are stored lower-cased (`parse_category`); any text up to their length is looked up.
    let category = request
        .category
        .as_deref()
        .map(|c| bounded_text("category", c, 0, 100).map(|c| c.to_lowercase()))
        .transpose()?
        .filter(|c| !c.is_empty());
    let option = request
        .option
        .as_deref()
        .map(parse_option_filter)
        .transpose()?;
    let fingerprint = format!(
        "{sort:?}|{search:?}|{category:?}|{:?}|{:?}|{}|{option:?}",
        request.min_price, request.max_price, request.in_stock
    );
    let query = ProductQuery {
        search,
        categories: None,
        min_price: request.min_price,
        max_price: request.max_price,
        in_stock: request.in_stock,
        option,
        sort,
        after: None,
        limit,
    };
    Ok((query, category, fingerprint))
}

/// `Name:value` (the option's name as the product spells it, then one of its values).
fn parse_option_filter(text: &str) -> Result<(String, String)> {
    text.split_once(':')
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .filter(|(name, value)| {
            !name.is_empty()
                && !value.is_empty()
                && name.chars().count() <= 50
                && value.chars().count() <= 50
        })
        .ok_or_else(|| {
            Error::validation(
                "option",
                "must be `Name:value`, e.g. `Size:M` (each 1-50 characters)",
            )
        })
}

fn parse_draft(draft: ProductDraft) -> Result<NewProduct> {
    let currency =
        parse_currency("currency", draft.currency.as_deref().unwrap_or("GBP"))?.to_string();
    let options = variants::parse_options(&draft.options)?;
    let variants =
        variants::parse_variants(&options, &currency, draft.variants.as_deref(), draft.stock)?;
    Ok(NewProduct {
        name: parse_name(&draft.name)?,
        description: parse_description(&draft.description)?,
        category: parse_category(&draft.category)?,
        price: Price::parse("price", draft.price)?.minor(),
        currency,
        image_url: parse_image_url(&draft.image_url)?,
        options,
        variants,
    })
}

fn parse_name(text: &str) -> Result<String> {
    Ok(bounded_text("name", text, 1, 200)?)
}

fn parse_description(text: &str) -> Result<String> {
    Ok(bounded_text("description", text, 0, 5000)?)
}

fn parse_category(text: &str) -> Result<String> {
    Ok(bounded_text("category", text, 0, 100)?.to_lowercase())
}

/// An absolute http(s) URL or a path on the front-end's host (`/compressedImages/x.jpg`).
fn parse_image_url(text: &str) -> Result<String> {
    let url = bounded_text("image_url", text, 0, 2048)?;
    let ok = url.is_empty()
        || (url.starts_with('/') && !url.starts_with("//"))
        || url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !ok || url.contains(char::is_whitespace) {
        return Err(Error::validation(
            "image_url",
            "must be an absolute http(s) URL or a path starting with /",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_urls_are_absolute_or_paths() {
        for ok in [
            "",
            "/compressedImages/white-shirt-4.jpg",
            "https://cdn.example.com/a.jpg",
        ] {
            assert!(parse_image_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "//evil.com/x",
            "relative/x.jpg",
            "https://",
            "/a b.jpg",
        ] {
            assert!(parse_image_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_are_validated() {
        let bad = |r: CatalogRequest| parse_query(&r).unwrap_err().to_string();
        assert!(
            bad(CatalogRequest {
                limit: Some(0),
                ..Default::default()
            })
            .starts_with("limit")
        );
        assert!(
            bad(CatalogRequest {
                limit: Some(101),
                ..Default::default()
            })
            .starts_with("limit")
        );
        assert!(
            bad(CatalogRequest {
                min_price: Some(-1),
                ..Default::default()
            })
            .starts_with("min_price")
        );
        assert!(
            bad(CatalogRequest {
                min_price: Some(10),
                max_price: Some(5),
                ..Default::default()
            })
            .starts_with("min_price")
        );
    }
}
