//! The catalog: browsing (cached) and the admin's product writes (which invalidate that cache).

mod bodies;
mod categories;
mod cursor;
mod images;
mod variants;

pub use categories::{CategoryDraft, CategoryPatch};
pub use images::{MAX_IMAGE_BYTES, media_content_type};
pub use variants::{OptionDraft, Pick, VariantDraft, VariantPatch, choose_variant};

use std::sync::atomic::AtomicBool;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use self::bodies::Shows;
use crate::auth::Admin;
use crate::cache::{Body, Cache};
use crate::domain::{Price, Product, ProductId, ProductSort, bounded_text, parse_currency};
use crate::error::{Error, Result};
use crate::media::Media;
use crate::services::cursor::CursorCodec;
use crate::store::products::{NewProduct, ProductChanges, ProductQuery};
use crate::store::{Store, StoreError};

pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_BULK: usize = 1000;
/// The whole-catalog listing (the NextBuy `/products`) stops after this many products.
pub const MAX_WHOLE_CATALOG: usize = 10_000;

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
    /// Bodies being made (`bodies`).
    making: bodies::Making,
    /// A change was not stamped: the cache did not answer (`bodies`).
    unstamped: AtomicBool,
}

impl Catalog {
    pub fn new(store: Store, cache: Cache, cursors: CursorCodec, media: Media) -> Self {
        Self {
            store,
            cache,
            cursors,
            media,
            making: bodies::Making::default(),
            unstamped: AtomicBool::new(false),
        }
    }

    /// One page of the catalog as the response body `render` makes of it, cached with `shape` naming
    /// the rendering: a hit is the stored body, sent as it is. A body is current until something it
    /// shows changes (`bodies`), so no reader sees a page older than the last write. A bad request
    /// is refused before the cache is asked.
    pub async fn list_body(
        &self,
        request: CatalogRequest,
        shape: &'static str,
        render: impl FnOnce(ProductPage) -> Vec<u8>,
    ) -> Result<Body> {
        let (query, category, fingerprint) = self.parse_request(&request)?;
        let digest = Sha256::digest(format!(
            "{fingerprint}|{:?}|{}",
            request.cursor, query.limit
        ));
        let key = format!("{shape}:{}", URL_SAFE_NO_PAD.encode(&digest[..16]));
        let in_stock = query.in_stock;
        self.cached(&key, async {
            let page = self.fetch_page(query, category, &fingerprint).await?;
            let ids = page.items.iter().map(|p| p.id).collect();
            let shows = if in_stock {
                Shows::InStockListing(ids)
            } else {
                Shows::Products(ids)
            };
            Ok((render(page), shows))
        })
        .await
    }

    /// One page of the catalog, read from the store (`list_body` is the cached form).
    pub async fn list(&self, request: CatalogRequest) -> Result<ProductPage> {
        let (query, category, fingerprint) = self.parse_request(&request)?;
        self.fetch_page(query, category, &fingerprint).await
    }

    /// Every product on sale, newest first, up to `MAX_WHOLE_CATALOG`, as the body `render` makes
    /// of them; cached like a page.
    pub async fn all_body(
        &self,
        shape: &'static str,
        render: impl FnOnce(Vec<Product>) -> Vec<u8>,
    ) -> Result<Body> {
        self.cached(&format!("{shape}:all"), async {
            // Paged on the store's own key: no cursor to sign and check per page.
            let mut query = ProductQuery::first_page(ProductSort::Newest, MAX_PAGE);
            let mut all = Vec::new();
            loop {
                let (items, more) = self.read_page(&query).await?;
                query.after = items
                    .last()
                    .map(|last| (cursor::key_of(query.sort, last), last.id));
                all.extend(items);
                if !more || all.len() >= MAX_WHOLE_CATALOG {
                    break;
                }
            }
            Ok((render(all), Shows::Everything))
        })
        .await
    }

    /// A product of the catalog as the body `render` makes of it, cached like a page; archived ones
    /// are not found (and nothing is cached for them).
    pub async fn product_body(
        &self,
        id: ProductId,
        shape: &'static str,
        render: impl FnOnce(Product) -> Vec<u8>,
    ) -> Result<Body> {
        self.cached(&format!("{shape}:product:{id}"), async {
            Ok((render(self.product(id).await?), Shows::Products(vec![id])))
        })
        .await
    }

    /// The query a request asks for, its category (expanded to its family when the store is read)
    /// and its fingerprint, with the cursor checked against both.
    fn parse_request(
        &self,
        request: &CatalogRequest,
    ) -> Result<(ProductQuery, Option<String>, String)> {
        let (mut query, category, fingerprint) = parse_query(request)?;
        if let Some(text) = &request.cursor {
            query.after = Some(cursor::decode(
                &self.cursors,
                text,
                &fingerprint,
                query.sort,
            )?);
        }
        Ok((query, category, fingerprint))
    }

