//! `/api/v1/categories`: the catalog's category tree (two levels); writes are for admins.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::body::Body;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::Auth;
use crate::api::{ApiTags, NoContent};
use crate::domain::Category;
use crate::services::catalog::{Catalog, CategoryDraft, CategoryPatch};

#[derive(Debug, Object)]
pub struct CategoryView {
    /// The key products name it by (`category` on a product, and the catalog's `category` filter).
    pub slug: String,
    pub name: String,
    /// The top-level category this one is under; none for a top-level one.
    #[oai(skip_serializing_if_is_none)]
    pub parent: Option<String>,
}

impl From<Category> for CategoryView {
    fn from(c: Category) -> Self {
        Self {
            slug: c.slug,
            name: c.name,
            parent: c.parent,
        }
    }
}

#[derive(Debug, Object)]
pub struct CategoryList {
    /// Top-level categories first, each level by name.
    pub items: Vec<CategoryView>,
}

/// A new category.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CategoryInput {
    /// Lower-case letters and digits in runs joined by single hyphens; the category's key for good.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub slug: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// A top-level category to put this one under.
    #[oai(
        skip_serializing_if_is_none,
        validator(min_length = 1, max_length = 64)
    )]
    pub parent: Option<String>,
}

impl Example for CategoryInput {
    fn example() -> Self {
        Self {
            slug: "scarves".into(),
            name: "Scarves".into(),
            parent: Some("accessories".into()),
        }
    }
}

/// Changes to a category; fields left out stay as they are.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CategoryUpdate {
    #[oai(
        skip_serializing_if_is_none,
        validator(min_length = 1, max_length = 100)
    )]
    pub name: Option<String>,
    /// Move under this top-level category; `""` moves it to the top level.
    #[oai(skip_serializing_if_is_none, validator(max_length = 64))]
    pub parent: Option<String>,
}

impl Example for CategoryUpdate {
    fn example() -> Self {
        Self {
            name: Some("Caps and hats".into()),
            parent: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum CategoryCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<CategoryView>),
}

pub struct CategoriesApi {
    pub catalog: Arc<Catalog>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Products")]
impl CategoriesApi {
    /// List the categories
    ///
    /// The whole tree, flat: a category with a `parent` is under it. The catalog's `category`
    /// filter shows a category's products and its children's.
    #[oai(path = "/categories", method = "get", operation_id = "listCategories")]
    async fn list(&self) -> ApiResult<Json<CategoryList>, Problems<0>> {
        let items = self.catalog.categories().await?;
        Ok(Json(CategoryList {
            items: items.into_iter().map(Into::into).collect(),
        }))
    }

    /// Add a category (admin)
    ///
    /// 409 `category_taken` when the slug is in use; 422 naming `parent` when it names no
    /// top-level category.
    #[oai(path = "/categories", method = "post", operation_id = "createCategory")]
    async fn create(
        &self,
        auth: Auth,
        body: Body<CategoryInput>,
    ) -> ApiResult<CategoryCreated, Problems<{ BODY | ADMIN | CONFLICT }>> {
        let admin = auth.admin()?;
        let b = body.0;
        let draft = CategoryDraft {
            slug: b.slug,
            name: b.name,
            parent: b.parent,
        };
        let created = self.catalog.create_category(&admin, draft).await?;
        Ok(CategoryCreated::Created(Json(created.into())))
    }

    /// Rename or move a category (admin)
    ///
    /// A category with children stays top-level; a parent must be top-level.
    #[oai(
        path = "/categories/:slug",
        method = "patch",
        operation_id = "updateCategory"
    )]
    async fn update(
        &self,
        auth: Auth,
        slug: Path<String>,
        body: Body<CategoryUpdate>,
    ) -> ApiResult<Json<CategoryView>, Problems<{ BODY | PARAMS | ADMIN | NOT_FOUND }>> {
        let admin = auth.admin()?;
        let b = body.0;
        let patch = CategoryPatch {
            name: b.name,
            parent: b.parent.map(|p| Some(p).filter(|p| !p.is_empty())),
        };
        let updated = self.catalog.update_category(&admin, &slug.0, patch).await?;
        Ok(Json(updated.into()))
    }

    /// Delete a category (admin)
    ///
    /// 409 `category_in_use` while a product (archived ones too) or a child category names it.
    #[oai(
        path = "/categories/:slug",
        method = "delete",
        operation_id = "deleteCategory"
    )]
    async fn delete(
        &self,
        auth: Auth,
        slug: Path<String>,
    ) -> ApiResult<NoContent, Problems<{ PARAMS | ADMIN | NOT_FOUND | CONFLICT }>> {
        let admin = auth.admin()?;
        self.catalog.delete_category(&admin, &slug.0).await?;
        Ok(NoContent::Done)
    }
}
