//! Categories: a two-level tree of records that products name by slug. Reading is public; writes
//! need an admin, and any write that can change which products a filtered page shows (a move, a
//! deletion) moves the catalog's cache version on.

use crate::auth::Admin;
use crate::domain::{Category, CategorySlug, bounded_text};
use crate::error::{Error, Result};
use crate::store::categories::{CategoryDelete, CategoryWrite};

use super::Catalog;

/// The starter catalog's categories (`seed/categories.json`), made before its products.
const SEED_CATEGORIES: &str = include_str!("../../../seed/categories.json");

#[derive(serde::Deserialize)]
struct SeedCategory {
    slug: String,
    name: String,
    parent: Option<String>,
}

/// A category as given by an admin, unvalidated.
#[derive(Debug, Clone, Default)]
pub struct CategoryDraft {
    pub slug: String,
    pub name: String,
    pub parent: Option<String>,
}

/// Changes to a category; `parent: Some(None)` moves it to the top level.
#[derive(Debug, Clone, Default)]
pub struct CategoryPatch {
    pub name: Option<String>,
    pub parent: Option<Option<String>>,
}

fn parse_category_name(text: &str) -> Result<String> {
    Ok(bounded_text("name", text, 1, 100)?)
}

fn parse_parent(text: Option<&str>) -> Result<Option<CategorySlug>> {
    Ok(text.map(|p| CategorySlug::parse("parent", p)).transpose()?)
}

/// A product write's category that names no category record (the store checks it in the write's
/// own transaction), as a validation problem of `field`.
pub(super) fn no_category(field: impl Into<String>) -> Error {
    Error::validation(
        field,
        "names no category (GET /api/v1/categories lists them)",
    )
}

/// The outcome of a write as the caller's answer.
fn written(outcome: CategoryWrite) -> Result<Category> {
    match outcome {
        CategoryWrite::Done(category) => Ok(category),
        CategoryWrite::Taken => Err(Error::Conflict {
            code: "category_taken",
            message: "a category with this slug exists".into(),
        }),
        CategoryWrite::Missing => Err(Error::NotFound("category")),
        CategoryWrite::NoParent => Err(Error::validation("parent", "names no category")),
        CategoryWrite::TooDeep => Err(Error::validation(
            "parent",
            "must be a top-level category other than this one, and a category with children stays \
             top-level (two levels at most)",
        )),
    }
}

impl Catalog {
    /// Every category, top-level ones first.
    pub async fn categories(&self) -> Result<Vec<Category>> {
        Ok(self.store.list_categories().await?)
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id()))]
    pub async fn create_category(&self, admin: &Admin, draft: CategoryDraft) -> Result<Category> {
        let slug = CategorySlug::parse("slug", &draft.slug)?;
        let name = parse_category_name(&draft.name)?;
        let parent = parse_parent(draft.parent.as_deref())?;
        // A new category holds no product yet: no cached page changes.
        written(
            self.store
                .create_category(&slug, &name, parent.as_ref())
                .await?,
        )
    }

    /// A path segment that is not a slug names no category: 404, as a malformed id does.
    fn path_slug(slug: &str) -> Result<CategorySlug> {
        CategorySlug::parse("slug", slug).map_err(|_| Error::NotFound("category"))
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), category = slug))]
    pub async fn update_category(
        &self,
        admin: &Admin,
        slug: &str,
        patch: CategoryPatch,
    ) -> Result<Category> {
        let slug = Self::path_slug(slug)?;
        let name = patch.name.as_deref().map(parse_category_name).transpose()?;
        let parent = patch
            .parent
            .as_ref()
            .map(|p| parse_parent(p.as_deref()))
            .transpose()?;
        let moved = parent.is_some();
        let category = written(
            self.store
                .update_category(&slug, name.as_deref(), parent.as_ref().map(Option::as_ref))
                .await?,
        )?;
        if moved {
            // Its products now show under another parent's filter.
            self.invalidate().await;
        }
        Ok(category)
    }

    #[tracing::instrument(skip_all, fields(admin.id = %admin.user_id(), category = slug))]
    pub async fn delete_category(&self, admin: &Admin, slug: &str) -> Result<()> {
        let slug = Self::path_slug(slug)?;
        match self.store.delete_category(&slug).await? {
            CategoryDelete::Deleted => {
                self.invalidate().await;
                Ok(())
            }
            CategoryDelete::Missing => Err(Error::NotFound("category")),
            CategoryDelete::InUse => Err(Error::Conflict {
                code: "category_in_use",
                message: "products or child categories still name this category".into(),
            }),
        }
    }

    /// Makes the starter catalog's categories that are missing; returns how many were new.
    pub(super) async fn seed_categories(&self) -> Result<usize> {
        let seeds: Vec<SeedCategory> = serde_json::from_str(SEED_CATEGORIES)
            .map_err(|e| Error::Internal(anyhow::anyhow!("seed/categories.json: {e}")))?;
        let categories = seeds
            .into_iter()
            .map(|s| {
                let bad = |e: crate::domain::Invalid| {
                    Error::Internal(anyhow::anyhow!("seed category {}: {e}", s.slug))
                };
                let slug = CategorySlug::parse("slug", &s.slug).map_err(bad)?;
                let parent = s
                    .parent
                    .as_deref()
                    .map(|p| CategorySlug::parse("parent", p))
                    .transpose()
                    .map_err(bad)?;
                Ok((slug, parse_category_name(&s.name)?, parent))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.store.insert_missing_categories(categories).await?)
    }
}