    async fn fetch_page(
        &self,
        mut query: ProductQuery,
        category: Option<String>,
        fingerprint: &str,
    ) -> Result<ProductPage> {
        // Only when the store is read: the tree changes move the version on (`categories`), so a
        // cached body holds the family it was made with.
        if let Some(category) = &category {
            query.categories = Some(self.store.category_family(category).await?);
        }
        let (items, more) = self.read_page(&query).await?;
        let next_cursor = more
            .then(|| items.last())
            .flatten()
            .map(|last| cursor::encode(&self.cursors, fingerprint, query.sort, last));
        Ok(ProductPage { items, next_cursor })
    }

    /// Up to `query.limit` products and whether more follow (the store reads one past the limit).
    async fn read_page(&self, query: &ProductQuery) -> Result<(Vec<Product>, bool)> {
        let mut items = self.store.list_products(query).await?;
        let more = items.len() > query.limit as usize;
        items.truncate(query.limit as usize);
        Ok((items, more))
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

    /// A catalog on a fresh in-memory store, seeded with the starter catalog, caching in-process.
    async fn seeded_catalog(database: &str) -> Catalog {
        let store = Store::in_memory("catalog", database).await;
        crate::store::migrate(&store).await.unwrap();
        let media_dir = std::env::temp_dir().join(format!("sf-media-{database}"));
        let catalog = Catalog::new(
            store,
            Cache::local("t:".into(), Default::default()),
            CursorCodec::new(vec![7; 32]),
            Media::open(&crate::config::MediaSettings::Directory(media_dir)).unwrap(),
        );
        catalog.seed().await.unwrap();
        catalog
    }

    /// Counts the bodies a render closure makes.
    #[derive(Default)]
    struct Renders(std::sync::atomic::AtomicUsize);

    impl Renders {
        fn render<T: serde::Serialize>(&self, value: T) -> Vec<u8> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            serde_json::to_vec(&value).unwrap()
        }

        fn count(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    fn in_category(category: &str, in_stock: bool) -> CatalogRequest {
        CatalogRequest {
            category: Some(category.into()),
            in_stock,
            ..Default::default()
        }
    }

    /// Readers that miss one page at once share one reading of the store; the next reader hits.
    #[tokio::test]
    async fn readers_missing_a_page_together_make_it_once() {
        let catalog = seeded_catalog("single_flight").await;
        let renders = Renders::default();
        let read = || {
            catalog.list_body(CatalogRequest::default(), "test", |page| {
                renders.render(page)
            })
        };
        for round in 1..=3 {
            let bodies = futures_util::future::join_all((0..16).map(|_| read())).await;
            let first = bodies[0].as_ref().unwrap();
            assert!(bodies.iter().all(|b| b.as_ref().unwrap() == first));
            assert_eq!(renders.count(), round, "round {round}");
            read().await.unwrap();
            assert_eq!(renders.count(), round, "a hit after round {round}");
            catalog.invalidate().await;
        }
    }

    /// A stock change makes again only the bodies that show a product it touched (and, when stock
    /// came back, the in-stock listings, and always the whole catalog); an admin's write, all.
    #[tokio::test]
    async fn a_stock_change_remakes_only_the_bodies_that_show_it() {
        let catalog = seeded_catalog("targeted").await;
        let shirt = catalog
            .list(in_category("shirts", false))
            .await
            .unwrap()
            .items[0]
            .id;
        let hat = catalog
            .list(in_category("hats", false))
            .await
            .unwrap()
            .items[0]
            .id;
        let [shirts, hats, hats_in_stock, shirt_body, hat_body, all] =
            std::array::from_fn::<Renders, 6, _>(|_| Renders::default());
        let read_all = || async {
            catalog
                .list_body(in_category("shirts", false), "t", |p| shirts.render(p))
                .await
                .unwrap();
            catalog
                .list_body(in_category("hats", false), "t", |p| hats.render(p))
                .await
                .unwrap();
            catalog
                .list_body(in_category("hats", true), "t", |p| hats_in_stock.render(p))
                .await
                .unwrap();
            catalog
                .product_body(shirt, "t", |p| shirt_body.render(p))
                .await
                .unwrap();
            catalog
                .product_body(hat, "t", |p| hat_body.render(p))
                .await
                .unwrap();
            catalog.all_body("t", |p| all.render(p)).await.unwrap();
        };
        let counts =
            || [&shirts, &hats, &hats_in_stock, &shirt_body, &hat_body, &all].map(Renders::count);
        read_all().await;
        read_all().await;
        assert_eq!(counts(), [1, 1, 1, 1, 1, 1], "the second reading hits");

        catalog.stock_changed(&[shirt], false).await;
        read_all().await;
        assert_eq!(counts(), [2, 1, 1, 2, 1, 2], "a shirt sold");

        catalog.stock_changed(&[shirt], true).await;
        read_all().await;
        assert_eq!(counts(), [3, 1, 2, 3, 1, 3], "a shirt restocked");

        catalog.invalidate().await;
        read_all().await;
        assert_eq!(counts(), [4, 2, 3, 4, 2, 4], "an admin's write");
    }
}
